"""Bad command lines and bad files, across every sub-command: one line on stderr, the right exit code, no traceback.

Each case runs in this process through ``convkit.cli.main``; the files it
needs (tiny IDX data, a finished run, crafted checkpoints) are made once
per module. Exit codes: 2 usage error, 1 failure (``convkit train --help``).
"""

import argparse
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import bars

from convkit.cli import build_parser, main
from convkit.data import write_idx
from convkit.models import build
from convkit.safetensors import load_file, load_metadata, save_file
from convkit.train import load_checkpoint, loop, save_model
from convkit.train.rundir import RunDirectory

FAST = ["--epochs", "1", "--batch-size", "50", "--no-plots", "--threads", "1"]


def _write_data(root: Path, n_train: int = 300, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, s in (("train", n_train, seed), ("t10k", 100, seed + 1)):
        images, labels = bars(n, s)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return root


def _craft(source: Path, path: Path, *, state=None, config=None, tensors=None) -> Path:
    """A copy of checkpoint ``source`` with its state/config JSON changed by the given functions."""
    metadata = load_metadata(source)
    loaded = load_file(source)
    if state is not None:
        metadata["state"] = json.dumps(state(json.loads(metadata["state"])))
    if config is not None:
        metadata["config"] = json.dumps(config(json.loads(metadata["config"])))
    save_file(tensors(loaded) if tensors is not None else loaded, path, metadata=metadata)
    return path


def _set(d: dict, **changes) -> dict:
    return {**d, **changes}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data, a finished one-epoch run, other data, and bad files, by name."""
    root = tmp_path_factory.mktemp("faults")
    data = _write_data(root / "data")
    run = root / "run"
    assert main(["train", "--data-dir", str(data), "--out", str(run), *FAST]) == 0
    checkpoint, model = run / "checkpoint.safetensors", run / "model.safetensors"
    bad = root / "bad"
    bad.mkdir()
    (bad / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    (bad / "a_file").write_text("x")
    (bad / "used").mkdir()
    (bad / "used" / "notes.txt").write_text("mine")
    (bad / "empty_run").mkdir()
    corrupt = _write_data(root / "corrupt")
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    craft = {
        "epoch_text": dict(state=lambda s: _set(s, epoch="1")),
        "epoch_past": dict(state=lambda s: _set(s, epoch=5)),
        "history_short": dict(state=lambda s: _set(s, history=[])),
        "history_text": dict(state=lambda s: _set(s, history="none")),
        "optimizer_list": dict(state=lambda s: _set(s, optimizer=[1, 2])),
        "scheduler_position": dict(state=lambda s: _set(s, scheduler={**s["scheduler"], "last_epoch": 1})),
        "rng_bad": dict(state=lambda s: _set(s, rng={"bit_generator": "PCG64", "state": 7})),
        "lr_text": dict(config=lambda c: _set(c, lr="fast")),
        "epochs_zero": dict(config=lambda c: _set(c, epochs=0)),
        "dataset_other": dict(config=lambda c: _set(c, dataset="cifar10")),
        "batch_float": dict(config=lambda c: _set(c, batch_size=50.5)),
        "augment_text": dict(config=lambda c: _set(c, augment="yes")),
        "no_config": dict(config=lambda c: {}),
        "model_number": dict(config=lambda c: _set(c, model=5)),
        "model_huge": dict(config=lambda c: _set(c, model="fc100000 fc100000 fc10")),
        "model_unknown": dict(config=lambda c: _set(c, model="lenet6")),
        "factory_unrecorded": dict(config=lambda c: _set(c, model="nets.py:make", factory=None)),
        "factory_other": dict(config=lambda c: _set(c, model="nets.py:make", factory={
            "path": "other.py", "function": "make", "sha256": "0" * 64})),
        "weights_bad_shape": dict(tensors=lambda t: {**t, "model.0.bias": np.zeros(7, np.float32)}),
        "weights_missing": dict(tensors=lambda t: {k: v for k, v in t.items() if k != "model.0.bias"}),
    }
    for name, change in craft.items():
        out = bad / name
        out.mkdir()
        _craft(checkpoint, out / "checkpoint.safetensors", **change)
    (bad / "nets.py").write_text(FACTORIES)
    (bad / "broken.py").write_text("def make(:\n")
    save_model(bad / "no_dataset.safetensors", build("lenet5"), {"model": "lenet5"})
    save_model(bad / "other_model.safetensors", build("conv3-4 pool2 flatten fc10"), {"model": "lenet5"})
    return {"data": data, "other_data": _write_data(root / "other", seed=5), "corrupt": corrupt, "run": run,
            "checkpoint": checkpoint, "model": model, "bad": bad, "root": root}


# Users' factories for FILE.py:FACTORY, each wrong in its own way (``bad/nets.py``).
FACTORIES = """\
import convkit.nn as nn


class Fails(nn.Module):
    def forward(self, x):
        return {}["stem"]  # a KeyError: a user's forward may raise anything


def five_outputs():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 5))


