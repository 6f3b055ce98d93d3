"""convkit.train: fit learns, resumes bit for bit, stops on NaN; evaluate, metrics and progress output."""

import io
import subprocess
import sys

import numpy as np
import pytest
from synthetic import bars

import convkit
import convkit.functional as F
from convkit import nn, optim
from convkit.data import DataLoader, RandomCrop
from convkit.optim.lr_scheduler import OneCycleLR
from convkit.train import (
    ProgressBar,
    TrainingDiverged,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    format_epoch,
    load_checkpoint,
    machine_info,
    per_class_accuracy,
    phase,
    predict,
)


def small_net(seed=0):
    convkit.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(0.25), nn.Linear(8 * 6 * 6, 10))


def setup(seed=0, epochs=2, augment=()):
    model = small_net(seed)
    images, labels = bars(240, seed=1)
    loader = DataLoader(images, labels, batch_size=40, shuffle=True, seed=3, augment=augment)
    optimizer = optim.Adam(list(model.parameters()), lr=0.03)
    scheduler = OneCycleLR(optimizer, max_lr=0.03, total_steps=epochs * len(loader))
    return model, loader, optimizer, scheduler


def test_fit_learns_an_easy_problem_far_above_chance():
    model, loader, optimizer, scheduler = setup(epochs=3)
    test_images, test_labels = bars(200, seed=2)
    test_loader = DataLoader(test_images, test_labels, batch_size=100)
    history = fit(model, loader, epochs=3, optimizer=optimizer, scheduler=scheduler,
                  val_loader=test_loader, test_loader=test_loader, progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    last = history[-1]
    assert last["test_accuracy"] >= 0.6          # chance is 0.1
    assert last["val_accuracy"] == last["test_accuracy"]
    assert last["train_loss"] < history[0]["train_loss"]
    assert last["seconds"] > 0 and last["images_per_second"] > 0
    assert last["lr"] == optimizer.param_groups[0]["lr"]
    loss, acc, matrix = evaluate(model, test_loader)
    assert (loss, acc) == (last["test_loss"], last["test_accuracy"])
    assert matrix.shape == (10, 10) and matrix.sum() == 200 and matrix.trace() == round(acc * 200)


def test_resume_after_one_epoch_is_bit_identical_to_two_straight_epochs(tmp_path):
    augment = (RandomCrop(28, padding=2),)
    model, loader, optimizer, scheduler = setup(augment=augment)
    straight = fit(model, loader, epochs=2, optimizer=optimizer, scheduler=scheduler, progress=False)

    first, loader1, optimizer1, scheduler1 = setup(augment=augment)
    fit(first, loader1, epochs=1, optimizer=optimizer1, scheduler=scheduler1,
        checkpoint_path=tmp_path / "ck.safetensors", config={"model": "small"}, progress=False)
    convkit.manual_seed(999)           # a new process: the generator starts elsewhere
    resumed, loader2, optimizer2, scheduler2 = setup(seed=5, augment=augment)
    checkpoint = load_checkpoint(tmp_path / "ck.safetensors")
    assert checkpoint.epoch == 1 and checkpoint.config == {"model": "small"}
    checkpoint.restore(resumed, optimizer2, scheduler2)
    history = fit(resumed, loader2, epochs=2, optimizer=optimizer2, scheduler=scheduler2,
                  start_epoch=checkpoint.epoch, history=checkpoint.history, progress=False)

    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert a.tobytes() == b.tobytes(), name
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in straight]
    for key, state in optimizer.state_dict()["state"].items():
        np.testing.assert_array_equal(state["exp_avg_sq"], optimizer2.state_dict()["state"][key]["exp_avg_sq"])
    assert scheduler.last_epoch == scheduler2.last_epoch


def test_checkpoint_after_every_epoch_and_interrupt_keeps_the_last_complete_one(tmp_path):
    model, loader, optimizer, scheduler = setup(epochs=3)
    path = tmp_path / "ck.safetensors"
    seen = []

    class InterruptedLoader:
        """The real loader, but Ctrl-C arrives in the middle of epoch 2."""

        def __len__(self):
            return len(loader)

        def set_epoch(self, epoch):
            loader.set_epoch(epoch)
            seen.append(epoch)

        def __iter__(self):
            for i, batch in enumerate(loader):
                if seen[-1] == 1 and i == 2:
                    raise KeyboardInterrupt
                yield batch

    with pytest.raises(KeyboardInterrupt):
        fit(model, InterruptedLoader(), epochs=3, optimizer=optimizer, scheduler=scheduler,
            checkpoint_path=path, progress=False)
    checkpoint = load_checkpoint(path)
    assert checkpoint.epoch == 1 and len(checkpoint.history) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_weights():
    model, _, optimizer, _ = setup()
    images, labels = bars(120, seed=4)
    batches = [(x, y) for x, y in DataLoader(images, labels, batch_size=40)]
    bad = batches[2][0].copy()
    bad[0, 0, 0, 0] = np.nan
    batches[2] = (bad, batches[2][1])
    fit(model, batches[:1], epochs=1, optimizer=optimizer, progress=False)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, batch 3/3 .*lower learning rate"):
        fit(model, batches, epochs=2, start_epoch=1, optimizer=optimizer, progress=False)
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_fit_rejects_bad_epochs():
    model, loader, optimizer, _ = setup()
    with pytest.raises(ValueError, match="epochs must be a non-negative int, got -1"):
        fit(model, loader, epochs=-1, optimizer=optimizer)
    with pytest.raises(ValueError, match=r"start_epoch must be an int in \[0, epochs=2\], got 3"):
        fit(model, loader, epochs=2, start_epoch=3, optimizer=optimizer)


