// The data layer: KJV cleaning, the train/validation split, prepared datasets on disk and
// their validation, training and evaluation batches.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "testing/generated_text.h"
#include "train/batcher.h"
#include "train/corpus.h"
#include "train/dataset.h"

namespace speedlm::data {
namespace {

using test_util::english_text;
using test_util::TempDir;

// Lines "line 0\n" ... so each line is unique and its number says where it came from.
std::string numbered_lines(int64_t n) {
  std::string s;
  for (int64_t i = 0; i < n; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    size_t end = s.find('\n', pos);
    end = end == std::string::npos ? s.size() : end + 1;
    out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string message_of(const Status& s) { return s.message(); }
template <typename T>
std::string message_of(const Result<T>& r) {
  return r.status().message();
}

// Fails the test unless `r` is an error whose message contains every one of `parts`.
template <typename R>
void expect_error(const R& r, std::initializer_list<std::string> parts) {
  ASSERT_FALSE(r.is_ok());
  for (const std::string& p : parts) EXPECT_NE(message_of(r).find(p), std::string::npos) << message_of(r);
}

std::vector<int32_t> iota_tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 0);
  return t;
}

std::vector<int32_t> values(const Tensor& t) { return std::vector<int32_t>(t.i32(), t.i32() + t.numel()); }

// ---------------------------------------------------------------- corpus

TEST(Corpus, CleansBibleOutput) {
  const std::string raw =
      "\nGenesis 1\n\n"
      "  1 In the beginning God created the heaven and the earth.\n"
      "  2 And the earth was without form, and void; and darkness was upon the face of\n"
      "the deep. And the Spirit of God moved upon the face of the waters.\n"
      "\n1 John 5\n\n"
      "  10 He that believeth on the Son of God hath the witness in himself: he that\n"
      "believeth not God hath made him a liar;\n"
      "  11 And this is the record.\n";
  Result<std::string> clean = clean_kjv_text(raw);
  ASSERT_TRUE(clean.is_ok()) << clean.status().message();
  EXPECT_EQ(*clean,
            "Genesis 1\n"
            "In the beginning God created the heaven and the earth.\n"
            "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit "
            "of God moved upon the face of the waters.\n"
            "\n1 John 5\n"
            "He that believeth on the Son of God hath the witness in himself: he that believeth not God hath made "
            "him a liar;\n"
            "And this is the record.\n");
}

TEST(Corpus, RejectsTextThatIsNotBibleOutput) {
  expect_error(clean_kjv_text("Genesis 1\nno verse yet\n", "raw.txt"), {"[corpus] raw.txt: line 2", "no verse"});
  expect_error(clean_kjv_text("\nGenesis 1\n\n   x\n"), {"line 4", "indented"});
  expect_error(clean_kjv_text("just some words\n"), {"no verse lines"});
  expect_error(clean_kjv_text(""), {"no verse lines"});
}

TEST(Corpus, PrepareKjvCorpusWritesCleanText) {
  TempDir dir;
  write(dir.file("raw.txt"), "\nPsalms 117\n\n  1 O praise the LORD, all ye nations:\npraise him.\n");
  ASSERT_TRUE(prepare_kjv_corpus(dir.file("raw.txt"), dir.file("kjv.txt")).is_ok());
  EXPECT_EQ(io::read_file(dir.file("kjv.txt")).value(), "Psalms 117\nO praise the LORD, all ye nations: praise him.\n");
  expect_error(prepare_kjv_corpus(dir.file("missing.txt"), dir.file("out.txt")), {"missing.txt", "cannot read", "No such file"});
}

TEST(Split, IsDeterministicDisjointAndComplete) {
  const std::string text = numbered_lines(5000) + "last line without newline";
  const SplitOptions opt;  // blocks of 100 lines, every 20th block to validation
  const TextSplit a = split_train_val(text, opt), b = split_train_val(text, opt);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.train.size() + a.val.size(), text.size());

