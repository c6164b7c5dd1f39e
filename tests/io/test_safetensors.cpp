// safetensors: bit-exact round trips, the byte layout against hand-written files, F16 loading.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/safetensors_test_util.h"

namespace speedlm::io {
namespace {
namespace fs = std::filesystem;

Tensor random_bits(Shape shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  Rng rng(seed);
  for (size_t i = 0; i < t.nbytes(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(rng.next_u64());
  return t;
}

Tensor f32_bits(const std::vector<uint32_t>& bits) {
  Tensor t = Tensor::empty({static_cast<int64_t>(bits.size())});
  std::memcpy(t.f32(), bits.data(), t.nbytes());
  return t;
}

// Every dtype, scalars, empty tensors and a view, in a deliberately unsorted order.
NamedTensors sample_tensors() {
  Tensor rows = random_bits({4, 3}, DType::F32, 7);
  return {{"f32", random_bits({3, 5}, DType::F32, 1)},
          {"f32.special", f32_bits({0x7fc00001u, 0xffa00000u, 0x80000000u, 0x00000001u, 0x7f800000u, 0xff7fffffu})},
          {"bf16", random_bits({7}, DType::BF16, 2)},
          {"i32", Tensor::from_i32({2, 2}, {std::numeric_limits<int32_t>::min(), -1, 0, 2147483647})},
          {"a.scalar.f32", random_bits({}, DType::F32, 3)},
          {"scalar.bf16", random_bits({}, DType::BF16, 4)},
          {"scalar.i32", random_bits({}, DType::I32, 5)},
          {"empty.f32", Tensor::empty({0})},
          {"empty.bf16", Tensor::empty({3, 0, 2}, DType::BF16)},
          {"empty.i32", Tensor::empty({0, 0}, DType::I32)},
          {"rows.view", rows.slice0(1, 3)},
          {"i32.big", random_bits({33, 17}, DType::I32, 6)}};
}

void expect_same(const NamedTensors& want, const SafeTensors& got) {
  ASSERT_EQ(got.tensors.size(), want.size());
  for (const auto& [name, t] : want) {
    auto it = got.tensors.find(name);
    ASSERT_NE(it, got.tensors.end()) << name;
    EXPECT_EQ(it->second.dtype(), t.dtype()) << name;
    EXPECT_EQ(it->second.shape(), t.shape()) << name;
    EXPECT_EQ(bytes_of(it->second), bytes_of(t)) << name;
  }
}

TEST(SafeTensors, RoundTripIsBitExactForAllDtypes) {
  NamedTensors tensors = sample_tensors();
  Metadata metadata{{"format", "pt"}, {"step", "1200"}, {"note", "utf-8 \xc3\xa9 and \"quotes\""}, {"", ""}};
  std::string path = (fs::temp_directory_path() / fmt::format("speedlm_st_{}.safetensors", ::getpid())).string();
  ASSERT_TRUE(write_safetensors(path, tensors, metadata));
  Result<SafeTensors> read = read_safetensors(path);
  ASSERT_TRUE(read) << read.status().message();
  expect_same(tensors, *read);
  EXPECT_EQ(read->metadata, metadata);

  Result<std::string> bytes = serialize_safetensors(tensors, metadata);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(read_file(path).value(), *bytes);
  Result<SafeTensors> parsed = parse_safetensors(*bytes, "<memory>");
  ASSERT_TRUE(parsed) << parsed.status().message();
  expect_same(tensors, *parsed);
  fs::remove(path);
}

TEST(SafeTensors, HeaderIsPaddedAndKeepsTheGivenOrder) {
  NamedTensors tensors = sample_tensors();
  std::string bytes = serialize_safetensors(tensors, {{"format", "pt"}}).value();
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  std::string header = bytes.substr(8, header_size);
  auto ordered = nlohmann::ordered_json::parse(header);
  auto it = ordered.begin();
  EXPECT_EQ(it.key(), "__metadata__");
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ++it;
    ASSERT_NE(it, ordered.end());
    EXPECT_EQ(it.key(), name);
    EXPECT_EQ((*it)["data_offsets"], nlohmann::ordered_json({offset, offset + t.nbytes()})) << name;
    EXPECT_EQ(bytes.substr(8 + header_size + offset, t.nbytes()), bytes_of(t)) << name;
    offset += t.nbytes();
  }
  EXPECT_EQ(8 + header_size + offset, bytes.size());
}

// A file written out byte by byte from the format description, independent of our writer.
const std::string kHandWritten =
    std::string("\xc8\0\0\0\0\0\0\0", 8) +  // header size 200, little-endian
    R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]},"i":{"dtype":"I32","shape":[1,1],"data_offsets":[10,14]}})"
    "    " +  // 196 bytes of JSON padded to 200 with spaces
    std::string("\x00\x00\x80\x3f" "\x00\x00\x00\xc0"  // w = [1, -2]
                "\x00\x3f"                              // b = 0.5 in bf16
                "\x02\x01\x00\x00",                     // i = [[258]]
                14);

