"""``convkit train`` and ``convkit evaluate`` end to end on tiny IDX data written into tmp_path."""

import json
import re
import sys

import numpy as np
import pytest
from synthetic import write_bars_dataset

from convkit.cli import main
from convkit.models import build
from convkit.safetensors import load_file
from convkit.train import load_checkpoint, loop, save_model

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The four Fashion-MNIST file names holding 300 training and 100 test images."""
    return write_bars_dataset(tmp_path_factory.mktemp("data"), 300, 100)


def train(data_dir, out, *extra):
    return main(["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "2",
                 "--batch-size", "50", "--lr", "0.01", "--no-plots", *extra])


def test_train_writes_model_checkpoint_and_metrics(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out) == 0
    captured = capsys.readouterr()
    final = captured.out.strip().splitlines()[-1]
    assert re.fullmatch(r"test accuracy: \d\.\d{4} \(lenet5, fashion-mnist, 2 epochs, \d+\.\d s\)", final)
    assert [line.split("  ")[0] for line in captured.err.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "metrics.json", "model.safetensors"]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.6 and f"{metrics['test_accuracy']:.4f}" in final
    assert (metrics["model"], metrics["dataset"], metrics["epochs"]) == ("lenet5", "fashion-mnist", 2)
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert metrics["train_seconds"] == pytest.approx(sum(r["seconds"] for r in metrics["history"]))
    assert metrics["hyperparameters"]["optimizer"] == "adam" and metrics["hyperparameters"]["lr"] == 0.01
    assert np.array(metrics["confusion_matrix"]).sum() == 100
    assert metrics["classes"][0] == "T-shirt/top" and metrics["machine"]["cores"] >= 1
    assert metrics["convkit_version"]

    model = build("lenet5")
    model.load_state_dict(load_file(out / "model.safetensors"))
    assert load_checkpoint(out / "checkpoint.safetensors").epoch == 2


def test_existing_out_is_refused_and_left_untouched(data_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert train(data_dir, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists and is not empty" in err and "--resume" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_interrupted_run_resumes_to_the_same_weights(data_dir, tmp_path, capsys, monkeypatch):
    assert train(data_dir, tmp_path / "straight") == 0

    real_epoch = loop._train_epoch

    def interrupted_in_epoch_two(*args):
        if args[5] == 1:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(loop, "_train_epoch", interrupted_in_epoch_two)
    out = tmp_path / "stopped"
    assert train(data_dir, out) == 130
    err = capsys.readouterr().err
    assert "interrupted during epoch 2" in err and "holds the last complete epoch (1 of 2)" in err
    assert f"convkit train --out {out} --resume" in err
    assert load_checkpoint(out / "checkpoint.safetensors").epoch == 1
    monkeypatch.undo()

    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--resume", "--no-plots"]) == 0
    assert "resuming" in capsys.readouterr().err
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(out / "model.safetensors")
    for name, array in straight.items():
        assert array.tobytes() == resumed[name].tobytes(), name
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2]


def test_resume_refuses_other_settings_and_missing_checkpoints(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out) == 0
    capsys.readouterr()
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--resume", "--lr", "0.5"]) == 2
    assert "--lr 0.5 (the run has 0.01)" in capsys.readouterr().err
    assert main(["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "none"), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint to resume" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, code, words", [
    (["train", "lenet6"], 2, "unknown model 'lenet6'"),
    (["train", "vgg11"], 2, "at least 32x32"),
    (["train", "--optimizer", "sgd", "--lr", "1e6", "--momentum", "0.99"], 1,
     "training diverged: the loss is"),
])
def test_user_errors_give_one_message_without_traceback(data_dir, tmp_path, capsys, argv, code, words):
    assert main([*argv, "--data-dir", str(data_dir), "--out", str(tmp_path / "o"), "--no-plots",
                 "--epochs", "3", "--batch-size", "50"]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert err.startswith("convkit train: ")


def test_threads_are_given_or_measured_and_recorded(data_dir, tmp_path, capsys, monkeypatch):
    import convkit.cli.train as cli_train

    seen = []
    monkeypatch.setattr(cli_train, "fastest_threads", lambda model, loader: seen.append(len(loader)) or 1)
    assert train(data_dir, tmp_path / "a", "--threads", "2") == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["threads"] == 2 and seen == []
    assert train(data_dir, tmp_path / "b") == 0               # default: measured on the run's own loader
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["threads"] == 1 and seen == [6]
    capsys.readouterr()
    assert train(data_dir, tmp_path / "c", "--threads", "999") == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit train: --threads 999 is more than the") and "Traceback" not in err

def test_missing_data_says_how_to_get_it(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "--data-dir" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_option_values_are_usage_errors(capsys):
    for argv in (["train", "--epochs", "0"], ["train", "--lr", "-1"], ["train", "--val-fraction", "1.5"],
                 ["train", "--optimizer", "rmsprop"], ["train", "--dataset", "cifar10"], ["evaluate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_validation_split_augmentation_and_sgd(data_dir, tmp_path):
    out = tmp_path / "run"
    assert train(data_dir, out, "--val-fraction", "0.2", "--augment", "--optimizer", "sgd",
                 "--schedule", "cosine") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"val_loss", "val_accuracy", "test_accuracy"} <= metrics["history"][-1].keys()
    assert metrics["hyperparameters"]["augment"] is True
    assert metrics["hyperparameters"]["momentum"] == 0.9


def test_plots_are_written_as_png(data_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "1",
                 "--batch-size", "100"]) == 0
    for name in ("curves", "confusion_matrix", "misclassified", "filters", "feature_maps"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG), name


def test_missing_matplotlib_is_one_line_and_the_run_still_succeeds(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)     # import fails as if not installed
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "1",
                 "--batch-size", "100"]) == 0
    captured = capsys.readouterr()
    assert "pip install 'convkit[plot]'" in captured.err and "Traceback" not in captured.err
    assert captured.out.startswith("test accuracy: ")
    assert not list(out.glob("*.png")) and (out / "metrics.json").exists()


def test_evaluate_prints_accuracy_and_confusion_table(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out) == 0
    trained = json.loads((out / "metrics.json").read_text())["test_accuracy"]
    capsys.readouterr()
    for name in ("model.safetensors", "checkpoint.safetensors"):
        assert main(["evaluate", str(out / name), "--data-dir", str(data_dir)]) == 0
        text = capsys.readouterr().out
        assert f"lenet5 on fashion-mnist (test, 100 images): accuracy {trained:.4f}" in text
        assert "confusion matrix (rows: true class, columns: predicted class)" in text
        assert re.search(r"^9 Ankle boot +(\d+ +){10}\d\.\d{4}$", text, re.MULTILINE)


def test_evaluate_refuses_missing_and_mismatched_files(data_dir, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "absent.safetensors"), "--data-dir", str(data_dir)]) == 1
    assert "does not exist" in capsys.readouterr().err
    save_model(tmp_path / "odd.safetensors", build("conv3-4 pool2 flatten fc10"),
               {"model": "lenet5", "dataset": "fashion-mnist"})
    assert main(["evaluate", str(tmp_path / "odd.safetensors"), "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert "does not fit this model" in err and "Traceback" not in err


def test_format_json_on_train_and_evaluate_gives_every_number(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(data_dir, out, "--epochs", "1", "--format", "json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", str(out / "model.safetensors"), "--data-dir", str(data_dir), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["model"], result["dataset"], result["split"], result["images"]) == ("lenet5", "fashion-mnist",
                                                                                       "test", 100)
    assert result["accuracy"] == pytest.approx(printed["test_accuracy"]) and result["correct"] == round(
        100 * result["accuracy"])
    assert np.array(result["confusion_matrix"]).sum() == 100 and len(result["per_class_accuracy"]) == 10


def test_format_json_on_symmetry_and_explain(capsys):
    assert main(["symmetry", "conv3-4 relu gap", "--input", "1x6x6", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["holds"] is False and report["group_size"] == 36 and report["rows"][0]["status"] == "breaks"
    assert main(["explain", "conv2d", "-i", "1 2 3; 4 5 6; 7 8 9", "-k", "1 0; 0 -1", "--format", "json"]) == 0
    (explanation,) = json.loads(capsys.readouterr().out)
    assert explanation["result"] == [[[-4.0, -4.0], [-4.0, -4.0]]]
    assert explanation["steps"][0]["value"][0]["data"] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]


def test_input_size_fits_the_images_and_lets_a_vgg_style_model_train(data_dir, tmp_path, capsys):
    """--input-size pads (or resizes) the 28x28 images; the size is in the checkpoint, and evaluate reuses it."""
    spec = "conv3-4p1 pool2 conv3-4p1 pool2 conv3-4p1 pool2 conv3-4p1 pool2 conv3-4p1 pool2 flatten fc10"
    assert train(data_dir, tmp_path / "small", spec, "--epochs", "1") == 2            # 28x28: five pools
    assert "(--input-size N trains on N x N images" in capsys.readouterr().err
    assert train(data_dir, tmp_path / "vgg", "vgg11") == 2
    assert "vgg11 needs inputs of at least 32x32" in capsys.readouterr().err
    for how in ("pad", "bilinear"):
        out = tmp_path / how
        assert train(data_dir, out, spec, "--epochs", "1", "--input-size", "32", "--resize", how) == 0
        config = load_checkpoint(out / "checkpoint.safetensors").config
        assert (config["input_size"], config["resize"]) == (32, how)
        assert main(["evaluate", str(out / "model.safetensors"), "--data-dir", str(data_dir)]) == 0
        assert "accuracy" in capsys.readouterr().out
    assert train(data_dir, tmp_path / "tiny", "--input-size", "20") == 2
    assert "--input-size 20 is smaller than the 28x28 images" in capsys.readouterr().err


def test_fit_pads_without_changing_pixels_and_resizes_bilinearly():
    import convkit.functional as F
    from convkit.data import fit_images as fit

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    padded = fit(images, 33)
    assert padded.shape == (3, 33, 33) and padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], images)
    assert padded.sum() == images.sum()                                    # the border is background (0)
    scaled = fit(images, 32, "bilinear")
    expected = F.interpolate(images[:, None].astype(np.float32), size=(32, 32), mode="bilinear").numpy()[:, 0]
    np.testing.assert_array_equal(scaled, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    assert fit(images, 28) is images
    with pytest.raises(ValueError, match="fit_images: size 20 is smaller than the images"):
        fit(images, 20)
