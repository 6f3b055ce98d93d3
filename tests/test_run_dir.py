"""Run directories (``convkit.train.rundir``), atomic writes (``convkit._io``) and ``convkit train`` on a full disk."""

import contextlib
import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from synthetic import write_bars_dataset

from convkit._io import atomic_file, is_temporary, remove_stale_temporaries
from convkit.cli import main
from convkit.train.rundir import LOCK_NAME, RunDirectory, RunDirectoryBusy, check_writable

FAST = ["--epochs", "1", "--batch-size", "50", "--no-plots", "--threads", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_bars_dataset(tmp_path_factory.mktemp("data"), 200, 50)


# ------------------------------------------------------------------------------ the lock
def test_one_process_holds_a_run_directory(tmp_path):
    path = tmp_path / "a" / "run"
    with RunDirectory(path) as run:
        assert (path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(RunDirectoryBusy, match=rf"is in use by process {os.getpid()}") as info:
            RunDirectory(path).acquire()
        assert info.value.pid == os.getpid()
        assert run.entries() == []
    assert list(path.iterdir()) == []  # the lock file goes with the lock
    RunDirectory(path).acquire().release()


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from convkit.train.rundir import RunDirectory; "
                               "RunDirectory(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirectoryBusy, match=rf"in use by process {holder.pid}"):
            RunDirectory(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # a killed holder leaves its lock file, not its lock
    with RunDirectory(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_stale_temporary_files_are_removed_on_acquire_and_others_kept(tmp_path):
    stale = [tmp_path / ".checkpoint.safetensors.ab_c1234.tmp", tmp_path / ".metrics.json.zz9zz9zz.tmp"]
    kept = [tmp_path / ".checkpoint.safetensors.tmp", tmp_path / "notes.tmp", tmp_path / ".x.ABCDEFGH.tmp",
            tmp_path / "model.safetensors"]
    for p in stale + kept:
        p.write_bytes(b"")
    assert all(is_temporary(p.name) for p in stale) and not any(is_temporary(p.name) for p in kept)
    with RunDirectory(tmp_path) as run:
        assert sorted(run.entries()) == sorted(kept)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path) == []


def test_check_writable_names_the_obstacle_without_creating_anything(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        check_writable(tmp_path / "file" / "run" / "deeper")
    assert info.value.errno == errno.ENOTDIR and info.value.filename == str(tmp_path / "file" / "run" / "deeper")
    assert f"{tmp_path / 'file'} is not a directory" in str(info.value)
    check_writable(tmp_path / "new" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------ atomic writes
def test_atomic_file_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as f:
            f.write(b"new, half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_atomic_file_errors_name_the_target_not_the_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        with atomic_file(tmp_path / "absent" / "f.bin"):
            pass
    assert info.value.filename == str(tmp_path / "absent" / "f.bin")


# --------------------------------------------------------------------- convkit train
def test_default_run_directories_never_collide(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data-dir", str(data_dir), *FAST]
    assert main(argv) == 0
    with RunDirectory(tmp_path / "runs" / "lenet5-fashion-mnist-2"):  # held by "another run"
        assert main(argv) == 0                                         # so this one takes -3
    assert main(argv) == 0   # -2 was left empty: free again
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == \
        ["lenet5-fashion-mnist", "lenet5-fashion-mnist-2", "lenet5-fashion-mnist-3"]
    for run in runs.iterdir():
        assert sorted(p.name for p in run.iterdir()) == ["checkpoint.safetensors", "metrics.json", "model.safetensors"]


def test_a_directory_left_by_a_killed_first_write_can_be_trained_into(data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999\n")  # its process is gone: no lock on it
    (out / ".checkpoint.safetensors.k1ll3d_x.tmp").write_bytes(b"\x00" * 100)
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "metrics.json", "model.safetensors"]


def test_resume_removes_stale_temporary_files(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), *FAST]) == 0
    (out / ".checkpoint.safetensors.k1ll3d_x.tmp").write_bytes(b"\x00" * 100)
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--resume", "--no-plots"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "metrics.json", "model.safetensors"]


@contextlib.contextmanager
def _small_tmpfs(size: str):
    """A tmpfs of ``size`` mounted on a fresh directory, or pytest.skip with the reason."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mount = Path(tempfile.mkdtemp(prefix="convkit-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def test_full_disk_gives_one_line_exit_1_and_leaves_no_partial_file(data_dir, capsys):
    # LeNet-5's checkpoint takes 747 kB: the first fits in 1000 kB, its successor's temporary file does not
    with _small_tmpfs("1000k") as disk:
        out = disk / "run"
        assert main(["train", "--data-dir", str(data_dir), "--out", str(out), *FAST, "--epochs", "2"]) == 1
        err = capsys.readouterr().err.splitlines()[-1]
        assert err == (f"convkit train: cannot write {out / 'checkpoint.safetensors'}: No space left on device; "
                       f"{out / 'checkpoint.safetensors'} holds the last complete epoch (1 of 2) and is intact; "
                       f"continue with: convkit train --out {out} --resume --data-dir {data_dir}")
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors"]
    with _small_tmpfs("300k") as disk:  # not even one checkpoint
        out = disk / "run"
        assert main(["train", "--data-dir", str(data_dir), "--out", str(out), *FAST]) == 1
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.endswith("No space left on device; no epoch was saved") and "Traceback" not in err
        assert list(out.iterdir()) == []
