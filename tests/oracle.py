"""The PyTorch oracle: run the same float64 data through convkit and torch, compare everything.

``compare(ck_fn, torch_fn, inputs)`` feeds ``inputs`` (ndarrays) to both
functions (as convkit Tensors / torch tensors with requires_grad), checks
output shape, dtype and values, then backpropagates one random cotangent
through both and compares every input gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import convkit  # noqa: E402

ATOL, RTOL = 1e-10, 1e-8  # float64


def compare(ck_fn, torch_fn, inputs, *, grad=True, seed=0, atol=ATOL, rtol=RTOL, grad_inputs=None):
    """Assert convkit and torch agree on output and on every gradient.

    Args:
        ck_fn: callable taking convkit Tensors, returning a Tensor.
        torch_fn: callable taking torch tensors, returning a tensor.
        inputs: list of ndarrays (float64 for differentiable inputs).
        grad_inputs: indices of inputs to differentiate (default: all float inputs).
    Returns the convkit output as an ndarray.
    """
    rng = np.random.default_rng(seed)
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(inputs) if np.asarray(a).dtype.kind == "f"]
    grad_inputs = grad_inputs if grad else []
    ck_in = [convkit.tensor(a, requires_grad=i in grad_inputs) for i, a in enumerate(inputs)]
    th_in = [torch.tensor(np.asarray(a), requires_grad=i in grad_inputs) for i, a in enumerate(inputs)]
    ck_out = ck_fn(*ck_in)
    th_out = torch_fn(*th_in)
    ck_arr, th_arr = np.asarray(ck_out.data), th_out.detach().numpy()
    assert ck_arr.shape == th_arr.shape, f"output shape {ck_arr.shape} != torch {th_arr.shape}"
    assert ck_arr.dtype == th_arr.dtype, f"output dtype {ck_arr.dtype} != torch {th_arr.dtype}"
    np.testing.assert_allclose(ck_arr, th_arr, atol=atol, rtol=rtol, err_msg="forward")
    if grad_inputs:
        cot = rng.standard_normal(ck_arr.shape)
        ck_out.backward(cot.astype(ck_arr.dtype))
        th_out.backward(torch.tensor(cot.astype(th_arr.dtype)))
        for i in grad_inputs:
            tg = th_in[i].grad
            cg = ck_in[i].grad
            if tg is None:
                assert cg is None or not np.any(cg), f"input {i}: torch gives no grad, convkit gives one"
                continue
            assert cg is not None, f"input {i}: convkit produced no gradient"
            np.testing.assert_allclose(cg, tg.numpy(), atol=atol, rtol=rtol, err_msg=f"grad of input {i}")
    return ck_arr


def raises_like_torch(ck_call, torch_call, ck_exc=(ValueError, TypeError)):
    """Assert torch rejects the call and convkit raises a ValueError/TypeError for it; return the message."""
    with pytest.raises(Exception):
        torch_call()
    with pytest.raises(ck_exc) as info:
        ck_call()
    return str(info.value)


def compare_modules(ours, theirs, x, *, seed=1):
    """Assert a convkit module equals a torch module: repr, state_dict keys, output, input and parameter grads.

    ``theirs`` (float64) is the source of the weights: its state_dict is loaded into ``ours`` first.
    """
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    compare(lambda t: ours(t), lambda t: theirs(t), [x])
    cot = np.random.default_rng(seed).standard_normal(ours(x).shape)
    ours(x).backward(cot)
    theirs(torch.tensor(x)).backward(torch.tensor(cot))
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), rtol=RTOL, atol=ATOL)
