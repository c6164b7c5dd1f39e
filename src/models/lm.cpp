#include "models/lm.h"

#include <cmath>

#include "autograd/functions.h"
#include "nn/init.h"

namespace speedlm {

size_t ModelState::bytes() const {
  size_t n = 0;
  for (const auto& s : layers) n += s->bytes();
  for (const auto& s : ffn)
    if (s) n += s->bytes();
  return n;
}

ModelState ModelState::snapshot() const {
  ModelState s;
  for (const auto& l : layers) s.layers.push_back(l->snapshot());
  for (const auto& f : ffn) s.ffn.push_back(f ? f->snapshot() : nullptr);
  return s;
}

void ModelState::restore(const ModelState& snap) {
  SPEEDLM_ASSERT(snap.layers.size() == layers.size(), "restore: {} vs {} layers", snap.layers.size(), layers.size());
  SPEEDLM_ASSERT(snap.ffn.size() == ffn.size(), "restore: {} vs {} FFN states", snap.ffn.size(), ffn.size());
  for (size_t i = 0; i < layers.size(); ++i) layers[i]->restore(*snap.layers[i]);
  for (size_t i = 0; i < ffn.size(); ++i) {
    SPEEDLM_ASSERT(!ffn[i] == !snap.ffn[i], "restore: layer {} FFN state present in only one side", i);
    if (ffn[i]) ffn[i]->restore(*snap.ffn[i]);
  }
}

LanguageModel::LanguageModel(ModelConfig cfg) : cfg_(std::move(cfg)) {
  int64_t D = cfg_.d_model, V = cfg_.vocab_size;
  tok_emb_ = ag::Var(Tensor::zeros({V, D}), true);
  params_.push_back({"tok_emb.weight", &tok_emb_, false});
  blocks_.resize(cfg_.n_layers);
  for (int64_t i = 0; i < cfg_.n_layers; ++i) {
    Block& b = blocks_[i];
    std::string p = fmt::format("layers.{}.", i);
    b.norm1 = ag::Var(Tensor::full({D}, 1.0f), true);
    b.norm2 = ag::Var(Tensor::full({D}, 1.0f), true);
    b.mixer = nn::make_mixer(cfg_.layer_mixer(i), D);
    params_.push_back({p + "norm1.weight", &b.norm1, false});
    b.mixer->collect_params(p + "mixer.", params_);
    params_.push_back({p + "norm2.weight", &b.norm2, false});
    const FfnConfig& ffn = cfg_.layer_ffn(i);
    if (ffn.type == "moe") {
      b.moe = std::make_unique<nn::MoE>(ffn.moe, D);
      b.moe->collect_params(p + "ffn.", params_);
      continue;
    }
    if (ffn.type == "rwkv_cmix") {
      b.cmix = std::make_unique<nn::RwkvChannelMix>(D, ffn.hidden);
      b.cmix->collect_params(p + "ffn.", params_);
      continue;
    }
    b.w_gate_up = ag::Var(Tensor::zeros({2 * ffn.hidden, D}), true);
    b.w_down = ag::Var(Tensor::zeros({D, ffn.hidden}), true);
    params_.push_back({p + "ffn.w_gate_up", &b.w_gate_up, true});
    params_.push_back({p + "ffn.w_down", &b.w_down, true});
  }
  norm_f_ = ag::Var(Tensor::full({D}, 1.0f), true);
  params_.push_back({"norm_f.weight", &norm_f_, false});
  if (!cfg_.tie_embeddings) {
    lm_head_ = ag::Var(Tensor::zeros({V, D}), true);
    params_.push_back({"lm_head.weight", &lm_head_, true});
  }
}

void LanguageModel::init(uint64_t seed) {
  nn::InitSpec spec{cfg_.init_std, cfg_.init_std / std::sqrt(2.0 * static_cast<double>(cfg_.n_layers))};
  // Stream ids: 0..2 model-level, 100 + 16 i + j for layer i.
  nn::init_normal(tok_emb_.value(), spec.std, seed, 0);
  if (lm_head_.defined()) nn::init_normal(lm_head_.value(), spec.std, seed, 1);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    b.norm1.value().fill(1.0f);
    b.norm2.value().fill(1.0f);
    uint64_t base = 100 + 16 * i;
    b.mixer->init(spec, Rng(seed, base).next_u64());
    if (b.moe) {
      b.moe->init(spec, Rng(seed, base + 3).next_u64());
      continue;
    }
    if (b.cmix) {
      b.cmix->init(spec, Rng(seed, base + 4).next_u64(), static_cast<int64_t>(i), cfg_.n_layers);
      continue;
    }
    nn::init_normal(b.w_gate_up.value(), spec.std, seed, base + 1);
    nn::init_normal(b.w_down.value(), spec.out_std, seed, base + 2);
  }
  norm_f_.value().fill(1.0f);
}