def raises():
    raise RuntimeError("no model today")


def not_a_module():
    return [nn.Linear(784, 10)]


def fails_forward():
    return Fails()


number = 3
"""


def _one_message(err: str) -> bool:
    """One line on stderr, no traceback.

    Two messages are longer by design: a spec error adds the spec and a
    caret under the fault, and missing data add where they were looked for
    and how to get them.
    """
    lines = err.splitlines()
    spec_echo = len(lines) == 3 and set(lines[2].strip()) == {"^"}
    data_help = "not found. Looked for" in lines[0] and "To get it:" in lines
    return "Traceback" not in err and lines[0].startswith("convkit") and (len(lines) == 1 or spec_echo or data_help)


def _argv(template, files, tmp_path):
    """Fill ``{data}``, ``{bad}``, ``{new}`` (a fresh --out), ... into the argument template."""
    names = {**{k: str(v) for k, v in files.items()}, "new": str(tmp_path / "new")}
    return [word.format(**names) for word in template]


T = ["train", "--data-dir", "{data}"]  # the start of most train cases
CASES = [
    # top level
    ([], 2), (["bogus"], 2), (["--frob"], 2), (["train", "--help-me"], 2),
    # train: option values
    (["train", "--epochs", "0"], 2), (["train", "--epochs", "-3"], 2), (["train", "--epochs", "x"], 2),
    (["train", "--batch-size", "0"], 2), (["train", "--batch-size", "1.5"], 2), (["train", "--lr", "-1"], 2),
    (["train", "--lr", "nan"], 2), (["train", "--lr", "inf"], 2), (["train", "--lr", "0"], 2),
    (["train", "--momentum", "1"], 2), (["train", "--momentum", "-0.1"], 2), (["train", "--weight-decay", "-1"], 2),
    (["train", "--weight-decay", "nan"], 2), (["train", "--val-fraction", "1"], 2),
    (["train", "--val-fraction", "-0.5"], 2), (["train", "--val-fraction", "abc"], 2), (["train", "--seed", "-1"], 2),
    (["train", "--threads", "0"], 2), (["train", "--optimizer", "rmsprop"], 2), (["train", "--schedule", "linear"], 2),
    (["train", "--dataset", "cifar10"], 2), (["train", "--max-parameters", "0"], 2), (["train", "a", "b"], 2),
    # train: checks before anything is created
    ([*T, "--out", "{new}", "--threads", "9999"], 2), ([*T, "--out", "{new}", "--max-parameters", "1000"], 2),
    ([*T, "--out", "{new}", "lenet6"], 2), ([*T, "--out", "{new}", "vgg11"], 2), ([*T, "--out", "{new}", ""], 2),
    ([*T, "--out", "{new}", "conv3-4 pool2 flatten fc5"], 2),
    ([*T, "--out", "{new}", "fc100000 fc100000 fc10"], 2),
    ([*T, "--out", "{new}", "conv3-4 pool2 pool2 pool2 pool2 pool2 flatten fc10"], 2),
    ([*T, "--out", "{new}", "--val-fraction", "0.999"], 2),
    ([*T, "--out", "{new}", "--resume", "--weights", "{checkpoint}"], 2),
    # train: a user's FILE.py:FACTORY (missing, no such function, raises, not a Module, wrong outputs, ...)
    *[([*T, "--out", "{new}", model], 2) for model in (
        "{root}/absent.py:make", "{bad}/nets.py:missing", "{bad}/nets.py:number", "{bad}/nets.py:raises",
        "{bad}/nets.py:not_a_module", "{bad}/nets.py:five_outputs", "{bad}/nets.py:fails_forward",
        "{bad}/nets.py:2x", "{bad}/broken.py:make")],
    # train: --out
    ([*T, "--out", "{bad}/used"], 2), ([*T, "--out", "{bad}/a_file"], 2), ([*T, "--out", "{bad}/a_file/sub"], 1),
    # train: data and weights files
    (["train", "--data-dir", "{root}/absent", "--out", "{new}"], 1), (["train", "--data-dir", "{corrupt}", "--out", "{new}"], 1),
    (["train", "--data-dir", "{root}/absent", "--dataset", "mnist", "--out", "{new}"], 1),
    ([*T, "--out", "{new}", "--weights", "{root}/absent.safetensors"], 1),
    ([*T, "--out", "{new}", "--weights", "{bad}/junk.safetensors"], 1),
    ([*T, "--out", "{new}", "--weights", "{bad}/other_model.safetensors"], 1),
    ([*T, "--out", "{new}", "--weights", "{bad}/weights_bad_shape/checkpoint.safetensors"], 1),
    # train --resume
    ([*T, "--out", "{run}", "--resume", "--lr", "0.5"], 2), ([*T, "--out", "{run}", "--resume", "--epochs", "9"], 2),
    ([*T, "--out", "{run}", "--resume", "convnet"], 2), ([*T, "--out", "{run}", "--resume", "{bad}/nets.py:raises"], 2),
    (["train", "--data-dir", "{other_data}", "--out", "{run}", "--resume"], 2),
    ([*T, "--out", "{root}/absent", "--resume"], 1), ([*T, "--out", "{bad}/empty_run", "--resume"], 1),
    *[([*T, "--out", "{bad}/" + name, "--resume"], 1) for name in (
        "epoch_text", "epoch_past", "history_short", "history_text", "optimizer_list", "scheduler_position",
        "rng_bad", "lr_text", "epochs_zero", "dataset_other", "batch_float", "augment_text", "no_config",
        "model_unknown", "factory_unrecorded", "factory_other", "weights_missing", "weights_bad_shape")],
    # evaluate
    (["evaluate"], 2), (["evaluate", "{model}", "--split", "val"], 2), (["evaluate", "{model}", "--batch-size", "0"], 2),
    (["evaluate", "{model}", "--dataset", "cifar10"], 2), (["evaluate", "{bad}/no_dataset.safetensors"], 2),
    (["evaluate", "{root}/absent.safetensors"], 1), (["evaluate", "{bad}/junk.safetensors"], 1),
    (["evaluate", "{bad}/model_number/checkpoint.safetensors", "--data-dir", "{data}"], 1),
    (["evaluate", "{bad}/model_huge/checkpoint.safetensors", "--data-dir", "{data}"], 1),
    (["evaluate", "{bad}/factory_unrecorded/checkpoint.safetensors", "--data-dir", "{data}"], 1),
    (["evaluate", "{bad}/factory_other/checkpoint.safetensors", "--factory", "{bad}/nets.py:make"], 1),
    (["evaluate", "{model}", "--factory", "{bad}/nets.py:raises"], 2),
    (["evaluate", "{bad}/dataset_other/checkpoint.safetensors", "--data-dir", "{data}"], 1),
    (["evaluate", "{bad}/other_model.safetensors", "--data-dir", "{data}", "--dataset", "fashion-mnist"], 1),
    (["evaluate", "{model}", "--data-dir", "{root}/absent"], 1),
    (["evaluate", "{model}", "--data-dir", "{corrupt}", "--split", "train"], 1),
    # summary, symmetry, explain
    (["summary"], 2), (["summary", "lenet6"], 2), (["summary", "lenet5", "--input", "1x2"], 2),
    (["summary", "lenet5", "--format", "pdf"], 2), (["summary", "lenet5", "--num-classes", "x"], 2),
    (["symmetry"], 2), (["symmetry", "lenet6"], 2), (["symmetry", "lenet5", "--input", "1x28"], 2),
    (["symmetry", "lenet5", "--dtype", "float16"], 2), (["symmetry", "lenet5", "--group", "c7"], 2),
    (["explain"], 2), (["explain", "bogus-topic"], 2), (["explain", "conv2d"], 2),
    (["explain", "conv2d", "--input", "1 2; 3", "--kernel", "1"], 2),
    (["explain", "conv2d", "--input", "1 2; 3 4", "--kernel", "x"], 2),
    (["explain", "output-size"], 2), (["explain", "output-size", "--spec", "conv3", "--model", "lenet5"], 2),
    (["explain", "output-size", "--model", "{bad}/nets.py:raises"], 2),
    (["explain", "receptive-field", "--model", "{root}/absent.py:make"], 2),
    (["summary", "{bad}/broken.py:make"], 2), (["symmetry", "{bad}/nets.py:not_a_module"], 2),
    # --factory: only for a model file trained from a factory
    (["summary", "lenet5", "--factory", "{bad}/nets.py:raises"], 2),
    (["summary", "{bad}/nets.py:raises", "--factory", "{bad}/nets.py:raises"], 2),
    (["summary", "{model}", "--factory", "{bad}/nets.py:raises"], 2),
    (["symmetry", "{model}", "--factory", "{bad}/nets.py:raises"], 2),
    (["summary", "{bad}/factory_other/checkpoint.safetensors"], 2),
]


@pytest.mark.parametrize("template, code", CASES, ids=[" ".join(c[0])[:70] or "(none)" for c in CASES])
def test_bad_invocation_gives_one_line_and_its_exit_code(files, tmp_path, capsys, template, code):
    argv = _argv(template, files, tmp_path)
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code, err
    assert _one_message(err), err
    assert not (tmp_path / "new").exists()  # a new run's --out is created only once every check passed


def test_the_table_is_large_enough():
    assert len(CASES) >= 60


def test_environment_setting_is_checked_before_anything(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONVKIT_CONV_ALGORITHM", "bogus")
    for argv in (["train", "--data-dir", str(files["data"]), "--out", str(tmp_path / "o")],
                 ["evaluate", str(files["model"]), "--data-dir", str(files["data"])]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "CONVKIT_CONV_ALGORITHM" in err and "'bogus'" in err
    assert not (tmp_path / "o").exists()


# Run when imported or executed: leaves a marker file beside itself, then offers a model.
MARKING = """\
from pathlib import Path

