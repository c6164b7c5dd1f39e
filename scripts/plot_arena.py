#!/usr/bin/env python3
"""Plots of a `speedlm arena` run, from the CSVs it wrote to OUT:
loss.png (training loss against time), memory.png (decoding memory against context) and
throughput.png (prefill and decode tokens/s against context). Needs python3-matplotlib."""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def label(row, many_grids):
    return f"{row['name']} T={row['seq_len']} d={row['d_model']}" if many_grids else row["name"]


def group(rows, many_grids):
    out = {}
    for r in rows:
        out.setdefault(label(r, many_grids), []).append(r)
    return out


def main(out):
    runs = read(os.path.join(out, "arena.csv"))
    # Grid coordinates go into the labels only where one config ran at several of them.
    many = len({(r["name"], r["seq_len"], r["d_model"]) for r in runs}) > len({r["name"] for r in runs})
    loss = read(os.path.join(out, "loss.csv"))
    speed = read(os.path.join(out, "speed.csv"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, rows in group(loss, many).items():
        t = [float(r["seconds"]) for r in rows]
        y = [float(r["loss"]) for r in rows]
        # A running mean over ~2% of the steps keeps the curves readable.
        w = max(1, len(y) // 50)
        ys = [sum(y[max(0, i - w + 1): i + 1]) / len(y[max(0, i - w + 1): i + 1]) for i in range(len(y))]
        ax.plot(t, ys, label=name)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("training loss (nats/token, running mean)")
    ax.set_title("Loss against time")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=120)
    written = ["loss.png"]

    if speed:
        by = group(speed, many)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, rows in by.items():
            ax.plot([int(r["context"]) for r in rows], [int(r["state_bytes"]) / 2**20 for r in rows], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context (tokens)")
        ax.set_ylabel("decoding memory (MiB)")
        ax.set_title("Decoding memory against context")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "memory.png"), dpi=120)

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
        for name, rows in by.items():
            ctx = [int(r["context"]) for r in rows]
            a1.plot(ctx, [float(r["prefill_tokens_per_s"]) for r in rows], "o-", label=name)
            a2.plot(ctx, [float(r["decode_tokens_per_s"]) for r in rows], "o-", label=name)
        for a, what in ((a1, "prefill"), (a2, "decode")):
            a.set_xscale("log", base=2)
            a.set_yscale("log")
            a.set_xlabel("sequence length / context (tokens)")
            a.set_ylabel(f"{what} tokens/s (batch 1)")
            a.set_title(f"{what.capitalize()} throughput")
            a.grid(alpha=0.3)
        a1.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "throughput.png"), dpi=120)
        written += ["memory.png", "throughput.png"]
    print(f"arena: plots written to {out}: {', '.join(written)}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: plot_arena.py OUT  (the folder a `speedlm arena` run wrote)")
    main(sys.argv[1])
