#!/usr/bin/env bash
# Speed sweep: fp32/bf16 x eager/compiled, REPS times each, back to back.
# usage: run_bench.sh [DATA_DIR] [CONFIG] [SECONDS] [REPS] [THREADS]
# --seconds counts training wall time including the warm-up/compile steps, so
# compiled runs get COMPILE_EXTRA (default 25) more seconds: the measured window
# is then about SECONDS for every variant. Results: $OUTDIR/*.json + a table.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${1:-$HERE/data_synth}"
CONFIG="${2:-$HERE/config_bench.json}"
SECONDS_BUDGET="${3:-60}"
REPS="${4:-2}"
THREADS="${5:-2}"
COMPILE_EXTRA="${COMPILE_EXTRA:-25}"
PY="$HERE/.venv/bin/python"
OUTDIR="${OUTDIR:-$HERE/runs/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUTDIR"
[ -f "$DATA/meta.json" ] || "$PY" "$HERE/make_synth_data.py" --out "$DATA"
for rep in $(seq 1 "$REPS"); do
  for prec in fp32 bf16; do
    for mode in eager compiled; do
      extra=(); budget="$SECONDS_BUDGET"
      if [ "$mode" = compiled ]; then extra=(--compile); budget=$((SECONDS_BUDGET + COMPILE_EXTRA)); fi
      out="$OUTDIR/${prec}_${mode}_rep${rep}.json"
      echo "=== $prec $mode rep $rep (budget ${budget}s) -> $out"
      "$PY" "$HERE/train_torch.py" --config "$CONFIG" --data "$DATA" --threads "$THREADS" \
        --seconds "$budget" --precision "$prec" "${extra[@]}" --eval-tokens 25700 \
        --no-initial-eval --log-every 50 --out "$out" | grep -v '^{' 
    done
  done
done
"$PY" - "$OUTDIR" <<'PY'
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    d = json.load(open(f))
    rows.append((os.path.basename(f)[:-5], d))
print(f"{'run':24s} {'tok/s mean':>11s} {'tok/s median':>13s} {'warm-up s':>10s} {'steps':>6s} {'val_bpb':>8s}")
for name, d in rows:
    print(f"{name:24s} {d['tokens_per_s']:11.0f} {d['tokens_per_s_median_step']:13.0f} "
          f"{d['warmup_seconds']:10.1f} {d['steps']:6d} {d['final_val_bpb']:8.4f}")
PY
