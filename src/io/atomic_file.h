// Crash-safe file and directory writes, and file reads with clear errors.
//
// Files: write_file_atomic writes a unique temp file next to the target, fsyncs it, renames it
// over the target and fsyncs the directory. A reader sees either the old or the new file, whole.
//
// Checkpoint directories: the owner (a single writer per final_dir) does
//   Result<std::string> staging = make_staging_dir(final_dir);   // "<final_dir>.tmp", fresh
//   ... write the checkpoint's files into *staging ...
//   SPEEDLM_TRY(publish_dir_atomic(*staging, final_dir));
// publish_dir_atomic fsyncs every file and directory under the staging directory, then swaps
// it with final_dir by renameat2(RENAME_EXCHANGE): final_dir names the old complete directory
// until the swap and the new one after it, with no instant in between. The old directory now
// lies at the staging name and is removed.
//   Crash before the swap: final_dir is the old checkpoint; the staging dir is partial garbage.
//   Crash after the swap:  final_dir is the new checkpoint; the staging dir holds the old one.
// Either way the next make_staging_dir removes the leftover staging dir.
//
// Filesystems without RENAME_EXCHANGE (renameat2 fails with EINVAL) fall back to a backup
// rename: final_dir -> "<final_dir>.old", staging -> final_dir, remove the backup.
//   Crash between the two renames: final_dir is missing and "<final_dir>.old" is the old
//   complete checkpoint. Crash before the backup is removed: both exist, final_dir is new.
// Recovery rule (recover_dir, run by make_staging_dir and by loaders before they read
// final_dir): if final_dir is missing and the backup exists, rename the backup back to
// final_dir; if both exist, remove the backup. So a complete checkpoint is always loadable.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "speedlm/status.h"

namespace speedlm::io {

// Writes bytes to path atomically (see above). New files get mode 0666 minus the umask.
Status write_file_atomic(const std::string& path, std::string_view bytes);
// The same, with the content given as consecutive pieces (no copy into one buffer).
Status write_file_atomic(const std::string& path, std::span<const std::string_view> pieces);

// The whole file; errors name the path and the reason (missing, permission, a directory).
Result<std::string> read_file(const std::string& path);

// "<final_dir>.tmp", created empty (parents too) after recover_dir(final_dir) and removing any
// leftover from a crash.
Result<std::string> make_staging_dir(const std::string& final_dir);

// Replaces final_dir (which may not exist yet) by tmp_dir, as described above. tmp_dir must be
// on the same filesystem as final_dir; it no longer exists afterwards.
Status publish_dir_atomic(const std::string& tmp_dir, const std::string& final_dir);

// Applies the recovery rule above to final_dir and its backup "<final_dir>.old".
Status recover_dir(const std::string& final_dir);

namespace detail {
// The backup-rename fallback of publish_dir_atomic; final_dir must exist. Exposed for tests.
Status publish_dir_with_backup(const std::string& tmp_dir, const std::string& final_dir);
}  // namespace detail

}  // namespace speedlm::io
