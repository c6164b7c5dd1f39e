// speedlm::prepare_data: text (or raw `bible` output) -> tokenizer and token files.
#include <filesystem>

#include "speedlm/speedlm.h"
#include "train/corpus.h"
#include "train/dataset.h"

namespace speedlm {

Status prepare_data(const PrepareDataOptions& opt) {
  if (opt.vocab_size < 257 || opt.vocab_size > io::BpeTokenizer::kMaxVocabSize)
    return Status::errorf("prepare-data", "--vocab-size = {}: must be in [257, {}]", opt.vocab_size,
                          io::BpeTokenizer::kMaxVocabSize);
  std::string text = opt.text_path;
  if (opt.format == "kjv") {
    std::error_code ec;
    std::filesystem::create_directories(opt.out_dir, ec);
    text = opt.out_dir + "/text.txt";
    SPEEDLM_TRY(data::prepare_kjv_corpus(opt.text_path, text));
  } else if (opt.format != "text") {
    return Status::errorf("prepare-data", "--format = '{}': expected text or kjv", opt.format);
  }
  return data::prepare_dataset(text, opt.out_dir, static_cast<int32_t>(opt.vocab_size)).status();
}

}  // namespace speedlm
