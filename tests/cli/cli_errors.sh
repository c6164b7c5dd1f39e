#!/usr/bin/env bash
# End-to-end CLI checks: a tiny model is prepared, trained, resumed, evaluated and sampled;
# bad flags, missing files, bad configs and corrupt or truncated checkpoints must give a
# one-line "error: [...]" message and exit status 1, never a crash.
set -uo pipefail
BIN=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

expect_error() {  # expect_error "<substring>" cmd...
  local want=$1; shift
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 1 ] || [ "$(printf '%s\n' "$out" | grep -c .)" -ne 1 ] || [[ "$out" != error:* ]] || [[ "$out" != *"$want"* ]]; then
    echo "FAIL: '$*' exited $rc with: $out (wanted one 'error:' line containing '$want')"
    failures=$((failures + 1))
  else
    echo "ok: $* -> $out"
  fi
}
expect_ok() {
  if ! "$@" > "$WORK/out.log" 2>&1; then echo "FAIL: '$*'"; cat "$WORK/out.log"; failures=$((failures + 1)); else echo "ok: $*"; fi
}

# A small corpus and a tiny model.
python3 - "$WORK/text.txt" <<'PY'
import random, sys
random.seed(1)
words = "in the beginning god created heaven and earth light darkness water spirit day night".split()
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(" ".join(random.choice(words) for _ in range(12)) + ".\n")
PY
cat > "$WORK/tiny.json" <<'JSON'
{"vocab_size": 300, "d_model": 32, "n_layers": 2, "layers": ["attn"],
 "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2}},
 "ffn": {"type": "swiglu", "hidden": 64},
 "train": {"batch_size": 4, "seq_len": 32, "steps": 6, "warmup_steps": 2, "eval_every": 3,
           "eval_tokens": 512, "checkpoint_every": 3, "log_every": 1}}
JSON
expect_ok "$BIN" prepare-data --text "$WORK/text.txt" --out "$WORK/data" --vocab-size 300
expect_ok "$BIN" train --config "$WORK/tiny.json" --data "$WORK/data" --out "$WORK/run" --stop-at 3 --threads 1
expect_ok "$BIN" train --data "$WORK/data" --out "$WORK/run" --resume --threads 1
expect_ok "$BIN" eval --model "$WORK/run" --data "$WORK/data" --threads 1
expect_ok "$BIN" generate --model "$WORK/run" --prompt "in the" --max-tokens 8 --threads 1
# A MoE model (dense layer, then a sigmoid-routed MoE with the bias update): trains, resumes,
# evaluates with the per-expert load, generates.
sed 's/"ffn": {"type": "swiglu", "hidden": 64}/"ffns": {"d": {"type": "swiglu", "hidden": 64}, "m": {"type": "moe", "experts": 4, "top_k": 2, "hidden": 16, "router": "sigmoid", "bias_update_rate": 0.01, "aux_loss_coef": 0.01}}, "ffn_layers": ["d", "m"]/' "$WORK/tiny.json" > "$WORK/moe.json"
expect_ok "$BIN" train --config "$WORK/moe.json" --data "$WORK/data" --out "$WORK/moe" --stop-at 3 --threads 1
expect_ok "$BIN" train --data "$WORK/data" --out "$WORK/moe" --resume --threads 1
if "$BIN" eval --model "$WORK/moe" --data "$WORK/data" --threads 1 | grep -q "moe layer 1: max/mean load"; then
  echo "ok: eval prints the MoE load"
else
  echo "FAIL: eval of a MoE model prints no expert load"; failures=$((failures + 1))
