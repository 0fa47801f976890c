"""The captured pass (rnn_torch.graphs): the manual loss and gradients replayed from a CUDA
graph equal loss_and_grads's.

Without a GPU: the pass runs eagerly and must equal loss_and_grads, it must run on torch's
"meta" device (tensors without data, so that anything reading a value on the host, which
graph capture forbids, raises), and misuse is refused. With one (marked gpu): replays equal
eager passes, also with new data and while an optimiser trains the model in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from backends import NO_CUDA

from rnn_manual import GRU, LSTM, RNN, Adam
from rnn_manual.core.backend import to_numpy
from rnn_torch.graphs import CapturedPass, unchecked_pass

CELLS: list[Any] = [
    pytest.param(lambda **kw: RNN(activation="sigmoid", **kw), id="rnn-sigmoid"),
    pytest.param(lambda **kw: RNN(activation="tanh", **kw), id="rnn-tanh"),
    pytest.param(lambda **kw: RNN(activation="relu", **kw), id="rnn-relu"),
    pytest.param(LSTM, id="lstm"),
    pytest.param(GRU, id="gru"),
]
Make = Callable[..., Any]


def batch(T: int = 5, B: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (T, B, 2)).astype(np.float64), rng.uniform(size=(T, B, 1))


def assert_same(loss: Any, grads: dict[str, Any], expected: tuple[float, dict], tol: float):
    assert float(loss) == pytest.approx(expected[0], rel=tol, abs=0)
    assert set(grads) == set(expected[1])
    for name, g in grads.items():
        np.testing.assert_allclose(to_numpy(g), to_numpy(expected[1][name]), rtol=tol, atol=0)


@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_the_pass_equals_loss_and_grads_on_the_cpu(make: Make, loss: str) -> None:
    model = make(hidden_size=6, bias=True, seed=1).to(torch)
    x, y = batch()
    captured = CapturedPass(model, x, y, loss)
    assert captured.graph is None  # no graphs on a CPU: the same pass, run directly
    value, grads = captured()
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    assert_same(value, grads, model.loss_and_grads(x, y, loss), tol=1e-15)
    x2, y2 = batch(seed=2)
    assert_same(*captured(x2, y2), model.loss_and_grads(x2, y2, loss), tol=1e-15)
    y3 = np.random.default_rng(3).uniform(size=y2.shape)  # values float32 cannot hold
    assert_same(*captured(y=y3.tolist()), model.loss_and_grads(x2, y3, loss), tol=1e-15)


@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("bias", [False, True])
def test_the_pass_never_reads_a_value_on_the_host(make: Make, loss: str, bias: bool) -> None:
    """On "meta" tensors (shapes and dtypes, no data) any float(), bool() or .item() raises,
    as would a wait for the device during CUDA-graph capture."""
    model = make(hidden_size=4, bias=bias, dtype="float32")
    model.params = {
        name: torch.empty(w.shape, dtype=torch.float32, device="meta")
        for name, w in model.params.items()
    }
    T, B = 6, 3
    x = torch.empty(T, B, 2, device="meta")
    y = torch.empty(T, B, 1, device="meta")
    states = model.zero_states(B)
    assert all(state.device.type == "meta" for state in states)
    with pytest.raises((RuntimeError, NotImplementedError)):  # the overflow check reads z
        model.loss_pass(x, states, y, loss)
    value, grads = unchecked_pass(model, x, states, y, loss)
    assert value.device.type == "meta" and value.shape == () and value.dtype == torch.float64
    assert set(grads) == {*model.params, "x", "h0"} | ({"c0"} if isinstance(model, LSTM) else set())
    for name, g in grads.items():
        expected = tuple(model.params[name].shape) if name in model.params else None
        assert expected is None or tuple(g.shape) == expected, name


def test_misuse_is_refused_in_one_line() -> None:
    x, y = batch()
    with pytest.raises(ValueError, match="needs a model on torch"):
        CapturedPass(RNN(hidden_size=3), x, y)
    model = RNN(hidden_size=3).to(torch)
    with pytest.raises(ValueError, match="loss must be one of"):
        CapturedPass(model, x, y, "hinge")
    with pytest.raises(ValueError, match="x must be finite"):
        CapturedPass(model, np.full_like(x, np.nan), y)
    captured = CapturedPass(model, x, y)
    with pytest.raises(ValueError, match=r"x must have the captured shape \(5, 3, 2\)"):
        captured(x[:4])
    model.to(torch)  # new parameter tensors: the capture would read the old ones
    with pytest.raises(ValueError, match="replaced after capture"):
        captured()


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="no CUDA GPU here")
@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_replays_equal_eager_passes_on_the_gpu(make: Make, dtype: str) -> None:
    tol = 1e-12 if dtype == "float64" else 1e-5
    model = make(hidden_size=8, bias=True, dtype=dtype, seed=3).to(torch, "cuda")
    x, y = batch(T=7, B=4)
    captured = CapturedPass(model, x, y, "bce")
    assert captured.graph is not None
    for seed in (None, 5, 6):  # the captured data, then new batches copied in
        if seed is not None:
            x, y = batch(T=7, B=4, seed=seed)
            args: tuple = (torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())
        else:
            args = ()
        value, grads = captured(*args)
        assert all(g.device.type == "cuda" for g in grads.values())
        assert_same(value, grads, model.loss_and_grads(x, y, "bce"), tol)


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="no CUDA GPU here")
@pytest.mark.parametrize("make", CELLS)
def test_training_through_replays_equals_eager_training(make: Make) -> None:
    eager = make(hidden_size=8, bias=True, seed=4).to(torch, "cuda")
    replayed = make(hidden_size=8, bias=True, seed=4).to(torch, "cuda")
    batches = [batch(T=6, B=5, seed=s) for s in range(4)]
    captured = CapturedPass(replayed, *batches[0])
    opt_eager, opt_replayed = Adam(0.05), Adam(0.05)
    for x, y in batches:
        _, grads = eager.loss_and_grads(x, y)
        opt_eager.step(eager.params, {name: grads[name] for name in eager.params})
        _, grads = captured(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())
        opt_replayed.step(replayed.params, {name: grads[name] for name in replayed.params})
    for name, w in eager.params.items():
        np.testing.assert_allclose(to_numpy(replayed.params[name]), to_numpy(w), rtol=1e-12)
