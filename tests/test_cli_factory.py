"""``FILE.py:FACTORY`` on the command line: train a user's residual model, resume it, evaluate it, explain it.

The run records the factory (path as given, function, SHA-256 of the
file's bytes). Loading a file never runs code it names: a resumed run
(``convkit train FILE.py:FACTORY --resume``), ``convkit evaluate
--factory`` and ``load_model(..., factory=)`` rebuild the model only from a
factory named again, of the recorded function and bytes (any path), and
refuse in one line with exit 2 one not named (saying what to name),
another function, or a file that has changed or is missing. The bad
factories (no file, no function, not a Module, an exception, wrong output
size) and crafted files naming a factory are in ``test_cli_faults.py``.
"""

import hashlib
import json

import numpy as np
import pytest
from synthetic import write_bars_dataset

from convkit.cli import main
from convkit.cli.models import load_model
from convkit.safetensors import load_file
from convkit.train import load_checkpoint, loop

# A residual model: forward adds a block's output to its input (x + y), which no spec string can say.
# num_classes has no default: convkit train passes it (input_size is left out: not declared here).
NETS = '''\
import convkit.nn as nn


class Residual(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.head = nn.Sequential(nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(4 * 7 * 7, num_classes))

    def forward(self, x):
        x = self.stem(x)
        y = self.block(x)
        return self.head(x + y)


def make(num_classes):
    return Residual(num_classes)


def sized(input_size, num_classes=3):
    channels, height, width = input_size
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes))
'''


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_bars_dataset(tmp_path_factory.mktemp("data"), 300, 100)


def _train(data_dir, out, *extra):
    return main(["train", "nets.py:make", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "2",
                 "--batch-size", "50", "--lr", "0.01", "--no-plots", "--threads", "1", *extra])


