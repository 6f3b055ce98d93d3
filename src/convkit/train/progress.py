"""Progress of a run on one line: the current phase, the epoch's bar, and the line that sums the epoch up.

Where the line can be redrawn in place (a terminal, or a Jupyter output
area, which both honour ``\\r``) the bar is redrawn at most every 0.1 s::

    epoch 2/4 [########........]  235/469  loss 0.3412  acc 87.61%  5210 img/s  0:05<0:06

and replaced by the epoch's summary at the end. The bar fits the width of
the terminal (80 columns included): the parts that matter least go first
(the speed, then the accuracy, then the bar narrows). ``phase`` shows what a
run is doing between epochs (loading the data, evaluating, plotting) on the
same line. When the stream is not redrawn in place (a log file, a pipe,
CI), only the summary lines are written, one per epoch, in full.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_epoch", "phase", "clock"]

_BAR = 20          # widest bar
_NARROWEST = 8     # narrowest bar kept before it is dropped
_INTERVAL = 0.1


def _live(stream: TextIO) -> bool:
    """Whether ``stream`` redraws a line on ``\\r``: a terminal, or a Jupyter kernel's output stream."""
    return stream.isatty() or type(stream).__module__.startswith("ipykernel")


def _columns(stream: TextIO) -> int:
    """Characters a line may take on ``stream``: the terminal's width less one (the cursor's cell)."""
    return max(20, shutil.get_terminal_size((80, 24)).columns - 1)


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration.

    >>> clock(5.2), clock(75), clock(3725)
    ('0:05', '1:15', '1:02:05')
    """
    s = int(seconds)
    hours, rest = divmod(s, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _redraw(stream: TextIO, line: str, previous: int) -> int:
    """Write ``line`` over the current one (padded to erase a longer one); return its length."""
    stream.write("\r" + line.ljust(previous))
    stream.flush()
    return len(line)


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
        self.live = _live(self.stream)
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
        eta = elapsed / batch * (self.total - batch)
        line = self.line(batch, loss, accuracy, images / max(elapsed, 1e-9), elapsed, eta, _columns(self.stream))
        self._width = _redraw(self.stream, line, self._width)

    def line(self, batch: int, loss: float, accuracy: float, speed: float, elapsed: float, eta: float,
             columns: int) -> str:
        """The bar's text in at most ``columns`` characters.

        Dropped, in this order, until it fits: the speed, the accuracy, the
        bar (narrowed to ``_NARROWEST`` first), the loss; the epoch, the batch
        count and the elapsed time ``<`` the time left always stay.
        """
        head = f"epoch {self.epoch}/{self.epochs}"
        count = f"{batch:>{len(str(self.total))}}/{self.total}"
        timing = f"{clock(elapsed)}<{clock(eta)}"
        extras = [f"loss {loss:.4f}", f"acc {accuracy:.2%}", f"{speed:.0f} img/s"]
        for keep in (3, 2, 1):
            rest = "  ".join([count, *extras[:keep], timing])
            width = min(_BAR, columns - len(head) - len(rest) - 5)  # " [", "]  " around the bar
            if width >= _NARROWEST:
                filled = width * batch // max(self.total, 1)
                return f"{head} [{'#' * filled}{'.' * (width - filled)}]  {rest}"
        for keep in (1, 0):
            text = "  ".join([head, count, *extras[:keep], timing])
            if len(text) <= columns:
                return text
        return text[:columns]

    def finish(self, line: str) -> None:
        """Replace the bar by ``line`` and end it with a newline."""
        if self.live:
            _redraw(self.stream, line, self._width)
        else:
            self.stream.write(line)
        self.stream.write("\n")
        self.stream.flush()


def phase(text: str, stream: TextIO | None = None) -> None:
    """Show what the run is doing now (``"loading fashion-mnist ..."``) on the live line, cut to its width.

    The next bar, phase or summary line replaces it. On a stream that is not
    redrawn in place nothing is written (a log keeps one line per epoch).
    """
    stream = stream if stream is not None else sys.stderr
    if _live(stream):
        _redraw(stream, text[:_columns(stream)], _columns(stream))
        stream.write("\r")
        stream.flush()


def format_epoch(record: dict, epochs: int) -> str:
    """One line for an epoch's metrics record (as ``fit`` makes them): the training loss and accuracy
    first (as Keras prints them), then each evaluated split's; within 80 columns for train and test.

    >>> format_epoch({"epoch": 1, "train_loss": 0.61, "train_accuracy": 0.78, "test_loss": 0.45,
    ...               "test_accuracy": 0.84, "seconds": 15.2, "images_per_second": 3947.4}, epochs=4)
    'epoch 1/4  loss 0.610 acc 78.0%  test loss 0.450 acc 84.0%  0:15  3947 img/s'
    """
    parts = [f"epoch {record['epoch']}/{epochs}",
             f"loss {record['train_loss']:.3f} acc {record['train_accuracy']:.1%}"]
    for split in ("val", "test"):
        if f"{split}_loss" in record:
            parts.append(f"{split} loss {record[f'{split}_loss']:.3f} acc {record[f'{split}_accuracy']:.1%}")
    parts.append(clock(record["seconds"]))
    parts.append(f"{record['images_per_second']:.0f} img/s")
    return "  ".join(parts)
