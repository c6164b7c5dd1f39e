#!/usr/bin/env bash
# The main job: installs missing packages, builds, prepares the King James Bible corpus,
# trains the default Transformer (configs/transformer.json), prints its validation bits
# per byte and a generated sample. Extra arguments go to `speedlm train`
# (e.g. ./run.sh --precision bf16, or --steps 2000 for a longer run).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
BIN=build/speedlm
if [ ! -f data/kjv/meta.json ]; then
  scripts/prepare_corpus.sh data/kjv_raw.txt
  "$BIN" prepare-data --format kjv --text data/kjv_raw.txt --out data/kjv --vocab-size 4096
fi
"$BIN" train --config configs/transformer.json --data data/kjv --out runs/transformer "$@"
"$BIN" eval --model runs/transformer --data data/kjv
echo "--- sample ---"
"$BIN" generate --model runs/transformer --prompt "And God said" --max-tokens 120 --seed 1
