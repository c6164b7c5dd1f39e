#!/usr/bin/env bash
# A quick arena on the King James Bible corpus (what ./run.sh will run once the efficient
# families are merged): every model in CONFIGS trains for the same time budget (default
# 60 s each), then prefill, decode and decoding memory are measured at 1k and 8k tokens of
# context; prints the table and a sample from the best model. Tables, CSVs and plots go to
# runs/arena. About 10 minutes for six configs on 2 cores (60 s of training plus about
# 20-30 s of evaluation and measurement each).
# Usage: scripts/quick_arena.sh [speedlm arena flags], e.g. --budget 5m for a longer run;
# ARENA_CONFIGS=a.json,b.json picks the models.
set -euo pipefail
cd "$(dirname "$0")/.."
# The models compared: transformer, gla, mamba2, gated deltanet, one hybrid and one MoE model.
CONFIGS=${ARENA_CONFIGS:-configs/transformer.json,configs/gla.json,configs/mamba2.json,configs/gated_deltanet.json,configs/hymba.json,configs/moe_mixtral.json}
scripts/install_deps.sh
scripts/build.sh
BIN=build/speedlm
if [ ! -f data/kjv/meta.json ]; then
  scripts/prepare_corpus.sh data/kjv_raw.txt
  "$BIN" prepare-data --format kjv --text data/kjv_raw.txt --out data/kjv --vocab-size 4096
fi
# Native bf16 matmuls where the CPU has them, as ./run.sh.
PRECISION=fp32
grep -q -E 'amx_bf16|avx512_bf16' /proc/cpuinfo && PRECISION=bf16
"$BIN" arena --task lm --data data/kjv --configs "$CONFIGS" --out runs/arena --budget 60s \
  --contexts 1024,2048,4096,8192 --decode-tokens 16 --eval-tokens 32768 --prompt "And God said" \
  --precision "$PRECISION" "$@"
