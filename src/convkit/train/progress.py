"""A one-line progress bar for an epoch, and the line that sums the epoch up.

On a terminal the bar is redrawn in place (``\\r``) at most every 0.1 s::

    epoch 2/4 [##########..........]  235/469  loss 0.3412  acc 0.8761  5210 img/s  ETA 11 s

and replaced by the epoch's summary at the end. When the stream is not a
terminal (a log file, a pipe, CI), only the summary line is written, once
per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_epoch"]

_WIDTH = 20
_INTERVAL = 0.1


class ProgressBar:
    """The progress of one epoch on ``stream`` (default: ``sys.stderr``).

    Args:
        epoch (int): this epoch, counted from 1.
        epochs (int): the number of epochs of the run.
        total (int): batches in the epoch.
        stream (TextIO | None): where to write. Default: ``sys.stderr``.
    """

    def __init__(self, epoch: int, epochs: int, total: int, stream: TextIO | None = None):
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._start = time.perf_counter()
        self._drawn = 0.0
        self._width = 0

    def update(self, batch: int, loss: float, accuracy: float, images: int) -> None:
        """Redraw after ``batch`` (1-based) batches and ``images`` images, with the running loss and accuracy."""
        now = time.perf_counter()
        if not self.live or (now - self._drawn < _INTERVAL and batch < self.total):
            return
        self._drawn = now
        elapsed = now - self._start
        filled = _WIDTH * batch // max(self.total, 1)
        eta = elapsed / batch * (self.total - batch)
        line = (f"epoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
                f"{batch:>{len(str(self.total))}}/{self.total}  loss {loss:.4f}  acc {accuracy:.4f}  "
                f"{images / max(elapsed, 1e-9):.0f} img/s  ETA {eta:.0f} s")
        self._write(line)

    def finish(self, line: str) -> None:
        """Replace the bar by ``line`` and end it with a newline."""
        self._write(line)
        self.stream.write("\n")
        self.stream.flush()

    def _write(self, line: str) -> None:
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line)
        self.stream.flush()


def format_epoch(record: dict, epochs: int) -> str:
    """One line for an epoch's metrics record (as ``fit`` makes them).

    >>> format_epoch({"epoch": 1, "train_loss": 0.61, "train_accuracy": 0.78, "test_loss": 0.45,
    ...               "test_accuracy": 0.84, "seconds": 15.2, "images_per_second": 3947.4}, epochs=4)
    'epoch 1/4  train loss 0.6100 acc 0.7800  test loss 0.4500 acc 0.8400  15.2 s  3947 img/s'
    """
    parts = [f"epoch {record['epoch']}/{epochs}",
             f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"]
    for split in ("val", "test"):
        if f"{split}_loss" in record:
            parts.append(f"{split} loss {record[f'{split}_loss']:.4f} acc {record[f'{split}_accuracy']:.4f}")
    parts.append(f"{record['seconds']:.1f} s")
    parts.append(f"{record['images_per_second']:.0f} img/s")
    return "  ".join(parts)
