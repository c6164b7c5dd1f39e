#!/usr/bin/env bash
# The main job: installs missing packages, builds, prepares the King James Bible corpus,
# trains the default Transformer (configs/transformer.json), prints its validation bits
# per byte and a generated sample. Extra arguments go to `speedlm train`
# (e.g. ./run.sh --steps 2000 for a longer run; a later --precision fp32 overrides the default).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
BIN=build/speedlm
if [ ! -f data/kjv/meta.json ]; then
  scripts/prepare_corpus.sh data/kjv_raw.txt
  "$BIN" prepare-data --format kjv --text data/kjv_raw.txt --out data/kjv --vocab-size 4096
fi
# The fastest mode where the CPU has native bf16 (AMX or AVX512-BF16): bf16 matmul operands,
# f32 accumulation and master weights. Elsewhere fp32.
PRECISION=fp32
grep -q -E 'amx_bf16|avx512_bf16' /proc/cpuinfo && PRECISION=bf16
"$BIN" train --config configs/transformer.json --data data/kjv --out runs/transformer --precision "$PRECISION" "$@"
"$BIN" eval --model runs/transformer --data data/kjv
echo "--- sample ---"
"$BIN" generate --model runs/transformer --prompt "And God said" --max-tokens 120 --seed 1
