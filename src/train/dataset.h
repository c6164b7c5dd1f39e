// A tokenized dataset on disk, made from one plain text file:
//   tokenizer.json   the byte-level BPE tokenizer, trained on the train part only
//   train.bin        train token ids, little-endian int32, no header
//   val.bin          validation token ids, same format
//   meta.json        {"vocab_size", "train_tokens", "val_tokens", "train_bytes", "val_bytes", "source"}
// *_bytes are the bytes of each part of the text (UTF-8), the denominator of bits per byte
// (= total nats / ln 2 / bytes). Every file is written atomically; meta.json goes last.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer/bpe_tokenizer.h"
#include "speedlm/status.h"
#include "train/corpus.h"

namespace speedlm::data {

inline constexpr const char* kTokenizerFile = "tokenizer.json";
inline constexpr const char* kTrainFile = "train.bin";
inline constexpr const char* kValFile = "val.bin";
inline constexpr const char* kMetaFile = "meta.json";

struct DatasetMeta {
  int64_t vocab_size = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
  int64_t train_bytes = 0;
  int64_t val_bytes = 0;
  std::string source;  // the text path given to prepare_dataset
};

struct Dataset {
  io::BpeTokenizer tokenizer;
  std::vector<int32_t> train;
  std::vector<int32_t> val;
  DatasetMeta meta;
};

// Reads the text at text_path, splits it (corpus.h), trains a tokenizer of vocab_size on
// the train part, encodes both parts and writes the files above into out_dir (created if
// missing). Fails when either part is empty.
Result<DatasetMeta> prepare_dataset(const std::string& text_path, const std::string& out_dir, int32_t vocab_size,
                                    const SplitOptions& split = {});

// Reads a dataset back, checking that the files exist, that each .bin holds whole int32s
// and as many as meta.json says, and that every id is below the tokenizer's vocab_size.
Result<Dataset> load_dataset(const std::string& dir);

}  // namespace speedlm::data
