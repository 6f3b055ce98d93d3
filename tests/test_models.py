"""convkit.models: LeNet-5, the small convnet and VGG against twins built from torch.nn; build() and available().

torchvision is not a dependency: the reference VGG is written here from
torch.nn with the published configurations. A full-size VGG holds 138 M
float32 parameters (550 MB), so VGG-16 is instantiated once per session
(``vgg16_model``) and VGG-19's size is checked from its parts.
"""

import numpy as np
import pytest
from oracle import torch

import convkit
import convkit.nn as nn
from convkit import models
from convkit.models import vgg as vgg_module

tnn = torch.nn

CFGS = {  # Simonyan & Zisserman, Table 1 (torchvision's cfgs "A", "B", "D", "E")
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def torch_state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def assert_same_keys_and_shapes(ours, theirs):
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs)
    for k, v in sd_theirs.items():
        assert sd_ours[k].shape == tuple(v.shape), k


def run_both(ours, theirs, x):
    ours.eval(), theirs.eval()
    with convkit.no_grad(), torch.no_grad():
        return ours(x).numpy(), theirs(torch.tensor(x)).numpy()


# ----------------------------------------------------------------- LeNet-5

def torch_lenet5(num_classes=10, in_channels=1):
    return tnn.Sequential(
        tnn.Conv2d(in_channels, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
        tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, num_classes))


def test_lenet5_has_61706_parameters_and_the_documented_layers():
    net = models.lenet5()
    assert n_params(net) == 61_706 == 156 + 2_416 + 48_120 + 10_164 + 850
    assert [type(m).__name__ for m in net] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
        "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert (net[0].kernel_size, net[0].padding, net[3].kernel_size) == ((5, 5), (2, 2), (5, 5))


def test_lenet5_output_shape_and_arguments():
    net = models.lenet5(num_classes=7, in_channels=3)
    assert net(np.zeros((4, 3, 28, 28), dtype=np.float32)).shape == (4, 7)
    assert n_params(net) == 61_706 + 2 * 6 * 25 - 3 * 84 - 3


def test_lenet5_loads_a_torch_state_dict_and_gives_torchs_outputs(float64):
    torch.manual_seed(0)
    theirs, ours = torch_lenet5(), models.lenet5()
    assert_same_keys_and_shapes(ours, theirs)
    ours.load_state_dict(torch_state(theirs))
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28))
    a, b = run_both(ours, theirs, x)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lenet5_docstring_names_the_differences_from_the_paper():
    doc = models.lenet5.__doc__
    for point in ("1,516", "Table I", "trainable coefficient", "tanh", "RBF", "61,706"):
        assert point in doc


# ----------------------------------------------------------------- convnet