  std::set<std::string> train_lines, val_lines;
  for (const std::string& l : lines_of(a.train)) EXPECT_TRUE(train_lines.insert(l).second) << l;
  for (const std::string& l : lines_of(a.val)) EXPECT_TRUE(val_lines.insert(l).second) << l;
  std::vector<std::string> all = lines_of(text);
  EXPECT_EQ(train_lines.size() + val_lines.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const bool in_val = (i / 100) % 20 == 19;
    EXPECT_EQ(val_lines.count(all[i]), in_val ? 1u : 0u) << all[i];
    EXPECT_EQ(train_lines.count(all[i]), in_val ? 0u : 1u) << all[i];
  }
  // Two validation blocks, spread over the text (lines 1900..1999 and 3900..3999).
  EXPECT_EQ(val_lines.size(), 200u);
  EXPECT_TRUE(val_lines.count("line 1900\n") && val_lines.count("line 3999\n"));
}

TEST(Split, RejectsBadOptions) {
  expect_error(split_check({0, 20}), {"split.block_lines = 0"});
  expect_error(split_check({10, 1}), {"split.val_every = 1"});
}

// ---------------------------------------------------------------- dataset on disk

SplitOptions small_split() { return {4, 5}; }

TEST(Dataset, PrepareAndLoadRoundTrip) {
  TempDir dir;
  const std::string text = english_text(600, 21);
  write(dir.file("text.txt"), text);
  Result<DatasetMeta> meta = prepare_dataset(dir.file("text.txt"), dir.file("ds"), 400, small_split());
  ASSERT_TRUE(meta.is_ok()) << meta.status().message();
  EXPECT_EQ(meta->vocab_size, 400);
  EXPECT_EQ(meta->source, dir.file("text.txt"));
  const TextSplit parts = split_train_val(text, small_split());
  EXPECT_EQ(meta->train_bytes, static_cast<int64_t>(parts.train.size()));
  EXPECT_EQ(meta->val_bytes, static_cast<int64_t>(parts.val.size()));
  EXPECT_GT(meta->val_bytes, 0);
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "ds" / kTrainFile), 4 * static_cast<uint64_t>(meta->train_tokens));

  Result<Dataset> ds = load_dataset(dir.file("ds"));
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  EXPECT_EQ(ds->meta.train_tokens, meta->train_tokens);
  EXPECT_EQ(ds->meta.val_tokens, meta->val_tokens);
  EXPECT_EQ(ds->tokenizer.vocab_size(), 400);
  EXPECT_EQ(ds->tokenizer.decode(ds->train).value(), parts.train);
  EXPECT_EQ(ds->tokenizer.decode(ds->val).value(), parts.val);
  EXPECT_LT(ds->train.size() * 2, parts.train.size());
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "ds"))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "leftover " << entry.path();
}

TEST(Dataset, PrepareRejectsTooLittleText) {
  TempDir dir;
  write(dir.file("short.txt"), "one line\nand another\n");
  expect_error(prepare_dataset(dir.file("short.txt"), dir.file("ds"), 300, small_split()),
               {"short.txt", "empty validation part", "more than 16 lines"});
  expect_error(prepare_dataset(dir.file("none.txt"), dir.file("ds"), 300), {"none.txt", "cannot read", "No such file"});
}

class DatasetErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    write(dir_.file("text.txt"), english_text(300, 22));
    Result<DatasetMeta> meta = prepare_dataset(dir_.file("text.txt"), dir_.file("ds"), 300, small_split());
    ASSERT_TRUE(meta.is_ok()) << meta.status().message();
  }
  std::string file(const char* name) const { return (dir_.path() / "ds" / name).string(); }
  std::string read(const char* name) const { return io::read_file(file(name)).value(); }
  TempDir dir_;
};

TEST_F(DatasetErrors, TruncatedBin) {
  const std::string bytes = read(kTrainFile);
  write(file(kTrainFile), bytes.substr(0, bytes.size() - 1));
  expect_error(load_dataset(dir_.file("ds")), {file(kTrainFile), "not a multiple of 4"});
  write(file(kTrainFile), bytes.substr(0, bytes.size() - 4));
  expect_error(load_dataset(dir_.file("ds")), {file(kTrainFile), "meta.json says"});
}

TEST_F(DatasetErrors, IdOutOfVocabulary) {
  std::string bytes = read(kValFile);
  const int32_t bad = 300;
  std::memcpy(bytes.data() + 8, &bad, 4);
  write(file(kValFile), bytes);
  expect_error(load_dataset(dir_.file("ds")), {file(kValFile), "token 2 = 300", "[0, 300)"});
}

