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
     "has no convolution or pooling layer that its forward calls"),
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


def test_every_plot_returns_its_figure_and_writes_nothing_without_a_path(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 12)
    figures = [plots.plot_history(HISTORY),
               plots.plot_confusion_matrix(np.eye(3, dtype=int), CLASSES),
               plots.plot_misclassified(np.zeros((12, 6, 6)), labels, (labels + 1) % 3, CLASSES),
               plots.plot_filters(net()),
               plots.plot_feature_maps(net(), np.ones((1, 12, 12), np.float32)),
               plots.plot_receptive_field(net(), np.ones((1, 12, 12)))]
    assert all(isinstance(f, Figure) for f in figures)
    assert list(tmp_path.iterdir()) == []


def test_history_has_whole_epoch_ticks_and_the_learning_rate():
    records = [dict(r, lr=lr) for r, lr in zip(HISTORY * 2, (1e-3, 3e-3, 2e-3, 1e-4))]
    for i, r in enumerate(records):
        r["epoch"] = i + 1
    fig = plots.plot_history(records)
    loss, acc, lr = fig.axes
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in loss.get_xticks())
    assert lr.get_ylabel().startswith("learning rate")
    np.testing.assert_allclose(lr.lines[0].get_ydata(), [1e-3, 3e-3, 2e-3, 1e-4])
    assert len(plots.plot_history(HISTORY).axes) == 2          # no lr recorded: no lr panel


def test_weights_and_maps_use_a_zero_centred_diverging_scale_with_colour_bars():
    fig = plots.plot_filters(net())
    image = fig.axes[0].images[0]
    low, high = image.get_clim()
    assert image.get_cmap().name == plots.SIGNED and low == -high and high > 0
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "weight"    # the colour bar
    maps = plots.plot_feature_maps(net(), np.random.default_rng(2).normal(size=(1, 12, 12)).astype(np.float32))
    shown = [ax for ax in maps.axes if ax.images]
    assert len(maps.axes) == 2 * len(shown)                                 # a colour bar per row
    assert shown[0].images[0].get_cmap().name == "gray_r"                    # the input image
    for ax in shown[1:]:
        low, high = ax.images[0].get_clim()
        assert ax.images[0].get_cmap().name == plots.SIGNED and low == -high


def test_misclassified_are_sorted_by_confidence_and_show_it():
    labels = np.array([0, 1, 2, 0, 1])
    predicted = np.array([1, 1, 0, 2, 2])
    probabilities = np.array([[0.3, 0.6, 0.1], [0, 1, 0], [0.9, 0, 0.1], [0.2, 0.3, 0.5], [0, 0.05, 0.95]])
    fig = plots.plot_misclassified(np.zeros((5, 6, 6)), labels, predicted, CLASSES, probabilities=probabilities)
    captions = [t.get_text() for t in fig.axes[0].texts]
    assert captions == ["Trouser → Pullover 95%", "Pullover → T-shirt/top 90%", "T-shirt/top → Trouser 60%",
                        "T-shirt/top → Pullover 50%"]
    with pytest.raises(ValueError, match=r"probabilities must have shape \(5, 3\)"):
        plots.plot_misclassified(np.zeros((5, 6, 6)), labels, predicted, CLASSES, probabilities=np.ones((5, 2)))


def test_receptive_field_panels_outline_each_layers_field():
    from convkit.models import lenet5

    fig = plots.plot_receptive_field(lenet5(), np.zeros((1, 28, 28)))
    sizes = [(p.get_height(), p.get_width()) for ax in fig.axes for p in ax.patches]
    assert sizes == [(5, 5), (6, 6), (14, 14), (16, 16)]      # C1, S2, C3, S4: the field grows layer by layer
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("0: Conv2d") and titles[-1].endswith("field 16×16")
    with pytest.raises(ValueError, match="unit must be two fractions"):
        plots.plot_receptive_field(lenet5(), np.zeros((28, 28)), unit=(2, 0))


def test_confusion_matrix_and_symmetry_report_show_as_html_tables():
    from html.parser import HTMLParser

    from convkit import symmetry
    from convkit.train import ConfusionMatrix

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            if self.tags and self.tags[-1] in ("td", "th"):
                self.cells.append(data)

    cm = ConfusionMatrix(np.array([[3, 1], [0, 4]]), ("cat", "<dog>"))
    parser = Cells()
    parser.feed(cm._repr_html_())
    assert parser.cells == ["true \\ predicted", "0", "1", "accuracy", "0 cat", "3", "1", "0.7500",
                            "1 <dog>", "0", "4", "1.0000"]          # escaped in the HTML, text again here
    assert "&lt;dog&gt;" in cm._repr_html_() and "rgba(31, 119, 180, 0.75)" in cm._repr_html_()
    with pytest.raises(ValueError, match=r"counts must be \(2, 2\)"):
        ConfusionMatrix(np.eye(3), ("a", "b"))
    convkit.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    report = symmetry.report(model, symmetry.Shifts(8, 8), (1, 8, 8))
    page = report._repr_html_()
    parser = Cells()
    parser.feed(page)
    assert parser.cells[:7] == ["#", "layer", "output", "check", "max error", "fails", "verdict"]
    assert str(report).splitlines()[-1] in page                   # the verdict, as in the text


def test_feature_maps_are_what_a_custom_forward_computes():
    """A forward with a functional ReLU, a residual sum and one conv called twice: the rows are the actual
    outputs of the calls, in their order (walking the layers in definition order would be wrong here)."""
    import convkit.functional as F

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2)
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            h = F.relu(self.conv(x)) + x
            return self.pool(self.conv(h))

    convkit.manual_seed(0)
    model = Residual()
    x = np.random.default_rng(3).normal(size=(1, 8, 8)).astype(np.float32)
    fig = plots.plot_feature_maps(model, x)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.images]
    assert titles == ["input", "conv: Conv2d 1×8×8", "conv_1: Conv2d 1×8×8", "pool: MaxPool2d 1×4×4"]
    first = model.conv(x[None]).numpy()[0, 0]
    second = model.conv(F.relu(model.conv(x[None])) + x[None]).numpy()[0, 0]
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    np.testing.assert_allclose(np.asarray(shown[1]), first, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(shown[2]), second, rtol=1e-6)
    assert model.training                                          # mode restored
