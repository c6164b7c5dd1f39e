// Decoding memory of one layer's mixer. Every kind reports its bytes and can be
// snapshotted and restored (a recurrent state cannot be truncated like a KV cache,
// so rollback is by snapshot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace speedlm {

// Composite: the states of an intra-layer hybrid's branches side by side (CompositeState).
enum class MemoryKind { GrowingKv, WindowKv, LatentKv, Recurrent, Composite };
const char* memory_kind_name(MemoryKind kind);

class MixerState {
 public:
  virtual ~MixerState() = default;
  virtual MemoryKind kind() const = 0;
  // Tokens seen so far (the absolute position of the next token).
  virtual int64_t length() const = 0;
  // Bytes of state held now (capacity actually allocated).
  virtual size_t bytes() const = 0;
  // Bytes each further token of one sequence adds (0 for a fixed-size state): a state at context N
  // holds about bytes() of an empty one + N * bytes_per_token() per sequence (`speedlm bench kv`).
  virtual size_t bytes_per_token() const { return 0; }
  // Bytes one sequence holds at context N (`speedlm bench kv`); a bounded cache overrides it.
  virtual size_t bytes_at(int64_t context) const {
    return bytes() + static_cast<size_t>(context) * bytes_per_token();
  }
  virtual std::unique_ptr<MixerState> snapshot() const = 0;
  // Restores from a snapshot taken of a state of the same kind and shape.
  virtual void restore(const MixerState& snap) = 0;
};

}  // namespace speedlm
