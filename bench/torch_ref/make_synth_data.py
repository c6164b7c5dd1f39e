#!/usr/bin/env python3
"""Writes a synthetic data dir in speedlm's format, for testing train_torch.py.

DIR/train.bin, DIR/val.bin: little-endian int32 token ids; DIR/meta.json.
Tokens come from a sparse random order-1 Markov chain (each token has a few
likely successors), so the loss visibly falls; speed does not depend on it.
Byte counts are invented (--bytes-per-token, default 4.0).
"""
import argparse
import json
import os

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--vocab", type=int, default=4096)
p.add_argument("--train-tokens", type=int, default=2_000_000)
p.add_argument("--val-tokens", type=int, default=100_000)
p.add_argument("--successors", type=int, default=8)
p.add_argument("--bytes-per-token", type=float, default=4.0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
succ = rng.integers(0, a.vocab, size=(a.vocab, a.successors))
n = a.train_tokens + a.val_tokens
choice = rng.integers(0, a.successors, size=n)
noise = rng.random(n) < 0.1
rand_tok = rng.integers(0, a.vocab, size=n)
toks = np.empty(n, dtype=np.int64)
t = 0
for i in range(n):  # ~2 s per million tokens
    t = rand_tok[i] if noise[i] else succ[t, choice[i]]
    toks[i] = t
os.makedirs(a.out, exist_ok=True)
toks[: a.train_tokens].astype("<i4").tofile(os.path.join(a.out, "train.bin"))
toks[a.train_tokens:].astype("<i4").tofile(os.path.join(a.out, "val.bin"))
meta = {"vocab_size": a.vocab, "train_tokens": a.train_tokens, "val_tokens": a.val_tokens,
        "train_bytes": int(a.train_tokens * a.bytes_per_token), "val_bytes": int(a.val_tokens * a.bytes_per_token),
        "synthetic": True}
with open(os.path.join(a.out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
print(json.dumps(meta))
