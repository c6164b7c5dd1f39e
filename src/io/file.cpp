#include "io/file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace speedlm::io {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

Status io_error(std::string_view where, const std::string& path, const char* what, int err) {
  return Status::errorf(std::string(where), "{}: {}: {}", path, what, std::strerror(err));
}

}  // namespace

Result<std::string> read_file(const std::string& path, std::string_view where) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return io_error(where, path, "cannot open", errno);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) out.append(buf, n);
  if (std::ferror(f.get())) return io_error(where, path, "read failed", errno);
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view bytes, std::string_view where) {
  // The pid keeps two processes writing the same target from sharing a temporary file.
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* raw = std::fopen(tmp.c_str(), "wb");
  if (!raw) return io_error(where, tmp, "cannot create", errno);
  FilePtr f(raw);
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), raw) == bytes.size() && std::fflush(raw) == 0 &&
            ::fsync(::fileno(raw)) == 0;
  int err = errno;
  f.reset();
  if (!ok) {
    std::remove(tmp.c_str());
    return io_error(where, tmp, "write failed", err);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return Status::errorf(std::string(where), "{}: cannot rename {} over it: {}", path, tmp, ec.message());
  }
  return Status::ok();
}

}  // namespace speedlm::io