TEST_F(DatasetErrors, MissingFiles) {
  for (const char* name : {kValFile, kTrainFile, kTokenizerFile, kMetaFile}) {
    std::filesystem::remove(file(name));
    expect_error(load_dataset(dir_.file("ds")), {file(name), "cannot read", "No such file"});
  }
}

TEST_F(DatasetErrors, BadMeta) {
  const std::string meta = read(kMetaFile);
  write(file(kMetaFile), "{\"vocab_size\": 300}");
  expect_error(load_dataset(dir_.file("ds")), {file(kMetaFile), "missing key \"train_tokens\""});
  std::string wrong_vocab = meta;
  wrong_vocab.replace(wrong_vocab.find("\"vocab_size\": 300"), 17, "\"vocab_size\": 301");
  write(file(kMetaFile), wrong_vocab);
  expect_error(load_dataset(dir_.file("ds")), {"vocab_size = 301", file(kTokenizerFile)});
  write(file(kMetaFile), meta.substr(0, meta.size() / 2));
  expect_error(load_dataset(dir_.file("ds")), {file(kMetaFile), "invalid JSON"});
}

// ---------------------------------------------------------------- batches

TEST(Batcher, TargetsAreInputsShiftedByOne) {
  const std::vector<int32_t> tokens = iota_tokens(1000);
  Result<Batcher> b = Batcher::create(tokens, 4, 16, 7);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  for (int step = 0; step < 20; ++step) {
    const Batch batch = b->next();
    ASSERT_EQ(batch.inputs.shape(), (Shape{4, 16}));
    ASSERT_EQ(batch.targets.shape(), (Shape{4, 16}));
    EXPECT_EQ(batch.inputs.dtype(), DType::I32);
    EXPECT_EQ(batch.num_targets, 64);
    for (int64_t r = 0; r < 4; ++r) {
      const int32_t start = batch.inputs.i32()[r * 16];
      EXPECT_LE(start + 16, 999);
      for (int64_t t = 0; t < 16; ++t) {
        EXPECT_EQ(batch.inputs.i32()[r * 16 + t], start + t);  // a contiguous window
        EXPECT_EQ(batch.targets.i32()[r * 16 + t], start + t + 1);
      }
    }
  }
  EXPECT_EQ(b->step(), 20u);
}

TEST(Batcher, DeterministicAndResumable) {
  const std::vector<int32_t> tokens = iota_tokens(5000);
  Batcher a = Batcher::create(tokens, 3, 8, 42).value();
  Batcher same = Batcher::create(tokens, 3, 8, 42).value();
  Batcher other = Batcher::create(tokens, 3, 8, 43).value();
  std::vector<std::vector<int32_t>> seen;
  bool differs = false;
  for (int step = 0; step < 10; ++step) {
    const Batch x = a.next(), y = same.next(), z = other.next();
    EXPECT_EQ(values(x.inputs), values(y.inputs));
    EXPECT_EQ(values(x.targets), values(y.targets));
    differs = differs || values(x.inputs) != values(z.inputs);
    seen.push_back(values(x.inputs));
  }
  EXPECT_TRUE(differs) << "another seed should give other windows";
  EXPECT_NE(seen[0], seen[1]);

  Batcher resumed = Batcher::create(tokens, 3, 8, 42).value();
  resumed.set_step(6);
  for (int step = 6; step < 10; ++step) EXPECT_EQ(values(resumed.next().inputs), seen[step]);
  EXPECT_EQ(values(a.at(4).inputs), seen[4]);
  EXPECT_EQ(a.step(), 10u);
}

TEST(Batcher, UsesTheWholeRange) {
  const std::vector<int32_t> tokens = iota_tokens(10);
  Batcher b = Batcher::create(tokens, 8, 4, 1).value();
  std::set<int32_t> starts;
  for (int step = 0; step < 50; ++step) {
    const Batch batch = b.next();
    for (int64_t r = 0; r < 8; ++r) starts.insert(batch.inputs.i32()[r * 4]);
  }
  EXPECT_EQ(starts, (std::set<int32_t>{0, 1, 2, 3, 4, 5}));  // every start with 5 tokens after it
}

