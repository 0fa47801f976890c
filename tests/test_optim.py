"""The optimisers and gradient clipping of rnn_manual.training.optim against torch.optim and
torch.nn.utils.clip_grad_norm_, step by step.

test_properties.py and test_gated.py run every optimiser on real gradients of random
networks (trajectories of a few steps, learning rates small enough to stay in one basin).
Here the optimisers alone are judged on any gradients, cheaply and so over wider ranges:
learning rates from 1e-4 to 10, momentum and both betas from 0 to nearly 1, epsilon from
1e-8 (Adagrad's 1e-10) to 0.1, Adagrad's learning-rate decay and starting accumulator 0 or
drawn, clipping that sometimes bites and sometimes does not, float32 and float64, on every
backend. A constant written in place of any hyperparameter, a different velocity rule
(dampening, Nesterov, decay after adding, the learning rate inside the velocity), a missing
bias correction, Adagrad's epsilon inside the square root, a learning-rate decay that
already shrinks the first step, or a clip that scales the wrong way fails them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from backends import BACKENDS
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from strategies import TORCH_CLIP_EPS, Optimizer, Trajectory, examples, log_uniform, optimizers

from rnn_manual import SGD, Adam
from rnn_manual.core import backend as backends
from rnn_manual.core.gradcheck import relative_error
from rnn_manual.training.optim import Adagrad, clip_grad_norm
from rnn_manual.training.state import OPTIMIZERS
from rnn_torch.compare import FLOAT64_BOUND, bound

Array = NDArray[np.floating]

#: Without a network to diverge, every optimiser is judged from tiny to huge steps.
WIDE_LEARNING_RATES = dict.fromkeys(OPTIMIZERS, (1e-4, 10.0))
#: Gradients are drawn with a joint norm from about 0.01 to 1000, so clipping to a norm in
#: this range scales some steps and leaves others alone.
CLIPS = (0.01, 100.0)


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, tuple[int, ...]]:
    """One to four parameters, each a vector or a matrix of 1 to 5 entries a side."""
    count = draw(st.integers(1, 4))
    dims = st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple)
    return {f"w{k}": draw(dims) for k in range(count)}


def gradients(
    rng: np.random.Generator, shapes: dict[str, tuple[int, ...]], dtype: str
) -> dict[str, Array]:
    """Random gradients for one step, all scaled by one factor from 0.01 to 100."""
    scale = 10.0 ** rng.uniform(-2.0, 2.0)
    return {name: (scale * rng.normal(size=shape)).astype(dtype) for name, shape in shapes.items()}


def check_steps(
    optimizer: Optimizer,
    shapes: dict[str, tuple[int, ...]],
    dtype: str,
    steps: int,
    seed: int,
    backend: tuple[str, str | None] = ("numpy", None),
) -> None:
    """`steps` updates of rnn_manual's optimiser (clipping first, as train does) on `backend`
    and of torch.optim's (after torch.nn.utils.clip_grad_norm_), from the same weights with
    the same gradients: the same weights after every step, within the suite's bound."""
    rng = np.random.default_rng(seed)
    start = {name: rng.normal(size=shape).astype(dtype) for name, shape in shapes.items()}
    library, device = backend
    params = backends.move(start, library, device)
    leaves = [torch.tensor(w, requires_grad=True) for w in start.values()]
    manual, theirs = optimizer.manual(), optimizer.torch(leaves)
    # K steps, each a few roundings of every entry (float32: a bound for T = K of one term).
    tolerance = bound(dtype, steps, 1, 0)
    path = Trajectory(start, tolerance, f"{optimizer.describe()}, {dtype}, {shapes}")
    for _ in range(steps):
        grads = gradients(rng, shapes, dtype)
        for leaf, g in zip(leaves, grads.values(), strict=True):
            leaf.grad = torch.tensor(g)
        grads = backends.move(grads, library, device)
        optimizer.clip_manual(grads)
        manual.step(params, grads)
        optimizer.clip_torch(leaves)
        theirs.step()
        after = [leaf.detach().numpy() for leaf in leaves]
        path.check(params, dict(zip(start, after, strict=True)))


