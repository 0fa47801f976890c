"""The manual models on other array libraries: moving them, what they accept, what they return.

The gradients themselves are judged on every backend by the property suites
(test_properties.py, test_gated.py); here are the contracts around them.
"""

from __future__ import annotations

from pathlib import Path

import manual
import numpy as np
import pytest
import torch
from backends import NO_CUDA

from rnn_manual import GRU, LSTM, RNN, SGD, Adam
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import numeric_gradient
from rnn_manual.files.modelfile import load, save

CELLS = [
    pytest.param(lambda **kw: RNN(activation="tanh", **kw), id="rnn"),
    pytest.param(LSTM, id="lstm"),
    pytest.param(GRU, id="gru"),
]


def batch(T: int = 6, B: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, 2)), rng.uniform(size=(T, B, 1))


@pytest.mark.parametrize("make", CELLS)
def test_to_torch_copies_the_weights_and_back(make) -> None:
    model = make(hidden_size=5, bias=True, seed=1)
    original = {name: w.copy() for name, w in model.params.items()}
    numpy_arrays = dict(model.params)
    assert model.to(torch) is model
    for name, w in model.params.items():
        assert isinstance(w, torch.Tensor) and w.dtype == torch.float64, name
        np.testing.assert_array_equal(w.numpy(), original[name])
        w += 1.0  # a copy: the NumPy arrays it came from do not change
        np.testing.assert_array_equal(numpy_arrays[name], original[name])
    model.to("numpy")
    for name, w in model.params.items():
        assert type(w) is np.ndarray
        np.testing.assert_array_equal(w, original[name] + 1.0)


