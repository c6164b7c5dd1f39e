#!/usr/bin/env bash
# The MQAR grid of docs/ARENA.md, after Zoology's Figure 2 (research/evaluation.md §1.1):
# sequence length T in {64, 128, 256} with T/16 key-value pairs, d_model in {64, 128},
# 2 layers, one run per (config, T, d_model), under the same budget. Writes the grid to
# runs/mqar_grid/arena.md.
# Usage: scripts/mqar_grid.sh [config.json ...] [-- speedlm arena flags]
# Defaults: configs/arena/mqar_*.json; vocabulary 512 instead of the paper's 8192 (a CPU
# budget: every key and value embedding is then seen 16x more often; V > T still holds);
# a budget of 40M training tokens per run, so every cell sees the same number of scored
# queries (T/16 per sequence) whatever the machine's load: about 20 min per run at T = 64 on
# one idle core, longer at T = 256 and d_model = 128. Pass --budget to change it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do CONFIGS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(configs/arena/mqar_*.json)
LIST=$(IFS=,; echo "${CONFIGS[*]}")
[ -x build/speedlm ] || scripts/build.sh
build/speedlm arena --task mqar --configs "$LIST" --seq-lens 64,128,256 --d-models 64,128 --set n_layers=2 \
  --vocab 512 --budget 40Mtok --skip-speed --threads 1 --out runs/mqar_grid "$@"
