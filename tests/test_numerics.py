"""Activations and losses: exact values, derivatives, and silence at extreme inputs."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnn_manual.cells.activations import ACTIVATIONS, sigmoid
from rnn_manual.cells.losses import LOSSES, OUTPUT_OF
from rnn_manual.cells.outputs import OUTPUTS

EXTREMES = np.array([-1e4, -800.0, -100.0, -1.0, 0.0, 1.0, 100.0, 800.0, 1e4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_finite_silent_and_exact_at_extremes(dtype: type) -> None:
    a = EXTREMES.astype(dtype)
    with np.errstate(all="raise"):
        s = sigmoid(a.copy())
    assert np.isfinite(s).all()
    assert s[0] == 0.0 and s[-1] == 1.0 and s[4] == 0.5
    assert np.all(np.diff(s) >= 0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_are_silent_at_extremes(name: str, dtype: type) -> None:
    f, df = ACTIVATIONS[name]
    with np.errstate(all="raise"):
        h = f(EXTREMES.astype(dtype))
        assert np.isfinite(df(h)).all()
    assert np.isfinite(h).all() and h.dtype == dtype


def test_activation_values() -> None:
    a = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(
        ACTIVATIONS["sigmoid"][0](a.copy()), 1 / (1 + np.exp(-a)), rtol=1e-15
    )
    np.testing.assert_allclose(ACTIVATIONS["tanh"][0](a), np.tanh(a), rtol=1e-15)
    np.testing.assert_array_equal(ACTIVATIONS["relu"][0](a), [0, 0, 0.5, 2.0])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(a=arrays(np.float64, 12, elements=st.floats(-6, 6).filter(lambda v: abs(v) > 1e-3)))
def test_derivative_from_output_matches_central_difference(name: str, a: np.ndarray) -> None:
    f, df = ACTIVATIONS[name]
    eps = 1e-6
    numeric = (f(a + eps) - f(a - eps)) / (2 * eps)
    np.testing.assert_allclose(df(f(a)), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_finite_and_silent_at_extreme_logits(name: str, dtype: type) -> None:
    """Every loss on its own output layer, under errstate(all="raise"): the sigmoid's on
    each extreme logit, the softmax's on pairs of them and on the dtype's largest logit
    beside its smallest (z - max z overflows to -inf there: exactly 0 after exp), each with
    either target (but the widest pair's smallest: its loss, 3.6e308 in float64, is not a
    float64)."""
    z, y = extreme_logits(name, dtype)
    output = OUTPUTS[OUTPUT_OF[name]].forward
    mirrored = 1.0 - y
    mirrored[-1] = y[-1]
    for target in (y, mirrored):
        with np.errstate(all="raise"):
            loss, dz = LOSSES[name](z, output(z.copy()), target)
        assert np.isfinite(loss) and np.isfinite(dz).all()


def extreme_logits(name: str, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and 0/1 targets (the larger logit's output) for the loss `name`: (n, 1, 1)
    for a sigmoid, each EXTREMES value; (n + 1, 1, 2) for a softmax, each value beside its
    negation, then the dtype's largest beside its smallest."""
    if OUTPUT_OF[name] == "sigmoid":
        z = EXTREMES.astype(dtype).reshape(-1, 1, 1)
        return z, (z > 0).astype(dtype)
    info = np.finfo(dtype)
    pairs = np.stack([EXTREMES, -EXTREMES], axis=-1)
    z = np.concatenate([pairs, [[info.max, info.min]]]).astype(dtype).reshape(-1, 1, 2)
    return z, np.eye(2, dtype=dtype)[(z[..., 0] < z[..., 1]).astype(int)]


def test_bce_value_at_extreme_logits_is_exact() -> None:
    z = np.array([-1e4, 1e4]).reshape(2, 1, 1)
    y = np.array([1.0, 0.0]).reshape(2, 1, 1)
    loss, dz = LOSSES["bce"](z, sigmoid(z.copy()), y)
    assert loss == 2e4  # softplus(1e4) twice
    np.testing.assert_array_equal(dz.ravel(), [-1.0, 1.0])