TEST(SafeTensors, ReadsAHandWrittenFile) {
  Result<SafeTensors> st = parse_safetensors(kHandWritten, "hand.safetensors");
  ASSERT_TRUE(st) << st.status().message();
  EXPECT_EQ(st->metadata, (Metadata{{"format", "pt"}}));
  const Tensor& w = st->tensors.at("w");
  ASSERT_EQ(w.dtype(), DType::F32);
  EXPECT_EQ(w.shape(), Shape{2});
  EXPECT_EQ(w.f32()[0], 1.0f);
  EXPECT_EQ(w.f32()[1], -2.0f);
  const Tensor& b = st->tensors.at("b");
  ASSERT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(b.shape(), Shape{});
  EXPECT_EQ(bf16_to_f32(b.bf16()[0]), 0.5f);
  const Tensor& i = st->tensors.at("i");
  ASSERT_EQ(i.dtype(), DType::I32);
  EXPECT_EQ(i.shape(), (Shape{1, 1}));
  EXPECT_EQ(i.i32()[0], 258);
}

TEST(SafeTensors, WritesExactlyTheHandWrittenBytes) {
  Tensor b = Tensor::empty({}, DType::BF16);
  b.bf16()[0] = f32_to_bf16(0.5f);
  Result<std::string> bytes = serialize_safetensors(
      {{"w", Tensor::from({2}, {1.0f, -2.0f})}, {"b", b}, {"i", Tensor::from_i32({1, 1}, {258})}}, {{"format", "pt"}});
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, kHandWritten);
}

// Header not padded (data starts unaligned), F16 converted to F32.
TEST(SafeTensors, ReadsAnUnpaddedF16File) {
  std::string file = std::string("\x36\0\0\0\0\0\0\0", 8) +
                     R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})" +
                     std::string("\x00\x3c" "\x00\xc0" "\xff\x7b" "\x01\x00", 8);  // 1, -2, 65504, 2^-24
  Result<SafeTensors> st = parse_safetensors(file, "half.safetensors");
  ASSERT_TRUE(st) << st.status().message();
  const Tensor& h = st->tensors.at("h");
  ASSERT_EQ(h.dtype(), DType::F32);
  EXPECT_EQ(h.shape(), Shape{4});
  EXPECT_EQ(h.f32()[0], 1.0f);
  EXPECT_EQ(h.f32()[1], -2.0f);
  EXPECT_EQ(h.f32()[2], 65504.0f);
  EXPECT_EQ(h.f32()[3], std::ldexp(1.0f, -24));
}

TEST(SafeTensors, F16ConvertsEveryValueExactly) {
  std::string data(2 * 65536, '\0');
  for (uint32_t h = 0; h < 65536; ++h) std::memcpy(&data[2 * h], &h, 2);
  Result<SafeTensors> st =
      parse_safetensors(st_file(R"({"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}})", data), "all");
  ASSERT_TRUE(st) << st.status().message();
  const float* got = st->tensors.at("h").f32();
  for (uint32_t h = 0; h < 65536; ++h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double want = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
    if (h & 0x8000) want = -want;
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[h])) << h;
    } else {
      EXPECT_EQ(static_cast<double>(got[h]), want) << h;
      EXPECT_EQ(std::signbit(got[h]), std::signbit(want)) << h;
    }
  }
}

TEST(SafeTensors, NoTensorsAndNoMetadata) {
  std::string bytes = serialize_safetensors({}).value();
  EXPECT_EQ(bytes, st_file("{}      ", ""));
  Result<SafeTensors> st = parse_safetensors(bytes, "empty");
  ASSERT_TRUE(st) << st.status().message();
  EXPECT_TRUE(st->tensors.empty());
  EXPECT_TRUE(st->metadata.empty());
}

TEST(SafeTensors, WriteRejectsBadInputAndNamesIt) {
  Tensor t = Tensor::zeros({2});
  Status dup = write_safetensors("/nonexistent/x.safetensors", {{"a", t}, {"a", t}});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.message(), "[safetensors] /nonexistent/x.safetensors: duplicate tensor name 'a'");
  Result<std::string> reserved = serialize_safetensors({{"__metadata__", t}});
  ASSERT_FALSE(reserved);
  EXPECT_NE(reserved.status().message().find("'__metadata__' is reserved"), std::string::npos);
  Result<std::string> undefined = serialize_safetensors({{"u", Tensor()}});
  ASSERT_FALSE(undefined);
  EXPECT_NE(undefined.status().message().find("tensor 'u' is undefined"), std::string::npos);
  Result<std::string> bad_utf8 = serialize_safetensors({{"\xff", t}});
  ASSERT_FALSE(bad_utf8);
  EXPECT_NE(bad_utf8.status().message().find("not valid UTF-8"), std::string::npos);
}

TEST(SafeTensors, MissingFileErrorNamesThePath) {
  Result<SafeTensors> st = read_safetensors("/nonexistent/model.safetensors");
  ASSERT_FALSE(st);
  EXPECT_NE(st.status().message().find("/nonexistent/model.safetensors"), std::string::npos);
  EXPECT_NE(st.status().message().find("No such file"), std::string::npos) << st.status().message();
}

}  // namespace
}  // namespace speedlm::io
