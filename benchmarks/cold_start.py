"""What convkit's compiled kernels cost at start-up: import time, first compilation, cached start.

Usage (from the repository root):

    python benchmarks/cold_start.py [--model lenet5] [--out benchmarks/results]

Measures, each in fresh processes:

* ``import convkit``: the median of 7 imports;
* the first training steps of ``--model`` (batch 128, float32, Adam) with an
  empty kernel cache (a fresh install: every kernel it calls is compiled),
  and again with the cache that run filled (a later run: kernels are loaded
  from disk). The start-up cost is the first step's time minus a steady
  step's;
* the whole ``convkit train --epochs 1`` command, wall time, both ways.

The cache is redirected to a temporary directory with ``NUMBA_CACHE_DIR``
so the installed one is left as it is. Writes ``OUT/cold_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

STEPS = """
import json, sys, time, numpy as np
import convkit, convkit.functional as F
from convkit.models import build
convkit.manual_seed(0)
model = build(sys.argv[1])
opt = convkit.optim.Adam(model.parameters(), lr=1e-3)
rng = np.random.default_rng(0)
x, y = rng.standard_normal((128, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 128)
times = []
for _ in range(8):
    start = time.perf_counter()
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def _run(argv: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    python = sys.executable
    imports = [_run([python, "-c", "import convkit"], dict(os.environ))[0] for _ in range(7)]
    result = {"import_s": statistics.median(imports), "import_samples_s": imports, "model": args.model}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as runs:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "cached"):
            times = json.loads(_run([python, "-c", STEPS, args.model], env)[1])
            steady = statistics.median(times[2:])
            result[label] = {"first_step_s": times[0], "steady_step_s": steady, "start_cost_s": times[0] - steady}
        for label in ("cold_train", "cached_train"):
            if label == "cold_train":
                for path in Path(cache).iterdir():
                    subprocess.run(["rm", "-rf", str(path)], check=True)
            out = Path(runs) / label
            wall, _ = _run([python, "-m", "convkit", "train", args.model, "--epochs", "1", "--no-plots",
                            "--out", str(out)], env)
            metrics = json.loads((out / "metrics.json").read_text())
            result[label] = {"wall_s": wall, "train_s": metrics["train_seconds"],
                             "test_accuracy": metrics["test_accuracy"]}
    import convkit

    result["machine"] = harness.machine(convkit.get_num_threads())
    for key, value in result.items():
        if key not in ("machine", "import_samples_s"):
            print(f"{key:14s} {value}")
    harness.write_json(args.out / "cold_start.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