fi
expect_ok "$BIN" generate --model "$WORK/moe" --prompt "in the" --max-tokens 8 --threads 1
sed 's/"top_k": 2/"top_k": 5/' "$WORK/moe.json" > "$WORK/bad_moe.json"
expect_error "ffns.m.top_k = 5: must be in [1, 4]" "$BIN" train --config "$WORK/bad_moe.json" --data "$WORK/data" --out "$WORK/r4"
expect_ok "$BIN" train --help
expect_ok "$BIN" bench --help
expect_ok "$BIN" arena --help
# An MLA model trains, resumes nothing, generates; bench kv reports its latent cache:
# (kv_lora_rank 64 + rope dim 16) * 4 bytes = 320 per token per layer, 640 for 2 layers.
python3 - "$SRC/configs/mla.json" "$WORK/mla.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["vocab_size"] = 300
c["train"].update(steps=4, eval_every=2, eval_tokens=512, checkpoint_every=4, log_every=1, batch_size=2, seq_len=32)
json.dump(c, open(sys.argv[2], "w"))
PY
expect_ok "$BIN" train --config "$WORK/mla.json" --data "$WORK/data" --out "$WORK/mla_run" --threads 1
expect_ok "$BIN" generate --model "$WORK/mla_run" --prompt "in the" --max-tokens 8 --threads 1
expect_ok "$BIN" bench kv --config "$SRC/configs/mla.json" --context 1000
if ! grep -q -E '^total +640 +0 +640000 ' "$WORK/out.log"; then echo "FAIL: bench kv total"; cat "$WORK/out.log"; failures=$((failures + 1)); fi
expect_ok "$BIN" bench kv --config "$SRC/configs/transformer.json" --kv-dtype int8
expect_error "--kv-dtype = 'fp8'" "$BIN" bench kv --config "$SRC/configs/mla.json" --kv-dtype fp8
expect_error "--set kv_lora: the config has no key 'kv_lora'" "$BIN" bench kv --config "$SRC/configs/mla.json" --set kv_lora=4
expect_error "expected a benchmark name" "$BIN" bench kvv

expect_error "unknown command 'trian'" "$BIN" trian
expect_error "unknown flag --confg" "$BIN" train --confg x --data d --out o
expect_error "--steps = 'ten': expected an integer" "$BIN" train --config x --data d --out o --steps ten
expect_error "missing required flag --data" "$BIN" train --config x --out o
expect_error "--max-tokens needs a value" "$BIN" generate --model m --prompt p --max-tokens
expect_error "cannot open file" "$BIN" train --config "$WORK/nope.json" --data "$WORK/data" --out "$WORK/r2"
expect_error "no-such-dir" "$BIN" train --config "$WORK/tiny.json" --data "$WORK/no-such-dir" --out "$WORK/r2"
expect_error "no-such-model" "$BIN" generate --model "$WORK/no-such-model" --prompt hi
expect_error "temperature = -1" "$BIN" generate --model "$WORK/run" --prompt hi --temperature -1

# Bad configs name the key path and value.
sed 's/"heads": 4/"heads": 0/' "$WORK/tiny.json" > "$WORK/bad1.json"
expect_error "mixers.attn.heads = 0" "$BIN" train --config "$WORK/bad1.json" --data "$WORK/data" --out "$WORK/r3"
sed 's/"hidden": 64/"hiden": 64/' "$WORK/tiny.json" > "$WORK/bad2.json"
expect_error "ffn.hiden: unknown key" "$BIN" train --config "$WORK/bad2.json" --data "$WORK/data" --out "$WORK/r3"
printf '{"vocab_size": 300,' > "$WORK/bad3.json"
expect_error "invalid JSON" "$BIN" train --config "$WORK/bad3.json" --data "$WORK/data" --out "$WORK/r3"

# Corrupt and truncated checkpoints.
cp -r "$WORK/run" "$WORK/trunc"
head -c 100 "$WORK/run/model.safetensors" > "$WORK/trunc/model.safetensors"
expect_error "model.safetensors" "$BIN" generate --model "$WORK/trunc" --prompt hi
cp -r "$WORK/run" "$WORK/corrupt"
printf 'garbage' | dd of="$WORK/corrupt/model.safetensors" bs=1 seek=12 conv=notrunc status=none
expect_error "model.safetensors" "$BIN" eval --model "$WORK/corrupt" --data "$WORK/data"
cp -r "$WORK/run" "$WORK/nocfg"
rm "$WORK/nocfg/config.json"
expect_error "config.json" "$BIN" eval --model "$WORK/nocfg" --data "$WORK/data"
cp -r "$WORK/run" "$WORK/badtok"
echo '{"type": "byte_bpe"' > "$WORK/badtok/tokenizer.json"
expect_error "tokenizer.json" "$BIN" generate --model "$WORK/badtok" --prompt hi
head -c 10 "$WORK/data/val.bin" > "$WORK/short.bin"
cp -r "$WORK/data" "$WORK/baddata"
cp "$WORK/short.bin" "$WORK/baddata/val.bin"
expect_error "val.bin" "$BIN" eval --model "$WORK/run" --data "$WORK/baddata"

