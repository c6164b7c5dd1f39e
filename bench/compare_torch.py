#!/usr/bin/python3
"""Side-by-side training benchmark: speedlm against PyTorch on the identical model.

Both sides train configs/transformer.json (same data, seed, thread count, and the same
wall-clock training budget; evaluations are excluded from the budget) in fp32 and in each
framework's fastest mode (speedlm --precision bf16, PyTorch bf16 autocast), each run
repeated back to back. Prints tokens/s, the speedlm/PyTorch ratio and validation bits
per byte, and plots bits per byte against training time.

  bench/torch_ref/setup.sh                       # once: PyTorch from PyPI into a venv
  /usr/bin/python3 bench/compare_torch.py --seconds 120 --repeats 2 --out docs/bench
(Debian's python3, which has python3-matplotlib for the plot; --plot-only redraws it from the JSONs.)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, log_path):
    print("+", " ".join(cmd), flush=True)
    t0 = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"command failed ({rc}), see {log_path}")
    print(f"  done in {time.time() - t0:.0f} s", flush=True)


def speedlm_run(args, precision, rep):
    out = os.path.join(args.out, f"speedlm_{precision}_{rep}.json")
    run([os.path.join(ROOT, "build", "speedlm"), "train", "--config", args.config, "--data", args.data,
         "--out", os.path.join(args.work, f"speedlm_{precision}_{rep}"), "--threads", str(args.threads),
         "--time-budget", str(args.seconds), "--eval-every-seconds", str(args.eval_every),
         "--precision", precision, "--report", out],
        os.path.join(args.out, f"speedlm_{precision}_{rep}.log"))
    with open(out) as f:
        return json.load(f)


def torch_run(args, precision, rep, mode):
    name = f"pytorch-{mode}_{precision}_{rep}"
    out = os.path.join(args.out, name + ".json")
    cmd = [args.python, os.path.join(ROOT, "bench", "torch_ref", "train_torch.py"), "--config", args.config,
           "--data", args.data, "--threads", str(args.threads), "--seconds", str(args.seconds),
           "--eval-every-seconds", str(args.eval_every), "--precision", precision, "--out", out]
    if mode == "compiled":
        cmd.append("--compile")
    run(cmd, os.path.join(args.out, name + ".log"))
    with open(out) as f:
        return json.load(f)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"speedlm": "-", "pytorch-eager": ":", "pytorch-compiled": "--"}
    colors = {"fp32": "tab:blue", "bf16": "tab:orange"}
    for (fw, precision, rep), r in sorted(results.items()):
        curve = [c for c in r["curve"] if c[0] > 0]
        if not curve:
            continue
        ax.plot([c[0] for c in curve], [c[1] for c in curve], styles[fw], color=colors[precision],
                alpha=1.0 if rep == 0 else 0.5, label=f"{fw} {precision}" if rep == 0 else None)
    ax.set_xlabel("training wall-clock time (s)")
    ax.set_ylabel("validation bits per byte")
    ax.set_title("speedlm vs PyTorch, same model, data, seed and threads")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "transformer.json"))
    p.add_argument("--data", default=os.path.join(ROOT, "data", "kjv"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--eval-every", type=float, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--python", default=os.path.join(ROOT, "bench", "torch_ref", ".venv", "bin", "python"))
    p.add_argument("--torch-modes", default="eager,compiled", help="PyTorch variants: eager and/or compiled")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    p.add_argument("--plot-only", action="store_true", help="redraw the plot from the JSON results in --out")
    p.add_argument("--work", default=os.path.join(ROOT, "runs", "compare"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    results = {}
    modes = args.torch_modes.split(",")
    frameworks = ["speedlm"] + [f"pytorch-{m}" for m in modes]
    if args.plot_only:
        for fw in frameworks:
            for precision in args.precisions.split(","):
                for rep in range(args.repeats):
                    with open(os.path.join(args.out, f"{fw}_{precision}_{rep}.json")) as f:
                        results[(fw, precision, rep)] = json.load(f)
        plot(results, os.path.join(args.out, "compare_torch.png"))
        return
    for precision in args.precisions.split(","):
        for rep in range(args.repeats):
            # Back to back, alternating sides, so slow drifts of the machine hit all of them.
            results[("speedlm", precision, rep)] = speedlm_run(args, precision, rep)
            for mode in modes:
                results[(f"pytorch-{mode}", precision, rep)] = torch_run(args, precision, rep, mode)

    lines = ["| precision | framework | tokens/s (each run) | median tokens/s | final val bits/byte (each run) |",
             "|---|---|---|---|---|"]
    summary = {}
    for precision in args.precisions.split(","):
        for fw in frameworks:
            runs = [results[(fw, precision, r)] for r in range(args.repeats)]
            tps = [r["tokens_per_s"] for r in runs]
            bpb = [r["final_val_bpb"] for r in runs]
            summary[(fw, precision)] = statistics.median(tps)
            lines.append(f"| {precision} | {fw} | {', '.join(f'{t:.0f}' for t in tps)} | "
                         f"{statistics.median(tps):.0f} | {', '.join(f'{b:.4f}' for b in bpb)} |")
    lines.append("")
    for precision in args.precisions.split(","):
        for fw in frameworks[1:]:
            ratio = summary[("speedlm", precision)] / summary[(fw, precision)]
            lines.append(f"- {precision}: speedlm / {fw} tokens/s = {ratio:.2f}")
    torch_info = results[(frameworks[1], args.precisions.split(",")[0], 0)]
    lines.append(f"- PyTorch {torch_info.get('torch_version', '?')}, threads {args.threads}, "
                 f"budget {args.seconds:.0f} s of training per run")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "compare_torch.md"), "w") as f:
        f.write(table + "\n")
    plot(results, os.path.join(args.out, "compare_torch.png"))
    print("plot:", os.path.join(args.out, "compare_torch.png"))


if __name__ == "__main__":
    main()
