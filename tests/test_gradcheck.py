"""The manual BPTT gradients against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rnn_manual import RNN
from rnn_manual.core.gradcheck import numeric_gradient, relative_error


@given(
    T=st.integers(1, 6),
    B=st.integers(1, 3),
    H=st.integers(1, 5),
    activation=st.sampled_from(["sigmoid", "tanh", "relu"]),
    bias=st.booleans(),
    loss=st.sampled_from(["mse", "bce"]),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_gradients_match_finite_differences(
    T: int, B: int, H: int, activation: str, bias: bool, loss: str, with_h0: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    model = RNN(2, H, 1, activation, bias, np.float64, seed=rng)
    for w in model.params.values():
        w[...] = rng.normal(0, 0.6, w.shape)
    x = rng.normal(0, 1, (T, B, 2))
    y = rng.integers(0, 2, (T, B, 1)).astype(np.float64)
    h0 = rng.normal(0, 0.5, (B, H)) if with_h0 else None
    if activation == "relu":
        # Central differences must not straddle relu's kink: keep every pre-activation
        # a_t = x_t W_xh + h_{t-1} W_hh + b_h well away from 0 (a step of 1e-6 moves it ~1e-6).
        h = model.run(x, h0).h
        a = x @ model.params["W_xh"] + h[:-1] @ model.params["W_hh"]
        if bias:
            a += model.params["b_h"]
        assume(np.abs(a).min() > 1e-4)
    value, grads = model.loss_and_grads(x, y, loss, h0)
    # A central difference with step 1e-6 is off by ~1e-12 |L'''| (truncation) plus
    # ~eps_64 |L| / 1e-6 (rounding of the two losses) per entry: allow 10 times that, on top
    # of a 1e-7 relative error, so that a tiny gradient is not judged by rounding noise.
    noise = 10 * (np.finfo(np.float64).eps * max(1.0, abs(value)) / 1e-6 + 1e-12)
    inputs = {**model.params, "x": x}
    if h0 is not None:
        inputs["h0"] = h0
    for name, w in inputs.items():
        numeric = numeric_gradient(lambda: model.loss_and_grads(x, y, loss, h0)[0], w)
        gap = np.linalg.norm(grads[name] - numeric)
        allowed = 1e-7 * np.linalg.norm(numeric) + noise * np.sqrt(w.size)
        assert gap <= allowed, (
            f"{name} {w.shape}: |manual - numeric| = {gap:.2e} > {allowed:.2e} "
            f"(relative error {relative_error(grads[name], numeric):.2e})"
        )
    if h0 is None:
        assert grads["h0"].shape == (B, H)


def test_loss_and_grads_keys_and_shapes() -> None:
    model = RNN(3, 5, 2, "tanh", bias=True, seed=1)
    x = np.zeros((4, 6, 3))
    y = np.zeros((4, 6, 2))
    _, grads = model.loss_and_grads(x, y, "bce")
    assert set(grads) == set(model.params) | {"x", "h0"}
    for name, w in model.params.items():
        assert grads[name].shape == w.shape and grads[name].dtype == w.dtype
    assert grads["x"].shape == x.shape and grads["h0"].shape == (6, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_keeps_its_dtype(dtype: type) -> None:
    model = RNN(2, 4, 1, dtype=dtype)
    x = np.ones((3, 2, 2))  # float64 input is cast to the model's dtype
    p = model.forward(x)
    _, grads = model.loss_and_grads(x, np.ones((3, 2, 1)))
    assert p.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())


def test_writing_params_changes_the_model() -> None:
    model = RNN(2, 4, 1, seed=0)
    x = np.ones((3, 1, 2))
    before = model.forward(x).copy()
    model.params["W_hy"][...] = 0.0
    np.testing.assert_array_equal(model.forward(x), 0.5)
    assert not np.array_equal(before, 0.5)


def test_same_seed_same_weights() -> None:
    a, b = RNN(2, 8, 1, seed=3), RNN(2, 8, 1, seed=3)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((3, 2)), "shape"),
        (np.zeros((3, 2, 5)), "shape"),
        (np.zeros((0, 2, 2)), "at least one"),
        (np.zeros((3, 0, 2)), "at least one"),
        (np.full((3, 1, 2), np.nan), "finite"),
        (np.array([[["a", "b"]]]), "real"),
    ],
)
def test_bad_inputs_are_refused(x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RNN(2, 4, 1).forward(x)


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        RNN(2, 0, 1)
    with pytest.raises(ValueError, match="activation"):
        RNN(2, 4, 1, activation="softmax")
    with pytest.raises(ValueError, match="dtype"):
        RNN(2, 4, 1, dtype=np.int32)
    with pytest.raises(ValueError, match="loss"):
        RNN(2, 4, 1).loss_and_grads(np.zeros((1, 1, 2)), np.zeros((1, 1, 1)), loss="l1")
    with pytest.raises(ValueError, match="y must have shape"):
        RNN(2, 4, 1).loss_and_grads(np.zeros((1, 1, 2)), np.zeros((2, 1, 1)))


def test_gradients_returned_earlier_survive_later_calls() -> None:
    """backward reuses a work array between calls: nothing it returns may point into it."""
    model = RNN(2, 5, 1, "tanh", bias=True, seed=2)
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(2, 4, 3, 2))
    y = np.ones((4, 3, 1))
    _, first = model.loss_and_grads(x1, y)
    saved = {name: g.copy() for name, g in first.items()}
    model.loss_and_grads(x2, y)
    for name, g in first.items():
        np.testing.assert_array_equal(g, saved[name], err_msg=name)


def test_relative_error_is_measured_in_float64() -> None:
    """float32 arrays are compared in float64: their squares, which overflow float32 from
    about 1.8e19 on, do not turn the error into 0 or NaN."""
    a = np.full(4, 3e20, dtype=np.float32)
    b = a * np.float32(1 + 2**-20)
    expected = float(np.linalg.norm(b.astype(np.float64) - a) / np.linalg.norm(b.astype(float)))
    assert relative_error(a, b) == pytest.approx(expected, rel=1e-12)
    assert relative_error(b, a) == pytest.approx(expected, rel=1e-12)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
