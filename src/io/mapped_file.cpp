#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace speedlm::io {

namespace {
Status map_error(const std::string& path, int err) {
  return Status::errorf("io", "cannot read '{}': {}", path, std::strerror(err));
}
}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return map_error(path, errno);
  struct stat st {};
  int err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
  bool regular = S_ISREG(st.st_mode);
  MappedFile m;
  if (err == 0 && regular && st.st_size > 0) {
    void* addr = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      err = errno;
    } else {
      m.addr_ = addr;
      m.size_ = static_cast<size_t>(st.st_size);
    }
  }
  ::close(fd);
  if (err != 0) return map_error(path, err);
  if (!regular) return Status::errorf("io", "cannot read '{}': not a regular file", path);
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

}  // namespace speedlm::io
