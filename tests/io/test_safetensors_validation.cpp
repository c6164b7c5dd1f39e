// safetensors validation: truncated and corrupted files, and every kind of bad header entry,
// give an error naming the file and the offending tensor/field/value, and never crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/safetensors_test_util.h"

namespace speedlm::io {
namespace {
namespace fs = std::filesystem;

std::string small_file() {
  Tensor bf = Tensor::empty({3}, DType::BF16);
  for (int i = 0; i < 3; ++i) bf.bf16()[i] = f32_to_bf16(static_cast<float>(i));
  return serialize_safetensors({{"w", Tensor::from({2, 2}, {1, 2, 3, 4})},
                                {"b", bf},
                                {"s", Tensor::from_i32({}, {7})},
                                {"e", Tensor::empty({0, 4})}},
                               {{"format", "pt"}})
      .value();
}

TEST(SafeTensorsValidation, TruncatedFileAtEveryLengthIsAnError) {
  std::string bytes = small_file();
  std::string path = (fs::temp_directory_path() / fmt::format("speedlm_trunc_{}.safetensors", ::getpid())).string();
  for (size_t len = 0; len < bytes.size(); ++len) {
    ASSERT_TRUE(write_file_atomic(path, std::string_view(bytes).substr(0, len)));
    Result<SafeTensors> st = read_safetensors(path);
    ASSERT_FALSE(st) << "length " << len;
    EXPECT_EQ(st.status().message().rfind("[safetensors] " + path + ": ", 0), 0u) << st.status().message();
  }
  ASSERT_TRUE(write_file_atomic(path, bytes));
  EXPECT_TRUE(read_safetensors(path));
  fs::remove(path);
}

// Bit flips and byte overwrites in the size field and the JSON header: an error or a
// consistent parse, never a crash (run under the asan preset too).
TEST(SafeTensorsValidation, CorruptedHeadersNeverCrash) {
  const std::string good = small_file();
  uint64_t header_size = 0;
  std::memcpy(&header_size, good.data(), 8);
  const std::string json_chars = "{}[]\":,0123456789-.e \\";
  int parsed = 0;
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    Rng rng(seed);
    std::string bytes = good;
    int edits = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < edits; ++k) {
      size_t pos = rng.below(8 + header_size);
      if (seed % 2) bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << rng.below(8)));
      else bytes[pos] = json_chars[rng.below(json_chars.size())];
    }
    Result<SafeTensors> st = parse_safetensors(bytes, "fuzz");
    if (!st) {
      EXPECT_EQ(st.status().message().rfind("[safetensors] fuzz: ", 0), 0u) << st.status().message();
      continue;
    }
    ++parsed;
    size_t total = 0;
    for (const auto& [name, t] : st->tensors) total += t.nbytes();
    EXPECT_LE(total, bytes.size()) << "seed " << seed;
  }
  EXPECT_GT(parsed, 0);  // some edits (inside metadata strings, padding) keep the file valid
}

void expect_error(const std::string& file, const std::string& want) {
  Result<SafeTensors> st = parse_safetensors(file, "t.safetensors");
  ASSERT_FALSE(st) << "accepted; wanted: " << want;
  EXPECT_EQ(st.status().message(), "[safetensors] t.safetensors: " + want);
}

TEST(SafeTensorsValidation, HeaderSizeMustFitTheFile) {
  std::string bytes = small_file();
  uint64_t size = bytes.size() - 7;
  std::memcpy(bytes.data(), &size, 8);
  expect_error(bytes, fmt::format("header size {} exceeds the {} bytes that follow it (truncated file?)", size,
                                  bytes.size() - 8));
  size = ~uint64_t{0};
  std::memcpy(bytes.data(), &size, 8);
  expect_error(bytes, fmt::format("header size {} exceeds the 100000000-byte limit", size));
  expect_error("abc", "file is 3 bytes, too short for the 8-byte header size");
}

const std::string kF32x2 = R"("dtype":"F32","shape":[2])";