def test_predict_uses_eval_mode_without_gradients_and_restores_the_mode():
    model = small_net()
    images, labels = bars(50, seed=6)
    loader = DataLoader(images, labels, batch_size=20)
    model.train()
    first = predict(model, loader)
    second = predict(model, loader)          # dropout off: deterministic
    np.testing.assert_array_equal(first.predicted, second.predicted)
    np.testing.assert_array_equal(first.labels, labels)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    batches = list(loader)
    expected = sum(F.cross_entropy(model(x), y).item() * len(y) for x, y in batches) / 50
    assert first.loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(first.predicted, np.concatenate([model(x).data.argmax(1) for x, _ in batches]))


def test_metrics_match_brute_force():
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    matrix = confusion_matrix(labels, predicted, num_classes=5)
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(labels, predicted):
        expected[t, p] += 1
    np.testing.assert_array_equal(matrix, expected)
    assert accuracy(predicted, labels) == np.mean(labels == predicted)
    recall = per_class_accuracy(matrix)
    np.testing.assert_allclose(recall[:4], np.diag(expected)[:4] / expected.sum(1)[:4])
    assert np.isnan(recall[4])               # class 4 has no samples


@pytest.mark.parametrize("call, words", [
    (lambda: accuracy(np.array([1, 2]), np.array([1])), r"shape \(2,\) but labels \(1,\)"),
    (lambda: accuracy(np.array([]), np.array([])), "must be a 1-d integer array"),
    (lambda: accuracy(np.array([], dtype=int), np.array([], dtype=int)), "0 predictions"),
    (lambda: confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3), r"labels range over \[0, 3\]"),
    (lambda: confusion_matrix(np.array([0]), np.array([0]), 0), "num_classes must be a positive int"),
    (lambda: per_class_accuracy(np.zeros((2, 3))), "must be square"),
])
def test_metrics_reject_bad_input(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_progress_writes_one_line_per_epoch_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    model, loader, optimizer, scheduler = setup()
    fit(model, loader, epochs=2, optimizer=optimizer, scheduler=scheduler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[1].startswith("epoch 2/2  loss ") and lines[1].endswith("img/s")


def test_progress_bar_redraws_in_place_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "100")
    stream = Terminal()
    bar = ProgressBar(epoch=1, epochs=3, total=4, stream=stream)
    bar.update(4, loss=0.5, accuracy=0.75, images=512)
    bar.finish("epoch 1/3  done")
    text = stream.getvalue()
    assert text.startswith("\repoch 1/3 [####################]  4/4  loss 0.5000  acc 75.00%  ")
    assert text.split("\r")[1].rstrip().endswith("img/s  0:00<0:00")
    assert text.endswith("\repoch 1/3  done" + " " * (len(text.split("\r")[1]) - len("epoch 1/3  done")) + "\n")


@pytest.mark.parametrize("columns, kept", [
    (120, ("[", "loss", "acc", "img/s")), (80, ("[", "loss", "acc")), (70, ("[", "loss", "acc")),
    (60, ("[", "loss")), (50, ("loss",)), (35, ()),
])
def test_progress_bar_fits_the_terminal_dropping_what_matters_least(columns, kept):
    bar = ProgressBar(epoch=12, epochs=30, total=469)
    line = bar.line(235, loss=0.3412, accuracy=0.8761, speed=5210.4, elapsed=65.0, eta=3660.0, columns=columns)
    assert len(line) <= columns
    assert line.startswith("epoch 12/30") and "235/469" in line and line.endswith("1:05<1:01:00")
    for part, text in (("[", "["), ("loss", "loss 0.3412"), ("acc", "acc 87.61%"), ("img/s", "5210 img/s")):
        assert (text in line) == (part in kept), (part, line)


def test_phase_and_summary_lines_are_for_terminals_and_logs_respectively(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "30")
    live, log = Terminal(), io.StringIO()
    phase("evaluating on the test split (10,000 images)", live)
    phase("evaluating", log)
    assert live.getvalue().startswith("\revaluating on the test split") and len(live.getvalue().strip()) <= 29
    assert log.getvalue() == ""                                   # a log holds only the epochs' lines
    record = {"epoch": 10, "train_loss": 0.25, "train_accuracy": 0.9123, "test_loss": 0.3, "test_accuracy": 0.9,
              "seconds": 598.0, "images_per_second": 12345.6}  # 10 epochs of up to ten minutes
    assert len(format_epoch(record, epochs=10)) <= 80


def test_machine_info_names_cpu_and_numpy():
    info = machine_info()
    assert info["cores"] >= 1 and info["numpy"] == np.__version__ and info["cpu"]


def test_train_package_does_not_import_matplotlib():
    code = "import sys, convkit.train, convkit.train.plots; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
