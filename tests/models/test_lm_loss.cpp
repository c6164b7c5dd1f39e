// LanguageModel::loss with sparse targets (the arena's synthetic tasks score a few
// positions): running the head on the scored rows only gives the dense loss and gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "models/lm.h"
#include "tiny_model.h"

namespace speedlm {
namespace {

TEST(LmLoss, SparseTargetsMatchTheDenseComposition) {
  LanguageModel model(testing::tiny_config());
  model.init(4);
  const int64_t B = 2, T = 16, V = 97;
  Rng rng(8);
  Tensor ids = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
  for (int64_t i = 0; i < ids.numel(); ++i) ids.i32()[i] = static_cast<int32_t>(rng.below(V));
  for (int64_t i = 0; i < targets.numel(); ++i) targets.i32()[i] = i % 5 == 3 ? static_cast<int32_t>(rng.below(V)) : -100;

  auto grads = [&](bool fused) {
    ag::Var loss = fused ? model.loss(ids, targets)
                         : ag::cross_entropy(model.forward(ids), targets.reshape({B * T}), {});
    ag::backward(loss);
    std::vector<Tensor> g;
    for (const auto& p : model.params()) {
      g.push_back(p.var->grad().clone());
      p.var->grad().zero();
    }
    return std::make_pair(loss.value().f32()[0], g);
  };
  auto [dense_loss, dense] = grads(false);
  auto [sparse_loss, sparse] = grads(true);
  EXPECT_NEAR(sparse_loss, dense_loss, 1e-5 * std::fabs(dense_loss));
  for (size_t k = 0; k < dense.size(); ++k) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < dense[k].numel(); ++i) {
      double d = sparse[k].f32()[i] - dense[k].f32()[i];
      num += d * d, den += static_cast<double>(dense[k].f32()[i]) * dense[k].f32()[i];
    }
    EXPECT_LE(std::sqrt(num / (den + 1e-30)), 1e-5) << model.params()[k].name;
  }
}

}  // namespace
}  // namespace speedlm
