#!/usr/bin/env bash
# The MQAR grid of docs/ARENA.md, after Zoology's Figure 2 (research/evaluation.md §1.1):
# sequence length T in {64, 128, 256} with T/16 key-value pairs, d_model in {64, 128},
# 2 layers, one run per (config, T, d_model), each on up to 10M training tokens (the same number
# of scored queries, T/16 per sequence, whatever the machine's load), one thread per run; as in
# Zoology, a run stops once its validation accuracy reaches 0.99 (checked every 5% of the budget).
# The configs are split round-robin over JOBS parallel `speedlm arena` processes (default 2,
# one per core), each writing runs/mqar_grid/partN/; scripts/mqar_grid_report.py then merges
# their arena.csv files into runs/mqar_grid/grid.md and grid.png.
# Usage: scripts/mqar_grid.sh [config.json ...] [-- speedlm arena flags]
# Defaults: configs/arena/mqar_*.json; vocabulary 512 instead of the paper's 8192 (a CPU
# budget: every key and value embedding is then seen 16x more often; V > T still holds).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do CONFIGS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(configs/arena/mqar_{attention,linear_attention,retnet,gla,mamba,mamba2,deltanet,gated_deltanet,rwkv7}.json)
JOBS=${JOBS:-2}
[ -x build/speedlm ] || scripts/build.sh
OUT=runs/mqar_grid
mkdir -p "$OUT"
PIDS=()
for ((j = 0; j < JOBS; ++j)); do
  PART=()
  for ((i = j; i < ${#CONFIGS[@]}; i += JOBS)); do PART+=("${CONFIGS[$i]}"); done
  [ ${#PART[@]} -eq 0 ] && continue
  LIST=$(IFS=,; echo "${PART[*]}")
  build/speedlm arena --task mqar --configs "$LIST" --seq-lens 64,128,256 --d-models 64,128 --set n_layers=2 \
    --vocab 512 --budget 10Mtok --stop-at 0.99 --skip-speed --threads 1 --out "$OUT/part$j" "$@" &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
python3 scripts/mqar_grid_report.py "$OUT"/part*/arena.csv --out "$OUT"
