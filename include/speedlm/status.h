// Status and Result<T>: errors as values across the library boundary.
// Messages start with "[where]" and name the offending field and value, e.g.
//   "[config] mixers.attn.heads = 0: must be >= 1".
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace speedlm {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string where, std::string message) {
    Status s;
    s.message_ = fmt::format("[{}] {}", where, message);
    s.failed_ = true;
    return s;
  }
  template <typename... Args>
  static Status errorf(std::string where, fmt::format_string<Args...> f, Args&&... args) {
    return error(std::move(where), fmt::format(f, std::forward<Args>(args)...));
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
  bool failed_ = false;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.is_ok()) status_ = Status::error("result", "constructed from an ok Status without a value");
  }
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

// Internal invariant that indicates a bug in speedlm (never a user error): on in every build.
[[noreturn]] inline void fail_invariant(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "speedlm: internal error at %s:%d: %s %s\n", file, line, expr, msg.c_str());
  std::abort();
}

}  // namespace speedlm

#define SPEEDLM_ASSERT(cond, ...)                                                        \
  do {                                                                                   \
    if (!(cond)) ::speedlm::fail_invariant(#cond, __FILE__, __LINE__, fmt::format("" __VA_ARGS__)); \
  } while (0)

// Propagate a failed Status (or Result) from the current function.
#define SPEEDLM_TRY(expr)                          \
  do {                                             \
    auto&& speedlm_try_s_ = (expr);                \
    if (!speedlm_try_s_) return ::speedlm::detail::status_of(speedlm_try_s_); \
  } while (0)

namespace speedlm::detail {
inline Status status_of(const Status& s) { return s; }
template <typename T>
Status status_of(const Result<T>& r) { return r.status(); }
}  // namespace speedlm::detail
