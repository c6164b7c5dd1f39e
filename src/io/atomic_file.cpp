#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace speedlm::io {
namespace fs = std::filesystem;

namespace {

constexpr const char* kWhere = "io";

// "a/b/" and "a/./b" name the same entry as "a/b".
fs::path clean_path(const std::string& s) {
  fs::path p = fs::path(s).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p;
}

fs::path parent_of(const fs::path& p) { return p.has_parent_path() ? p.parent_path() : fs::path("."); }

Status errno_error(const std::string& what, const fs::path& p, int err) {
  return Status::errorf(kWhere, "cannot {} '{}': {}", what, p.string(), std::strerror(err));
}

Result<bool> path_exists(const fs::path& p, bool* is_dir = nullptr) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return errno_error("stat", p, errno);
  }
  if (is_dir) *is_dir = S_ISDIR(st.st_mode);
  return true;
}

Status fsync_path(const fs::path& p, bool dir) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  if (fd < 0) return errno_error("open for fsync", p, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error("fsync", p, err);
  return Status::ok();
}

Status fsync_parents(const fs::path& a, const fs::path& b) {
  SPEEDLM_TRY(fsync_path(parent_of(a), true));
  if (parent_of(a) != parent_of(b)) SPEEDLM_TRY(fsync_path(parent_of(b), true));
  return Status::ok();
}

// Makes every file and directory entry under dir durable, however it was written.
Status sync_tree(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st) || fs::is_regular_file(st)) SPEEDLM_TRY(fsync_path(it->path(), fs::is_directory(st)));
  }
  if (ec) return Status::errorf(kWhere, "cannot list '{}': {}", dir.string(), ec.message());
  return fsync_path(dir, true);
}

Status remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) return Status::errorf(kWhere, "cannot remove '{}': {}", p.string(), ec.message());
  return Status::ok();
}

Status write_all(int fd, std::span<const std::string_view> pieces, const fs::path& p) {
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      ssize_t n = ::write(fd, piece.data(), piece.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("write", p, errno);
      piece.remove_prefix(static_cast<size_t>(n));
    }
  }
  return Status::ok();
}

// A new temp file next to target: "<target>.tmp.<pid>.<n>", opened with O_EXCL.
int create_temp(const fs::path& target, std::string* tmp) {
  static std::atomic<uint64_t> counter{0};
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    *tmp = fmt::format("{}.tmp.{}.{}", target.string(), ::getpid(), counter++);
    fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  return fd;
}

}  // namespace

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  return write_file_atomic(path, std::span<const std::string_view>(&bytes, 1));
}

Status write_file_atomic(const std::string& path, std::span<const std::string_view> pieces) {
  fs::path target = clean_path(path);
  if (target.empty()) return Status::error(kWhere, "cannot write a file at an empty path");
  std::string tmp;
  int fd = create_temp(target, &tmp);
  if (fd < 0) return errno_error("create a temp file for", target, errno);
  Status s = write_all(fd, pieces, tmp);
  if (s && ::fsync(fd) != 0) s = errno_error("fsync", tmp, errno);
  if (::close(fd) != 0 && s) s = errno_error("close", tmp, errno);
  if (s && ::rename(tmp.c_str(), target.c_str()) != 0) s = errno_error("replace", target, errno);
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  return fsync_path(parent_of(target), true);
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("read", path, errno);
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return errno_error("read", path, EISDIR);
  // Sized from fstat; files that report no size (pipes, /proc) grow by appending.
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t used = 0;
  char more[65536];
  for (;;) {
    bool into_out = used < out.size();
    ssize_t n = into_out ? ::read(fd, out.data() + used, out.size() - used) : ::read(fd, more, sizeof(more));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", path, errno);
    if (n == 0) break;
    if (!into_out) out.append(more, static_cast<size_t>(n));
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  return out;
}

Status recover_dir(const std::string& final_dir) {
  fs::path fin = clean_path(final_dir);
  fs::path backup = fin.string() + ".old";
  Result<bool> has_backup = path_exists(backup);
  SPEEDLM_TRY(has_backup);
  if (!*has_backup) return Status::ok();
  Result<bool> has_final = path_exists(fin);
  SPEEDLM_TRY(has_final);
  if (*has_final) return remove_tree(backup);
  if (::rename(backup.c_str(), fin.c_str()) != 0) return errno_error("restore the backup", backup, errno);
  return fsync_path(parent_of(fin), true);
}

Result<std::string> make_staging_dir(const std::string& final_dir) {
  SPEEDLM_TRY(recover_dir(final_dir));
  fs::path staging = clean_path(final_dir).string() + ".tmp";
  SPEEDLM_TRY(remove_tree(staging));
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return Status::errorf(kWhere, "cannot create '{}': {}", staging.string(), ec.message());
  SPEEDLM_TRY(fsync_path(parent_of(staging), true));
  return staging.string();
}

Status publish_dir_atomic(const std::string& tmp_dir, const std::string& final_dir) {
  fs::path tmp = clean_path(tmp_dir), fin = clean_path(final_dir);
  bool is_dir = false;
  Result<bool> tmp_exists = path_exists(tmp, &is_dir);
  SPEEDLM_TRY(tmp_exists);
  if (!*tmp_exists || !is_dir)
    return Status::errorf(kWhere, "cannot publish '{}': {}", tmp.string(), *tmp_exists ? "not a directory" : "missing");
  SPEEDLM_TRY(sync_tree(tmp));
  Result<bool> fin_exists = path_exists(fin, &is_dir);
  SPEEDLM_TRY(fin_exists);
  if (*fin_exists && !is_dir)
    return Status::errorf(kWhere, "cannot publish to '{}': it exists and is not a directory", fin.string());
  if (!*fin_exists) {
    int rc = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, fin.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && errno == EINVAL) rc = ::rename(tmp.c_str(), fin.c_str());
    if (rc != 0) return errno_error("publish to", fin, errno);
    return fsync_parents(tmp, fin);
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, fin.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno == EINVAL) return detail::publish_dir_with_backup(tmp_dir, final_dir);
    return errno_error("publish to", fin, errno);
  }
  SPEEDLM_TRY(fsync_parents(tmp, fin));
  return remove_tree(tmp);  // the old checkpoint, swapped out
}

namespace detail {

Status publish_dir_with_backup(const std::string& tmp_dir, const std::string& final_dir) {
  fs::path tmp = clean_path(tmp_dir), fin = clean_path(final_dir);
  fs::path backup = fin.string() + ".old";
  SPEEDLM_TRY(remove_tree(backup));  // stale: final_dir exists, so it is complete
  if (::rename(fin.c_str(), backup.c_str()) != 0) return errno_error("back up", fin, errno);
  SPEEDLM_TRY(fsync_path(parent_of(fin), true));
  if (::rename(tmp.c_str(), fin.c_str()) != 0) {
    int err = errno;
    ::rename(backup.c_str(), fin.c_str());
    return errno_error("publish to", fin, err);
  }
  SPEEDLM_TRY(fsync_parents(tmp, fin));
  return remove_tree(backup);
}

}  // namespace detail
}  // namespace speedlm::io
