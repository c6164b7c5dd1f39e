// Atomic file writes, reads with clear errors, and checkpoint directory publishing with its
// crash-recovery rule (src/io/atomic_file.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "io/atomic_file.h"

namespace speedlm::io {
namespace {
namespace fs = std::filesystem;

using Files = std::map<std::string, std::string>;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            fmt::format("speedlm_atomic_{}_{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string path(const std::string& name) const { return (root_ / name).string(); }

  // Sorted names in a directory of the test root ("" for the root itself).
  std::vector<std::string> listing(const std::string& dir = "") const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root_ / dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  void write_tree(const std::string& dir, const Files& files) const {
    fs::create_directories(root_ / dir);
    for (const auto& [name, content] : files) ASSERT_TRUE(write_file_atomic(path(dir + "/" + name), content));
  }

  Files read_tree(const std::string& dir) const {
    Files files;
    for (const std::string& name : listing(dir)) files[name] = read_file(path(dir + "/" + name)).value();
    return files;
  }

  fs::path root_;
};

using Names = std::vector<std::string>;

TEST_F(AtomicFileTest, WriteThenReadIsExactAndLeavesNoTempFile) {
  std::string bytes;
  for (int i = 0; i < 3 * 256; ++i) bytes.push_back(static_cast<char>(i));
  ASSERT_TRUE(write_file_atomic(path("f.bin"), bytes));
  EXPECT_EQ(read_file(path("f.bin")).value(), bytes);
  ASSERT_TRUE(write_file_atomic(path("f.bin"), "short"));
  EXPECT_EQ(read_file(path("f.bin")).value(), "short");
  ASSERT_TRUE(write_file_atomic(path("f.bin"), ""));
  EXPECT_EQ(read_file(path("f.bin")).value(), "");
  EXPECT_EQ(listing(), Names{"f.bin"});
}

TEST_F(AtomicFileTest, WritePiecesConcatenates) {
  std::vector<std::string_view> pieces{"ab", "", "cde", "f"};
  ASSERT_TRUE(write_file_atomic(path("p"), pieces));
  EXPECT_EQ(read_file(path("p")).value(), "abcdef");
}

TEST_F(AtomicFileTest, ReadErrorsNameThePathAndReason) {
  Result<std::string> missing = read_file(path("nope.txt"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find(path("nope.txt")), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find("No such file"), std::string::npos) << missing.status().message();

  Result<std::string> dir = read_file(root_.string());
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.status().message().find("Is a directory"), std::string::npos) << dir.status().message();
}

TEST_F(AtomicFileTest, ReadPermissionErrorNamesTheReason) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file: no permission error to test";
  ASSERT_TRUE(write_file_atomic(path("secret"), "x"));
  ::chmod(path("secret").c_str(), 0);
  Result<std::string> denied = read_file(path("secret"));
  ASSERT_FALSE(denied);
  EXPECT_NE(denied.status().message().find("Permission denied"), std::string::npos) << denied.status().message();
}

TEST_F(AtomicFileTest, WriteErrorsLeaveNothingBehind) {
  Status no_dir = write_file_atomic(path("missing/f"), "x");
  ASSERT_FALSE(no_dir);
  EXPECT_NE(no_dir.message().find(path("missing/f")), std::string::npos) << no_dir.message();

  fs::create_directories(root_ / "d");
  Status over_dir = write_file_atomic(path("d"), "x");
  ASSERT_FALSE(over_dir);
  EXPECT_EQ(over_dir.message().rfind("[io] ", 0), 0u) << over_dir.message();
  EXPECT_TRUE(fs::is_directory(root_ / "d"));
  EXPECT_EQ(listing(), Names{"d"});
}

TEST_F(AtomicFileTest, PublishCreatesThenReplacesADirectory) {
  Result<std::string> staging = make_staging_dir(path("ckpt/step"));
  ASSERT_TRUE(staging) << staging.status().message();
  EXPECT_EQ(*staging, path("ckpt/step.tmp"));
  write_tree("ckpt/step.tmp", {{"a", "old a"}, {"b", "old b"}});
  ASSERT_TRUE(publish_dir_atomic(*staging, path("ckpt/step")));
  EXPECT_EQ(read_tree("ckpt/step"), (Files{{"a", "old a"}, {"b", "old b"}}));

  staging = make_staging_dir(path("ckpt/step"));
  ASSERT_TRUE(staging);
  write_tree("ckpt/step.tmp", {{"a", "new a"}, {"c", "new c"}});
  fs::create_directories(root_ / "ckpt/step.tmp/sub");
  ASSERT_TRUE(publish_dir_atomic(*staging + "/", path("ckpt/step") + "/"));
  EXPECT_EQ(listing("ckpt/step"), (Names{"a", "c", "sub"}));
  EXPECT_EQ(read_file(path("ckpt/step/a")).value(), "new a");
  EXPECT_EQ(read_file(path("ckpt/step/c")).value(), "new c");
  EXPECT_EQ(listing("ckpt"), Names{"step"});
}

TEST_F(AtomicFileTest, BackupFallbackReplacesADirectory) {
  write_tree("step", {{"a", "old"}});
  write_tree("step.tmp", {{"a", "new"}});
  ASSERT_TRUE(detail::publish_dir_with_backup(path("step.tmp"), path("step")));
  EXPECT_EQ(read_tree("step"), (Files{{"a", "new"}}));
  EXPECT_EQ(listing(), Names{"step"});
}

TEST_F(AtomicFileTest, PublishErrorsNameTheDirectories) {
  Status missing = publish_dir_atomic(path("none.tmp"), path("out"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find(path("none.tmp")), std::string::npos) << missing.message();

  ASSERT_TRUE(write_file_atomic(path("out"), "a file"));
  write_tree("out.tmp", {{"a", "x"}});
  Status over_file = publish_dir_atomic(path("out.tmp"), path("out"));
  ASSERT_FALSE(over_file);
  EXPECT_NE(over_file.message().find("not a directory"), std::string::npos) << over_file.message();
  EXPECT_EQ(read_file(path("out")).value(), "a file");
}

// Crash between the fallback's two renames: only the backup holds a complete checkpoint.
TEST_F(AtomicFileTest, RecoveryRestoresTheBackupWhenFinalIsMissing) {
  write_tree("step.old", {{"a", "old"}});
  write_tree("step.tmp", {{"a", "new, maybe partial"}});
  ASSERT_TRUE(recover_dir(path("step")));
  EXPECT_EQ(read_tree("step"), (Files{{"a", "old"}}));
  EXPECT_EQ(listing(), (Names{"step", "step.tmp"}));
  Result<std::string> staging = make_staging_dir(path("step"));
  ASSERT_TRUE(staging);
  EXPECT_TRUE(listing("step.tmp").empty());
}

// Crash after the fallback published the new directory, before it removed the backup.
TEST_F(AtomicFileTest, RecoveryDropsTheBackupWhenFinalExists) {
  write_tree("step", {{"a", "new"}});
  write_tree("step.old", {{"a", "old"}});
  ASSERT_TRUE(recover_dir(path("step")));
  EXPECT_EQ(read_tree("step"), (Files{{"a", "new"}}));
  EXPECT_EQ(listing(), Names{"step"});
}

// Crash after the exchange, before the swapped-out old directory was removed.
TEST_F(AtomicFileTest, StagingRemovesTheSwappedOutDirectory) {
  write_tree("step", {{"a", "new"}});
  write_tree("step.tmp", {{"a", "old"}});
  EXPECT_EQ(read_tree("step"), (Files{{"a", "new"}}));
  Result<std::string> staging = make_staging_dir(path("step"));
  ASSERT_TRUE(staging);
  EXPECT_TRUE(listing("step.tmp").empty());
  EXPECT_EQ(read_tree("step"), (Files{{"a", "new"}}));
}

TEST_F(AtomicFileTest, RecoveryWithNothingToDoIsOk) {
  EXPECT_TRUE(recover_dir(path("never")));
  write_tree("step", {{"a", "x"}});
  EXPECT_TRUE(recover_dir(path("step")));
  EXPECT_EQ(listing(), Names{"step"});
}

}  // namespace
}  // namespace speedlm::io