@pytest.mark.parametrize("backend", BACKENDS)
@examples(6)
@given(
    optimizer=optimizers(WIDE_LEARNING_RATES, CLIPS),
    shapes=shapes(),
    dtype=st.sampled_from(["float32", "float64"]),
    steps=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_optimizer_steps_equal_torch_optim(
    backend: tuple[str, str | None],
    optimizer: Optimizer,
    shapes: dict[str, tuple[int, ...]],
    dtype: str,
    steps: int,
    seed: int,
) -> None:
    check_steps(optimizer, shapes, dtype, steps, seed, backend)


@examples(2)
@given(
    shapes=shapes(),
    max_norm=log_uniform(*CLIPS),
    seed=st.integers(0, 2**32 - 1),
)
def test_clip_grad_norm_equals_torch(
    shapes: dict[str, tuple[int, ...]], max_norm: float, seed: int
) -> None:
    """The norm returned is torch's total norm before clipping; the gradients after are
    torch's (its 1e-6 aside, see Optimizer.clip_torch): untouched, bit for bit, at or below
    the bound, scaled by max_norm / norm above it."""
    grads = gradients(np.random.default_rng(seed), shapes, "float64")
    before = {name: g.copy() for name, g in grads.items()}
    leaves = [torch.zeros(g.shape, dtype=torch.float64) for g in grads.values()]
    for leaf, g in zip(leaves, grads.values(), strict=True):
        leaf.grad = torch.tensor(g)
    norm = clip_grad_norm(grads, max_norm)
    torch_norm = float(torch.nn.utils.clip_grad_norm_(leaves, math.inf))  # scales by 1
    assert abs(norm - torch_norm) <= FLOAT64_BOUND * torch_norm, (norm, torch_norm)
    assert isinstance(norm, float)
    if torch_norm <= max_norm:
        for name, g in grads.items():
            np.testing.assert_array_equal(g, before[name], err_msg=name)
    torch.nn.utils.clip_grad_norm_(leaves, max_norm * (torch_norm + TORCH_CLIP_EPS) / torch_norm)
    for (name, g), leaf in zip(grads.items(), leaves, strict=True):
        err = relative_error(g, leaf.grad.numpy())
        assert err <= FLOAT64_BOUND, f"{name}: {err:.2e} (norm {norm:.3g}, max {max_norm:.3g})"
    clipped = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    assert clipped <= max_norm * (1 + FLOAT64_BOUND)


def test_clip_grad_norm_to_zero_is_torchs() -> None:
    """max_norm = 0 clips every gradient to zero, as torch.nn.utils.clip_grad_norm_ does, and
    gradients that are all zero already (norm 0, within any bound) are left alone: no 0 / 0."""
    for scale in (0.0, 3.0):
        grads = {"W": np.full((2, 3), scale), "b": np.zeros(2)}
        leaves = [torch.zeros(g.shape, dtype=torch.float64) for g in grads.values()]
        for leaf, g in zip(leaves, grads.values(), strict=True):
            leaf.grad = torch.tensor(g)
        norm = clip_grad_norm(grads, 0.0)
        torch_norm = float(torch.nn.utils.clip_grad_norm_(leaves, 0.0))
        assert norm == torch_norm == math.sqrt(6 * scale**2), (norm, torch_norm)
        for (name, g), leaf in zip(grads.items(), leaves, strict=True):
            np.testing.assert_array_equal(g, leaf.grad.numpy(), err_msg=name)
            np.testing.assert_array_equal(g, 0.0, err_msg=name)


def test_clip_grad_norm_differs_from_torchs_by_its_epsilon_only() -> None:
    """Unadjusted, torch.nn.utils.clip_grad_norm_ scales by max_norm / (norm + 1e-6): off
    from ours by 1e-6 / norm relative, the one difference Optimizer.clip_torch takes out."""
    g = np.full(4, 0.5)  # norm 1
    leaf = torch.zeros(4, dtype=torch.float64)
    leaf.grad = torch.tensor(g)
    clip_grad_norm({"g": g}, 0.25)
    torch.nn.utils.clip_grad_norm_([leaf], 0.25)
    np.testing.assert_allclose(g, np.full(4, 0.125), rtol=1e-15)
    np.testing.assert_allclose(leaf.grad.numpy(), 0.125 / (1 + TORCH_CLIP_EPS), rtol=1e-15)


def test_momentum_is_torchs_heavy_ball_rule() -> None:
    """The documented rule, by hand: v_1 = g_1; v_k = m v_{k-1} + g_k; w -= lr v_k."""
    w = np.zeros(1)
    optimizer = SGD(0.5, momentum=0.9)
    for g in (1.0, 2.0, 4.0):
        optimizer.step({"w": w}, {"w": np.array([g])})
    # v: 1, 0.9 + 2 = 2.9, 2.61 + 4 = 6.61; w = -0.5 (1 + 2.9 + 6.61)
    np.testing.assert_allclose(w, [-0.5 * (1 + 2.9 + 6.61)], rtol=1e-15)


def test_adagrad_is_torchs_rule() -> None:
    """The documented rule, by hand: s_k = s_{k-1} + g_k**2 from s_0 = 1;
    w -= lr / (1 + (k - 1) lr_decay) * g_k / (sqrt(s_k) + eps)."""
    w = np.zeros(1)
    optimizer = Adagrad(0.5, lr_decay=1.0, initial_accumulator_value=1.0, eps=0.25)
    for g in (1.0, 2.0):
        optimizer.step({"w": w}, {"w": np.array([g])})
    # s: 1 + 1 = 2, 2 + 4 = 6; rates 0.5 / 1, 0.5 / 2
    expected = -0.5 * 1 / (math.sqrt(2) + 0.25) - 0.25 * 2 / (math.sqrt(6) + 0.25)
    np.testing.assert_allclose(w, [expected], rtol=1e-15)


def test_adam_first_step_is_lr_times_the_sign() -> None:
    """With bias correction, Adam's first step is lr * g / (|g| + eps): lr wherever |g| >> eps."""
    w = np.zeros(3)
    Adam(0.01, betas=(0.5, 0.75), eps=1e-8).step({"w": w}, {"w": np.array([3.0, -0.2, 1e3])})
    np.testing.assert_allclose(w, [-0.01, 0.01, -0.01], rtol=1e-7)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SGD(0.0), "learning rate must be a positive finite number, got 0.0"),
        (lambda: SGD(-1.0), "learning rate must be a positive finite number, got -1.0"),
        (lambda: SGD(math.inf), "learning rate must be a positive finite number, got inf"),
        (lambda: SGD(math.nan), "learning rate must be a positive finite number, got nan"),
        (lambda: SGD(0.1, momentum=1.0), "momentum must be in [0, 1), got 1.0"),
        (lambda: SGD(0.1, momentum=-0.1), "momentum must be in [0, 1), got -0.1"),
        (lambda: Adam(0.0), "learning rate must be a positive finite number, got 0.0"),
        (lambda: Adam(math.nan), "learning rate must be a positive finite number, got nan"),
        (lambda: Adagrad(0.0), "learning rate must be a positive finite number, got 0.0"),
        (lambda: Adagrad(math.inf), "learning rate must be a positive finite number, got inf"),
        (
            lambda: Adagrad(0.1, lr_decay=-0.5),
            "lr_decay must be a non-negative finite number, got -0.5",
        ),
        (
            lambda: Adagrad(0.1, lr_decay=math.nan),
            "lr_decay must be a non-negative finite number, got nan",
        ),
        (
            lambda: Adagrad(0.1, initial_accumulator_value=-1.0),
            "initial_accumulator_value must be a non-negative finite number, got -1.0",
        ),
        (
            lambda: Adagrad(0.1, initial_accumulator_value=math.inf),
            "initial_accumulator_value must be a non-negative finite number, got inf",
        ),
        (lambda: Adagrad(0.1, eps=0.0), "eps must be a positive finite number, got 0.0"),
        (lambda: Adagrad(0.1, eps=math.nan), "eps must be a positive finite number, got nan"),
    ],
)
def test_bad_hyperparameters_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        make()  # type: ignore[operator]
    assert str(error.value) == message


def test_defaults_are_torchs() -> None:
    """SGD without momentum, Adam's betas and epsilon, Adagrad's decay, starting accumulator
    and epsilon: torch.optim's defaults."""
    leaf = [torch.zeros(1, requires_grad=True)]
    assert SGD(0.1).momentum == torch.optim.SGD(leaf, 0.1).defaults["momentum"] == 0
    adam, theirs = Adam(0.1), torch.optim.Adam(leaf, 0.1).defaults
    assert (adam.betas, adam.eps) == (theirs["betas"], theirs["eps"]) == ((0.9, 0.999), 1e-8)
    adagrad, theirs = Adagrad(0.1), torch.optim.Adagrad(leaf, 0.1).defaults
    names = ("lr_decay", "initial_accumulator_value", "eps")
    ours = tuple(getattr(adagrad, name) for name in names)
    assert ours == tuple(theirs[name] for name in names) == (0, 0, 1e-10)


OPTIMISERS = {
    "sgd": lambda: SGD(0.1),
    "momentum": lambda: SGD(0.1, momentum=0.9),
    "adam": lambda: Adam(0.1, betas=(0.5, 0.75), eps=1e-3),
    "adagrad": lambda: Adagrad(0.1, lr_decay=0.3, initial_accumulator_value=0.5, eps=1e-3),
}
#: The state each keeps per parameter, and whether it counts its steps.
STATE_KINDS = {"sgd": [], "momentum": ["velocity"], "adam": ["m", "v"], "adagrad": ["sum"]}
COUNTS_STEPS = {"adam", "adagrad"}