@pytest.mark.parametrize("name", sorted(LOSSES))
@given(
    z=arrays(np.float64, (3, 4, 2), elements=st.floats(-8, 8)),
    y=arrays(np.float64, (3, 4, 2), elements=st.sampled_from([0.0, 1.0])),
)
def test_loss_gradient_matches_central_difference(name: str, z: np.ndarray, y: np.ndarray) -> None:
    """Every loss's dL/dz, through its own output layer (a softmax's targets: one-hot, the
    drawn 0/1 of the first output choosing between the two)."""
    loss_fn, output = LOSSES[name], OUTPUTS[OUTPUT_OF[name]].forward
    if OUTPUT_OF[name] == "softmax":
        y = np.stack([y[..., 0], 1 - y[..., 0]], axis=-1)
    loss, dz = loss_fn(z, output(z.copy()), y)
    eps = 1e-6
    numeric = np.empty_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += eps
        zm[i] -= eps
        numeric[i] = (
            loss_fn(zp, output(zp.copy()), y)[0] - loss_fn(zm, output(zm.copy()), y)[0]
        ) / (2 * eps)
    # Each difference quotient carries the rounding of two loss values, ~eps_64 * |L| / eps.
    rounding = 10 * np.finfo(np.float64).eps * max(1.0, abs(loss)) / eps
    np.testing.assert_allclose(dz, numeric, rtol=1e-6, atol=rounding)


def test_mse_is_the_tutorials_objective_at_batch_one() -> None:
    z = np.array([0.3, -1.2, 2.0]).reshape(3, 1, 1)
    p = sigmoid(z.copy())
    y = np.array([1.0, 0.0, 1.0]).reshape(3, 1, 1)
    loss, dz = LOSSES["mse"](z, p, y)
    assert loss == pytest.approx(0.5 * np.sum((p - y) ** 2), rel=1e-15)
    np.testing.assert_array_equal(-dz, (y - p) * (p * (1 - p)))  # the tutorial's layer_2_delta


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_on_torch_equal_numpys_and_stay_finite(name: str, dtype: type) -> None:
    """The same functions on torch tensors: finite at the extremes, and NumPy's values to a
    few units in the last place (the libraries' exp and tanh may round differently)."""
    f, df = ACTIVATIONS[name]
    a = np.concatenate([EXTREMES, np.linspace(-5, 5, 41)]).astype(dtype)
    h, h_torch = f(a.copy()), f(torch.from_numpy(a.copy()))
    d, d_torch = df(h), df(h_torch)
    assert isinstance(h_torch, torch.Tensor) and isinstance(d_torch, torch.Tensor)
    ulp = np.finfo(dtype).eps
    np.testing.assert_allclose(h_torch.numpy(), h, rtol=4 * ulp, atol=4 * ulp)
    np.testing.assert_allclose(d_torch.numpy(), d, rtol=8 * ulp, atol=8 * ulp)
    out = torch.empty(a.shape, dtype=h_torch.dtype)
    assert f(torch.from_numpy(a.copy()), out=out) is out  # writes where it is told


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_on_torch_equal_numpys_at_extreme_logits(name: str, dtype: type) -> None:
    z, y = extreme_logits(name, dtype)
    y[:-1:2] = 1.0 - y[:-1:2]  # the other target on every other step (the widest pair aside)
    output = OUTPUTS[OUTPUT_OF[name]].forward
    loss, dz = LOSSES[name](z, output(z.copy()), y)
    z_t, y_t = torch.from_numpy(z), torch.from_numpy(y)
    loss_t, dz_t = LOSSES[name](z_t, output(z_t.clone()), y_t)
    assert isinstance(loss, float) and loss.dtype == np.float64  # a NumPy float64
    assert isinstance(loss_t, torch.Tensor) and loss_t.dtype == torch.float64
    assert loss_t.shape == () and np.isfinite(float(loss_t))
    assert float(loss_t) == pytest.approx(loss, rel=4 * float(np.finfo(dtype).eps))
    np.testing.assert_allclose(dz_t.numpy(), dz, rtol=4 * np.finfo(dtype).eps, atol=0)