Path({marker!r}).write_text("this file ran")

import convkit.nn as nn


def make(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes))
"""


def test_a_crafted_file_naming_a_factory_gets_nothing_run(files, tmp_path, capsys):
    """A model or checkpoint whose factory record names a real file with the right SHA-256: every command that
    loads it refuses in one line (exit 2), saying what to name, and the file never runs; named, it does."""
    marker = tmp_path / "ran"
    source = tmp_path / "marking.py"
    source.write_text(MARKING.format(marker=str(marker)))
    record = {"path": str(source), "function": "make", "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    run = tmp_path / "run"
    run.mkdir()
    crafted = _craft(files["checkpoint"], run / "checkpoint.safetensors",
                     config=lambda c: _set(c, model=f"{source}:make", factory=record))
    save_model(tmp_path / "crafted.safetensors", build("fc10"), load_checkpoint(crafted).config)
    hint = f"was built by {source}:make (a Python file, which loading does not run); to "
    for argv, named in [
        (["evaluate", str(tmp_path / "crafted.safetensors"), "--data-dir", str(files["data"])], "--factory"),
        (["evaluate", str(crafted), "--data-dir", str(files["data"])], "--factory"),
        (["summary", str(tmp_path / "crafted.safetensors")], "--factory"),
        (["symmetry", str(crafted)], "--factory"),
        (["explain", "receptive-field", "--model", str(tmp_path / "crafted.safetensors")], "--factory"),
        (["train", "--out", str(run), "--resume", "--data-dir", str(files["data"])], "convkit train"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and hint in err and f"name it: {named} {source}:make" in err, err
        assert not marker.exists(), argv
    assert load_checkpoint(crafted).epoch == 1 and sorted(p.name for p in run.iterdir()) == ["checkpoint.safetensors"]
    # the user names it: now, and only now, it runs
    assert main(["summary", str(tmp_path / "crafted.safetensors"), "--factory", f"{source}:make"]) == 0
    assert marker.read_text() == "this file ran"


def test_resume_on_other_data_names_what_differs(files, capsys):
    assert main(["train", "--data-dir", str(files["other_data"]), "--out", str(files["run"]), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was trained on other data than found now" in err and "train sha256" in err and "test sha256" in err


def test_sigterm_stops_like_ctrl_c_with_143_and_the_resume_command(files, tmp_path, capsys, monkeypatch):
    real_epoch = loop._train_epoch

    def terminated_in_epoch_two(*args):
        if args[5] == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # main() turns it into an exception here
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_train_epoch", terminated_in_epoch_two)
    handler = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(files["data"]), "--out", str(out), *FAST, "--epochs", "2"]) == 143
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("convkit train: terminated (SIGTERM) during epoch 2;")
    assert "holds the last complete epoch (1 of 2)" in err
    assert err.endswith(f"continue with: convkit train --out {out} --resume --data-dir {files['data']}")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors"]  # no lock, no temporary file
    assert signal.getsignal(signal.SIGTERM) == handler  # main() put the previous handler back


def _diverged_command(err: str) -> argparse.Namespace:
    """The command a divergence message proposes, parsed (so a valid ``convkit train`` command line)."""
    last = err.splitlines()[-1]  # after the lines of the epochs done
    assert last.startswith("convkit train: training diverged") and "try a lower learning rate" in last
    return build_parser().parse_args(shlex.split(last.split(" with: ", 1)[1])[1:])


def test_diverged_run_gives_the_exact_command_to_train_again(files, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(files["data"]), "--out", str(out), "--no-plots", "--threads", "1",
                 "--epochs", "3", "--batch-size", "50", "--optimizer", "sgd", "--lr", "1000", "--momentum", "0.9"]) == 1
    args = _diverged_command(capsys.readouterr().err)
    assert (args.model, args.optimizer, args.lr, args.momentum, args.epochs, args.batch_size) == \
        ("lenet5", "sgd", 100.0, 0.9, 3, 50)
    assert args.data_dir == files["data"] and args.out == out and args.weights is None
    assert list(out.iterdir()) == []  # nothing saved: the same --out takes the new run


def test_diverged_run_after_an_epoch_restarts_from_its_weights(files, tmp_path, capsys, monkeypatch):
    real_epoch = loop._train_epoch

    def diverging_in_epoch_two(*args):
        if args[5] == 1:
            raise loop.TrainingDiverged("training diverged: the loss is nan at epoch 2, batch 1/6 "
                                        "(learning rate 0.01); try a lower learning rate")
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_train_epoch", diverging_in_epoch_two)
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(files["data"]), "--out", str(out), *FAST, "--epochs", "2",
                 "--lr", "0.01"]) == 1
    args = _diverged_command(capsys.readouterr().err)
    assert args.weights == str(out / "checkpoint.safetensors") and args.out == Path(f"{out}-restart")
    assert args.lr == 0.001 and args.epochs == 2
    monkeypatch.undo()
    assert main(["train", "--data-dir", str(files["data"]), "--out", str(args.out), "--weights", args.weights,
                 "--lr", str(args.lr), *FAST]) == 0
    assert json.loads((args.out / "metrics.json").read_text())["hyperparameters"]["lr"] == 0.001


def test_closed_stdout_exits_quietly(files):
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with EPIPE
    try:
        for argv in (["summary", "lenet5"], ["evaluate", str(files["model"]), "--data-dir", str(files["data"])]):
            done = subprocess.run([sys.executable, "-m", "convkit", *argv], stdout=write_end, stderr=subprocess.PIPE,
                                  timeout=120)
            assert done.returncode == 141 and done.stderr == b"", (argv, done.stderr[-500:])
    finally:
        os.close(write_end)


def test_run_directory_in_use_is_refused_naming_the_process(files, tmp_path, capsys):
    out = tmp_path / "run"
    with RunDirectory(out):
        assert main(["train", "--data-dir", str(files["data"]), "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by process {os.getpid()}" in err and err.count("\n") == 1
    assert list(out.iterdir()) == []
    with RunDirectory(files["run"]):
        assert main(["train", "--data-dir", str(files["data"]), "--out", str(files["run"]), "--resume"]) == 2
        assert f"is in use by process {os.getpid()}" in capsys.readouterr().err


def test_a_last_training_batch_of_one_image_is_dropped_and_evaluation_stays_complete(tmp_path, capsys):
    data = _write_data(tmp_path / "data", n_train=301)
    model = "conv3-4 pool2 flatten fc16 bn fc10"  # BatchNorm1d cannot train on one image
    out = tmp_path / "run"
    assert main(["train", model, "--data-dir", str(data), "--out", str(out), *FAST]) == 0  # six batches of 50, then 1
    assert np.array(json.loads((out / "metrics.json").read_text())["confusion_matrix"]).sum() == 100
    out = tmp_path / "val"
    assert main(["train", model, "--data-dir", str(data), "--out", str(out), *FAST, "--val-fraction", "0.2",
                 "--batch-size", "60"]) == 0  # 60 held out, 241 to train: four batches of 60, then 1
    record = json.loads((out / "metrics.json").read_text())["history"][0]
    assert "val_accuracy" in record and "Traceback" not in capsys.readouterr().err


def test_running_out_of_memory_is_one_line_and_exit_1(monkeypatch, capsys):
    import convkit.cli.summary as summary_cli

    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(summary_cli, "load_model", exhausted)
    assert main(["summary", "lenet5"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convkit summary: out of memory") and "Traceback" not in err
