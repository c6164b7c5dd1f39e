// Training end to end on a tiny generated corpus: a resumed run reproduces the
// uninterrupted run's losses exactly, and a saved model loads to bit-identical logits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "autograd/var.h"
#include "core/rng.h"
#include "models/lm.h"
#include "speedlm/speedlm.h"
#include "train/checkpoint.h"

namespace speedlm {
namespace {

namespace fs = std::filesystem;

class TrainRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("speedlm_resume_{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream text(dir_ / "text.txt");
    Rng rng(4);
    const char* words[] = {"and", "the", "lord", "said", "unto", "moses", "behold", "light", "water", "earth"};
    for (int line = 0; line < 2000; ++line) {
      for (int w = 0; w < 10; ++w) text << words[rng.below(10)] << (w == 9 ? ".\n" : " ");
    }
    text.close();
    ASSERT_TRUE(prepare_data({(dir_ / "text.txt").string(), "text", (dir_ / "data").string(), 300}).is_ok());
    std::ofstream cfg(dir_ / "tiny.json");
    cfg << R"({"vocab_size": 300, "d_model": 32, "n_layers": 2, "layers": ["attn"],
      "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2}},
      "ffn": {"type": "swiglu", "hidden": 64},
      "train": {"batch_size": 4, "seq_len": 32, "steps": 10, "warmup_steps": 3, "eval_every": 0,
                "eval_tokens": 1024, "checkpoint_every": 0, "log_every": 5}})";
  }
  // The same model with a sigmoid-routed MoE FFN on layer 1 (bias update, balancing losses).
  void write_moe_config() const {
    std::ofstream cfg(dir_ / "tiny.json");
    cfg << R"({"vocab_size": 300, "d_model": 32, "n_layers": 2, "layers": ["attn"],
      "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2}},
      "ffns": {"d": {"type": "swiglu", "hidden": 64},
               "m": {"type": "moe", "experts": 4, "top_k": 2, "hidden": 16, "router": "sigmoid",
                     "bias_update_rate": 0.01, "aux_loss_coef": 0.01, "z_loss_coef": 0.001}},
      "ffn_layers": ["d", "m"],
      "train": {"batch_size": 4, "seq_len": 32, "steps": 10, "warmup_steps": 3, "eval_every": 0,
                "eval_tokens": 1024, "checkpoint_every": 0, "log_every": 5}})";
  }
  void TearDown() override { fs::remove_all(dir_); }

  TrainOptions options(const std::string& out) const {
    TrainOptions o;
    o.config_path = (dir_ / "tiny.json").string();
    o.data_dir = (dir_ / "data").string();
    o.out_dir = (dir_ / out).string();
    o.quiet = true;
    return o;
  }
  fs::path dir_;
};

TEST_F(TrainRun, ResumedRunReproducesTheUninterruptedLossesExactly) {
  auto full = train(options("full"));
  ASSERT_TRUE(full) << full.status().message();
  ASSERT_EQ(full->losses.size(), 10u);

  // Interrupted after step 6 of the same 10-step schedule (mid-cosine), then resumed.
  TrainOptions first = options("split");
  first.stop_at = 6;
  auto part = train(first);
  ASSERT_TRUE(part) << part.status().message();
  ASSERT_EQ(part->losses.size(), 6u);
  TrainOptions rest = options("split");
  rest.resume = true;
  auto resumed = train(rest);
  ASSERT_TRUE(resumed) << resumed.status().message();
  ASSERT_EQ(resumed->losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(resumed->losses[i], full->losses[i]) << "step " << i;
  EXPECT_EQ(resumed->final_val_bpb, full->final_val_bpb);
}

TEST_F(TrainRun, MoeResumedRunReproducesLossesAndRouterBiasExactly) {
  write_moe_config();
  auto full = train(options("full"));
  ASSERT_TRUE(full) << full.status().message();
  TrainOptions first = options("split");
  first.stop_at = 6;
  ASSERT_TRUE(train(first));
  TrainOptions rest = options("split");
  rest.resume = true;
  auto resumed = train(rest);
  ASSERT_TRUE(resumed) << resumed.status().message();
  ASSERT_EQ(resumed->losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(resumed->losses[i], full->losses[i]) << "step " << i;
  auto a = load_model_dir((dir_ / "full").string()), b = load_model_dir((dir_ / "split").string());
  ASSERT_TRUE(a && b);
  bool biased = false;
  for (size_t i = 0; i < a->model->params().size(); ++i) {
    const Tensor &ta = a->model->params()[i].var->value(), &tb = b->model->params()[i].var->value();
    for (int64_t j = 0; j < ta.numel(); ++j) ASSERT_EQ(ta.f32()[j], tb.f32()[j]) << a->model->params()[i].name;
    if (a->model->params()[i].name == "layers.1.ffn.router.bias")
      for (int64_t j = 0; j < ta.numel(); ++j) biased = biased || ta.f32()[j] != 0.0f;
  }
  EXPECT_TRUE(biased) << "the bias update never ran";
}

TEST_F(TrainRun, SaveThenLoadGivesBitIdenticalLogits) {
  auto r = train(options("run"));
  ASSERT_TRUE(r) << r.status().message();
  auto a = load_model_dir((dir_ / "run").string());
  ASSERT_TRUE(a) << a.status().message();
  TrainerState state;
  ASSERT_TRUE(save_checkpoint((dir_ / "copy").string(), *a->model, a->train_config, a->tokenizer, nullptr, state).is_ok());
  auto b = load_model_dir((dir_ / "copy").string());
  ASSERT_TRUE(b) << b.status().message();
  Tensor ids = Tensor::from_i32({1, 12}, {1, 5, 9, 40, 77, 3, 250, 12, 8, 100, 2, 299});
  ag::NoGradGuard guard;
  Tensor la = a->model->forward(ids).value(), lb = b->model->forward(ids).value();
  ASSERT_EQ(la.numel(), lb.numel());
  for (int64_t i = 0; i < la.numel(); ++i) ASSERT_EQ(la.f32()[i], lb.f32()[i]) << i;
}

TEST_F(TrainRun, Bf16TrainingTracksFp32) {
  auto f32 = train(options("fp32"));
  ASSERT_TRUE(f32) << f32.status().message();
  TrainOptions o = options("bf16");
  o.precision = "bf16";
  auto b16 = train(o);
  ag::set_matmul_precision(ag::MatmulPrecision::F32);
  ASSERT_TRUE(b16) << b16.status().message();
  ASSERT_EQ(b16->losses.size(), f32->losses.size());
  // Same init and batches; only the matmul operands are rounded to bf16 (2^-9 relative).
  for (size_t i = 0; i < f32->losses.size(); ++i)
    EXPECT_NEAR(b16->losses[i], f32->losses[i], 0.01 * f32->losses[i]) << "step " << i;
  EXPECT_NE(b16->losses.back(), f32->losses.back()) << "bf16 mode should actually round";
  EXPECT_LT(b16->losses.back(), b16->losses.front());
}

}  // namespace
}  // namespace speedlm
