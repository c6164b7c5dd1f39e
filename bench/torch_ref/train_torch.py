#!/usr/bin/env python3
"""PyTorch reference trainer for the speedlm side-by-side benchmark.

Trains exactly the model speedlm trains (same JSON config, same data files,
same seed, same thread count) and reports training tokens/s and validation
bits per byte against training wall-clock time.

Run it with the venv made by setup.sh, e.g.

  bench/torch_ref/.venv/bin/python bench/torch_ref/train_torch.py \
      --config cfg.json --data DATA_DIR --threads 2 --seconds 600 \
      --precision bf16 --eval-every-seconds 60 --out result.json

See README.md next to this file for the exact definitions (LR schedule,
bits-per-byte, what is timed).
"""

import argparse
import json
import math
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="model/training config JSON")
    p.add_argument("--data", required=True, help="dir with train.bin, val.bin (int32 LE) and meta.json")
    p.add_argument("--threads", type=int, required=True, help="intra-op threads (torch.set_num_threads)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seconds", type=float, default=None,
                   help="training wall-clock budget in seconds (evals excluded); the LR schedule still uses train.steps")
    g.add_argument("--steps", type=int, default=None, help="number of optimizer steps (default: train.steps)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="fp32, or bf16 = torch.autocast('cpu', bfloat16) around forward+loss with fp32 master weights")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (forward+loss, backward via AOTAutograd)")
    p.add_argument("--compile-mode", default=None,
                   help="torch.compile mode (default None = inductor default; e.g. max-autotune)")
    p.add_argument("--eval-every-seconds", type=float, default=None,
                   help="evaluate val bits/byte every S seconds of training wall time (plus at start and end)")
    p.add_argument("--eval-tokens", type=int, default=None,
                   help="validation tokens to use per eval, from the start of val.bin (default: all)")
    p.add_argument("--no-initial-eval", action="store_true", help="skip the eval at training time 0")
    p.add_argument("--seed", type=int, default=None, help="overrides train.seed")
    p.add_argument("--out", default=None, help="write the result JSON here too")
    p.add_argument("--log-every", type=int, default=10, help="progress line every N steps")
    p.add_argument("--timing-warmup-steps", type=int, default=5,
                   help="first N steps (incl. compilation) excluded from tokens/s")
    p.add_argument("--malloc", choices=["tcmalloc", "jemalloc", "system"], default="tcmalloc",
                   help="memory allocator, preloaded by re-executing this script with LD_PRELOAD (the setup "
                        "PyTorch's own launcher, torch.backends.xeon.run_cpu, uses by default). tcmalloc: "
                        "Debian's libtcmalloc-minimal4, measured fastest here; falls back to system if missing")
    return p.parse_args(argv)


MALLOC_LIBS = {
    "tcmalloc": ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so"],
    "jemalloc": ["libjemalloc.so.2", "libjemalloc.so"],
}
MALLOC_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
               os.path.join(sys.prefix, "lib")]


def find_malloc(kind):
    for d in MALLOC_DIRS:
        for name in MALLOC_LIBS.get(kind, []):
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
    return None


def ensure_malloc(kind):
    """Re-exec under LD_PRELOAD=<allocator> (once). Returns the allocator in use."""
    if kind == "system":
        return "system"
    if os.environ.get("TORCHREF_MALLOC") == kind:  # already re-executed
        return kind
    lib = find_malloc(kind)
    if lib is None:
        print(f"warning: --malloc {kind}: library not found (apt-get install libtcmalloc-minimal4 / libjemalloc2); "
              "using the system allocator", file=sys.stderr)
        return "system"
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join([lib] + [p for p in env.get("LD_PRELOAD", "").split(":") if p])
    env["TORCHREF_MALLOC"] = kind
    if kind == "jemalloc":  # torch.backends.xeon.run_cpu's setting
        env.setdefault("MALLOC_CONF", "oversize_threshold:1,background_thread:true,metadata_thp:auto")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


MALLOC = "system"
ARGS = parse_args() if __name__ == "__main__" else None

# Thread environment must be set before torch (and its OpenMP/MKL runtimes) load.
if ARGS is not None:
    MALLOC = ensure_malloc(ARGS.malloc)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------
# Config


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    required = ["vocab_size", "d_model", "n_layers", "tie_embeddings", "norm_eps", "init_std",
                "layers", "mixers", "ffn", "objective", "train"]
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f"config {path} lacks keys {missing}")
    if cfg["objective"] != "causal_lm":
        raise ValueError(f"objective {cfg['objective']!r} not supported (only causal_lm)")
    if cfg["ffn"]["type"] != "swiglu":
        raise ValueError(f"ffn type {cfg['ffn']['type']!r} not supported (only swiglu)")
    for name in cfg["layers"]:
        m = cfg["mixers"][name]
        if m["type"] != "attention":
            raise ValueError(f"mixer {name!r} type {m['type']!r} not supported (only attention)")
    return cfg


