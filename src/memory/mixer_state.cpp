#include "memory/mixer_state.h"

namespace speedlm {

const char* memory_kind_name(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::GrowingKv: return "kv";
    case MemoryKind::WindowKv: return "window_kv";
    case MemoryKind::LatentKv: return "latent_kv";
    case MemoryKind::Recurrent: return "recurrent";
    case MemoryKind::Composite: return "composite";
  }
  return "?";
}

}  // namespace speedlm
