"""Atomic file writes: a file is either its old content or the complete new one, never a torn mix.

``atomic_file(path)`` writes into a temporary file ``.NAME.XXXXXXXX.tmp``
next to ``path`` (``NAME`` the file's name, ``XXXXXXXX`` eight random
characters of ``tempfile.mkstemp``) and renames it over ``path`` at the end.
A process killed mid-write (SIGKILL, power loss) leaves that temporary file
behind; ``remove_stale_temporaries`` deletes such leftovers from a directory
whose writer is known to be gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_PREFIX, _SUFFIX = ".", ".tmp"
# mkstemp's random part: 8 characters of "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMPORARY = re.compile(rf"{re.escape(_PREFIX)}(?P<name>.+)\.[a-z0-9_]{{8}}{re.escape(_SUFFIX)}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for binary writing; on success it replaces ``path``.

    The data are flushed and fsync'ed before ``os.replace``, so ``path``
    holds either its old content or the complete new one. If anything
    fails (or the ``with`` block raises), the temporary file is deleted and
    ``path`` is untouched. An OSError of the writing itself (a full disk, a
    read-only or missing directory) is re-raised with ``path`` as its
    ``filename``, so the message names the file meant, not the temporary one.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_PREFIX}{path.name}.", suffix=_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and _about_temporary(exc.filename, path):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _about_temporary(filename, path: Path) -> bool:
    """Whether an OSError's ``filename`` is None or a temporary file of ``atomic_file(path)``."""
    if filename is None:
        return True
    name = Path(os.fsdecode(filename))
    return name.parent == path.parent and name.name.startswith(f"{_PREFIX}{path.name}.") and is_temporary(name.name)


def is_temporary(name: str) -> bool:
    """Whether a file name has the pattern of ``atomic_file``'s temporary files (``.NAME.XXXXXXXX.tmp``)."""
    return _TEMPORARY.fullmatch(name) is not None


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed ``atomic_file`` writes left in ``directory``; return them.

    Only names of ``atomic_file``'s pattern (``.NAME.XXXXXXXX.tmp``) are
    touched. Call it only while no other process writes into ``directory``
    (``convkit train`` holds the run directory's lock).
    """
    removed = []
    for entry in Path(directory).iterdir():
        if is_temporary(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed
