"""The PyTorch twin itself, for every cell: its layout, its bias mapping, relu's kink, and the
check command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch
from torch import nn

from rnn_manual import RNN
from rnn_manual.cells import CELLS, Cell
from rnn_torch import SigmoidRNNCell, Twin, gradient_rows, torch_loss
from rnn_torch import twin as twin_module
from rnn_torch.__main__ import main
from rnn_torch.twin import TORCH_BIASES, torch_weights

ROOT = Path(__file__).resolve().parents[1]


M = TypeVar("M", bound=Cell)
#: The RNN's activation where a test needs one torch's fused nn.RNN has too.
TANH: dict[str, dict[str, str]] = {"rnn": {"activation": "tanh"}, "lstm": {}, "gru": {}}


def biased(model: M) -> M:
    """`model` with every bias drawn non-zero, so that a misplaced one shows."""
    rng = np.random.default_rng(2)
    for name, w in model.params.items():
        if name.startswith("b_"):
            w[...] = rng.normal(size=w.shape)
    return model


def biased_model(activation: str = "tanh", dtype: type = np.float64) -> RNN:
    return biased(RNN(3, 5, 2, activation, bias=True, dtype=dtype, seed=1))


def torch_layout(model: Cell) -> dict[str, np.ndarray]:
    """PyTorch's stacked weights for `model`, written out by hand from the cells' docstrings:
    each block's weights side by side, transposed; biases as torch adds them."""
    p, blocks = model.params, model.gates or ("h",)  # the RNN's one block: W_xh, W_hh, b_h
    layout = {
        "weight_ih": np.concatenate([p[f"W_x{q}"] for q in blocks], axis=1).T,
        "weight_hh": np.concatenate([p[f"W_h{q}"] for q in blocks], axis=1).T,
    }
    if model.bias:
        H = model.hidden_size
        ih = {"rnn": ["b_h"], "lstm": ["b_i", "b_f", "b_g", "b_o"], "gru": ["b_r", "b_u", "b_xn"]}
        layout["bias_ih"] = np.concatenate([p[name] for name in ih[model.name]])
        layout["bias_hh"] = np.zeros(len(blocks) * H)
        if model.name == "gru":  # b_hn inside the reset product: torch's bias_hh, block n
            layout["bias_hh"][2 * H :] = p["b_hn"]
    return layout


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_weights_map_to_torch_layout_and_back(cell: str, fused: bool) -> None:
    model = biased(CELLS[cell](3, 5, 2, bias=True, seed=1, **TANH[cell]))
    twin = Twin.from_manual(model, fused=fused)
    weights = torch_weights(twin.model, twin.params)
    for name, expected in torch_layout(model).items():
        np.testing.assert_array_equal(weights[name].detach().numpy(), expected, err_msg=name)
    assert set(twin.params) == set(model.params)  # the leaves: the manual parameters
    assert all(leaf.is_leaf and leaf.requires_grad for leaf in twin.params.values())
    back = twin.manual_params()
    for name, w in model.params.items():
        np.testing.assert_array_equal(back[name], w)


def test_each_cell_runs_torchs_own_module() -> None:
    for activation in ("tanh", "relu"):
        twin = Twin.from_manual(RNN(2, 4, 1, activation))
        assert type(twin.module) is nn.RNNCell
        assert twin.module.nonlinearity == activation
        fused = Twin.from_manual(RNN(2, 4, 1, activation), fused=True)
        assert type(fused.module) is nn.RNN and fused.module.nonlinearity == activation
    assert type(Twin.from_manual(RNN(2, 4, 1, "sigmoid")).module) is SigmoidRNNCell
    with pytest.raises(ValueError, match="no sigmoid"):
        Twin.from_manual(RNN(2, 4, 1, "sigmoid"), fused=True)
    for cell, modules in (("lstm", (nn.LSTMCell, nn.LSTM)), ("gru", (nn.GRUCell, nn.GRU))):
        for fused, module in zip((False, True), modules, strict=True):
            assert type(Twin.from_manual(CELLS[cell](), fused=fused).module) is module


def test_sigmoid_cell_keeps_rnncell_parameters_and_changes_only_the_nonlinearity() -> None:
    torch.manual_seed(0)
    cell = SigmoidRNNCell(3, 4, dtype=torch.float64)
    reference = nn.RNNCell(3, 4, dtype=torch.float64)
    shapes = {name: p.shape for name, p in cell.named_parameters()}
    assert shapes == {name: p.shape for name, p in reference.named_parameters()}
    reference.load_state_dict(cell.state_dict())
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    # tanh(a) = 2 sigmoid(2a) - 1: the tanh cell at a/2 recovers the sigmoid cell at a.
    with torch.no_grad():
        for p in reference.parameters():
            p /= 2
    torch.testing.assert_close(cell(x, h), (reference(x, h) + 1) / 2, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(cell(x), cell(x, torch.zeros(2, 4, dtype=torch.float64)))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_where_torch_adds_two_biases_both_get_the_gradient_of_ours(
    cell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dL/dbias_ih = dL/dbias_hh = dL/db wherever torch only adds its two biases: why the
    twin holds bias_hh at zero there. The GRU's candidate n is the exception, its bias_hh
    block inside the reset product: the manual b_hn."""
    model = biased(CELLS[cell](3, 5, 2, bias=True, seed=1, **TANH[cell]))
    x, y = np.random.default_rng(3).normal(size=(4, 2, 3)), np.ones((4, 2, 2))
    twin = Twin.from_manual(model)
    bias_hh = torch_weights(model, twin.params)["bias_hh"].detach().clone().requires_grad_(True)

    def with_bias_hh(model: Cell, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**torch_weights(model, params), "bias_hh": bias_hh}  # a leaf of its own

    monkeypatch.setattr(twin_module, "torch_weights", with_bias_hh)
    bias_ih = [twin.params[name] for name in TORCH_BIASES[cell][0]]
    _, z, p = twin.run(torch.from_numpy(x))
    value = torch_loss("mse", z, p, torch.from_numpy(y))
    *from_ih, from_hh = torch.autograd.grad(value, [*bias_ih, bias_hh])
    blocks = torch.split(from_hh, model.hidden_size)
    _, manual = model.loss_and_grads(x, y, "mse")
    for k, (name, from_hh_block) in enumerate(zip(TORCH_BIASES[cell][0], blocks, strict=True)):
        np.testing.assert_allclose(from_ih[k].numpy(), manual[name], rtol=1e-12, err_msg=name)
        if cell == "gru" and name == "b_xn":  # inside the reset product: not the same
            assert not torch.allclose(from_hh_block, from_ih[k])
            np.testing.assert_allclose(from_hh_block.numpy(), manual["b_hn"], rtol=1e-12)
        else:
            torch.testing.assert_close(from_hh_block, from_ih[k], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twin_gradients_have_the_manual_keys_shapes_and_dtype(dtype: type) -> None:
    model = biased_model("relu", dtype)
    x, y = np.ones((3, 4, 3), dtype=dtype), np.zeros((3, 4, 2), dtype=dtype)
    loss, grads = Twin.from_manual(model).loss_and_grads(x, y, loss="bce")
    manual_loss, manual = model.loss_and_grads(x, y, "bce")
    assert set(grads) == set(manual)
    for name, g in grads.items():
        assert g.shape == manual[name].shape and g.dtype == dtype, name
    assert loss == pytest.approx(manual_loss, rel=1e-6)


def test_relu_kink_convention_is_pytorchs() -> None:
    """At a pre-activation of exactly 0 both sides take relu'(0) = 0, as PyTorch does."""
    a = torch.zeros(3, requires_grad=True)
    torch.relu(a).sum().backward()
    assert a.grad is not None and not a.grad.any()

    model = RNN(2, 3, 1, "relu", bias=False, seed=0)  # x = 0, h0 = 0: every a_t is exactly 0
    x, y = np.zeros((4, 2, 2)), np.ones((4, 2, 1))
    assert not model.run(x).h.any()
    rows = gradient_rows(model, x, y, "mse")
    assert all(row.passed for row in rows), rows
    _, grads = model.loss_and_grads(x, y, "mse")
    # relu'(0) = 1 would make these two non-zero:
    assert not grads["x"].any() and not grads["W_xh"].any()


def test_rnn_manual_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # makes `import torch` fail
        "import numpy as np, rnn_manual\n"
        "rnn_manual.RNN(2, 4, 1).loss_and_grads(np.zeros((3, 1, 2)), np.zeros((3, 1, 1)))\n"
    )
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True)
    assert result.returncode == 0, result.stderr


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "rnn_torch", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_check_command_prints_a_table_and_agrees() -> None:
    result = run_check("--activation", "tanh", "--bias", "--h0", "--loss", "upstream", "--fused")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("dW_xh", "dW_hh", "dW_hy", "db_h", "db_y", "dx", "dh0"):
        assert any(line.startswith(name) and line.endswith("ok") for line in lines), name
    assert lines[-1] == "all gradients agree"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--bits", "0"], "--bits"),
        (["--hidden", "x"], "--hidden"),
        (["--activation", "softmax"], "--activation"),
        (["--dtype", "float16"], "--dtype"),
        (["--seed", "-1"], "--seed"),
        (["--fused"], "--fused"),
        (["--bits", "4096", "--batch", "4096"], "more than the limit"),
        (["--cell", "lstm", "--bits", "4096", "--batch", "4096"], "more than the limit"),
        (["--cell", "lstm", "--bits", "1024", "--batch", "1024", "--hidden", "64"], "limit"),
        (["--cell", "lstm", "--activation", "relu"], "--activation is for the rnn cell"),
        (["--cell", "gru", "--activation", "sigmoid"], "--activation is for the rnn cell"),
        (["--backend", "jax"], "--backend"),
        (["--device", "cuda"], "--device needs --backend torch or cupy"),
        (["--backend", "torch", "--device", "meta"], "cannot place arrays on device 'meta'"),
        (["--backend", "torch", "--device", "cuda:x"], "cannot place arrays on device"),
    ],
)
def test_check_command_refuses_bad_options_in_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(["check", *args])
    except SystemExit as error:  # argparse's own errors
        status = error.code
    assert status == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and fragment in stderr


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_check_command_runs_the_manual_pass_on_torch(cell: str) -> None:
    result = run_check("--cell", cell, "--backend", "torch", "--bias", "--h0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("manual BPTT (torch) vs PyTorch autograd")
    assert lines[-1] == "all gradients agree"


def test_check_command_usage_error_from_the_shell() -> None:
    result = run_check("--hidden", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--hidden" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "cell, dtype, name",
    [
        ("rnn", "float64", "W_hh"),
        ("rnn", "float32", "W_hh"),
        ("lstm", "float32", "W_hf"),
        ("lstm", "float64", "c0"),
        ("gru", "float32", "b_hn"),
    ],
)
def test_check_command_exits_1_on_a_mismatch(
    cell: str,
    dtype: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One gradient 1% off is caught, in float32 too: both cells' rows come from one judge."""
    model_class = CELLS[cell]
    backward = model_class.backward_unchecked

    def off_by_a_percent(self: Cell, *args: Any) -> dict[str, np.ndarray]:
        grads = backward(self, *args)  # trace, dz, truncate
        grads[name] *= 1.01
        return grads

    monkeypatch.setattr(model_class, "backward_unchecked", off_by_a_percent)
    assert main(["check", "--cell", cell, "--dtype", dtype, "--bias", "--h0", "--bits", "4"]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH in {name}" in out
    assert [line.split()[0] for line in out.splitlines() if line.endswith("MISMATCH")] == [
        f"d{name}"
    ]


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_is_judged_by_its_fused_layer_and_on_upstream_gradients(cell: str) -> None:
    """The one check path serves every cell alike: gradients of a loss and of sum(V * p),
    judged by the cell and by the fused layer, in float64 and float32, with biases and
    initial states."""
    for dtype in (np.float64, np.float32):
        model = biased(CELLS[cell](3, 5, 2, bias=True, dtype=dtype, seed=1, **TANH[cell]))
        rng = np.random.default_rng(4)
        x = rng.normal(size=(6, 4, 3)).astype(dtype)
        y, v = rng.uniform(size=(6, 4, 2)).astype(dtype), rng.normal(size=(6, 4, 2))
        states = {name: rng.normal(size=(4, 5)).astype(dtype) for name in model.states}
        for fused in (False, True):
            for objective, target in (("bce", y), ("upstream", v.astype(dtype))):
                rows = gradient_rows(model, x, target, objective, **states, fused=fused)
                assert {row.name for row in rows} >= {*model.params, "x", *model.states}
                failed = [row.name for row in rows if not row.passed]
                assert not failed, (dtype, fused, objective, failed)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_the_twin_refuses_a_c0_its_cell_has_not_as_the_model_does(cell: str) -> None:
    model = CELLS[cell](2, 3, 1)
    x, y, c0 = np.zeros((4, 2, 2)), np.zeros((4, 2, 1)), np.zeros((2, 3))
    message = f"c0 is an initial state of the LSTM only, not the {cell}"
    with pytest.raises(ValueError, match=message):
        model.loss_and_grads(x, y, "mse", c0=c0)
    with pytest.raises(ValueError, match=message):
        Twin.from_manual(model).loss_and_grads(x, y, loss="mse", c0=c0)
    with pytest.raises(ValueError, match=message):
        gradient_rows(model, x, y, "mse", c0=c0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_check_command_judges_the_softmax_cross_entropy(
    cell: str, dtype: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --loss ce`: the sum bit as a choice between two softmax outputs, every gradient
    agreeing with autograd's; with the cross-entropy's -1 at the target forgotten, not."""
    args = ["check", "--cell", cell, "--loss", "ce", "--dtype", dtype, "--bias", "--h0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ", ce, " in out.splitlines()[0] and "(16, 2)" in out  # W_hy: O = 2 outputs
    from rnn_manual.cells import losses

    def no_target(z: Any, p: Any, y: Any) -> Any:
        loss, _ = losses.ce(z, p, y)
        return loss, p / p.shape[1]

    original = losses.LOSSES["ce"]
    losses.LOSSES["ce"] = no_target
    try:
        assert main(args) == 1
    finally:
        losses.LOSSES["ce"] = original
    assert "MISMATCH" in capsys.readouterr().out