@pytest.mark.parametrize("make", CELLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_results_are_tensors_and_equal_numpys(make, dtype: str) -> None:
    numpy_model = make(hidden_size=7, bias=True, dtype=dtype, seed=2)
    torch_model = make(hidden_size=7, bias=True, dtype=dtype, seed=2).to(torch, "cpu")
    x, y = batch()
    loss, grads = numpy_model.loss_and_grads(x, y, "bce")
    torch_loss, torch_grads = torch_model.loss_and_grads(torch.from_numpy(x), y, "bce")
    assert isinstance(torch_loss, float)
    assert set(torch_grads) == set(grads)
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert torch_loss == pytest.approx(loss, rel=tol)
    for name, g in torch_grads.items():
        assert isinstance(g, torch.Tensor) and str(g.dtype) == f"torch.{dtype}", name
        assert tuple(g.shape) == grads[name].shape, name
        scale = max(float(np.abs(grads[name]).max()), 1e-3)
        np.testing.assert_allclose(g.numpy(), grads[name], rtol=0, atol=tol * scale, err_msg=name)
    p = torch_model.forward(x)
    assert isinstance(p, torch.Tensor)
    np.testing.assert_allclose(p.numpy(), numpy_model.forward(x), rtol=tol)


def test_torch_inputs_of_any_real_dtype_and_with_grad_are_accepted() -> None:
    model = RNN(hidden_size=4).to(torch)
    x = np.random.default_rng(0).integers(0, 2, (5, 2, 2))
    expected = model.forward(x)
    for tensor in (torch.from_numpy(x), torch.from_numpy(x).bool(), torch.from_numpy(x).float()):
        torch.testing.assert_close(model.forward(tensor), expected, rtol=0, atol=0)
    leaf = torch.from_numpy(x).double().requires_grad_()  # the manual pass does not use autograd
    torch.testing.assert_close(model.forward(leaf), expected, rtol=0, atol=0)


def test_bad_torch_inputs_give_one_line_errors() -> None:
    model = RNN(hidden_size=4, dtype="float32").to(torch)
    x, y = batch(B=2)
    bad_inputs = {
        "x must be finite": torch.full((3, 2, 2), float("nan")),
        "too large for": torch.full((3, 2, 2), 1e300, dtype=torch.float64),
        "real numbers": torch.zeros((3, 2, 2), dtype=torch.complex64),
        r"shape \(T, B, 2\)": torch.zeros((3, 2)),
    }
    for message, bad in bad_inputs.items():
        with pytest.raises(ValueError, match=message) as error:
            model.forward(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="probabilities"):
        model.loss_and_grads(x, torch.from_numpy(y) + 1.0)
    with pytest.raises(ValueError, match="h0 must be finite"):
        model.forward(x, h0=torch.full((2, 4), float("inf")))


def test_arrays_of_another_library_are_refused_not_converted() -> None:
    x, _ = batch()
    with pytest.raises(ValueError, match="x is a torch array but the model's parameters are numpy"):
        RNN(hidden_size=4).forward(torch.from_numpy(x))
    with pytest.raises(ValueError, match="h0 is a torch array"):
        RNN(hidden_size=4).forward(x, h0=torch.zeros(3, 4))


def test_overflow_on_torch_is_refused_like_on_numpy() -> None:
    model = RNN(hidden_size=3, activation="relu", dtype="float32").to(torch)
    model.params["W_hh"][...] = 1e30
    with pytest.raises(ValueError, match="overflowed"):
        model.forward(np.ones((8, 1, 2)))


def test_bad_library_or_device_is_a_one_line_error() -> None:
    model = RNN(hidden_size=4)
    with pytest.raises(ValueError, match="array library must be one of"):
        model.to("jax")
    with pytest.raises(ValueError, match="array library must be one of"):
        model.to(np.linalg)  # a module, but not a library
    with pytest.raises(ValueError, match="NumPy arrays live on the cpu"):
        model.to(np, "cuda")
    for device in ("no-such-device", "cuda:x", "meta"):
        with pytest.raises(ValueError, match="cannot place arrays on device") as error:
            model.to(torch, device)
        assert "\n" not in str(error.value) and len(str(error.value)) < 300
    assert type(model.params["W_hh"]) is np.ndarray  # a failed move leaves the model as it was
    assert model.to(np, torch.device("cpu")) is model  # NumPy's one device, however named


@pytest.mark.parametrize("optimizer", [lambda: SGD(0.5, momentum=0.9), lambda: Adam(0.05)])
def test_optimisers_step_torch_parameters_as_numpy_ones(optimizer) -> None:
    x, y = batch()
    models = [RNN(hidden_size=5, bias=True, seed=3), RNN(hidden_size=5, bias=True, seed=3)]
    models[1].to(torch)
    optimizers = [optimizer(), optimizer()]
    for _ in range(3):
        for model, opt in zip(models, optimizers, strict=True):
            _, grads = model.loss_and_grads(x, y)
            opt.step(model.params, {name: grads[name] for name in model.params})
    for name, w in models[0].params.items():
        assert isinstance(models[1].params[name], torch.Tensor)
        np.testing.assert_allclose(to_numpy(models[1].params[name]), w, rtol=1e-13, atol=1e-15)
    # Their state comes out as NumPy (for checkpoints) and goes back where the params are.
    state = optimizers[1].state_arrays(models[1].params)
    assert all(isinstance(a, np.ndarray) for a in state.values())
    fresh = optimizer()
    fresh.load_state_arrays(state, models[1].params)
    assert all(isinstance(a, torch.Tensor) for a in fresh.state.values())


def test_a_torch_model_saves_and_loads_as_numpy(tmp_path: Path) -> None:
    model = LSTM(hidden_size=4, bias=True, seed=5).to(torch)
    path = tmp_path / "lstm.npz"
    save(path, model)
    loaded, _ = load(path)
    for name, w in loaded.params.items():
        assert type(w) is np.ndarray
        np.testing.assert_array_equal(w, to_numpy(model.params[name]))


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="no CUDA GPU here")
@pytest.mark.parametrize("make", CELLS)
def test_cuda_model_keeps_everything_on_the_gpu(make) -> None:
    model = make(hidden_size=6, bias=True, seed=4).to(torch, "cuda")
    x, y = batch()
    _, grads = model.loss_and_grads(x, y)  # NumPy inputs are copied over
    assert all(g.device.type == "cuda" for g in grads.values())
    with pytest.raises(ValueError, match="x is on cpu"):
        model.forward(torch.from_numpy(x))


def test_the_readmes_backend_page_example_runs() -> None:
    page = manual.DOCS / "backends.md"
    (block,) = manual.fenced_blocks(page.read_text(), "python")
    namespace: dict[str, object] = {}
    exec(compile(block, f"{manual.name(page)}: the backend example", "exec"), namespace)
    model = namespace["model"]
    assert isinstance(model, RNN) and type(model.params["W_hh"]) is np.ndarray


