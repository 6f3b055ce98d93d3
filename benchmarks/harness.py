"""Benchmark plumbing shared by ``run.py``: interleaved timing, the machine's description, atomic writes.

Timing: the libraries take turns in blocks of calls (the first call of
each block is a discarded warm-up: switching libraries leaves the other's
BLAS / OpenMP threads spinning for a moment, which would otherwise be
charged to whoever runs next), alternating which goes first, so a burst of
load from other processes hits both; the reported figure is the median.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HEAVY_S = 0.05


def interleaved(calls: dict[str, Callable[[], object]], *, rounds: int, budget_s: float,
                max_rounds: int = 100) -> dict[str, list[float]]:
    """Seconds per call for each entry of ``calls``, measured in alternating blocks.

    Each round runs every entry ``block + 1`` times in a row and keeps the
    last ``block`` timings (``block`` = 3, or 1 for calls over ``HEAVY_S``
    seconds, which also need only a third of the rounds); at least
    ``rounds`` rounds, more while the loop has run for less than
    ``budget_s`` seconds (at most ``max_rounds``).
    """
    warm = []
    for fn in calls.values():
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    heavy = max(warm) > HEAVY_S
    block, rounds = (1, max(3, rounds // 3)) if heavy else (3, rounds)
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    start = time.perf_counter()
    done = 0
    while done < rounds or (time.perf_counter() - start < budget_s and done < max_rounds):
        for name in order:
            calls[name]()
            for _ in range(block):
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
        order.reverse()
        done += 1
    return times


def median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[dict]:
    """The BLAS libraries numpy loaded (threadpoolctl when installed, else ``numpy.show_config``)."""
    try:
        import threadpoolctl
    except ImportError:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return [{"name": blas.get("name"), "version": blas.get("version"),
                 "configuration": blas.get("openblas configuration"), "source": "numpy.show_config"}]
    return [{k: v for k, v in info.items() if k in ("internal_api", "version", "architecture", "num_threads",
                                                     "threading_layer")}
            for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]


def machine(threads: int) -> dict:
    """What the figures depend on: CPU, cores, load, library versions, BLAS kernel and its settings."""
    import torch

    import convkit

    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "threads": threads,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "convkit": convkit.__version__,
        "blas": blas_info(),
        "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                                "OMP_NUM_THREADS")},
    }


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory (fsync, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the result private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1) + "\n")
