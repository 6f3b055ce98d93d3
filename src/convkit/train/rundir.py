"""Run directories: each owned by one process at a time, checked for writability before work starts.

A run directory (``convkit train --out``) is claimed by taking an exclusive
lock on its lock file ``.convkit.lock`` (``fcntl.flock``; on Windows, which
lacks it, ``msvcrt.locking`` of one byte past the text) before anything
else is written into it; the lock file holds the owner's process id, so a second
process is refused with a message naming it. The kernel drops the lock
when its process ends, however it ends (SIGKILL included), so a lock file
left by a killed run does not block the next one. On release the owner
deletes the lock file while still holding the lock; a process that locked
the deleted file meanwhile notices (the path no longer leads to the file it
locked) and tries again. (Windows cannot delete an open file: there the
owner closes the file first and deletes it if no other process holds it.)

Once the lock is held, no other process writes into the directory, so the
temporary files of killed ``atomic_file`` writes found there are stale and
are deleted (``convkit._io.remove_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

from .._io import is_temporary, remove_stale_temporaries

__all__ = ["LOCK_NAME", "RunDirectoryBusy", "RunDirectory", "check_writable"]

LOCK_NAME = ".convkit.lock"
_WINDOWS_LOCK_OFFSET = 1 << 20  # the byte msvcrt.locking locks, past the process id it must leave readable


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock; ``pid`` is its process id (None if unknown)."""

    def __init__(self, path: Path, pid: int | None):
        owner = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is in use by {owner} (it holds {path / LOCK_NAME})")
        self.path, self.pid = path, pid


class RunDirectory:
    """The claim of one process on a run directory; ``acquire`` takes it, ``release`` gives it back.

    Use as a context manager: ``with RunDirectory(path) as run:``. The
    directory (and its parents) is created if missing.

    Raises (from ``acquire``):
        RunDirectoryBusy: another live process holds the lock.
        OSError: the directory cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def acquire(self) -> RunDirectory:
        """Create the directory, lock it, record this process's id, delete stale temporary files."""
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock(fd)
            except _Held:
                pid = _read_pid(fd)
                os.close(fd)
                raise RunDirectoryBusy(self.path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.lock_path):
                break
            os.close(fd)  # the previous owner deleted the file we locked: lock the new one
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
            remove_stale_temporaries(self.path)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        if fcntl is not None:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()
            os.close(self._fd)
        else:
            os.close(self._fd)
            with contextlib.suppress(OSError):  # another process has it open (and maybe locked)
                self.lock_path.unlink()
        self._fd = None

    def entries(self) -> list[Path]:
        """The directory's contents other than the lock file and temporary files of writes, sorted."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if p.name != LOCK_NAME and not is_temporary(p.name))

    def __enter__(self) -> RunDirectory:
        """Acquire, unless already held (then the ``with`` block only releases it at the end)."""
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_writable(path: str | os.PathLike) -> None:
    """Raise the OSError that creating files in directory ``path`` would meet, without creating anything.

    Looks at ``path`` or, if it does not exist yet, its nearest existing
    parent: that must be a directory (else NotADirectoryError, ENOTDIR), on
    a file system mounted read-write (else EROFS), and writable by this
    process (else PermissionError, EACCES). A full disk shows only when
    writing.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a directory", str(path))
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, f"{existing} is on a read-only file system", str(path))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{existing} is not writable by this user", str(path))


class _Held(Exception):
    """The lock is held by another process."""


def _lock(fd: int) -> None:
    """Lock ``fd`` exclusively without waiting; ``_Held`` if another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, errno.EDEADLK):
            raise _Held from None
        raise


def _read_pid(fd: int) -> int | None:
    """The process id written in the lock file, or None if it holds none (yet)."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
