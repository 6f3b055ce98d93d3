"""Batch normalisation step by step: statistics, normalisation, γ/β, running estimates, inference.

Per channel ``c`` over its ``m`` values (the batch for a dense layer's
``(N, C)`` output; batch and positions for a conv layer's ``(N, C, H, W)``)::

    μ = (1/m) Σ x        σ² = (1/m) Σ (x − μ)²   (biased)
    x̂ = (x − μ)/√(σ² + ε)        y = γ·x̂ + β
    running_mean ← (1 − momentum)·running_mean + momentum·μ
    running_var  ← (1 − momentum)·running_var  + momentum·σ²·m/(m − 1)   (unbiased)

In inference the running estimates replace μ and σ². ``x̂``, ``y``, the
running estimates and the inference output come from ``F.batch_norm``.

>>> e = batch_norm([[1.0], [2.0], [3.0], [4.0]])
>>> e.result["running_var"]
array([1.06666667])
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .explanation import Explanation, Matrix, Step, fmt
from .figures import Frame, Frames, Mark, cell_of, running_sums
from .operands import as_array, extent, plural, vector
from .sums import join_terms

__all__ = ["batch_norm"]

MAX_ROWS_SHOWN = 4


def batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None, training=True,
               momentum=0.1, eps=1e-05) -> Explanation:
    """Explain ``F.batch_norm`` on one batch, in training (with the running update) or inference.

    Args:
        input: ``(N, C)`` (a dense layer: C units) or ``(N, C, L)`` / ``(N, C, H, W)`` (a conv layer).
        running_mean, running_var: ``(C,)`` running estimates before this step. Default: None
            (a fresh layer: zeros and ones). They are not modified; the updated ones are in ``result``.
        weight, bias: ``γ`` and ``β``, ``(C,)`` or None (1 and 0). Default: None.
        training (bool): normalise with the batch statistics and update the running estimates.
            Default: True here (PyTorch's functional default is False), since the batch
            statistics are what there is to explain.
        momentum (float): weight of the batch statistic in the running update. Default: 0.1.
        eps (float): added to the variance under the square root. Default: 1e-05.

    Returns an ``Explanation`` whose ``result`` is a dict: ``output``, ``running_mean`` and
    ``running_var`` (after the step), and in training also ``batch_mean``, ``batch_var``
    (biased), ``normalized`` (``x̂``) and ``eval_output`` (the same batch in inference with
    the updated estimates).
    """
    op = "batch_norm"
    x = as_array(input, "input", op)
    if x.ndim < 2 or x.ndim > 4:
        raise ValueError(f"{op}: input must be (N, C), (N, C, L) or (N, C, H, W), got shape {x.shape}; "
                         "e.g. [[1, 2], [3, 4], [5, 6]] is 3 samples of 2 units")
    channels = x.shape[1]
    rm = np.zeros(channels) if running_mean is None else vector(running_mean, channels, "running_mean", op,
                                                                 "one per channel")
    rv = np.ones(channels) if running_var is None else vector(running_var, channels, "running_var", op,
                                                              "one per channel")
    gamma = vector(weight, channels, "weight", op, "γ, one per channel")
    beta = vector(bias, channels, "bias", op, "β, one per channel")
    new_rm, new_rv = rm.copy(), rv.copy()
    out = F.batch_norm(x, new_rm, new_rv, gamma, beta, training, momentum, eps).numpy()
    unit = "unit" if x.ndim == 2 else "channel"
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // channels
    steps = [_input_step(x)]
    source = "gets" if training else "has running estimates standing in for"
    if x.ndim == 2:
        steps.append(Step(f"A dense layer's batch norm works per unit (column), over the batch: each of the "
                          f"{plural(channels, 'unit')} {source} its own μ and σ², from its {x.shape[0]} values in "
                          "training."))
    else:
        letters = "·".join(("L",) if x.ndim == 3 else ("H", "W"))
        sizes = "·".join(str(n) for n in x.shape[2:])
        steps.append(Step(f"A conv layer's batch norm works per channel, over the batch and the positions: each of "
                          f"the {plural(channels, 'channel')} {source} one μ and σ², from its N·{letters} = "
                          f"{x.shape[0]}·{sizes} = {m} values in training, shared by all positions as the kernel is."))
    result: dict[str, np.ndarray] = {"output": out}
    if training:
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        xhat = F.batch_norm(x, None, None, None, None, True, momentum, eps).numpy()
        values = [np.moveaxis(x, 1, 0)[c].ravel() for c in range(channels)]
        means = tuple(f"μ[{c}] = ({join_terms([fmt(v) for v in values[c]], 'terms')})/{m} = {fmt(mu[c])}"
                      for c in range(channels))
        steps.append(Step("The batch mean of each " + unit + ", `μ = (1/m) Σ x`:", means,
                          figure=_channel_frames(x, means, [[fmt(v) for v in values[c]] for c in range(channels)],
                                                 values)))
        squares = [(values[c] - mu[c]) ** 2 for c in range(channels)]
        variances = tuple(f"σ²[{c}] = ({join_terms([f'({fmt(v)} − {fmt(mu[c])})²' for v in values[c]], 'terms')})"
                          f"/{m} = {fmt(var[c])}" for c in range(channels))
        steps.append(Step("The batch variance, biased (divided by m, as PyTorch normalises), "
                          "`σ² = (1/m) Σ (x − μ)²`:", variances,
                          figure=_channel_frames(x, variances, [[f"({fmt(v)} − {fmt(mu[c])})²" for v in values[c]]
                                                                for c in range(channels)], squares)))
        first = tuple(np.unravel_index(0, x.shape))
        normalised = tuple(f"x̂{_idx(cell)} = ({fmt(x[cell])} − {fmt(mu[cell[1]])})/√({fmt(var[cell[1]])} + "
                           f"{fmt(eps)}) = {fmt(xhat[cell])}" for cell in _examples(x.shape, first))
        steps.append(Step(f"Normalise: `x̂ = (x − μ)/√(σ² + ε)` with ε = {fmt(eps)}, so each {unit} has mean 0 "
                          "and variance about 1; for example:", normalised, _matrices("x̂", xhat),
                          _map_frames(normalised, ("x", x), ("x̂", xhat))))
        steps.append(_affine_step(gamma, beta, xhat, out))
        steps.append(Step(f"Update the running estimates (momentum = {fmt(momentum)}): "
                          "`running_mean ← (1 − momentum)·running_mean + momentum·μ`, and the same for running_var with the UNBIASED variance `σ²·m/(m − 1)` — "
                          "normalising uses the biased one, the running estimate stores the unbiased one.",
                          tuple(f"running_mean[{c}] = {fmt(1 - momentum)}·{fmt(rm[c])} + {fmt(momentum)}·{fmt(mu[c])}"
                                f" = {fmt(new_rm[c])}" for c in range(channels))
                          + tuple(f"running_var[{c}] = {fmt(1 - momentum)}·{fmt(rv[c])} + {fmt(momentum)}·"
                                  f"{fmt(var[c])}·{m}/{m - 1} = {fmt(new_rv[c])}" for c in range(channels))))
        eval_rm, eval_rv = new_rm.copy(), new_rv.copy()
        eval_out = F.batch_norm(x, eval_rm, eval_rv, gamma, beta, False, momentum, eps).numpy()
        steps.append(Step("In inference (eval mode) the layer normalises with the running estimates instead of the "
                          "batch's, `y = γ·(x − running_mean)/√(running_var + ε) + β`, a fixed affine map per "
                          f"{unit}; on this batch, right after this step, that gives:",
                          (f"y{_idx(first)} = {_gamma(gamma, first[1])}({fmt(x[first])} − {fmt(new_rm[first[1]])})"
                           f"/√({fmt(new_rv[first[1]])} + {fmt(eps)}){_beta(beta, first[1])} = "
                           f"{fmt(eval_out[first])}",), _matrices("y_eval", eval_out)))
        result.update(batch_mean=mu, batch_var=var, normalized=xhat, eval_output=eval_out)
    else:
        first = tuple(np.unravel_index(0, x.shape))
        inferred = tuple(f"y{_idx(cell)} = {_gamma(gamma, cell[1])}({fmt(x[cell])} − {fmt(rm[cell[1]])})"
                         f"/√({fmt(rv[cell[1]])} + {fmt(eps)}){_beta(beta, cell[1])} = {fmt(out[cell])}"
                         for cell in _examples(x.shape, first))
        steps.append(Step("Inference (training=False): normalise with the running estimates, "
                          "`y = γ·(x − running_mean)/√(running_var + ε) + β`; the batch's own statistics are not "
                          "used and the estimates do not change.", inferred, _matrices("y", out),
                          _map_frames(inferred, ("x", x), ("y", out))))
    result.update(running_mean=new_rm, running_var=new_rv)
    layer = "dense" if x.ndim == 2 else "conv"
    title = (f"batch_norm ({'training' if training else 'inference'}): a batch of {x.shape[0]} "
             f"{layer}-layer outputs, {plural(channels, unit)}" + (f" of {extent(x.shape[2:])}" if x.ndim > 2 else ""))
    return Explanation(title, steps, result)


def _channel_frames(x: np.ndarray, captions, terms, values) -> Frames:
    """One frame per channel: its ``m`` values lit up in the batch, ``terms[c]`` with their running sum."""
    return Frames(_matrices("x", x), tuple(Frame(caption, _channel_marks(x.shape, 0, c, "window"), tuple(terms[c]),
                                                 running_sums(values[c])) for c, caption in enumerate(captions)))


def _map_frames(captions, before: tuple[str, np.ndarray], after: tuple[str, np.ndarray]) -> Frames:
    """One frame per channel: its values in the ``before`` array and what they become in the ``after`` one."""
    first, second = _matrices(*before), _matrices(*after)
    return Frames(first + second, tuple(
        Frame(caption, _channel_marks(before[1].shape, 0, c, "window")
              + _channel_marks(after[1].shape, len(first), c, "out")) for c, caption in enumerate(captions)))


def _channel_marks(shape, start: int, c: int, role: str) -> tuple[Mark, ...]:
    """Channel ``c``'s cells in the matrices ``_matrices`` shows for an array of ``shape``, from stage ``start`` on."""
    if len(shape) == 2:
        return (Mark(start, role, tuple((n, c) for n in range(shape[0]))),)
    shown = min(shape[0], MAX_ROWS_SHOWN)
    cells = tuple(cell_of(i) for i in np.ndindex(*shape[2:]))
    return tuple(Mark(start + c * shown + i, role, cells) for i in range(shown))


def _idx(cell) -> str:
    return f"[{','.join(str(int(i)) for i in cell)}]"


def _examples(shape, first) -> list[tuple]:
    """One cell per channel (the first sample's first position), for the worked formulas."""
    return [(first[0], c) + tuple(first[2:]) for c in range(shape[1])]


def _gamma(gamma, c) -> str:
    return "" if gamma is None else f"{fmt(gamma[c])}·"


def _beta(beta, c) -> str:
    return "" if beta is None else f" + {fmt(beta[c])}"


def _matrices(name: str, a: np.ndarray) -> tuple[Matrix, ...]:
    """``(N, C)`` as one matrix (rows: samples); ``(N, C, *sp)`` one per sample and channel (the first few samples)."""
    if a.ndim == 2:
        return (Matrix(name, a),)
    n = min(a.shape[0], MAX_ROWS_SHOWN)
    return tuple(Matrix(f"{name}[{i},{c}]", a[i, c]) for c in range(a.shape[1]) for i in range(n))


def _input_step(x: np.ndarray) -> Step:
    if x.ndim == 2:
        text = (f"The batch x: {plural(x.shape[0], 'sample')} (rows) × {plural(x.shape[1], 'unit')} (columns), "
                "the output of a dense layer.")
    else:
        text = (f"The batch x: {plural(x.shape[0], 'sample')} × {plural(x.shape[1], 'channel')} of "
                f"{extent(x.shape[2:])}, the output of a conv layer; x[n,c] is sample n, channel c.")
    if x.ndim > 2 and x.shape[0] > MAX_ROWS_SHOWN:
        text += f" The first {MAX_ROWS_SHOWN} samples are shown."
    return Step(text, value=_matrices("x", x))


def _affine_step(gamma, beta, xhat, out) -> Step:
    if gamma is None and beta is None:
        return Step("No γ (weight) or β (bias) given: `y = x̂` (γ = 1, β = 0).", value=_matrices("y", out))
    channels = xhat.shape[1]
    g = np.ones(channels) if gamma is None else gamma
    b = np.zeros(channels) if beta is None else beta
    affine = tuple(f"y[:,{c}] = {fmt(g[c])}·x̂[:,{c}] + {fmt(b[c])}" for c in range(channels))
    return Step("Scale and shift with the learned γ (weight) and β (bias), `y = γ·x̂ + β`, so the layer can undo "
                "the normalisation where that helps:", affine, _matrices("y", out),
                _map_frames(affine, ("x̂", xhat), ("y", out)))
