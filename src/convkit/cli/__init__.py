"""The ``convkit`` command line: one sub-command per module of this package.

Each module named in ``SUBCOMMANDS`` defines ``register(subparsers)``, which
adds its sub-command(s) with ``set_defaults(run=function)``; ``function(args)``
returns the process exit code.

``main`` handles for every sub-command: Ctrl-C (exit 130) and SIGTERM (raised
as ``Terminated``, a KeyboardInterrupt, where the program is; exit 143), and
a reader that closes standard output early (``convkit explain ... | head -1``):
the command stops quietly (exit 141, as if killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

SUBCOMMANDS = ("train", "evaluate", "summary", "symmetry", "explain", "export")
INTERRUPTED, BROKEN_PIPE, TERMINATED = 130, 141, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised like Ctrl-C's KeyboardInterrupt, so the same clean-up runs."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser with usage errors on one line (``convkit train: error: ... (see convkit train --help)``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="convkit",
        description="Convolutional networks on NumPy: train, inspect and check CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"convkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the sub-command, return its exit code."""
    args = build_parser().parse_args(argv)
    with _sigterm_raises():
        try:
            code = int(args.run(args) or 0)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            _discard_stdout()
            return BROKEN_PIPE
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            print(f"convkit {args.command}: " + ("terminated (SIGTERM)" if terminated else "interrupted"),
                  file=sys.stderr)
            return TERMINATED if terminated else INTERRUPTED
        except MemoryError:
            print(f"convkit {args.command}: out of memory: the model or data need more memory than this machine "
                  "can give; choose a smaller model, batch or --max-parameters", file=sys.stderr)
            return 1


@contextlib.contextmanager
def _sigterm_raises():
    """While inside, SIGTERM raises ``Terminated`` (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