@pytest.mark.parametrize("prefix", ["", "layer/"])
@pytest.mark.parametrize("kind", OPTIMISERS)
def test_state_round_trip_continues_exactly(kind: str, prefix: str) -> None:
    """An optimiser that takes over another's state_arrays (as a checkpoint does) steps on
    exactly as the first would have, from after two steps or from before any (the state
    then as a first step would start it: zeros, Adagrad's starting accumulator; step 0).
    Any dict of arrays is a model to the optimisers, so a parameter's name may hold a "/"
    ("layer/W", whose state is "m/layer/W"): the state still goes back to its parameter."""
    rng = np.random.default_rng(1)
    shapes = {f"{prefix}W": (3, 2), f"{prefix}b": (2,)}
    grads = [{n: rng.normal(size=s) for n, s in shapes.items()} for _ in range(4)]
    whole = {n: rng.normal(size=s) for n, s in shapes.items()}
    first = {n: w.copy() for n, w in whole.items()}
    zeroth = {n: w.copy() for n, w in whole.items()}
    unbroken, before = OPTIMISERS[kind](), OPTIMISERS[kind]()
    fresh = OPTIMISERS[kind]()
    fresh.load_state_arrays(OPTIMISERS[kind]().state_arrays(zeroth), zeroth)
    for g in grads[:2]:
        unbroken.step(whole, {n: a.copy() for n, a in g.items()})
        before.step(first, {n: a.copy() for n, a in g.items()})
    arrays = before.state_arrays(first)
    expected = {f"{state}/{name}" for state in STATE_KINDS[kind] for name in shapes}
    expected |= {"steps"} if kind in COUNTS_STEPS else set()
    assert set(arrays) == expected
    if kind in COUNTS_STEPS:
        assert arrays["steps"].dtype == np.int64 and int(arrays["steps"]) == 2
    after = OPTIMISERS[kind]()
    after.load_state_arrays(arrays, first)
    for g in grads[2:]:
        unbroken.step(whole, {n: a.copy() for n, a in g.items()})
        after.step(first, {n: a.copy() for n, a in g.items()})
    for g in grads:
        fresh.step(zeroth, {n: a.copy() for n, a in g.items()})
    for name, w in whole.items():
        np.testing.assert_array_equal(first[name], w, err_msg=name)
        np.testing.assert_array_equal(zeroth[name], w, err_msg=name)


@pytest.mark.parametrize("kind", ["momentum", "adam", "adagrad"])
def test_state_is_updated_in_place(kind: str) -> None:
    """A step updates the state it keeps in place: no new arrays every step."""
    params = {"w": np.ones(3)}
    optimizer = OPTIMISERS[kind]()
    optimizer.step(params, {"w": np.ones(3)})
    kept = dict(optimizer.state)
    optimizer.step(params, {"w": np.ones(3)})
    assert all(optimizer.state[key] is array for key, array in kept.items())


