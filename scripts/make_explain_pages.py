"""Generate docs/pages/*.html, the interactive pages of the course's worked examples, from real runs.

Run from anywhere: ``python3 scripts/make_explain_pages.py``. Each page is
what ``convkit explain ... --format html -o PAGE`` (or ``convkit summary``)
writes, so every number on it comes from the engine; rerun the script after
changing the engine or the explanations. Where Debian's ``chromium`` is
installed it also takes the README's screenshot (``docs/pages/conv2d.png``)
of one frame of the first page. Files are written atomically.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from convkit._io import atomic_file
from convkit.cli import main

TARGET = Path(__file__).resolve().parents[1] / "docs" / "pages"
CHROMIUM = "/usr/bin/chromium"

IMAGE = "1 2 0 1 2; 0 1 2 3 1; 2 0 1 1 0; 1 1 0 2 1; 0 2 1 0 1"
PAGES = [
    ("conv2d.html", "a 5×5 image and a 3×3 kernel at stride 2 (padding 1), with the gradients",
     f'explain conv2d --input "{IMAGE}" --kernel "1 0 -1; 1 0 -1; 1 0 -1" --stride 2 --padding 1 --grad'),
    ("maxpool.html", "3×3 max pooling at stride 2 over the same image: overlapping windows, the gradient routed "
                     "to the winners",
     f'explain maxpool --input "{IMAGE}" --kernel-size 3 --stride 2'),
    ("conv-transpose.html", "a 2×2 input stamping a 3×3 kernel at stride 2: the overlaps add up",
     'explain conv-transpose --input "1 2; 3 4" --kernel "1 1 1; 1 2 1; 1 1 1" --stride 2'),
    ("receptive-field.html", "Conv7 → Conv5 → Conv3 → MaxPool2: click a unit to see its field in every earlier "
                             "layer",
     'explain receptive-field --spec "conv7-4 conv5-4 conv3-4 pool2" --input 1x32x32'),
    ("summary-lenet5.html", "a whole model: LeNet-5's table and each layer's receptive field in the input",
     "summary lenet5 --input 1x28x28"),
]
SCREENSHOT = ("conv2d.png", "conv2d.html", "#step=5.5")


def write_page(name: str, command: str) -> None:
    """``convkit COMMAND --format html -o docs/pages/NAME`` (a failure is an error)."""
    code = main([*shlex.split(command), "--format", "html", "-o", str(TARGET / name)])
    if code != 0:
        raise SystemExit(f"convkit {command} failed with exit code {code}")


def screenshot(name: str, page: str, fragment: str) -> bool:
    """A PNG of ``page`` at ``fragment`` by headless chromium; False (and nothing written) without chromium."""
    if not Path(CHROMIUM).exists():
        return False
    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "shot.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1100,1000",
                        f"--screenshot={shot}", (TARGET / page).as_uri() + fragment],
                       check=True, capture_output=True, timeout=120)
        with atomic_file(TARGET / name) as f:
            f.write(shot.read_bytes())
    return True


if __name__ == "__main__":
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, _, command in PAGES:
        write_page(name, command)
        print(f"wrote docs/pages/{name}")
    if screenshot(*SCREENSHOT):
        print(f"wrote docs/pages/{SCREENSHOT[0]}")
    else:
        print(f"no {CHROMIUM}: kept the old screenshot", file=sys.stderr)