# The arena: a tiny MQAR run and a tiny corpus run end to end, then its flag errors.
expect_ok "$BIN" arena --task mqar --configs "$WORK/tiny.json" --seq-lens 16 --vocab 64 --budget 2ktok --batch 4 \
  --contexts 16,32 --decode-tokens 2 --test-examples 8 --out "$WORK/arena1" --no-plots --threads 1
for f in arena.md arena.csv speed.csv loss.csv; do
  [ -s "$WORK/arena1/$f" ] || { echo "FAIL: arena wrote no $f"; failures=$((failures + 1)); }
done
expect_ok "$BIN" arena --task lm --data "$WORK/data" --configs "$WORK/tiny.json","$WORK/tiny.json" --budget 1ktok \
  --contexts 32 --decode-tokens 2 --eval-tokens 256 --sample-tokens 4 --out "$WORK/arena2" --threads 1
grep -q "sample from the best model" "$WORK/out.log" || { echo "FAIL: arena lm printed no sample"; failures=$((failures + 1)); }
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  for f in loss.png memory.png throughput.png; do
    [ -s "$WORK/arena2/$f" ] || { echo "FAIL: arena drew no $f"; failures=$((failures + 1)); }
  done
fi
expect_error "missing required flag --configs" "$BIN" arena --out "$WORK/a"
expect_error "--task = 'sort': expected mqar, copy, induction or lm" "$BIN" arena --configs "$WORK/tiny.json" --task sort --out "$WORK/a"
expect_error "--task lm needs --data" "$BIN" arena --configs "$WORK/tiny.json" --out "$WORK/a"
expect_error "--budget = 'ten'" "$BIN" arena --configs "$WORK/tiny.json" --task mqar --budget ten --out "$WORK/a"
expect_error "--seq-lens = '64,x': expected comma-separated integers" "$BIN" arena --configs "$WORK/tiny.json" --task mqar --seq-lens 64,x --out "$WORK/a"
expect_error "--set d_modl: the config has no key 'd_modl'" "$BIN" arena --configs "$WORK/tiny.json" --task mqar --set d_modl=3 --out "$WORK/a"
expect_error "nope.json: cannot open file" "$BIN" arena --configs "$WORK/nope.json" --task mqar --out "$WORK/a"
expect_error "vocab_size = 64: must be greater than seq_len = 64" "$BIN" arena --configs "$WORK/tiny.json" --task mqar --vocab 64 --seq-lens 64 --out "$WORK/a"
expect_error "--stop-at = 1.5: must be an accuracy in [0, 1]" "$BIN" arena --configs "$WORK/tiny.json" --task copy --stop-at 1.5 --out "$WORK/a"
expect_error "--stop-at applies to the synthetic tasks" "$BIN" arena --configs "$WORK/tiny.json" --data "$WORK/data" --stop-at 0.9 --out "$WORK/a"
# Early stop: an untrained model already gets some copy targets right (1 in 14 by chance), so a
# tiny threshold stops the run at its first check, 5% into the budget.
expect_ok "$BIN" arena --task copy --configs "$WORK/tiny.json" --seq-lens 48 --budget 40ktok --batch 4 --skip-speed \
  --test-examples 8 --stop-at 1e-6 --out "$WORK/arena3" --no-plots --threads 1
grep -q "stopped early" "$WORK/out.log" || { echo "FAIL: arena --stop-at did not stop early"; failures=$((failures + 1)); }
expect_error "--precision = 'fp8'" "$BIN" arena --configs "$WORK/tiny.json" --task copy --precision fp8 --out "$WORK/a"

if [ "$failures" -ne 0 ]; then echo "$failures CLI checks failed"; exit 1; fi
echo "all CLI checks passed"
