#!/usr/bin/env python3
"""Merges the arena.csv files of an MQAR grid (scripts/mqar_grid.sh) into OUT/grid.md, a table
of accuracy per model (rows) and (T, d_model) (columns), and, with python3-matplotlib,
OUT/grid.png: accuracy against d_model, one panel per sequence length, one line per model
(the layout of Zoology's Figure 2). With a speedlm binary (--speedlm, default build/speedlm)
it adds each cell's decoding memory at context T (`speedlm bench kv`: the KV cache for attention,
the fixed state for the recurrent families) to the table, and OUT/grid_memory.png: accuracy
against that memory, one panel per sequence length (the view of Zoology's Figure 3).
Usage: mqar_grid_report.py part0/arena.csv [part1/arena.csv ...] --out DIR [--speedlm BIN]"""
import argparse
import csv
import os
import subprocess


def model_name(row):
    name = row["name"]
    return name[len("mqar_"):] if name.startswith("mqar_") else name


def decoding_bytes(speedlm, config, d_model, seq_len):
    """Bytes one sequence holds at context seq_len, over the grid's 2 layers (the total line of
    `speedlm bench kv`: layer, mixer, memory columns blank, then per token, fixed, at context)."""
    out = subprocess.run([speedlm, "bench", "kv", "--config", config, "--set", f"d_model={d_model},n_layers=2",
                          "--context", str(seq_len)], capture_output=True, text=True, check=True).stdout
    total = next(line for line in out.splitlines() if line.startswith("total"))
    return int(total.split()[3])


def cell(row):
    return model_name(row), int(row["seq_len"]), int(row["d_model"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--speedlm", default="build/speedlm")
    args = ap.parse_args()
    rows = []
    for path in args.csv:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    models = list(dict.fromkeys(model_name(r) for r in rows))
    cells = sorted({(int(r["seq_len"]), int(r["d_model"])) for r in rows})
    acc = {cell(r): float(r["metric"]) for r in rows}
    params = {(model_name(r), int(r["d_model"])): int(r["params"]) for r in rows}
    tok_s = {cell(r): float(r["train_tokens_per_s"]) for r in rows}
    steps = {cell(r): int(r["steps"]) for r in rows}
    memory = {}
    if os.access(args.speedlm, os.X_OK):
        memory = {cell(r): decoding_bytes(args.speedlm, r["config"], r["d_model"], r["seq_len"]) for r in rows}
    else:
        print(f"{args.speedlm} is not there: no decoding-memory table or grid_memory.png")

    def table(caption, values, fmt, extra=None):
        """A caption (if any), then one row per model and one column per (T, d_model) cell; extra
        (a header and a function of the model) adds a last column."""
        head = ["| model | " + " | ".join(f"T={t}, d={d}" for t, d in cells) + (f" | {extra[0]}" if extra else "") + " |",
                "|---|" + "---|" * (len(cells) + (1 if extra else 0))]
        out = (["", caption, ""] if caption else []) + head
        for m in models:
            vals = [fmt(values[(m, t, d)]) if (m, t, d) in values else "-" for t, d in cells]
            out.append(f"| {m} | " + " | ".join(vals + ([extra[1](m)] if extra else [])) + " |")
        return out

    widths = sorted({d for _, d in cells})
    lines = table(None, acc, lambda a: f"{a:.3f}",
                  ("params " + " / ".join(f"d={d}" for d in widths),
                   lambda m: " / ".join(f"{params[(m, d)] / 1e3:.0f}k" for d in widths if (m, d) in params)))
    lines += table("Optimizer steps each run took (it stops once its validation accuracy reaches 0.99, checked every "
                   "5% of the budget; a run that never does takes the whole budget):", steps, str)
    lines += table("Training tokens/s (one thread per run, two runs side by side on a machine shared with other "
                   "jobs: load-dependent):", tok_s, lambda v: f"{v / 1e3:.0f}k")
    if memory:
        lines += table("Decoding memory per sequence at context T, both layers (`speedlm bench kv`), KiB:", memory,
                       lambda v: f"{v / 1024:.1f}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "grid.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib is missing: no grid.png")
        return
    lengths = sorted({t for t, _ in cells})
    fig, axes = plt.subplots(1, len(lengths), figsize=(4 * len(lengths), 3.6), sharey=True)
    axes = axes if len(lengths) > 1 else [axes]
    # One colour per model in every panel (a model missing from a panel must not shift the others).
    colour = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    for ax, t in zip(axes, lengths):
        widths = sorted({d for tt, d in cells if tt == t})
        for m in models:
            ys = [acc.get((m, t, d)) for d in widths]
            if any(y is not None for y in ys):
                ax.plot(widths, [y if y is not None else float("nan") for y in ys], marker="o", color=colour[m])
        ax.set_title(f"T = {t}, {t // 16} key-value pairs")
        ax.set_xlabel("d_model")
        ax.set_xticks(widths)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MQAR accuracy")
    handles = [plt.Line2D([], [], color=colour[m], marker="o") for m in models]
    fig.legend(handles, models, fontsize=7, loc="center right")
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    fig.savefig(os.path.join(args.out, "grid.png"), dpi=120)
    if not memory:
        return
    # Accuracy against decoding memory: one marker per cell, filled for d_model 64, hollow for 128.
    fig, axes = plt.subplots(1, len(lengths), figsize=(4 * len(lengths), 3.6), sharey=True)
    axes = axes if len(lengths) > 1 else [axes]
    for ax, t in zip(axes, lengths):
        for (m, tt, d), nbytes in memory.items():
            if tt == t:
                ax.scatter(nbytes / 1024, acc[(m, tt, d)], color=colour[m], s=36,
                           facecolors=colour[m] if d == 64 else "none")
        ax.set_xscale("log")
        ax.set_title(f"T = {t}, {t // 16} key-value pairs")
        ax.set_xlabel("decoding memory per sequence (KiB)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MQAR accuracy (filled: d_model 64)")
    handles = [plt.Line2D([], [], color=colour[m], marker="o", linestyle="") for m in models]
    fig.legend(handles, models, fontsize=7, loc="center right")
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    fig.savefig(os.path.join(args.out, "grid_memory.png"), dpi=120)


if __name__ == "__main__":
    main()
