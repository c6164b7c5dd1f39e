#!/usr/bin/env python3
"""Checks train_torch.py's model, schedule, optimizer groups and bits/byte
against plain, loop-style reference code written from the spec (not from the
implementation). Small sizes; runs in seconds on the CPU.

  bench/torch_ref/.venv/bin/python bench/torch_ref/check_model.py
"""
import json
import math
import os
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import train_torch as tt  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

CFG = {
    "vocab_size": 97, "d_model": 48, "n_layers": 2, "tie_embeddings": True, "norm_eps": 1e-5, "init_std": 0.02,
    "layers": ["attn"], "mixers": {"attn": {"type": "attention", "heads": 6, "kv_heads": 2, "head_dim": 8,
                                            "rope_theta": 10000.0}},
    "ffn": {"type": "swiglu", "hidden": 64}, "objective": "causal_lm",
    "train": {"batch_size": 3, "seq_len": 16, "lr": 1e-3, "min_lr_ratio": 0.1, "warmup_steps": 10, "steps": 100,
              "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "grad_clip": 1.0, "seed": 1},
}

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def ref_rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def ref_rope(x, theta):
    # x: [B, T, n, hd]; pairs (i, i + hd/2), angle = pos * theta^(-2i/hd)
    B, T, n, hd = x.shape
    out = x.clone()
    for pos in range(T):
        for i in range(hd // 2):
            a = pos * theta ** (-2.0 * i / hd)
            c, s = math.cos(a), math.sin(a)
            x1, x2 = x[:, pos, :, i], x[:, pos, :, i + hd // 2]
            out[:, pos, :, i] = x1 * c - x2 * s
            out[:, pos, :, i + hd // 2] = x2 * c + x1 * s
    return out


def ref_forward(model, cfg, idx):
    """Loop-style forward from the spec, using the model's weights (unfused views)."""
    m = cfg["mixers"]["attn"]
    H, KV, hd = m["heads"], m["kv_heads"], m["head_dim"]
    F_h = cfg["ffn"]["hidden"]
    eps = cfg["norm_eps"]
    E = model.embed.weight
    x = E[idx]
    B, T, _ = x.shape
    for b in model.blocks:
        Wqkv = b.attn.wqkv.weight
        Wq, Wk, Wv = Wqkv[: H * hd], Wqkv[H * hd: (H + KV) * hd], Wqkv[(H + KV) * hd:]
        h = ref_rmsnorm(x, b.norm1.weight, eps)
        q = ref_rope((h @ Wq.T).view(B, T, H, hd), m["rope_theta"])
        k = ref_rope((h @ Wk.T).view(B, T, KV, hd), m["rope_theta"])
        v = (h @ Wv.T).view(B, T, KV, hd)
        o = torch.zeros(B, T, H, hd)
        for head in range(H):
            kvh = head // (H // KV)  # GQA: consecutive query heads share a kv head
            s = torch.einsum("btd,bsd->bts", q[:, :, head], k[:, :, kvh]) / math.sqrt(hd)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
            s = s.masked_fill(mask, float("-inf"))
            o[:, :, head] = torch.softmax(s, -1) @ v[:, :, kvh]
        x = x + o.reshape(B, T, H * hd) @ b.attn.wo.weight.T
        h = ref_rmsnorm(x, b.norm2.weight, eps)
        Wgu = b.ffn.wgu.weight
        Wg, Wu = Wgu[:F_h], Wgu[F_h:]
        g = h @ Wg.T
        x = x + ((g * torch.sigmoid(g)) * (h @ Wu.T)) @ b.ffn.wd.weight.T
    x = ref_rmsnorm(x, model.norm_f.weight, eps)
    W = E if cfg["tie_embeddings"] else model.head.weight
    return x @ W.T


def main():
    for tie in (True, False):
        cfg = json.loads(json.dumps(CFG))
        cfg["tie_embeddings"] = tie
        torch.manual_seed(0)
        model = tt.LM(cfg, 16)
        # perturb norm weights so that they matter
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "norm" in n:
                    p.add_(torch.randn_like(p) * 0.3)
        idx = torch.randint(0, cfg["vocab_size"], (2, 16))
        tgt = torch.randint(0, cfg["vocab_size"], (2, 16))
        with torch.no_grad():
            got = model.logits(idx)
            ref = ref_forward(model, cfg, idx)
            err = (got - ref).abs().max().item()
            check(f"forward logits match loop reference (tie={tie})", err < 1e-5, f"max err {err}")
            loss = model(idx, tgt).item()
            ref_loss = torch.nn.functional.cross_entropy(ref.view(-1, cfg["vocab_size"]), tgt.view(-1)).item()
            check(f"mean CE loss matches (tie={tie})", abs(loss - ref_loss) < 1e-5, f"{loss} vs {ref_loss}")

        # init statistics on a larger model
        big = json.loads(json.dumps(CFG))
        big.update(d_model=256, n_layers=4, vocab_size=2048, tie_embeddings=tie)
        big["ffn"]["hidden"] = 512
        torch.manual_seed(0)
        mb = tt.LM(big, 16)
        std, L = big["init_std"], big["n_layers"]
        out_std = std / math.sqrt(2 * L)
        s_emb = mb.embed.weight.std().item()
        s_qkv = mb.blocks[0].attn.wqkv.weight.std().item()
        s_wo = mb.blocks[0].attn.wo.weight.std().item()
        s_wd = mb.blocks[0].ffn.wd.weight.std().item()
        check(f"init std embed/qkv ~ init_std, wo/wd ~ init_std/sqrt(2L) (tie={tie})",
              abs(s_emb / std - 1) < 0.05 and abs(s_qkv / std - 1) < 0.05
              and abs(s_wo / out_std - 1) < 0.05 and abs(s_wd / out_std - 1) < 0.05,
              f"{s_emb} {s_qkv} {s_wo} {s_wd}")
        check(f"norm weights init 1 (tie={tie})",
              all(torch.all(m.weight == 1).item() for m in mb.modules() if isinstance(m, tt.RMSNorm)))

        groups = tt.param_groups(model, 0.1)
        decay = {id(p) for p in groups[0]["params"]}
        names_decay = sorted(n for n, p in model.named_parameters() if id(p) in decay)
        expect = sorted(n for n, p in model.named_parameters()
                        if p.dim() == 2 and n != "embed.weight")
        check(f"weight decay exactly on Linear matrices (tie={tie})",
              names_decay == expect and groups[1]["weight_decay"] == 0.0, f"{names_decay}")
        n_tied = sum(p.numel() for p in model.parameters())
        V, D = cfg["vocab_size"], cfg["d_model"]
        check(f"param count counts tied matrix once (tie={tie})",
              n_tied == sum(p.numel() for _, p in model.named_parameters())
              and (("head.weight" in dict(model.named_parameters())) != tie))
        del V, D

    # bf16 autocast forward stays close to fp32
    torch.manual_seed(0)
    model = tt.LM(CFG, 16)
    idx = torch.randint(0, CFG["vocab_size"], (2, 16))
    tgt = torch.randint(0, CFG["vocab_size"], (2, 16))
    with torch.no_grad():
        l32 = model(idx, tgt).item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            l16 = model(idx, tgt).item()
    check("bf16 autocast loss close to fp32", abs(l32 - l16) < 0.02, f"{l32} vs {l16}")

    # LR schedule
    tc = CFG["train"]
    lrs = [tt.lr_at(s, tc) for s in range(tc["steps"] + 5)]
    check("lr warmup linear (step s -> lr*(s+1)/warmup)",
          abs(lrs[0] - 1e-4) < 1e-12 and abs(lrs[9] - 1e-3) < 1e-12)
    check("lr cosine: peak after warmup, min_lr at steps",
          abs(lrs[10] - 1e-3) < 1e-12 and abs(lrs[100] - 1e-4) < 1e-12 and abs(lrs[104] - 1e-4) < 1e-12
          and abs(lrs[55] - (1e-4 + 0.5 * 9e-4)) < 1e-12)

    # data + bits/byte on a tiny synthetic dir
    with tempfile.TemporaryDirectory() as d:
        V = CFG["vocab_size"]
        rng = np.random.default_rng(0)
        tr = rng.integers(0, V, 5000).astype("<i4")
        va = rng.integers(0, V, 200).astype("<i4")
        tr.tofile(os.path.join(d, "train.bin"))
        va.tofile(os.path.join(d, "val.bin"))
        meta = {"vocab_size": V, "train_tokens": 5000, "val_tokens": 200, "train_bytes": 17000, "val_bytes": 700}
        json.dump(meta, open(os.path.join(d, "meta.json"), "w"))
        data = tt.Data(d)
        g = torch.Generator().manual_seed(3)
        x, y = data.batch(g, 4, 16)
        g2 = torch.Generator().manual_seed(3)
        starts = torch.randint(0, 5000 - 16 - 1, (4,), generator=g2)
        ok = all(np.array_equal(x[i].numpy(), tr[s:s + 16]) and np.array_equal(y[i].numpy(), tr[s + 1:s + 17])
                 for i, s in enumerate(starts.tolist()))
        check("train batch = tokens[s:s+T], tokens[s+1:s+T+1] with seeded starts", ok)

        import contextlib
        T = 16
        for eval_tokens in (None, 100):
            bpb, ntok = tt.evaluate(model, data, T, 3, eval_tokens, contextlib.nullcontext)
            n_avail = 200 if eval_tokens is None else 100
            n_win = n_avail // (T + 1)
            tot = 0.0
            with torch.no_grad():
                for w in range(n_win):
                    win = torch.from_numpy(va[w * (T + 1):(w + 1) * (T + 1)].astype(np.int64))
                    lg = ref_forward(model, CFG, win[None, :-1])[0]
                    tot += torch.nn.functional.cross_entropy(lg, win[1:], reduction="sum").item()
            ref_bpb = tot / math.log(2) / (700 * (n_win * T) / 200)
            check(f"val bits/byte, non-overlapping windows (eval_tokens={eval_tokens})",
                  ntok == n_win * T and abs(bpb - ref_bpb) < 1e-5, f"{bpb} vs {ref_bpb}")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
