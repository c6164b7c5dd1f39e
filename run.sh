#!/usr/bin/env bash
# The main job: a quick arena on the King James Bible corpus. Installs missing packages, builds,
# prepares the corpus, then trains transformer, gla, mamba2, gated deltanet, a hybrid (hymba:
# attention and Mamba-2 heads side by side) and a MoE model (Mixtral-like) for the same time
# each (60 s), measures prefill, decode and decoding memory at 1k-8k tokens of context, prints
# the table and a sample from the best model. Tables, CSVs and plots go to runs/arena
# (docs/ARENA.md). About 6.5 minutes on 2 idle cores after the build (measured 6 min 26 s).
# Extra arguments go to `speedlm arena`, e.g. ./run.sh --budget 5m for a longer run;
# ARENA_CONFIGS=a.json,b.json picks the models.
set -euo pipefail
cd "$(dirname "$0")"
CONFIGS=${ARENA_CONFIGS:-configs/transformer.json,configs/gla.json,configs/mamba2.json,configs/gated_deltanet.json,configs/hymba.json,configs/moe_mixtral.json}
scripts/install_deps.sh
scripts/build.sh
BIN=build/speedlm
# Idle OpenMP workers sleep instead of spinning (unless the caller chose): with one other busy
# process on a 2-core machine, spinning workers made decode 40x slower (6.5 against 137 tok/s).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
if [ ! -f data/kjv/meta.json ]; then
  scripts/prepare_corpus.sh data/kjv_raw.txt
  "$BIN" prepare-data --format kjv --text data/kjv_raw.txt --out data/kjv --vocab-size 4096
fi
# The fastest mode where the CPU has native bf16 (AMX or AVX512-BF16): bf16 matmul operands,
# f32 accumulation and master weights. Elsewhere fp32.
PRECISION=fp32
grep -q -E 'amx_bf16|avx512_bf16' /proc/cpuinfo && PRECISION=bf16
"$BIN" arena --task lm --data data/kjv --configs "$CONFIGS" --out runs/arena --budget 60s \
  --contexts 1024,2048,4096,8192 --decode-tokens 16 --eval-tokens 32768 --prompt "And God said" \
  --precision "$PRECISION" "$@"
