"""convkit.train.plots: every plot writes a PNG; bad input and a missing matplotlib give clear errors."""

import sys

import numpy as np
import pytest

import convkit
from convkit import nn
from convkit.train import plots

PNG = b"\x89PNG\r\n\x1a\n"
CLASSES = ("T-shirt/top", "Trouser", "Pullover")


def net():
    convkit.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))


HISTORY = [{"epoch": 1, "train_loss": 1.1, "train_accuracy": 0.5, "test_loss": 0.9, "test_accuracy": 0.6},
           {"epoch": 2, "train_loss": 0.7, "train_accuracy": 0.7, "test_loss": 0.8, "test_accuracy": 0.65}]


def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 30)
    predicted = np.where(rng.random(30) < 0.6, labels, (labels + 1) % 3)
    model = net()
    plots.plot_history(HISTORY, tmp_path / "curves.png", title="run")
    plots.plot_confusion_matrix(np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]]), CLASSES, tmp_path / "cm.png")
    plots.plot_misclassified(rng.integers(0, 256, (30, 12, 12)), labels, predicted, CLASSES,
                             tmp_path / "wrong.png", max_images=8, columns=4)
    plots.plot_filters(model, tmp_path / "filters.png")
    model.train()
    plots.plot_feature_maps(model, rng.normal(size=(1, 12, 12)).astype(np.float32), tmp_path / "maps.png")
    assert model.training                     # the mode is restored
    for name in ("curves", "cm", "wrong", "filters", "maps"):
        content = (tmp_path / f"{name}.png").read_bytes()
        assert content.startswith(PNG) and len(content) > 1000, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.png" for n in ("curves", "cm", "wrong", "filters", "maps"))   # no temporary files left


def test_no_errors_still_gives_a_picture(tmp_path):
    labels = np.array([0, 1, 2])
    plots.plot_misclassified(np.zeros((3, 8, 8)), labels, labels, CLASSES, tmp_path / "none.png")
    assert (tmp_path / "none.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("call, words", [
    (lambda p: plots.plot_history([], p), "history is empty"),
    (lambda p: plots.plot_confusion_matrix(np.eye(2), CLASSES, p), r"shape \(2, 2\), expected \(3, 3\)"),
    (lambda p: plots.plot_misclassified(np.zeros((2, 4)), [0, 1], [0, 1], CLASSES, p), "images \\(N, H, W\\)"),
    (lambda p: plots.plot_filters(nn.Sequential(nn.Linear(2, 2)), p), "has no Conv2d layer"),
    (lambda p: plots.plot_feature_maps(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), np.zeros((1, 2, 2)), p),
     "does not start with a convolution or pooling layer"),
    (lambda p: plots.plot_feature_maps(net(), np.zeros((12, 12)), p), r"image must be \(C, H, W\)"),
])
def test_bad_input_is_rejected(tmp_path, call, words):
    with pytest.raises(ValueError, match=words):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)     # import fails as if not installed
    with pytest.raises(plots.MatplotlibMissing, match=r"pip install 'convkit\[plot\]'"):
        plots.plot_history(HISTORY, tmp_path / "curves.png")
    assert issubclass(plots.MatplotlibMissing, ImportError)
