// A checkpoint is a directory, published atomically (io/atomic_file.h):
//   config.json           model config with its "train" section
//   model.safetensors     parameters by name (LanguageModel::params order), f32
//   optimizer.safetensors AdamW moments "m.<name>", "v.<name>" (absent in exported models)
//   trainer_state.json    {"step", "adam_steps", "batcher_step", "seed", "losses"}
//   tokenizer.json        the byte-level BPE tokenizer
// Loading validates every file: names, shapes and dtypes must match the config, and
// errors name the file and tensor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/tokenizer/bpe_tokenizer.h"
#include "models/lm.h"
#include "train/adamw.h"
#include "train/train_config.h"

namespace speedlm {

struct TrainerState {
  int64_t step = 0;          // optimizer steps completed
  int64_t batcher_step = 0;  // batches drawn
  std::vector<float> losses;  // training loss of every completed step
};

struct LoadedModel {
  ModelConfig model_config;
  TrainConfig train_config;
  std::unique_ptr<LanguageModel> model;
  io::BpeTokenizer tokenizer;
};

Status save_checkpoint(const std::string& dir, const LanguageModel& model, const TrainConfig& tc,
                       const io::BpeTokenizer& tokenizer, AdamW* opt, const TrainerState& state);
Result<LoadedModel> load_model_dir(const std::string& dir);
// Restores optimizer moments and trainer state saved by save_checkpoint.
Status load_training_state(const std::string& dir, const LanguageModel& model, AdamW& opt, TrainerState& state);

}  // namespace speedlm
