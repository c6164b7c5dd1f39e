// Whole-file reads and atomic writes. Errors name the caller ("[where]") and the path.
#pragma once

#include <string>
#include <string_view>

#include "speedlm/status.h"

namespace speedlm::io {

// Reads the whole file as bytes.
Result<std::string> read_file(const std::string& path, std::string_view where);

// Writes bytes to `path` atomically: the data goes to a temporary file in the same folder,
// is flushed to disk, then renamed over `path`, so readers see the old file or the new one,
// never a partial one. The temporary file is removed on failure.
Status write_file_atomic(const std::string& path, std::string_view bytes, std::string_view where);

}  // namespace speedlm::io
