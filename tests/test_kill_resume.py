"""SIGKILL a real ``convkit train`` at a random moment, ``--resume`` it: the model is the uninterrupted run's, bit for bit."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from synthetic import write_bars_dataset

from convkit._io import is_temporary
from convkit.cli import main
from convkit.safetensors import load_file

# 600 images in batches of 10: 60 steps an epoch, four epochs of about 0.3 s each after a start of about 2 s.
SETTINGS = ["--epochs", "4", "--batch-size", "10", "--threads", "1", "--no-plots", "--lr", "0.002"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_bars_dataset(tmp_path_factory.mktemp("data"), 600, 100)


def _kill_at_random_moment(argv, checkpoint, delay: float) -> int:
    """Start ``convkit train``; SIGKILL it ``delay`` seconds after its first checkpoint appears; its exit code."""
    process = subprocess.Popen([sys.executable, "-m", "convkit", *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("round_", range(2))
def test_killed_run_resumes_to_the_uninterrupted_model(data_dir, tmp_path, capsys, round_):
    straight = tmp_path / "straight"
    assert main(["train", "--data-dir", str(data_dir), "--out", str(straight), *SETTINGS]) == 0
    out = tmp_path / "killed"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), *SETTINGS]
    delay = float(np.random.default_rng().uniform(0.0, 1.0))  # anywhere in epochs 1 to 4, writes included
    code = _kill_at_random_moment(argv, out / "checkpoint.safetensors", delay)
    assert code in (-signal.SIGKILL, 0), code  # 0: it finished within the delay

    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--resume", "--no-plots",
                 "--threads", "1"]) == 0, f"delay {delay:.3f} s"
    expected, resumed = load_file(straight / "model.safetensors"), load_file(out / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name, array in expected.items():
        assert array.tobytes() == resumed[name].tobytes(), f"{name} differs after a kill {delay:.3f} s in"
    assert not any(is_temporary(p.name) for p in out.iterdir()) and not (out / ".convkit.lock").exists()
    assert os.listdir(out) and "Traceback" not in capsys.readouterr().err