def test_bad_state_is_refused_with_its_reason() -> None:
    params = {"w": np.zeros((2, 3))}
    good = Adam(0.1).state_arrays(params)
    cases = [
        ({"m/w": good["m/w"]}, "optimizer state ['m/w'], expected ['m/w', 'steps', 'v/w']"),
        (
            {**good, "v/w": np.zeros((3, 2))},
            "optimizer state v/w is float64 (3, 2), expected float64 (2, 3)",
        ),
        (
            {**good, "m/w": np.zeros((2, 3), np.float32)},
            "optimizer state m/w is float32 (2, 3), expected float64 (2, 3)",
        ),
        ({**good, "m/w": np.full((2, 3), np.nan)}, "optimizer state m/w holds non-finite values"),
        ({**good, "steps": np.array(-1)}, "optimizer step count must not be negative, got -1"),
    ]
    for arrays, message in cases:
        with pytest.raises(ValueError) as error:
            Adam(0.1).load_state_arrays(arrays, params)
        assert str(error.value) == message


def test_bad_adagrad_state_is_refused_with_its_reason() -> None:
    """As Adam's, and a negative sum of squares (whose square root is NaN) is refused too."""
    params = {"w": np.zeros((2, 3))}
    good = Adagrad(0.1).state_arrays(params)
    negative = np.zeros((2, 3))
    negative[1, 2] = -1e-300
    cases = [
        ({"sum/w": good["sum/w"]}, "optimizer state ['sum/w'], expected ['steps', 'sum/w']"),
        (
            {**good, "sum/w": np.zeros((2, 3), np.float32)},
            "optimizer state sum/w is float32 (2, 3), expected float64 (2, 3)",
        ),
        (
            {**good, "sum/w": np.full((2, 3), np.inf)},
            "optimizer state sum/w holds non-finite values",
        ),
        ({**good, "sum/w": negative}, "optimizer state sum/w holds negative values"),
        ({**good, "steps": np.array(-1)}, "optimizer step count must not be negative, got -1"),
    ]
    for arrays, message in cases:
        optimizer = Adagrad(0.1)
        with pytest.raises(ValueError) as error:
            optimizer.load_state_arrays(arrays, params)
        assert str(error.value) == message
        assert optimizer.state == {} and optimizer.steps == 0  # nothing taken over


@pytest.mark.parametrize("kind", ["momentum", "adam", "adagrad"])
def test_state_moves_as_a_copy(kind: str) -> None:
    """State that follows the parameters to another library (model.to) is copied there, as
    model.to copies the parameters: stepping on in torch leaves the NumPy arrays the
    optimiser held before as they were."""
    optimizer = OPTIMISERS[kind]()
    optimizer.step({"w": np.ones(3)}, {"w": np.ones(3)})
    held = dict(optimizer.state)
    values = {key: a.copy() for key, a in held.items()}
    params = {"w": torch.ones(3, dtype=torch.float64)}
    optimizer.step(params, {"w": torch.full((3,), 2.0, dtype=torch.float64)})
    assert all(isinstance(state, torch.Tensor) for state in optimizer.state.values())
    for key, a in held.items():
        np.testing.assert_array_equal(a, values[key], err_msg=key)


@pytest.mark.parametrize("kind", ["momentum", "adam", "adagrad"])
def test_state_follows_the_parameters_to_their_device(kind: str) -> None:
    """State made on NumPy moves with the parameters (model.to) to another library and
    device: on torch's "meta" device (no data, standing in for a GPU) a state left on the
    CPU could not be combined with the parameters."""
    optimizer = OPTIMISERS[kind]()
    optimizer.step({"w": np.ones(3)}, {"w": np.ones(3)})
    meta = {"w": torch.empty(3, dtype=torch.float64, device="meta")}
    optimizer.step(meta, {"w": torch.empty(3, dtype=torch.float64, device="meta")})
    assert all(state.device.type == "meta" for state in optimizer.state.values())