def _one_line(err: str, code_words: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err and code_words in err


def test_a_factory_model_trains_resumes_evaluates_and_is_refused_once_changed(data_dir, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # the factory is named by a relative path, recorded as given
    (tmp_path / "nets.py").write_text(NETS)
    digest = hashlib.sha256(NETS.encode()).hexdigest()
    assert _train(data_dir, "straight") == 0
    assert "test accuracy: " in capsys.readouterr().out

    real_epoch = loop._train_epoch

    def interrupted_in_epoch_two(*args):
        if args[5] == 1:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_train_epoch", interrupted_in_epoch_two)
    assert _train(data_dir, "run") == 130
    resume = ["train", "nets.py:make", "--out", "run", "--resume", "--data-dir", str(data_dir)]
    assert capsys.readouterr().err.rstrip().endswith(f"continue with: convkit {' '.join(resume)}")
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert checkpoint.epoch == 1 and checkpoint.config["model"] == "nets.py:make"
    assert checkpoint.config["factory"] == {"path": "nets.py", "function": "make", "sha256": digest}
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()

    # the factory is not taken from the checkpoint: --resume without it says what to add, and changes nothing
    assert main(["train", "--out", "run", "--resume", "--data-dir", str(data_dir), "--no-plots"]) == 2
    assert capsys.readouterr().err == (
        "convkit train: run/checkpoint.safetensors was built by nets.py:make (a Python file, which loading does "
        f"not run); to resume it, name it: convkit {' '.join(resume)}\n")
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before

    # named again, --resume rebuilds the same model and ends where the uninterrupted run ended
    assert main([*resume, "--no-plots"]) == 0
    assert "resuming run after epoch 1 of 2" in capsys.readouterr().err
    straight, resumed = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert straight.keys() == resumed.keys() and {"stem.weight", "block.1.weight", "head.3.bias"} <= resumed.keys()
    for name in straight:
        assert straight[name].tobytes() == resumed[name].tobytes(), name
    assert load_checkpoint(tmp_path / "run" / "model.safetensors").config["factory"]["sha256"] == digest

    # the model file loads with its factory named: convkit evaluate --factory, load_model(factory=)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["factory"] == {"path": "nets.py", "function": "make", "sha256": digest}
    evaluate = ["evaluate", "run/model.safetensors", "--data-dir", str(data_dir)]
    assert main(evaluate) == 2
    assert capsys.readouterr().err == (
        "convkit evaluate: run/model.safetensors was built by nets.py:make (a Python file, which loading does not "
        "run); to evaluate it, name it: --factory nets.py:make\n")
    assert main([*evaluate, "--factory", "nets.py:make", "--format", "json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["model"] == "nets.py:make" and evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])
    with pytest.raises(ValueError, match=r"^MODEL run/model.safetensors was built by nets.py:make .*: --factory "
                                         r"nets.py:make$"):
        load_model("run/model.safetensors", (1, 28, 28), None, 10**6)
    net = load_model("run/model.safetensors", (1, 28, 28), None, 10**6, factory="nets.py:make")
    assert type(net).__name__ == "Residual" and net.head[3].weight.numpy().tobytes() == resumed["head.3.weight"].tobytes()
    assert main(["summary", "run/model.safetensors", "--factory", "nets.py:make", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == sum(v.size for v in resumed.values())
    assert main(["explain", "output-size", "--model", "run/model.safetensors"]) == 2  # no factory named
    assert "was built by nets.py:make (a Python file, which loading does not run)" in capsys.readouterr().err
    assert main(["explain", "output-size", "--model", "run/model.safetensors", "--factory", "nets.py:make"]) == 0
    assert "add (add)" in capsys.readouterr().out  # the residual sum, traced with the trained weights

    # the same bytes under another path are the same factory; another function is refused, naming both
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "nets.py").write_text(NETS)
    assert main([*evaluate, "--factory", "copy/nets.py:make"]) == 0
    assert "nets.py:make on fashion-mnist" in capsys.readouterr().out
    assert main([*evaluate, "--factory", "nets.py:sized"]) == 2
    assert capsys.readouterr().err == (
        "convkit evaluate: run/model.safetensors was built by function make() (nets.py:make), but nets.py:sized "
        "names sized(); to evaluate it, name it: --factory nets.py:make\n")

    # a changed file: resume and evaluate refuse it in one line naming both hashes, and the run is left as it was
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    changed = NETS.replace("MaxPool2d(4)", "AvgPool2d(4)")
    (tmp_path / "nets.py").write_text(changed)
    now = hashlib.sha256(changed.encode()).hexdigest()
    assert main([*resume, "--no-plots"]) == 2
    assert capsys.readouterr().err == (
        f"convkit train: run/checkpoint.safetensors was built by nets.py:make from a file with SHA-256 {digest[:12]}"
        f"..., but nets.py has SHA-256 {now[:12]}... now; name the file it was built by (or train the changed one "
        "as a new run)\n")
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before
    assert main([*evaluate, "--factory", "nets.py:make"]) == 2
    assert _one_line(capsys.readouterr().err, "convkit evaluate: run/model.safetensors was built by nets.py:make "
                                              f"from a file with SHA-256 {digest[:12]}..., but nets.py has SHA-256")

    # a missing file (another current directory): one line that says where relative paths are taken from
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["evaluate", "../run/model.safetensors", "--data-dir", str(data_dir), "--factory", "nets.py:make"]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, "--factory nets.py:make: no such file 'nets.py'; a relative path is taken from the current "
                          "directory")


def test_a_factory_gets_num_classes_and_input_size_when_it_declares_them(tmp_path, capsys):
    (tmp_path / "nets.py").write_text(NETS)
    net = load_model(f"{tmp_path / 'nets.py'}:sized", (2, 5, 4), None, 10**6)
    assert net[1].weight.shape == (3, 40)                          # num_classes unknown: its own default
    net = load_model(f"{tmp_path / 'nets.py'}:sized", (2, 5, 4), 7, 10**6)
    assert net[1].weight.shape == (7, 40)
    assert main(["explain", "output-size", "--model", f"{tmp_path / 'nets.py'}:sized", "--input", "1x6x6"]) == 0
    assert "Linear" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"make\(\) raised TypeError: .*num_classes"):
        load_model(f"{tmp_path / 'nets.py'}:make", (1, 28, 28), None, 10**6)   # required, and not known here


def test_explain_takes_exactly_one_of_spec_and_model(capsys):
    for extra in ([], ["--spec", "conv3-2", "--model", "lenet5"]):
        with pytest.raises(SystemExit) as info:
            main(["explain", "receptive-field", *extra])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "one of the arguments --spec --model is required" in err and "not allowed with argument" in err
    assert main(["explain", "output-size", "--model", "lenet5", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["result"][-1] == [10]


def test_a_factory_file_runs_as_a_module_so_dataclasses_work(tmp_path):
    (tmp_path / "configured.py").write_text(
        "from dataclasses import dataclass\nimport convkit.nn as nn\n\n\n@dataclass\nclass Size:\n"
        "    width: int = 3\n\n\ndef make():\n    return nn.Linear(Size().width, 2)\n")
    net = load_model(f"{tmp_path / 'configured.py'}:make", (1, 3), None, 10**6)
    assert net.weight.shape == (2, 3) and np.isfinite(net.weight.numpy()).all()
    assert not (tmp_path / "__pycache__").exists()   # run from the bytes read, nothing written beside the file