def torch_convnet(width, num_classes=10, in_channels=1):
    w1, w2 = width, 2 * width
    return tnn.Sequential(
        tnn.Conv2d(in_channels, w1, 3, padding=1), tnn.BatchNorm2d(w1), tnn.ReLU(),
        tnn.Conv2d(w1, w1, 3, padding=1), tnn.BatchNorm2d(w1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(w1, w2, 3, padding=1), tnn.BatchNorm2d(w2), tnn.ReLU(),
        tnn.Conv2d(w2, w2, 3, padding=1), tnn.BatchNorm2d(w2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Dropout(0.25), tnn.Linear(w2 * 49, num_classes))


@pytest.mark.parametrize("width", [8, 3])
def test_convnet_parameter_count(width):
    w1, w2 = width, 2 * width
    conv = (9 * w1 + w1) + (9 * w1 * w1 + w1) + (9 * w1 * w2 + w2) + (9 * w2 * w2 + w2)
    bn = 2 * (2 * w1 + 2 * w2)
    assert n_params(models.convnet(width=width)) == conv + bn + w2 * 49 * 10 + 10


def test_convnet_default_width_is_8():
    assert n_params(models.convnet()) == 12_098


def test_convnet_output_shape_and_arguments():
    net = models.convnet(num_classes=5, in_channels=3, width=4)
    assert net(np.zeros((2, 3, 28, 28), dtype=np.float32)).shape == (2, 5)
    assert net[0].in_channels == 3 and net[-1].in_features == 8 * 7 * 7


def test_convnet_matches_its_torch_twin_in_training_and_in_eval(float64):
    torch.manual_seed(0)
    theirs, ours = torch_convnet(4, num_classes=3, in_channels=2), models.convnet(3, 2, width=4)
    assert_same_keys_and_shapes(ours, theirs)
    ours.load_state_dict(torch_state(theirs))
    for m in (ours[-2], theirs[-2]):  # dropout off, batch norm in training mode
        m.p = 0.0
    x = np.random.default_rng(1).standard_normal((6, 2, 28, 28))
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-11)
    a, b = run_both(ours, theirs, x)  # eval: the running statistics updated by that batch
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------- VGG

def torch_features(cfg, batch_norm, in_channels=3):
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(tnn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [tnn.Conv2d(c, v, kernel_size=3, padding=1)]
            layers += [tnn.BatchNorm2d(v)] if batch_norm else []
            layers += [tnn.ReLU(inplace=True)]
            c = v
    return tnn.Sequential(*layers)


class TorchVGG(tnn.Module):
    """torchvision.models.VGG, written out."""

    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def skip_default_linear_init(mp):
    """Skip nn.Linear's own initialisation, which VGG overwrites anyway (saves seconds on 120 M weights)."""
    mp.setattr(nn.Linear, "reset_parameters", lambda self: None)


@pytest.fixture(scope="module")
def vgg16_model():
    convkit.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        skip_default_linear_init(mp)
        return models.vgg16()


def test_vgg16_has_138357544_parameters(vgg16_model):
    assert n_params(vgg16_model) == 138_357_544


def test_vgg16_state_dict_matches_torchvisions_and_gives_its_outputs(vgg16_model):
    torch.manual_seed(0)
    theirs = TorchVGG(torch_features(CFGS[16], batch_norm=False))
    assert_same_keys_and_shapes(vgg16_model, theirs)
    assert list(vgg16_model.state_dict())[:2] == ["features.0.weight", "features.0.bias"]
    assert list(vgg16_model.state_dict())[-1] == "classifier.6.bias"
    ours_before = vgg16_model.state_dict()
    try:
        vgg16_model.load_state_dict(torch_state(theirs))
        x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
        a, b = run_both(vgg16_model, theirs, x)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    finally:  # the fixture is shared: put convkit's own initialisation back
        vgg16_model.load_state_dict(ours_before)


def test_vgg16_forward_shapes_for_other_sizes(vgg16_model):
    with convkit.no_grad():
        assert vgg16_model.eval()(np.zeros((2, 3, 40, 33), dtype=np.float32)).shape == (2, 1000)
        assert vgg16_model.features(np.zeros((1, 3, 64, 32), dtype=np.float32)).shape == (1, 512, 2, 1)


def test_vgg_initialisation_is_torchvisions(vgg16_model):
    for name, p in vgg16_model.named_parameters():
        w = p.numpy()
        if name.endswith("bias"):
            assert not np.any(w), name
        elif w.ndim == 4:  # kaiming_normal_, fan_out, relu: std = sqrt(2 / (C_out * 9))
            np.testing.assert_allclose(w.std(), np.sqrt(2 / (w.shape[0] * 9)), rtol=0.1, err_msg=name)
            assert abs(w.mean()) < 0.1 * w.std(), name
        else:  # normal(0, 0.01)
            np.testing.assert_allclose(w.std(), 0.01, rtol=0.05, err_msg=name)
            assert abs(w.mean()) < 1e-3, name


def test_vgg_classifier_layout(vgg16_model):
    c = vgg16_model.classifier
    assert [type(m).__name__ for m in c] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert (c[0].in_features, c[0].out_features, c[3].out_features, c[6].out_features) == (25088, 4096, 4096, 1000)
    assert c[2].p == c[5].p == 0.5
    assert vgg16_model.avgpool.output_size == (7, 7)


def classifier_params(num_classes):
    return 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * num_classes + num_classes


@pytest.mark.parametrize("depth, total", [(11, 132_863_336), (13, 133_047_848), (16, 138_357_544),
                                          (19, 143_667_240)])
def test_vgg_parameter_counts_from_features_and_classifier(depth, total):
    conv = sum(9 * c_in * c_out + c_out for c_in, c_out in
               zip([3] + [v for v in CFGS[depth] if v != "M"], [v for v in CFGS[depth] if v != "M"]))
    assert conv + classifier_params(1000) == total
    assert n_params(vgg_module.make_layers(vgg_module.CFGS[{11: "A", 13: "B", 16: "D", 19: "E"}[depth]])) == conv


@pytest.mark.parametrize("depth, batch_norm", [(11, True), (16, True), (13, False)])
def test_vgg_features_keys_and_shapes_match_torchvision(depth, batch_norm):
    cfg = vgg_module.CFGS[{11: "A", 13: "B", 16: "D"}[depth]]
    assert cfg == CFGS[depth]
    ours = vgg_module.make_layers(cfg, batch_norm=batch_norm, in_channels=1)
    assert_same_keys_and_shapes(ours, torch_features(CFGS[depth], batch_norm, in_channels=1))


@pytest.fixture
def light_vgg(monkeypatch):
    """VGG's constructor replaced by a recorder, so the factories can be checked without 550 MB each."""
    calls = []

    def record(features, num_classes=1000, init_weights=True, dropout=0.5):
        calls.append(dict(features=features, num_classes=num_classes, dropout=dropout))
        return calls[-1]

    monkeypatch.setattr(vgg_module, "VGG", record)
    return calls


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
def test_vgg_factories_pass_config_batch_norm_channels_classes_and_dropout(light_vgg, depth):
    plain = getattr(models, f"vgg{depth}")(num_classes=5, in_channels=1, dropout=0.3)
    bn = getattr(models, f"vgg{depth}")(batch_norm=True)
    alias = getattr(models, f"vgg{depth}_bn")(num_classes=7, in_channels=2, dropout=0.1)
    n_conv = len([v for v in CFGS[depth] if v != "M"])
    for made, with_bn, classes, channels, p in ((plain, False, 5, 1, 0.3), (bn, True, 1000, 3, 0.5),
                                                (alias, True, 7, 2, 0.1)):
        kinds = [type(m).__name__ for m in made["features"]]
        assert kinds.count("Conv2d") == n_conv and kinds.count("MaxPool2d") == 5
        assert kinds.count("BatchNorm2d") == (n_conv if with_bn else 0)
        assert made["features"][0].in_channels == channels
        assert (made["num_classes"], made["dropout"]) == (classes, p)


def test_vgg_class_takes_any_512_channel_features_and_can_skip_initialisation(monkeypatch):
    skip_default_linear_init(monkeypatch)
    features = [nn.Sequential(nn.Conv2d(2, 512, 1), nn.BatchNorm2d(512)) for _ in range(2)]
    calls = []
    for name in ("kaiming_normal_", "normal_", "zeros_", "ones_"):
        monkeypatch.setattr(nn.init, name, lambda *args, name=name, **kwargs: calls.append(name))
    net = models.VGG(features[0], num_classes=3, dropout=0.2, init_weights=False)
    assert calls == []
    with np.errstate(over="ignore", invalid="ignore"):  # the skipped init leaves arbitrary weights
        assert net(np.zeros((2, 2, 5, 9), dtype=np.float32)).shape == (2, 3)
    assert net.classifier[2].p == net.classifier[5].p == 0.2
    models.VGG(features[1], num_classes=3)
    assert sorted(calls) == sorted(["kaiming_normal_", "zeros_", "ones_", "zeros_"] + ["normal_", "zeros_"] * 3)


# ----------------------------------------------------------------- build() and available()

def test_available_lists_every_builtin_with_a_description():
    lines = models.available()
    names = [line.split(": ", 1)[0] for line in lines]
    assert names == (["lenet5", "convnet"] + [f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")]
                     + ["resnet18", "resnet34", "resnet20"])
    assert all(len(line.split(": ", 1)[1]) > 10 and "\n" not in line for line in lines)


def test_build_lenet5_and_convnet_for_the_input_channels_and_classes():
    net = models.build("lenet5", input_size=(3, 28, 28), num_classes=4)
    assert repr(net) == repr(models.lenet5(num_classes=4, in_channels=3))
    net = models.build("  ConvNet ", num_classes=2)
    assert net(np.zeros((1, 1, 28, 28), dtype=np.float32)).shape == (1, 2)


def test_build_vgg_names(light_vgg):
    made = models.build("vgg16_bn", input_size=(1, 32, 32), num_classes=10)
    assert made["num_classes"] == 10 and made["features"][0].in_channels == 1
    assert any(isinstance(m, nn.BatchNorm2d) for m in made["features"])
    made = models.build("vgg11", input_size=(3, 224, 224), num_classes=1000)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in made["features"])


def test_build_rejects_inputs_too_small_for_vgg_and_suggests_32x32(light_vgg):
    with pytest.raises(ValueError, match=r"vgg19 needs inputs of at least 32x32 .*28x28 -> 0x0.*input_size "
                                         r"\(1, 28, 28\); pad or resize the images to 32x32"):
        models.build("vgg19")
    with pytest.raises(ValueError, match=r"31x64 -> 0x2"):
        models.build("vgg11_bn", input_size=(3, 31, 64))
    assert light_vgg == []


@pytest.mark.parametrize("name", ["lenet5", "convnet"])
@pytest.mark.parametrize("size", [(1, 32, 32), (1, 27, 28), (1, 28, 14)])
def test_build_rejects_sizes_the_28x28_models_cannot_take(name, size):
    with pytest.raises(ValueError, match=rf"build: {name} takes 28x28 inputs .*got input_size "
                                         rf"\({size[0]}, {size[1]}, {size[2]}\)"):
        models.build(name, input_size=size)


def test_build_reads_anything_else_as_a_spec():
    net = models.build("conv3-10 pool2 conv3-10 pool2 flatten fc3", input_size=(2, 14, 14))
    assert repr(net) == repr(models.from_spec("conv3-10 pool2 conv3-10 pool2 flatten fc3", (2, 14, 14)))
    assert net[-1].in_features == 10 * 2 * 2
    assert [type(m).__name__ for m in models.build("gap")] == ["GlobalAvgPool2d"]


@pytest.mark.parametrize("name", ["vgg20", "lenet", "resnet50", "VGG-16"])
def test_build_unknown_name_lists_the_builtins_and_mentions_specs(name):
    with pytest.raises(ValueError) as info:
        models.build(name)
    message = str(info.value)
    assert message.startswith(f"build: unknown model {name!r}; built-in models are lenet5, convnet, vgg11")
    assert "vgg19_bn" in message and "spec string" in message


def test_build_reports_spec_errors_with_the_caret():
    with pytest.raises(ValueError, match=r"spec: unknown token 'pool2x' at column 10\n  conv3-10 pool2x\n"):
        models.build("conv3-10 pool2x")


@pytest.mark.parametrize("kwargs, error, text", [
    (dict(model=None), TypeError, "build: model must be a str"),
    (dict(model="lenet5", input_size=(28, 28)), ValueError, "build: input_size must be (C, H, W)"),
    (dict(model="lenet5", input_size=(1, 0, 28)), ValueError, "build: input_size must be (C, H, W)"),
    (dict(model="lenet5", num_classes=0), ValueError,
     "build: num_classes must be a positive int or None (the model's own), got 0"),
    (dict(model="lenet5", num_classes=2.0), ValueError, "build: num_classes must be a positive int or None"),
])
def test_build_rejects_bad_arguments(kwargs, error, text):
    with pytest.raises(error) as info:
        models.build(**kwargs)
    assert text in str(info.value)


def test_the_public_api():
    assert sorted(models.__all__) == sorted([
        "lenet5", "convnet", "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
        "vgg19_bn", "ResNet", "resnet18", "resnet34", "resnet20", "from_spec", "build", "parameter_count",
        "available"])
