// A read-only memory map of a whole file. The bytes stay valid while the MappedFile lives;
// another process truncating the file meanwhile is not guarded against (SIGBUS).
#pragma once

#include <string>
#include <string_view>

#include "speedlm/status.h"

namespace speedlm::io {

class MappedFile {
 public:
  // Errors name the path and the reason (missing, permission, a directory).
  static Result<MappedFile> open(const std::string& path);

  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view bytes() const { return {static_cast<const char*>(addr_), size_}; }

 private:
  MappedFile() = default;
  void* addr_ = nullptr;  // null for an empty file
  size_t size_ = 0;
};

}  // namespace speedlm::io