TEST(Batcher, RejectsBadSizes) {
  const std::vector<int32_t> tokens = iota_tokens(16);
  expect_error(Batcher::create(tokens, 0, 4, 0), {"[batcher] batch = 0"});
  expect_error(Batcher::create(tokens, 2, 0, 0), {"seq_len = 0"});
  expect_error(Batcher::create(tokens, 2, 16, 0), {"tokens = 16", "seq_len = 16"});
  EXPECT_TRUE(Batcher::create(tokens, 2, 15, 0).is_ok());
  expect_error(eval_batches(iota_tokens(1), 2, 4), {"tokens = 1"});
}

TEST(EvalBatches, CoverEveryTokenOnce) {
  for (int64_t n : {2, 17, 64, 65, 1000, 1001}) {
    const std::vector<int32_t> tokens = iota_tokens(n);
    Result<std::vector<Batch>> batches = eval_batches(tokens, 3, 16);
    ASSERT_TRUE(batches.is_ok()) << batches.status().message();
    std::vector<int32_t> targets;
    int64_t counted = 0;
    for (const Batch& b : *batches) {
      EXPECT_LE(b.inputs.dim(0), 3);
      EXPECT_EQ(b.inputs.dim(1), 16);
      counted += b.num_targets;
      for (int64_t i = 0; i < b.targets.numel(); ++i) {
        const int32_t t = b.targets.i32()[i];
        if (t == -100) continue;
        targets.push_back(t);
        EXPECT_EQ(b.inputs.i32()[i], t - 1);
      }
    }
    std::vector<int32_t> expected(tokens.begin() + 1, tokens.end());
    EXPECT_EQ(targets, expected) << "n = " << n;
    EXPECT_EQ(counted, n - 1);
    const int64_t windows = (n - 1 + 15) / 16;
    EXPECT_EQ(static_cast<int64_t>(batches->size()), (windows + 2) / 3);
  }
}

// ---------------------------------------------------------------- the real corpus

TEST(Kjv, PreparesTheBible) {
  if (std::system("command -v bible >/dev/null 2>&1") != 0) GTEST_SKIP() << "`bible` (Debian bible-kjv) not on PATH";
  TempDir dir;
  const std::string script = std::string(SPEEDLM_SOURCE_DIR) + "/scripts/prepare_corpus.sh";
  ASSERT_EQ(std::system((script + " " + dir.file("kjv_raw.txt")).c_str()), 0);
  ASSERT_TRUE(prepare_kjv_corpus(dir.file("kjv_raw.txt"), dir.file("kjv.txt")).is_ok());
  const std::string text = io::read_file(dir.file("kjv.txt")).value();
  EXPECT_EQ(text.rfind("Genesis 1\nIn the beginning God created the heaven and the earth.\n", 0), 0u);
  EXPECT_NE(text.find("\n\nRevelation 22\n"), std::string::npos);
  EXPECT_GT(text.size(), 4'000'000u);

  const auto t0 = std::chrono::steady_clock::now();
  Result<DatasetMeta> meta = prepare_dataset(dir.file("kjv.txt"), dir.file("ds"), 4096);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(meta.is_ok()) << meta.status().message();
  EXPECT_EQ(meta->vocab_size, 4096);
  EXPECT_EQ(meta->train_bytes + meta->val_bytes, static_cast<int64_t>(text.size()));
  const double val_share = static_cast<double>(meta->val_bytes) / static_cast<double>(text.size());
  EXPECT_GT(val_share, 0.04);
  EXPECT_LT(val_share, 0.06);
  std::printf("KJV: prepare_dataset with vocab 4096 took %.2f s\n", seconds);
#ifdef NDEBUG
  EXPECT_LT(seconds, 30.0) << "tokenizer training and encoding of the KJV should take seconds";
#endif
  Result<Dataset> ds = load_dataset(dir.file("ds"));
  ASSERT_TRUE(ds.is_ok()) << ds.status().message();
  EXPECT_GT(static_cast<double>(meta->train_bytes) / static_cast<double>(meta->train_tokens), 3.5);
}

}  // namespace
}  // namespace speedlm::data
