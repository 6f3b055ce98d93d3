"""Where a ``convkit train`` run writes: the files of a run directory, its default name, and claiming it.

A run directory belongs to one process: it is locked
(``convkit.train.rundir``) before anything is written into it. A new run
needs an empty (or absent) directory; without ``--out`` the first free one
of ``runs/<model>-<dataset>``, ``...-2``, ``...-3``, ... is taken.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from ..train.rundir import RunDirectory, RunDirectoryBusy, check_writable
from .failure import Exit, os_error
from .run_settings import DEFAULTS

CHECKPOINT, MODEL_FILE, METRICS = "checkpoint.safetensors", "model.safetensors", "metrics.json"


def default_out(given: dict) -> Path:
    """``runs/<model>-<dataset>`` for the options ``given`` (their defaults where absent), as a directory name."""
    return Path("runs") / slug(f"{given.get('model', DEFAULTS['model'])}-{given.get('dataset', DEFAULTS['dataset'])}")


def slug(text: str) -> str:
    """``text`` as a directory name: runs of characters other than letters, digits, ``._-`` become ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def refuse_used(run: RunDirectory) -> None:
    """Exit 2 if ``run``'s directory holds anything but a lock file and temporary files (of killed writes)."""
    if run.path.exists() and not run.path.is_dir():
        raise Exit(f"--out {run.path} is a file, not a directory", 2)
    if run.entries():
        raise Exit(f"{run.path} already exists and is not empty; pass --resume to continue the run in it "
                   "or choose another --out", 2)


def check_can_write(path: Path) -> None:
    """Exit 1 if ``path`` (or the directory that would hold it) cannot be written; nothing is created."""
    try:
        check_writable(path)
    except OSError as exc:
        raise Exit(f"{os_error(exc)}; nothing was written", 1) from None


def claim(out: Path, new: bool = False) -> RunDirectory:
    """Lock ``out`` for this process (exit 2 if another holds it); a new run also needs it empty."""
    run = RunDirectory(out)
    try:
        run.acquire()
    except RunDirectoryBusy as exc:
        raise Exit(f"{exc}; wait for it to finish or choose another --out", 2) from None
    except OSError as exc:
        raise Exit(f"{os_error(exc)}; nothing was written", 1) from None
    if new:
        try:
            refuse_used(run)
        except Exit:
            run.release()
            raise
    return run


def claim_default(base: Path) -> RunDirectory:
    """The first of ``base``, ``base-2``, ``base-3``, ... that is free (empty or absent, unlocked), locked."""
    for n in itertools.count(1):
        run = RunDirectory(base if n == 1 else base.with_name(f"{base.name}-{n}"))
        if run.path.exists() and (not run.path.is_dir() or run.entries()):
            continue
        try:
            run.acquire()
        except RunDirectoryBusy:
            continue
        except OSError as exc:
            raise Exit(f"{os_error(exc)}; nothing was written", 1) from None
        if not run.entries():
            return run
        run.release()
    raise AssertionError("unreachable")