TEST(SafeTensorsValidation, ByteRangesMustTileTheDataBuffer) {
  std::string data(16, '\0');
  expect_error(st_file(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]},"b":{)" + kF32x2 +
                           R"(,"data_offsets":[4,12]}})",
                       data.substr(0, 12)),
               "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
  expect_error(st_file(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[8,16]}})", data),
               "tensor 'a': data_offsets [8, 16] leave a gap after byte 0");
  expect_error(st_file(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]}})", data),
               "the tensors cover 8 bytes but the data buffer has 16 (trailing bytes)");
  // Empty tensors may share an offset with each other and with the next tensor.
  std::string empties = R"({"e1":{"dtype":"I32","shape":[0],"data_offsets":[0,0]},)"
                        R"("e2":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]},"a":{)" +
                        kF32x2 + R"(,"data_offsets":[0,8]}})";
  Result<SafeTensors> st = parse_safetensors(st_file(empties, data.substr(0, 8)), "t");
  ASSERT_TRUE(st) << st.status().message();
  EXPECT_EQ(st->tensors.size(), 3u);
}

TEST(SafeTensorsValidation, BadEntriesAreNamed) {
  const std::string d8(8, '\0');
  auto one = [&](const std::string& entry) { return st_file(R"({"x":)" + entry + "}", d8); };
  expect_error(one(R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})"),
               "unsupported dtype F64 for tensor 'x' (speedlm reads F32, BF16, I32, F16)");
  expect_error(one(R"({"dtype":"Q9","shape":[1],"data_offsets":[0,8]})"), "unknown dtype 'Q9' for tensor 'x'");
  expect_error(one(R"({"dtype":7,"shape":[1],"data_offsets":[0,8]})"), "tensor 'x': dtype is not a string: 7");
  expect_error(one(R"({"shape":[2],"data_offsets":[0,8]})"), "tensor 'x': missing field 'dtype'");
  expect_error(one(R"({"dtype":"F32","data_offsets":[0,8]})"), "tensor 'x': missing field 'shape'");
  expect_error(one(R"({"dtype":"F32","shape":[2]})"), "tensor 'x': missing field 'data_offsets'");
  expect_error(one(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"),
               "tensor 'x': shape is not an array: \"2\"");
  expect_error(one(R"({"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]})"),
               "tensor 'x': shape[1] = -1: not a non-negative integer");
  expect_error(one(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,8]})"),
               "tensor 'x': shape[0] = 1.5: not a non-negative integer");
  expect_error(one(R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]})"),
               "tensor 'x': shape [4294967296,4294967296,4294967296] is too large");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"),
               "tensor 'x': data_offsets = [0]: not two non-negative integers");
  expect_error(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"),
               "tensor 'x': data_offsets [8, 0] do not fit the 8-byte data buffer");
  expect_error(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"),
               "tensor 'x': data_offsets [0, 16] do not fit the 8-byte data buffer");
  expect_error(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"),
               "tensor 'x': data_offsets [0, 8] hold 8 bytes but F32 [3] needs 12");
  expect_error(one("5"), "tensor 'x': entry is not an object: 5");
}

TEST(SafeTensorsValidation, BadHeadersAreNamed) {
  const std::string entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string d8(8, '\0');
  expect_error(st_file("[1]", ""), "header is not a JSON object: [1]");
  expect_error(st_file(R"({"x":{"a":1,"a":2}})", ""), "duplicate key 'a' in the header");
  expect_error(st_file(R"({"x":)" + entry + R"(,"x":)" + entry + "}", d8), "duplicate key 'x' in the header");
  expect_error(st_file(R"({"__metadata__":{"a":1}})", ""), "__metadata__.a is not a string: 1");
  expect_error(st_file(R"({"__metadata__":[]})", ""), "__metadata__ is not an object: []");
  for (const std::string& bad : {std::string(R"({"x":)"), std::string("{\"\xff\":1}"), std::string("{}\0", 3)}) {
    Result<SafeTensors> st = parse_safetensors(st_file(bad, ""), "t.safetensors");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.status().message().rfind("[safetensors] t.safetensors: header is not valid JSON: ", 0), 0u)
        << st.status().message();
  }
}

// Fields the format does not define are ignored, as the reference implementation does.
TEST(SafeTensorsValidation, UnknownEntryFieldsAreIgnored) {
  Result<SafeTensors> st =
      parse_safetensors(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})",
                                std::string(8, '\0')),
                        "t");
  ASSERT_TRUE(st) << st.status().message();
  EXPECT_EQ(st->tensors.at("x").shape(), Shape{2});
}

}  // namespace
}  // namespace speedlm::io