int64_t LanguageModel::num_params() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.var->value().numel();
  return n;
}

int64_t LanguageModel::active_params() const {
  int64_t n = num_params();
  for (const Block& b : blocks_) {
    if (b.moe) n += b.moe->active_params() - b.moe->num_params();
  }
  return n;
}

ag::Var LanguageModel::take_aux_loss() {
  ag::Var total;
  for (Block& b : blocks_) {
    if (!b.moe) continue;
    ag::Var a = b.moe->take_aux_loss();
    if (a.defined()) total = total.defined() ? ag::add(total, a) : a;
  }
  return total;
}

std::vector<std::pair<int64_t, nn::MoeLoad>> LanguageModel::take_moe_load() {
  std::vector<std::pair<int64_t, nn::MoeLoad>> out;
  for (size_t i = 0; i < blocks_.size(); ++i)
    if (blocks_[i].moe) out.emplace_back(static_cast<int64_t>(i), blocks_[i].moe->take_load());
  return out;
}

void LanguageModel::update_router_bias() {
  for (Block& b : blocks_)
    if (b.moe) b.moe->update_bias();
}

ag::Var LanguageModel::hidden(const Tensor& ids, ModelState* state) {
  int64_t B = ids.dim(0), T = ids.dim(1);
  float eps = static_cast<float>(cfg_.norm_eps);
  ag::Var x = ag::embedding(ids.reshape({B * T}), tok_emb_);
  nn::ForwardContext ctx;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    MixerState* s = state ? state->layers[i].get() : nullptr;
    x = ag::add(x, b.mixer->forward_in_pass(ag::rmsnorm(x, b.norm1, eps), B, T, s, ctx));
    ag::Var h = ag::rmsnorm(x, b.norm2, eps);
    ag::Var y;
    if (b.moe)
      y = b.moe->forward(h, T);
    else if (b.cmix)
      y = b.cmix->forward(h, B, T, state ? state->ffn[i].get() : nullptr);
    else
      y = ag::swiglu_mlp(h, b.w_gate_up, b.w_down);
    x = ag::add(x, y);
  }
  return ag::rmsnorm(x, norm_f_, eps);
}

ag::Var LanguageModel::forward(const Tensor& ids, ModelState* state) {
  return ag::linear(hidden(ids, state), cfg_.tie_embeddings ? tok_emb_ : lm_head_);
}

ag::Var LanguageModel::loss(const Tensor& ids, const Tensor& targets) {
  ag::Var h = hidden(ids, nullptr);
  Tensor t = targets.reshape({targets.numel()});
  // Sparse targets (synthetic tasks score a few positions, e.g. MQAR's queries): the head and
  // the loss run on the scored rows only, gathered by an embedding lookup into h. Same mean.
  const ops::CrossEntropyParams p;
  std::vector<int32_t> rows, kept;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.i32()[i] != p.ignore_index) rows.push_back(static_cast<int32_t>(i)), kept.push_back(t.i32()[i]);
  if (!rows.empty() && 2 * static_cast<int64_t>(rows.size()) <= t.numel()) {
    const int64_t M = static_cast<int64_t>(rows.size());
    h = ag::embedding(Tensor::from_i32({M}, rows), h);
    t = Tensor::from_i32({M}, kept);
  }
  return ag::linear_cross_entropy(h, cfg_.tie_embeddings ? tok_emb_ : lm_head_, t, p);
}

Tensor LanguageModel::forward_last(const Tensor& ids, ModelState& state) {
  ag::NoGradGuard guard;
  int64_t B = ids.dim(0), T = ids.dim(1), D = cfg_.d_model;
  Tensor h = hidden(ids, &state).value();
  Tensor last = Tensor::empty({B, D});
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(h.f32() + ((b + 1) * T - 1) * D, D, last.f32() + b * D);
  return ag::linear(ag::Var(last), cfg_.tie_embeddings ? tok_emb_ : lm_head_).value();
}

ModelState LanguageModel::make_state(int64_t batch) const {
  ModelState s;
  for (const Block& b : blocks_) {
    s.layers.push_back(b.mixer->make_state(batch));
    s.ffn.push_back(b.cmix ? b.cmix->make_state(batch) : nullptr);
  }
  return s;
}

}  // namespace speedlm
