#!/usr/bin/env bash
# The MQAR grid of docs/ARENA.md, after Zoology's Figure 2 (research/evaluation.md §1.1):
# sequence length T in {64, 128, 256} with T/16 key-value pairs, d_model in {64, 128},
# 2 layers, one run per (config, T, d_model), each on up to 40M training tokens (the same number
# of scored queries, T/16 per sequence, whatever the machine's load) in batches of 2048 tokens
# (32 sequences at T = 64, 16 at 128, 8 at 256: the same number of optimizer steps at every T),
# one thread per run; as in Zoology, a run stops once its validation accuracy reaches 0.99
# (checked every 5% of the budget). The configs set the recipe (docs/ARENA.md, "The recipe, and
# why"): lr 3e-3 with the warmup-stable-decay schedule, a short conv in every recurrent family.
# Each cell is one `speedlm arena` run into runs/mqar_grid/cells/<config>_T<T>_d<d>/, JOBS of
# them at a time (default 2, one per core). A finished cell is kept, so an interrupted grid
# resumes where it stopped; scripts/mqar_grid_report.py then merges every cell's arena.csv into
# runs/mqar_grid/grid.md and grid.png.
# Usage: scripts/mqar_grid.sh [config.json ...] [-- speedlm arena flags]
# Defaults: the configs/arena/mqar_*.json of the families below; vocabulary 512 instead of the
# paper's 8192 (a CPU budget: every key and value embedding is then seen 16x more often; V > T
# still holds).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do CONFIGS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(configs/arena/mqar_{attention,linear_attention,retnet,gla,mamba,mamba2,deltanet,gated_deltanet,rwkv7}.json)
[ -x build/speedlm ] || scripts/build.sh
export OUT=runs/mqar_grid EXTRA="$*"
mkdir -p "$OUT/cells"

run_cell() {
  local config=$1 T=$2 d=$3
  local dir="$OUT/cells/$(basename "$config" .json)_T${T}_d${d}"
  [ -s "$dir/arena.csv" ] && return 0
  rm -rf "$dir.partial"  # left by an interrupted run
  # shellcheck disable=SC2086  # EXTRA holds the extra arena flags, split on purpose
  build/speedlm arena --task mqar --configs "$config" --seq-lens "$T" --d-models "$d" --set n_layers=2 \
    --batch $((2048 / T)) --vocab 512 --budget 40Mtok --stop-at 0.99 --skip-speed --threads 1 --no-plots --out "$dir.partial" $EXTRA &&
    mv "$dir.partial" "$dir"
}
export -f run_cell
# Shortest sequences first, every family, so that an interrupted grid has whole columns.
for T in 64 128 256; do for d in 64 128; do for c in "${CONFIGS[@]}"; do echo "$c $T $d"; done; done; done |
  xargs -P "${JOBS:-2}" -L 1 bash -c 'run_cell "$@"' _ || status=$?
# Debian's python3 first: it has python3-matplotlib (install_deps.sh) where a python3 earlier on
# PATH (pyenv, a venv) may not, and the report then leaves out the plot.
PY=python3
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null && PY=/usr/bin/python3
"$PY" scripts/mqar_grid_report.py "$OUT"/cells/*/arena.csv --out "$OUT"
exit "${status:-0}"
