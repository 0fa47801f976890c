"""The softmax output and its cross-entropy loss "ce": stable for logits of any size, equal
to autograd where the logits are extreme, refusing what it cannot judge, and caught when
broken.

The gradient properties over every cell, dtype, size, initial state, bias and truncation
are those of the sigmoid losses: strategies.OBJECTIVES and gated_checks draw "ce" (and the
upstream objective through a softmax) like the others, so test_properties.py, test_gated.py,
test_truncate.py, test_reference.py and the finite-difference checks judge it too. Here:
what those draws do not reach (logits of +-1000), and planted bugs, which must fail the
same check path (rnn_torch.check.gradient_rows) the properties use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from strategies import distributions, examples

from rnn_manual import reference
from rnn_manual.cells import CELLS, Cell
from rnn_manual.cells.losses import LOSSES, ce
from rnn_manual.cells.outputs import OUTPUTS, Output, softmax, softmax_backward
from rnn_manual.core.backend import namespace
from rnn_manual.training.state import TrainConfig
from rnn_torch.check import gradient_rows
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.twin import Twin

Array = NDArray[np.floating]
T, B, I, H, O = 5, 3, 2, 4, 6


def extreme_network(cell: str, dtype: str, scale: float) -> tuple[Cell, Array, Array]:
    """A softmax network whose logits reach about +-scale, with one-hot targets that the
    network gets badly wrong on some steps (so the gradient is not tiny)."""
    rng = np.random.default_rng(11)
    model = CELLS[cell](I, H, O, bias=True, dtype=dtype, seed=rng, output="softmax")
    for _name, w in model.params.items():
        w[...] = rng.normal(0.0, 0.5, w.shape)
    model.params["W_hy"][...] *= scale
    model.params["b_y"][...] = scale * rng.choice([-1.0, 1.0], O)
    x = rng.normal(0.0, 1.0, (T, B, I)).astype(dtype)
    y = distributions(rng, (T, B, O), one_hot=True).astype(dtype)
    return model, x, y


@given(
    logits=st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=8),
    dtype=st.sampled_from(["float32", "float64"]),
)
@examples(1)
def test_softmax_and_ce_are_finite_for_any_finite_logits(logits: list[float], dtype: str) -> None:
    """Every probability in [0, 1], summing to 1 within a few roundings, and a finite loss
    equal to log-sum-exp(z) - z_min within the rounding of logits that large (each of
    z - max z and the log's sum rounds by eps |z|): the largest logit is subtracted first,
    so a float32 logit of 3e38 is fine too."""
    lowest, highest = _range(dtype)
    z = np.clip(np.array(logits), lowest, highest).astype(dtype).reshape(1, 1, -1)
    p = softmax(z)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all(), (z, p)
    assert abs(float(p.sum()) - 1.0) <= 4 * z.size * np.finfo(dtype).eps, p
    y = np.zeros_like(z)
    y[..., int(np.argmin(z))] = 1.0  # the least likely output: the largest loss
    loss, dz = ce(z, p, y)
    assert np.isfinite(float(loss)) and np.isfinite(dz).all()
    exact = float(torch.logsumexp(torch.tensor(z, dtype=torch.float64), -1)) - float(z.min())
    eps = float(np.finfo(dtype).eps)
    allowed = 8 * eps * (float(np.abs(z.astype(np.float64)).max()) + np.log(z.size) + 1)
    assert abs(float(loss) - exact) <= allowed, (float(loss), exact, allowed)


def _range(dtype: str) -> tuple[float, float]:
    info = np.finfo(dtype)
    return float(info.min), float(info.max)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_logits_of_a_thousand_give_autograds_loss_and_gradients(cell: str, dtype: str) -> None:
    """Logits of about +-1000: exp(1000) overflows in both dtypes, so only a softmax and a
    log-sum-exp that subtract the largest logit stay finite. Loss and every gradient equal
    autograd's within the suite's bounds (rnn_torch.compare.judge)."""
    model, x, y = extreme_network(cell, dtype, 1000.0)
    trace = model.run(x)
    assert np.abs(trace.z).max() > 500, "the logits are not extreme: the test tests nothing"
    loss, grads = model.loss_and_grads(x, y, "ce")
    assert np.isfinite(loss) and loss > 100, loss  # wrong by hundreds of nats
    assert all(np.isfinite(g).all() for g in grads.values())
    rows = gradient_rows(model, x, y, "ce")
    assert all(row.passed for row in rows), [(r.name, r.relative, r.limit) for r in rows]


def test_the_reference_ce_equals_the_fast_cells_and_autograd_at_extreme_logits() -> None:
    for cell in sorted(CELLS):
        model, x, y = extreme_network(cell, "float64", 1000.0)
        mine = reference.loss_and_grads(model.params, x, y, loss="ce")
        fast = model.loss_and_grads(x, y, "ce")
        theirs = Twin.from_manual(model).loss_and_grads(x, y, loss="ce")
        for name, g in theirs[1].items():
            for got in (mine[1][name], fast[1][name]):
                err = np.linalg.norm(got - g) / max(np.linalg.norm(g), 1e-300)
                assert err <= FLOAT64_BOUND, (cell, name, err)
        assert abs(mine[0] - theirs[0]) <= FLOAT64_BOUND * abs(theirs[0])


# ---- planted bugs: each must fail the check the properties use ----------------------------


def ce_without_the_target(z: Array, p: Array, y: Array) -> tuple[Array, Array]:
    """min-char-rnn's dy[target] -= 1 forgotten: dL/dz = p / B."""
    loss, _ = ce(z, p, y)
    return loss, p / p.shape[1]


def ce_summed_over_the_batch(z: Array, p: Array, y: Array) -> tuple[Array, Array]:
    """The batch sum where the mean belongs, in the loss and its gradient."""
    loss, dz = ce(z, p, y)
    return loss * p.shape[1], dz * p.shape[1]


def softmax_without_the_max(z: Array) -> Array:
    """exp(z) / sum(exp(z)): right in exact arithmetic, inf / inf = NaN for large logits."""
    xp = namespace(z)
    e = xp.exp(z)
    return e / xp.sum(e, axis=-1, keepdims=True)


def fails(check: Callable[[], None]) -> bool:
    """Whether `check` fails: an assertion, or an error (a NaN under -W error's warnings)."""
    try:
        check()
    except (AssertionError, FloatingPointError, RuntimeWarning, ValueError):
        return True
    return False


def check_against_autograd(cell: str, scale: float, batch: int = B) -> None:
    """The check of the gradient properties, on one network: gradient_rows all pass."""
    model, x, y = extreme_network(cell, "float64", scale)
    x, y = x[:, :batch], y[:, :batch]
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # as training does
        rows = gradient_rows(model, x, y, "ce")
    assert all(row.passed for row in rows), [r.name for r in rows if not r.passed]


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_the_checks_pass_unplanted(cell: str) -> None:
    """The same checks as below, on the real code: they pass, so a failure below is the
    bug's."""
    check_against_autograd(cell, 1.0)
    check_against_autograd(cell, 1000.0)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_planted_ce_without_the_target_is_caught(
    cell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LOSSES, "ce", ce_without_the_target)
    assert fails(lambda: check_against_autograd(cell, 1.0))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_planted_batch_sum_is_caught(cell: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LOSSES, "ce", ce_summed_over_the_batch)
    assert fails(lambda: check_against_autograd(cell, 1.0))
    assert not fails(lambda: check_against_autograd(cell, 1.0, batch=1)), (
        "at B = 1 a sum is the mean: the check above caught the sum, not something else"
    )


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_planted_softmax_without_the_max_is_caught(
    cell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right for small logits (the properties' draws cannot see it), caught at +-1000."""
    broken = Output(softmax_without_the_max, softmax_backward, distributions=True)
    monkeypatch.setitem(OUTPUTS, "softmax", broken)
    assert not fails(lambda: check_against_autograd(cell, 1.0))
    assert fails(lambda: check_against_autograd(cell, 1000.0))


# ---- what the loss refuses ---------------------------------------------------------------


def test_ce_refuses_targets_that_are_not_distributions() -> None:
    model, x, y = extreme_network("rnn", "float64", 1.0)
    two_ones = np.maximum(y, np.roll(y, 1, axis=-1))  # two targets at every step
    for bad in (two_ones, 0.5 * y, np.full_like(y, 1.0 / O) + 1e-9):
        with pytest.raises(ValueError, match="sum to 1"):
            model.loss_and_grads(x, bad, "ce")
    rounded = np.full_like(y, 1.0 / O)  # sums to 1 up to rounding: accepted
    assert np.isfinite(model.loss_and_grads(x, rounded, "ce")[0])


def test_a_loss_must_fit_the_output_layer() -> None:
    """mse and bce judge a sigmoid, ce a softmax; None takes the output's first loss."""
    sigmoid, softmaxed = CELLS["gru"](I, H, O), CELLS["gru"](I, H, O, output="softmax")
    x = np.zeros((T, B, I))
    y = distributions(np.random.default_rng(0), (T, B, O), one_hot=True)
    with pytest.raises(
        ValueError,
        match=r"loss 'ce' is for a softmax output; this model's "
        r"output is sigmoid, whose losses are mse, bce$",
    ):
        sigmoid.loss_and_grads(x, y, "ce")
    with pytest.raises(
        ValueError,
        match=r"loss 'mse' is for a sigmoid output; this model's "
        r"output is softmax, whose losses are ce$",
    ):
        softmaxed.loss_and_grads(x, y, "mse")
    assert softmaxed.loss_and_grads(x, y)[0] == softmaxed.loss_and_grads(x, y, "ce")[0]
    assert sigmoid.loss_and_grads(x, y)[0] == sigmoid.loss_and_grads(x, y, "mse")[0]
    with pytest.raises(ValueError, match="output must be one of"):
        CELLS["rnn"](I, H, O, output="tanh")
    assert softmaxed.fresh(seed=3).output == "softmax"  # a fresh model of the same kind
    with pytest.raises(ValueError, match=r"loss must be one of \['bce', 'mse'\], got 'ce'"):
        TrainConfig(loss="ce")  # the adder has one sigmoid output


def test_the_softmax_backward_is_the_jacobians_transpose() -> None:
    """softmax_backward(p, v) = J^T v with J = diag(p) - p p^T, the Jacobian written out."""
    rng = np.random.default_rng(5)
    z, v = rng.normal(0.0, 3.0, O), rng.normal(0.0, 1.0, O)
    p = softmax(z)
    jacobian = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(softmax_backward(p, v), jacobian.T @ v, rtol=1e-13, atol=1e-15)
