// Decode attention over a paged KV cache: one query token per sequence against N cached tokens,
// f32 vs bf16 vs int8 pages side by side per context length, and the plain attention op on a dense
// f32 cache (Tq = 1) as the baseline. tok/s is decode steps per second of one layer's attention;
// GB/s counts the K/V bytes (and int8 scales) read per step.
#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "memory/paged_kv_cache.h"
#include "ops/attention/attention/attention.h"
#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm::ops {

namespace {

// Args: context N, storage (0 f32, 1 bf16, 2 int8 pages; 3 dense f32 through attention_plain_fwd),
// H, KVH, Dh; B = 1.
void BM_PagedDecode(benchmark::State& state) {
  const int64_t N = state.range(0), kind = state.range(1), H = state.range(2), KVH = state.range(3),
                Dh = state.range(4);
  Rng rng(1);
  Tensor q = Tensor::empty({1, H, Dh}), o = Tensor::empty({1, H, Dh}), lse = Tensor::empty({1, H});
  Tensor kv = Tensor::empty({N, KVH, Dh});
  for (Tensor* t : {&q, &kv})
    for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = rng.normal();
  const KvDType dtype = kind == 1 ? KvDType::BF16 : kind == 2 ? KvDType::I8 : KvDType::F32;
  PagedKvCache cache(PagedKvOptions{KVH, Dh, 16, dtype}, kind == 3 ? 0 : 1);
  if (kind != 3) cache.append(0, kv.f32(), kv.f32(), N);
  auto view = kind != 3 ? cache.view({0}) : nullptr;
  for (auto _ : state) {
    if (kind == 3)
      attention_plain_fwd(AttentionParams{}, AttentionDims{1, 1, N, H, KVH, Dh}, q.f32(), kv.f32(), kv.f32(), o.f32(),
                          lse.f32());
    else
      paged_decode_fwd(PagedDecodeParams{}, PagedDecodeDims{1, H, KVH, Dh}, view->kv, q.f32(), o.f32(), lse.f32());
    benchmark::DoNotOptimize(o.f32());
  }
  const double bytes = kind == 3 ? 2.0 * N * KVH * Dh * 4 : static_cast<double>(N * cache.bytes_per_token());
  state.counters["tok/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(kind == 3 ? "dense f32 (attention plain)" : kv_dtype_name(dtype));
}

void contexts(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "kv", "H", "KVH", "Dh"});
  // A Llama-3-8B attention layer (GQA 4:1, Dh 128), then MQA (one kv head: the split-KV path at B = 1).
  for (auto [H, KVH, Dh] : {std::tuple<int64_t, int64_t, int64_t>{32, 8, 128}, {8, 1, 128}})
    for (int64_t n : {1024, 2048, 4096, 8192, 16384, 32768})
      for (int64_t kind : {3, 0, 1, 2}) b->Args({n, kind, H, KVH, Dh});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_PagedDecode)->Apply(contexts);

}  // namespace speedlm::ops
