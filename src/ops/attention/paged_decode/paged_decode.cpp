// Page layout, the storage conversions (f32 / bf16 / int8 with per token and head scales)
// and the argument check shared by the reference and the fast form.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm::ops {

const char* kv_dtype_name(KvDType t) {
  switch (t) {
    case KvDType::F32: return "f32";
    case KvDType::BF16: return "bf16";
    case KvDType::I8: return "int8";
  }
  return "?";
}

Result<KvDType> parse_kv_dtype(const std::string& name) {
  for (KvDType t : {KvDType::F32, KvDType::BF16, KvDType::I8})
    if (name == kv_dtype_name(t)) return t;
  return Status::errorf("kv", "dtype = '{}': must be f32, bf16 or int8", name);
}

size_t kv_dtype_bytes(KvDType t) { return t == KvDType::F32 ? 4 : t == KvDType::BF16 ? 2 : 1; }

namespace {

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// Per kv head: scale = max|x| / 127 (0 for an all-zero row), x_q = round(x / scale).
void quantize_i8(const float* x, int64_t KVH, int64_t Dh, int8_t* xq, float* scale) {
  for (int64_t h = 0; h < KVH; ++h) {
    const float* xh = x + h * Dh;
    float mx = 0.0f;
    for (int64_t c = 0; c < Dh; ++c) mx = std::max(mx, std::fabs(xh[c]));
    const float s = mx / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t c = 0; c < Dh; ++c)
      xq[h * Dh + c] = static_cast<int8_t>(std::clamp(std::nearbyint(xh[c] * inv), -127.0f, 127.0f));
    scale[h] = s;
  }
}

// Token `slot` of every kv head: element (h, slot, c) of a [KVH, P, Dh] block.
void store_rows(const PageLayout& l, uint8_t* page, int64_t slot, const float* x, size_t off, size_t scale_off) {
  const int64_t P = l.page_size, Dh = l.Dh;
  switch (l.dtype) {
    case KvDType::F32:
      for (int64_t h = 0; h < l.KVH; ++h)
        std::memcpy(reinterpret_cast<float*>(page + off) + (h * P + slot) * Dh, x + h * Dh, Dh * 4);
      break;
    case KvDType::BF16:
      for (int64_t h = 0; h < l.KVH; ++h) {
        auto* dst = reinterpret_cast<uint16_t*>(page + off) + (h * P + slot) * Dh;
        for (int64_t c = 0; c < Dh; ++c) dst[c] = f32_to_bf16(x[h * Dh + c]);
      }
      break;
    case KvDType::I8: {
      std::vector<int8_t> q(l.row_elems());
      std::vector<float> scale(l.KVH);
      quantize_i8(x, l.KVH, Dh, q.data(), scale.data());
      for (int64_t h = 0; h < l.KVH; ++h) {
        std::memcpy(reinterpret_cast<int8_t*>(page + off) + (h * P + slot) * Dh, q.data() + h * Dh, Dh);
        reinterpret_cast<float*>(page + scale_off)[h * P + slot] = scale[h];
      }
      break;
    }
  }
}

void load_row(const PageLayout& l, const uint8_t* page, int64_t slot, int64_t h, size_t off, size_t scale_off,
              float* x) {
  const size_t at = (h * l.page_size + slot) * l.Dh;
  switch (l.dtype) {
    case KvDType::F32: std::memcpy(x, reinterpret_cast<const float*>(page + off) + at, l.Dh * 4); break;
    case KvDType::BF16:
      for (int64_t c = 0; c < l.Dh; ++c) x[c] = bf16_to_f32(reinterpret_cast<const uint16_t*>(page + off)[at + c]);
      break;
    case KvDType::I8: {
      const float s = reinterpret_cast<const float*>(page + scale_off)[h * l.page_size + slot];
      for (int64_t c = 0; c < l.Dh; ++c) x[c] = s * reinterpret_cast<const int8_t*>(page + off)[at + c];
      break;
    }
  }
}

}  // namespace

PageLayout PageLayout::make(KvDType dtype, int64_t page_size, int64_t kv_heads, int64_t head_dim) {
  PageLayout l;
  l.dtype = dtype, l.page_size = page_size, l.KVH = kv_heads, l.Dh = head_dim;
  const size_t block = align64(page_size * l.row_elems() * kv_dtype_bytes(dtype));
  const size_t scales = dtype == KvDType::I8 ? align64(page_size * kv_heads * sizeof(float)) : 0;
  l.k_off = 0, l.v_off = block, l.k_scale_off = 2 * block, l.v_scale_off = 2 * block + scales;
  l.bytes = 2 * block + 2 * scales;
  return l;
}

void paged_kv_store(const PageLayout& l, uint8_t* page, int64_t slot, const float* k, const float* v) {
  store_rows(l, page, slot, k, l.k_off, l.k_scale_off);
  store_rows(l, page, slot, v, l.v_off, l.v_scale_off);
}

void paged_kv_load(const PageLayout& l, const uint8_t* page, int64_t slot, int64_t h, float* k, float* v) {
  load_row(l, page, slot, h, l.k_off, l.k_scale_off, k);
  load_row(l, page, slot, h, l.v_off, l.v_scale_off, v);
}

Status paged_decode_check(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv) {
  const std::pair<const char*, int64_t> dims[] = {
      {"batch", d.B}, {"heads", d.H}, {"kv_heads", d.KVH}, {"head_dim", d.Dh}, {"page_size", kv.layout.page_size}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("paged_decode", "{} = {}: must be >= 1", name, value);
  if (d.H % d.KVH != 0)
    return Status::errorf("paged_decode", "kv_heads = {}: heads ({}) must be a multiple of it", d.KVH, d.H);
  if (kv.layout.KVH != d.KVH || kv.layout.Dh != d.Dh)
    return Status::errorf("paged_decode", "page layout = [{}, {}]: the cache holds another shape than [KVH, Dh] = [{}, {}]",
                          kv.layout.KVH, kv.layout.Dh, d.KVH, d.Dh);
  if (!kv.pages || !kv.tables || !kv.lengths)
    return Status::error("paged_decode", "kv = (null): pages, tables and lengths are required");
  for (int64_t b = 0; b < d.B; ++b)
    if (kv.lengths[b] < 1)
      return Status::errorf("paged_decode", "lengths[{}] = {}: a decode step needs at least one cached token", b,
                            kv.lengths[b]);
  if (!std::isfinite(p.scale)) return Status::errorf("paged_decode", "scale = {}: must be finite", p.scale);
  if (p.splits < 0) return Status::errorf("paged_decode", "splits = {}: must be >= 0", p.splits);
  if (!(p.softcap >= 0.0f) || !std::isfinite(p.softcap))
    return Status::errorf("paged_decode", "softcap = {}: must be finite and >= 0 (0 = none)", p.softcap);
  return Status::ok();
}

}  // namespace speedlm::ops
