"""Whole models against PyTorch: state_dicts carry over both ways, and training steps agree.

These tests exercise the stack end to end (nn modules, functional ops,
autograd, optimizers) on the layers of a classic CNN: conv, batch norm,
ReLU, max/avg pooling, dropout (off in eval), flatten, linear.
"""

import numpy as np
import pytest
from oracle import torch

import convkit
import convkit.nn as nn

tnn = torch.nn


def small_cnn(lib):
    """The same architecture in convkit (lib=nn) or torch (lib=torch.nn)."""
    return lib.Sequential(
        lib.Conv2d(1, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(4, 6, 3, stride=1, padding="same", groups=2, bias=False), lib.BatchNorm2d(6),
        lib.LeakyReLU(0.1), lib.AvgPool2d(2, ceil_mode=True),
        lib.Flatten(), lib.Dropout(0.5), lib.Linear(6 * 2 * 2, 10),
    )


def torch_state_as_numpy(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_state_dict_keys_and_shapes_match_torch():
    ours, theirs = small_cnn(nn), small_cnn(tnn)
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs)
    for k in sd_theirs:
        assert sd_ours[k].shape == tuple(sd_theirs[k].shape), k
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_torch_weights_load_and_give_the_same_outputs(float64):
    torch.manual_seed(0)
    theirs = small_cnn(tnn)
    x = np.random.default_rng(0).standard_normal((5, 1, 7, 7))
    with torch.no_grad():  # give BN non-trivial running statistics first
        theirs.train()(torch.tensor(x))
    ours = small_cnn(nn)
    ours.load_state_dict(torch_state_as_numpy(theirs))
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.state_dict()["1.num_batches_tracked"], 1)


def test_convkit_weights_load_into_torch(float64):
    convkit.manual_seed(1)
    ours = small_cnn(nn)
    theirs = small_cnn(tnn)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    ours.eval(), theirs.eval()
    x = np.random.default_rng(1).standard_normal((3, 1, 7, 7))
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make_opt", [
    lambda lib, p: lib.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda lib, p: lib.Adam(p, lr=1e-2),
])
def test_training_steps_match_torch(float64, make_opt):
    """Ten full training steps (BN in training mode, cross-entropy, optimizer) agree with torch."""
    torch.manual_seed(2)
    theirs = small_cnn(tnn)
    theirs[9] = tnn.Identity()  # dropout masks come from different generators
    ours = small_cnn(nn)
    ours._modules["9"] = nn.Identity()
    ours.load_state_dict(torch_state_as_numpy(theirs))
    opt_ours = make_opt(convkit.optim, ours.parameters())
    opt_theirs = make_opt(torch.optim, theirs.parameters())
    rng = np.random.default_rng(2)
    for _ in range(10):
        x = rng.standard_normal((8, 1, 7, 7))
        y = rng.integers(0, 10, size=8)
        loss_ours = convkit.functional.cross_entropy(ours(x), y)
        opt_ours.zero_grad()
        loss_ours.backward()
        opt_ours.step()
        loss_theirs = tnn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        opt_theirs.zero_grad()
        loss_theirs.backward()
        opt_theirs.step()
        np.testing.assert_allclose(loss_ours.item(), loss_theirs.item(), rtol=1e-9)
    final = torch_state_as_numpy(theirs)
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v, final[k], rtol=1e-8, atol=1e-10, err_msg=k)