def test_a_pass_in_inference_mode_leaves_later_passes_working() -> None:
    x, y = batch()
    model = RNN(hidden_size=3).to(torch)
    with torch.inference_mode():
        expected = model.loss_and_grads(x, y)[1]
    _, grads = model.loss_and_grads(x, y)  # would write into an inference tensor if reused
    for name, g in grads.items():
        torch.testing.assert_close(g, expected[name], rtol=0, atol=0)


def test_finite_differences_on_torch_parameters_equal_numpys() -> None:
    x, y = batch(T=3, B=2)
    numeric = {}
    for library in ("numpy", "torch"):
        model = RNN(hidden_size=3, seed=7).to(library)
        w = model.params["W_hh"]
        numeric[library] = numeric_gradient(lambda m=model: m.loss_and_grads(x, y)[0], w)
        np.testing.assert_array_equal(to_numpy(w), RNN(hidden_size=3, seed=7).params["W_hh"])
    analytic = RNN(hidden_size=3, seed=7).loss_and_grads(x, y)[1]["W_hh"]
    np.testing.assert_allclose(numeric["torch"], analytic, rtol=1e-7, atol=1e-10)
    # The two losses round differently (~1e-16), which a step of 1e-6 turns into ~1e-10;
    # the bug this guards against (a view of the entry as "saved") halves the gradient.
    np.testing.assert_allclose(numeric["torch"], numeric["numpy"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("optimizer", [lambda: SGD(0.5, momentum=0.9), lambda: Adam(0.05)])
def test_optimiser_state_follows_the_model_when_it_moves(optimizer) -> None:
    x, y = batch()
    moving, staying = RNN(hidden_size=4, seed=8), RNN(hidden_size=4, seed=8)
    opt_moving, opt_staying = optimizer(), optimizer()
    for step, library in enumerate(["numpy", "torch", "torch", "numpy"]):
        moving.to(library)
        for model, opt in ((moving, opt_moving), (staying, opt_staying)):
            _, grads = model.loss_and_grads(x, y)
            opt.step(model.params, {name: grads[name] for name in model.params})
        for name, w in staying.params.items():
            np.testing.assert_allclose(
                to_numpy(moving.params[name]), w, rtol=1e-13, atol=1e-15, err_msg=f"{step}"
            )


def test_gradients_of_another_library_are_refused_before_anything_changes() -> None:
    x, y = batch()
    model = RNN(hidden_size=4, seed=9)
    _, numpy_grads = model.loss_and_grads(x, y)
    model.to(torch)
    opt = Adam(0.1)
    opt.step(model.params, model.loss_and_grads(x, y)[1])
    before = {name: w.clone() for name, w in model.params.items()}
    state = {key: a.clone() for key, a in opt.state.items()}
    with pytest.raises(ValueError, match="gradient of W_xh is not an array of its parameter"):
        opt.step(model.params, numpy_grads)
    for name, w in model.params.items():
        torch.testing.assert_close(w, before[name], rtol=0, atol=0)
    for key, a in opt.state.items():
        torch.testing.assert_close(a, state[key], rtol=0, atol=0)
    assert opt.steps == 1


def test_unusable_torch_tensors_and_parameters_give_one_line_errors() -> None:
    model = RNN(hidden_size=4).to(torch)
    dense = torch.zeros(3, 2, 2, dtype=torch.float64)
    cases = {
        "must be a dense tensor": lambda: model.forward(dense.to_sparse()),
        "x is not an array of numbers": lambda: model.forward(
            [[[torch.zeros((), requires_grad=True)] * 2] * 2] * 3
        ),
        "h0 must be a dense tensor": lambda: model.forward(dense, h0=torch.zeros(2, 4).to_sparse()),
    }
    for message, call in cases.items():
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value), message
    model.params["W_hh"].requires_grad_()
    with pytest.raises(ValueError, match="parameters require grad"):
        model.forward(dense)
    model.params["W_hh"] = model.params["W_hh"].detach().numpy()  # one of another library
    with pytest.raises(ValueError, match="arrays of one library on one device"):
        model.forward(dense)