# ----------------------------------------------------------------------------
# Model


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * w (F.rms_norm computes exactly this, in fp32 for fp32 input)."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    """Causal GQA self-attention with half-split RoPE (HF Llama rotate_half).

    Wq, Wk, Wv are stored as one fused [H*hd + 2*KV*hd, D] matrix (a single
    larger GEMM; each row initialised N(0, init_std) exactly as three separate
    matrices would be). Weight decay treats it like the three matrices.
    """

    def __init__(self, d_model, heads, kv_heads, head_dim):
        super().__init__()
        assert heads % kv_heads == 0
        self.h, self.kv, self.hd = heads, kv_heads, head_dim
        self.wqkv = nn.Linear(d_model, (heads + 2 * kv_heads) * head_dim, bias=False)
        self.wo = nn.Linear(heads * head_dim, d_model, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        qkv = self.wqkv(x)
        q, k, v = qkv.split([self.h * self.hd, self.kv * self.hd, self.kv * self.hd], dim=-1)
        q = q.view(B, T, self.h, self.hd).transpose(1, 2)
        k = k.view(B, T, self.kv, self.hd).transpose(1, 2)
        v = v.view(B, T, self.kv, self.hd).transpose(1, 2)
        cos = cos.to(q.dtype)
        sin = sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # default scale = 1/sqrt(head_dim)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=(self.kv != self.h))
        y = y.transpose(1, 2).reshape(B, T, self.h * self.hd)
        return self.wo(y)


class SwiGLU(nn.Module):
    """h = silu(x Wg^T) * (x Wu^T); out = h Wd^T. Wg and Wu stored fused as one [2*hidden, D] matrix."""

    def __init__(self, d_model, hidden):
        super().__init__()
        self.hidden = hidden
        self.wgu = nn.Linear(d_model, 2 * hidden, bias=False)
        self.wd = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x):
        g, u = self.wgu(x).split([self.hidden, self.hidden], dim=-1)
        return self.wd(F.silu(g) * u)


class Block(nn.Module):
    def __init__(self, d_model, mixer_cfg, ffn_cfg, eps):
        super().__init__()
        self.norm1 = RMSNorm(d_model, eps)
        self.attn = Attention(d_model, mixer_cfg["heads"], mixer_cfg["kv_heads"], mixer_cfg["head_dim"])
        self.norm2 = RMSNorm(d_model, eps)
        self.ffn = SwiGLU(d_model, ffn_cfg["hidden"])

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        x = x + self.ffn(self.norm2(x))
        return x


class LM(nn.Module):
    def __init__(self, cfg, max_seq_len):
        super().__init__()
        V, D, L = cfg["vocab_size"], cfg["d_model"], cfg["n_layers"]
        std = cfg["init_std"]
        self.tie = bool(cfg["tie_embeddings"])
        self.embed = nn.Embedding(V, D)
        pattern = cfg["layers"]
        mixer_cfgs = [cfg["mixers"][pattern[i % len(pattern)]] for i in range(L)]
        self.blocks = nn.ModuleList(Block(D, mixer_cfgs[i], cfg["ffn"], cfg["norm_eps"]) for i in range(L))
        self.norm_f = RMSNorm(D, cfg["norm_eps"])
        self.head = None if self.tie else nn.Linear(D, V, bias=False)

        # RoPE tables (all layers share head_dim / theta in practice; build per distinct pair).
        hd = mixer_cfgs[0]["head_dim"]
        theta = mixer_cfgs[0]["rope_theta"]
        for m in mixer_cfgs:
            if m["head_dim"] != hd or m["rope_theta"] != theta:
                raise ValueError("all attention mixers must share head_dim and rope_theta")
        inv_freq = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)  # theta^(-2i/hd)
        ang = torch.arange(max_seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]  # [T, hd/2]
        ang = torch.cat([ang, ang], dim=-1)  # pairs (i, i + hd/2) share angle i
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

        # Init: everything N(0, std); output projections N(0, std / sqrt(2 L)); norms 1.
        out_std = std / math.sqrt(2 * L)
        nn.init.normal_(self.embed.weight, 0.0, std)
        for b in self.blocks:
            nn.init.normal_(b.attn.wqkv.weight, 0.0, std)
            nn.init.normal_(b.ffn.wgu.weight, 0.0, std)
            nn.init.normal_(b.attn.wo.weight, 0.0, out_std)
            nn.init.normal_(b.ffn.wd.weight, 0.0, out_std)
        if self.head is not None:
            nn.init.normal_(self.head.weight, 0.0, std)

    def logits(self, idx):
        T = idx.shape[1]
        cos, sin = self.cos[:T], self.sin[:T]
        x = self.embed(idx)
        for b in self.blocks:
            x = b(x, cos, sin)
        x = self.norm_f(x)
        w = self.embed.weight if self.tie else self.head.weight
        return F.linear(x, w)

    def forward(self, idx, targets, reduction="mean"):
        logits = self.logits(idx)
        # CE always in fp32 (under bf16 autocast the logits come out bf16).
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)


def param_groups(model, weight_decay):
    """Decay only 2-D weights of Linear layers; no decay on norms or the (possibly tied) embedding."""
    decay, no_decay = [], []
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    for _, p in model.named_parameters():
        if id(p) in linear_weights and p.dim() == 2 and p is not model.embed.weight:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step, tc):
    """step is 0-based. Linear warmup to lr over warmup_steps ((step+1)/warmup), then cosine to lr*min_lr_ratio at `steps`."""
    lr, warm, total = tc["lr"], tc["warmup_steps"], tc["steps"]
    min_lr = lr * tc["min_lr_ratio"]
    if warm > 0 and step < warm:
        return lr * (step + 1) / warm
    if step >= total:
        return min_lr
    progress = (step - warm) / max(1, total - warm)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------
# Data


class Data:
    def __init__(self, d):
        with open(os.path.join(d, "meta.json")) as f:
            self.meta = json.load(f)
        self.train = np.memmap(os.path.join(d, "train.bin"), dtype="<i4", mode="r")
        self.val = np.memmap(os.path.join(d, "val.bin"), dtype="<i4", mode="r")
        if len(self.train) != self.meta["train_tokens"] or len(self.val) != self.meta["val_tokens"]:
            raise ValueError(f"meta.json token counts {self.meta['train_tokens']}/{self.meta['val_tokens']} "
                             f"do not match files {len(self.train)}/{len(self.val)}")
        # Keep train tokens in RAM as a torch tensor for fast gathers (int32: 4 bytes/token).
        self.train_t = torch.from_numpy(np.array(self.train))
        self.val_t = torch.from_numpy(np.array(self.val))

    def batch(self, gen, B, T):
        # starts uniform in [0, train_tokens - T - 1)
        starts = torch.randint(0, len(self.train_t) - T - 1, (B,), generator=gen)
        idx = starts[:, None] + torch.arange(T + 1)[None, :]
        w = self.train_t[idx].long()
        return w[:, :-1], w[:, 1:]


@torch.inference_mode()
def evaluate(model, data, T, B, eval_tokens, autocast_ctx):
    """Validation bits/byte over non-overlapping (T+1)-token windows from the start of val.bin.

    bpb = sum CE (nats) over target tokens / ln 2 / (val_bytes * target_tokens / val_tokens),
    target_tokens = n_windows * T.
    """
    n_avail = len(data.val_t) if eval_tokens is None else min(eval_tokens, len(data.val_t))
    n_win = n_avail // (T + 1)
    if n_win == 0:
        raise ValueError(f"need at least seq_len+1={T + 1} validation tokens")
    wins = data.val_t[: n_win * (T + 1)].view(n_win, T + 1).long()
    total = 0.0
    was_training = model.training
    model.eval()
    for i in range(0, n_win, B):
        w = wins[i:i + B]
        with autocast_ctx():
            total += float(model(w[:, :-1], w[:, 1:], reduction="sum"))
    model.train(was_training)
    target_tokens = n_win * T
    bytes_covered = data.meta["val_bytes"] * (target_tokens / data.meta["val_tokens"])
    return total / math.log(2) / bytes_covered, target_tokens


# ----------------------------------------------------------------------------
# Main


def loaded_malloc():
    try:
        maps = open("/proc/self/maps").read()
    except OSError:
        return MALLOC
    for kind, names in MALLOC_LIBS.items():
        if any(n in maps for n in names):
            return kind
    return "system"


def main(args):
    global MALLOC
    MALLOC = loaded_malloc()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as e:  # only fails if parallel work already ran
        print(f"warning: set_num_interop_threads: {e}", file=sys.stderr)

    cfg = load_config(args.config)
    tc = cfg["train"]
    seed = tc["seed"] if args.seed is None else args.seed
    B, T = tc["batch_size"], tc["seq_len"]
    data = Data(args.data)
    if data.meta["vocab_size"] != cfg["vocab_size"]:
        raise ValueError(f"data vocab {data.meta['vocab_size']} != config vocab {cfg['vocab_size']}")

    torch.manual_seed(seed)
    model = LM(cfg, T)
    n_params = sum(p.numel() for p in model.parameters())  # tied weight counted once
    model.train()

    opt_kw = dict(lr=tc["lr"], betas=(tc["beta1"], tc["beta2"]), eps=tc["eps"])
    try:
        opt = torch.optim.AdamW(param_groups(model, tc["weight_decay"]), fused=True, **opt_kw)
        opt_impl = "fused"
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.AdamW(param_groups(model, tc["weight_decay"]), foreach=True, **opt_kw)
        opt_impl = "foreach"

    step_fn_model = torch.compile(model, mode=args.compile_mode) if args.compile else model

    if args.precision == "bf16":
        def autocast_ctx():
            return torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        import contextlib

        def autocast_ctx():
            return contextlib.nullcontext()

    gen = torch.Generator().manual_seed(seed)
    max_steps = args.steps if args.steps is not None else (None if args.seconds is not None else tc["steps"])
    grad_clip = tc["grad_clip"]
    params = list(model.parameters())

    print(f"torch {torch.__version__} | threads {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}) "
          f"| precision {args.precision} | compile {args.compile} | AdamW {opt_impl} | params {n_params:,} "
          f"| B {B} T {T} | seed {seed} | malloc {MALLOC}", flush=True)

    curve = []
    eval_seconds = 0.0

    def do_eval(train_wall, step):
        nonlocal eval_seconds
        t0 = time.perf_counter()
        bpb, ntok = evaluate(model, data, T, B, args.eval_tokens, autocast_ctx)
        dt = time.perf_counter() - t0
        eval_seconds += dt
        curve.append([round(train_wall, 3), bpb])
        print(f"eval  step {step:6d} | train_wall {train_wall:9.2f}s | val_bpb {bpb:.5f} "
              f"| {ntok} target tokens | eval took {dt:.1f}s", flush=True)
        return bpb

    if args.eval_every_seconds is not None and not args.no_initial_eval:
        do_eval(0.0, 0)
    next_eval = args.eval_every_seconds

    train_wall = 0.0       # all training step time (includes warm-up/compile steps), no evals
    timed_time = 0.0       # training time after the warm-up steps
    timed_tokens = 0
    timed_step_times = []
    warmup_seconds = 0.0
    step = 0
    log_t, log_tok = 0.0, 0
    last_loss = float("nan")
    final_bpb = None

    while True:
        if max_steps is not None and step >= max_steps:
            break
        if args.seconds is not None and train_wall >= args.seconds:
            break
        t0 = time.perf_counter()
        lr = lr_at(step, tc)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = data.batch(gen, B, T)
        with autocast_ctx():
            loss = step_fn_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        last_loss = loss.item()
        dt = time.perf_counter() - t0

        train_wall += dt
        step += 1
        if step <= args.timing_warmup_steps:
            warmup_seconds += dt
        else:
            timed_time += dt
            timed_tokens += B * T
            timed_step_times.append(dt)
        log_t += dt
        log_tok += B * T
        if not math.isfinite(last_loss):
            print(f"non-finite loss at step {step}", file=sys.stderr)
            break
        if step % args.log_every == 0 or step == 1:
            print(f"step {step:6d} | loss {last_loss:.4f} | lr {lr:.3e} | {log_tok / log_t:9.1f} tok/s "
                  f"| train_wall {train_wall:8.2f}s", flush=True)
            log_t, log_tok = 0.0, 0
        if next_eval is not None and train_wall >= next_eval:
            do_eval(train_wall, step)
            while next_eval <= train_wall:
                next_eval += args.eval_every_seconds

    if curve and curve[-1][0] == round(train_wall, 3):
        final_bpb = curve[-1][1]
    else:
        final_bpb = do_eval(train_wall, step)

    if timed_time > 0:
        tps = timed_tokens / timed_time
    else:  # run too short to exclude warm-up
        tps = step * B * T / train_wall if train_wall > 0 else 0.0
    # Median step time is robust to other processes briefly stealing the cores.
    tps_median = B * T / float(np.median(timed_step_times)) if timed_step_times else tps
    # Fastest-decile step time: closest to the uncontended speed on a shared machine.
    tps_p10 = B * T / float(np.percentile(timed_step_times, 10)) if timed_step_times else tps
    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "precision": args.precision,
        "compile": bool(args.compile),
        "compile_mode": args.compile_mode,
        "threads": args.threads,
        "malloc": MALLOC,
        "tokens_per_s": tps,
        "tokens_per_s_median_step": tps_median,
        "tokens_per_s_p10_step": tps_p10,
        "curve": curve,
        "final_val_bpb": final_bpb,
        "steps": step,
        "params": n_params,
        "train_wall_seconds": train_wall,
        "warmup_steps_excluded": min(step, args.timing_warmup_steps),
        "warmup_seconds": warmup_seconds,
        "eval_seconds": eval_seconds,
        "final_train_loss": last_loss,
        "optimizer": f"AdamW ({opt_impl})",
        "batch_size": B,
        "seq_len": T,
        "seed": seed,
        "step_seconds": [round(t, 5) for t in timed_step_times],
    }
    line = json.dumps(result)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)


if __name__ == "__main__":
    main(ARGS)
