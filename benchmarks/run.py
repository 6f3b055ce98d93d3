"""convkit against PyTorch (CPU), side by side in one run, on the same float32 data and threads.

Usage (from the repository root, with the test extra installed):

    python benchmarks/run.py [--quick] [--threads 2] [--out benchmarks/results] [--no-plot]

Prints, per case, both medians and the ratio convkit/torch (below 1: convkit
is faster), then a scaling table (forward + backward time of every conv
algorithm against batch size, image size and kernel size). Writes
``OUT/benchmark.json`` (every sample, the machine, the load; git ignores it),
``OUT/benchmark.md`` (the tables for the README) and ``OUT/benchmark-scaling.png``
(needs matplotlib).
``--quick`` runs a subset in about a minute. The figure for a whole epoch
of Fashion-MNIST comes from ``benchmarks/train_epoch.py``.

Both libraries run in this one process as a user's script would run them:
no allocator tuning, ``torch.set_num_threads(T)`` and
``convkit.set_num_threads(T)`` (convkit's kernels and numpy's BLAS). On
machines where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (older OpenBLAS
builds needed them), they slow a current numpy; the machine section of the
output records both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cases
import harness
import numpy as np
import torch

import convkit
import convkit.backends
from convkit.ops.conv_algorithms import ALGORITHMS, auto, conv_problem

SCALING_BASE = {"batch": 16, "channels": 32, "size": 28, "kernel": 3}
SCALING = {"batch": [4, 8, 16, 32], "size": [14, 28, 56], "kernel": [1, 3, 5, 7, 9, 11]}
QUICK_SCALING = {"batch": [8, 32], "size": [14, 28], "kernel": [3, 7]}
SLOW = 5


def problem_of(shape, cout, k, stride, padding, groups):
    """The ``ConvProblem`` of a conv case."""
    padded = shape[:2] + tuple(n + 2 * padding for n in shape[2:])
    return conv_problem(padded, (cout, shape[1] // groups, k, k), (stride,) * 2, (1, 1), groups, np.float32)


def auto_choice(*case) -> str:
    return convkit.backends.choose_conv_algorithm("auto", problem_of(*case), "benchmark").name


def measure(label: str, calls: dict, args, note: str = "") -> dict:
    times = harness.interleaved(calls, rounds=args.rounds, budget_s=args.budget)
    ck, th = harness.median_ms(times["convkit"]), harness.median_ms(times["torch"])
    row = {"case": label, "convkit_ms": ck, "torch_ms": th, "ratio": ck / th, "note": note,
           "rounds": len(times["convkit"]), "samples_ms": {k: [t * 1e3 for t in v] for k, v in times.items()}}
    print(f"{label:48s} {ck:10.2f} {th:10.2f} {ck / th:7.2f}  {note}", flush=True)
    return row


def main_cases(args) -> list[dict]:
    rows = []
    print(f"{'case':48s} {'convkit ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    conv = [c for i, c in enumerate(cases.CONV_CASES) if not args.quick or i in cases.QUICK_CONV]
    for label, *case in conv:
        note = "auto: " + auto_choice(*case)
        rows.append(measure(f"conv2d fwd {label}", cases.conv_forward(*case), args, note))
        rows.append(measure(f"conv2d fwd+bwd {label}", cases.conv_train(*case), args, note))
    rows.append(measure("conv_transpose2d 4x4 s2 p1 fwd+bwd (64,128,16,16) -> 64", cases.conv_transpose_train(),
                        args))
    rows.append(measure("max_pool2d 2x2 fwd+bwd (32,64,56,56)", cases.max_pool_train(), args))
    rows.append(measure("max_pool2d 3x3 s2 p1 fwd+bwd (32,64,56,56)", cases.max_pool_train(kernel=3, padding=1),
                        args))
    rows.append(measure("batch_norm fwd+bwd (32,64,56,56)", cases.batch_norm_train(), args))
    rows.append(measure("batch_norm fwd+bwd (64,32,32,32)", cases.batch_norm_train((64, 32, 32, 32)), args))
    rows.append(measure("LeNet-5 training step, batch 128 (Adam)", cases.lenet5_step(), args))
    rows.append(measure("convnet training step, batch 128 (Adam)", cases.convnet_step(), args))
    return rows


def algorithms(args) -> list[dict]:
    """Forward + backward time of every algorithm that can run each conv case (the data behind ``auto``).

    An algorithm whose warm-up call takes over ``SLOW`` times the fastest one so far is reported as too
    slow and not timed further (FFT on 3x3 kernels, for instance).
    """
    rows = []
    conv = [c for i, c in enumerate(cases.CONV_CASES) if not args.quick or i in cases.QUICK_CONV]
    print("\nalgorithms (fwd+bwd ms, median)")
    for label, *case in conv:
        problem = problem_of(*case)
        ms, best = {}, float("inf")
        for name, algo in ALGORITHMS.items():
            if algo.unsupported(problem) is not None:
                continue
            call = cases.conv_train(*case, algorithm=name)["convkit"]
            t0 = time.perf_counter()
            call()
            first = time.perf_counter() - t0
            if first > SLOW * best:
                ms[name] = None
                continue
            ms[name] = harness.median_ms(harness.interleaved({name: call}, rounds=3, budget_s=args.budget / 2)[name])
            best = min(best, ms[name] / 1e3)
        rows.append({"case": label, "ms": ms, "auto": auto.rule(problem).name})
        cells = "  ".join(f"{n}={'slow' if t is None else f'{t:.1f}'}" for n, t in ms.items())
        print(f"  {label:42s} {cells}  (auto: {rows[-1]['auto']})", flush=True)
    return rows


def scaling(args) -> list[dict]:
    """Forward + backward time of every algorithm (and torch) while one dimension varies."""
    sweep = QUICK_SCALING if args.quick else SCALING
    rows = []
    print(f"\nscaling (fwd+bwd ms; base: batch {SCALING_BASE['batch']}, {SCALING_BASE['channels']} -> "
          f"{SCALING_BASE['channels']} channels, {SCALING_BASE['size']}x{SCALING_BASE['size']}, kernel 3)")
    for dim, values in sweep.items():
        for v in values:
            cfg = dict(SCALING_BASE, **{dim: v})
            shape = (cfg["batch"], cfg["channels"], cfg["size"], cfg["size"])
            k, c = cfg["kernel"], cfg["channels"]
            p = conv_problem(shape[:2] + tuple(n + 2 * (k // 2) for n in shape[2:]), (c, c, k, k), (1, 1),
                             (1, 1), 1, np.float32)
            calls = {}
            for name, algo in ALGORITHMS.items():
                if algo.unsupported(p) is None:
                    calls[name] = cases.conv_train(shape, c, k, 1, k // 2, 1, algorithm=name)["convkit"]
            calls["torch"] = cases.conv_train(shape, c, k, 1, k // 2)["torch"]
            times = harness.interleaved(calls, rounds=max(3, args.rounds // 2), budget_s=args.budget / 2)
            ms = {name: harness.median_ms(t) for name, t in times.items()}
            rows.append({"vary": dim, "value": v, "shape": shape, "kernel": k, "ms": ms})
            cells = "  ".join(f"{n}={t:.1f}" for n, t in ms.items())
            print(f"  {dim}={v:<4} {cells}", flush=True)
    return rows


def profile_step(model: str, steps: int = 30) -> list[dict]:
    """Where a training step of ``model`` (``lenet5`` or ``convnet``) spends its time: cumulative ms per
    step of each op's forward / backward (``convkit.ops``), of the matrix products and of the optimizer
    update, under cProfile."""
    import cProfile
    import pstats

    call = getattr(cases, f"{model}_step")()["convkit"]
    for _ in range(3):
        call()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        call()
    prof.disable()
    total = 0.0
    rows = []
    for (path, _, name), (_, _, _, cum, _) in pstats.Stats(prof).stats.items():
        if name == "ck" and path.endswith("cases.py"):
            total = cum
        wanted = ("/ops/" in path and name.endswith(("_forward", "_backward")) and not name.startswith("_")
                  and "conv_algorithms" not in path)
        wanted = wanted or (path.endswith("gemm.py") and name == "matmul")
        if wanted or (name == "_update_group" and "/optim/" in path):
            rows.append({"op": f"{Path(path).stem}.{name}", "ms_per_step": cum / steps * 1e3})
    rows.sort(key=lambda r: -r["ms_per_step"])
    rows.insert(0, {"op": "whole step (profiled)", "ms_per_step": total / steps * 1e3})
    print(f"\n{model} step profile (cProfile, ms per step)")
    for r in rows:
        print(f"  {r['op']:45s} {r['ms_per_step']:7.2f}")
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    blas = "; ".join(f"{b.get('internal_api', b.get('name'))} {b.get('version')} "
                     f"{b.get('architecture', b.get('configuration', ''))}" for b in m["blas"])
    lines = [
        f"Machine: {m['cpu']}, {m['cores_available']} cores, {m['threads']} threads for both libraries; "
        f"numpy {m['numpy']} ({blas}), torch {m['torch']}; load average at start "
        f"{m['load_average_1_5_15']}, at end {result['load_average_end']}; "
        f"OPENBLAS_CORETYPE={m['env']['OPENBLAS_CORETYPE']}, OPENBLAS_L2_SIZE={m['env']['OPENBLAS_L2_SIZE']}; "
        f"no allocator tuning; started {result['started']}.",
        "",
        "| case | convkit ms | torch ms | convkit/torch | convkit algorithm |",
        "|---|---:|---:|---:|---|",
    ]
    for r in result["cases"]:
        lines.append(f"| {r['case']} | {r['convkit_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} | "
                     f"{r['note'].removeprefix('auto: ')} |")
    if result["algorithms"]:
        names = list(ALGORITHMS)
        lines += ["", f"Every algorithm, forward + backward in ms (slow: over {SLOW}x the fastest at the first "
                      "call, not timed; - where it cannot run):", "",
                  "| case | " + " | ".join(names) + " | auto |", "|---|" + "---:|" * len(names) + "---|"]
        for r in result["algorithms"]:
            cells = " | ".join("-" if n not in r["ms"] else ("slow" if r["ms"][n] is None else f"{r['ms'][n]:.1f}")
                               for n in names)
            lines.append(f"| {r['case']} | {cells} | {r['auto']} |")
    for model, rows in result["profiles"].items():
        lines += ["", f"{model} training step (batch 128, Adam), ms per step by op (cProfile, cumulative; "
                      "gemm.matmul: the BLAS products inside the conv and linear ops):", "",
                  "| op | ms |", "|---|---:|"]
        lines += [f"| {r['op']} | {r['ms_per_step']:.2f} |" for r in rows]
    names = list(ALGORITHMS) + ["torch"]
    lines += ["", "Scaling, forward + backward in ms (base: batch 16, 32 -> 32 channels, 28x28, 3x3, "
              "'same' padding; one dimension varied; - where the algorithm cannot run):", "",
              "| varied | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for r in result["scaling"]:
        cells = " | ".join(f"{r['ms'][n]:.1f}" if n in r["ms"] else "-" for n in names)
        lines.append(f"| {r['vary']} = {r['value']} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> bool:
    """Time against batch, image and kernel size per algorithm, one panel each; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("no plot: matplotlib is missing (pip install 'convkit[plot]')", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = list(dict.fromkeys(r["vary"] for r in rows))
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4))
    for ax, dim in zip(np.atleast_1d(axes), dims):
        sub = [r for r in rows if r["vary"] == dim]
        for name in list(ALGORITHMS) + ["torch"]:
            pts = [(r["value"], r["ms"][name]) for r in sub if name in r["ms"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name, linestyle="--" if name == "torch" else "-")
        ax.set_xlabel({"batch": "batch size", "size": "image size (pixels)", "kernel": "kernel size"}[dim])
        ax.set_ylabel("forward + backward (ms)")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    np.atleast_1d(axes)[0].legend()
    fig.suptitle("conv2d, 32 -> 32 channels: time by algorithm (base: batch 16, 28x28, kernel 3)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the cases and of the scaling sweep")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="least number of timed rounds per case")
    parser.add_argument("--budget", type=float, default=None, help="seconds per case beyond the least rounds")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling sweep")
    parser.add_argument("--profile", action="store_true", help="also profile the LeNet-5 and convnet steps op by op")
    parser.add_argument("--algorithms", action="store_true",
                        help="also time every conv algorithm on every conv case (slow)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    args.rounds = args.rounds or (5 if args.quick else 11)
    args.budget = args.budget if args.budget is not None else (1.0 if args.quick else 4.0)
    torch.set_num_threads(args.threads)
    convkit.set_num_threads(args.threads)
    result = {"machine": harness.machine(args.threads), "quick": args.quick,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    result["cases"] = main_cases(args)
    result["algorithms"] = algorithms(args) if args.algorithms else []
    result["profiles"] = {m: profile_step(m) for m in ("lenet5", "convnet")} if args.profile else {}
    result["scaling"] = [] if args.no_scaling else scaling(args)
    result["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    stem = "benchmark-quick" if args.quick else "benchmark"
    harness.write_json(args.out / f"{stem}.json", result)
    harness.write_atomic(args.out / f"{stem}.md", markdown(result))
    written = [f"{stem}.json", f"{stem}.md"]
    if result["scaling"] and not args.no_plot and plot(result["scaling"], args.out / f"{stem}-scaling.png"):
        written.append(f"{stem}-scaling.png")
    print(f"\nwrote {', '.join(written)} in {args.out}")
    print(f"convkit {convkit.__version__}; load average at start {result['machine']['load_average_1_5_15']}, "
          f"at end {result['load_average_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
