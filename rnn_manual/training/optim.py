"""Optimisers that update a dict of parameter arrays in place from a dict of gradients.

Each can hand out its state as named NumPy arrays and take it back (`state_arrays`,
`load_state_arrays`), so that a checkpointed run continues exactly as if never stopped.
The parameters may be arrays of any library the models run on (see backend.py); the
optimiser's state then lives there too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..core import backend
from ..core.validate import check_distinct

Array = NDArray[np.floating]
Params = dict[str, Array]


class SGD:
    """Gradient descent, optionally with (heavy-ball) momentum.

    Plain:    w <- w - lr * g                 (the tutorial's update, alpha = lr)
    Momentum: v <- momentum * v + g;  w <- w - lr * v
    """

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr = lr
        self.momentum = momentum
        self.state: dict[str, Array] = {}  # "velocity/<name>" per parameter

    def step(self, params: Params, grads: Params) -> None:
        _check_grads(params, grads)
        for name, w in params.items():
            g = grads[name]
            if self.momentum:
                v = _slot(self.state, f"velocity/{name}", w)
                v *= self.momentum
                v += g
                g = v
            w -= self.lr * g

    def state_arrays(self, params: Params) -> dict[str, NDArray[np.generic]]:
        """Copies of the velocities (zeros before the first step); none without momentum."""
        if not self.momentum:
            return {}
        return _with_start(self.state, params, ("velocity",))

    def load_state_arrays(self, arrays: dict[str, NDArray[np.generic]], params: Params) -> None:
        """Continue from `arrays` as state_arrays gave them, or ValueError if they do not fit."""
        _check_state(self.state_arrays(params), arrays)
        self.state = _placed(arrays, params)


class Adam:
    """Adam (Kingma & Ba, 2015), with bias-corrected moment estimates.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2
    w <- w - lr * (m / (1 - b1**k)) / (sqrt(v / (1 - b2**k)) + eps),  k = step number
    """

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.steps = 0
        self.state: dict[str, Array] = {}  # "m/<name>" and "v/<name>" per parameter

    def step(self, params: Params, grads: Params) -> None:
        _check_grads(params, grads)
        b1, b2 = self.betas
        self.steps += 1
        correction1 = 1.0 - b1**self.steps
        correction2 = 1.0 - b2**self.steps
        for name, w in params.items():
            g = grads[name]
            m = _slot(self.state, f"m/{name}", w)
            v = _slot(self.state, f"v/{name}", w)
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            w -= (
                self.lr
                * (m / correction1)
                / (backend.namespace(v).sqrt(v / correction2) + self.eps)
            )

    def state_arrays(self, params: Params) -> dict[str, NDArray[np.generic]]:
        """Copies of both moments (zeros before the first step) and the step count k."""
        arrays = _with_start(self.state, params, ("m", "v"))
        arrays["steps"] = np.array(self.steps, dtype=np.int64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, NDArray[np.generic]], params: Params) -> None:
        """Continue from `arrays` as state_arrays gave them, or ValueError if they do not fit."""
        _check_state(self.state_arrays(params), arrays)
        steps = _step_count(arrays)
        self.steps = steps
        self.state = _placed({key: a for key, a in arrays.items() if key != "steps"}, params)


class Adagrad:
    """Adagrad (Duchi, Hazan & Singer, 2011): each weight's step shrinks with the squared
    gradients it has seen, by torch.optim.Adagrad's rule.

    s <- s + g**2  (s starts at initial_accumulator_value)
    w <- w - lr / (1 + (k - 1) * lr_decay) * g / (sqrt(s) + eps),  k = step number

    No weight decay. min-char-rnn's Adagrad puts its 1e-8 inside the square root,
    w <- w - lr * g / sqrt(s + 1e-8), a different step while s is small; this is torch's.
    """

    def __init__(
        self,
        lr: float,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        if not np.isfinite(lr_decay) or lr_decay < 0:
            raise ValueError(f"lr_decay must be a non-negative finite number, got {lr_decay}")
        if not np.isfinite(initial_accumulator_value) or initial_accumulator_value < 0:
            raise ValueError(
                "initial_accumulator_value must be a non-negative finite number, "
                f"got {initial_accumulator_value}"
            )
        # eps > 0 (torch takes 0 too): with eps = 0, a weight whose gradients have all been 0
        # (s = 0) would step by 0 / 0.
        if not np.isfinite(eps) or eps <= 0:
            raise ValueError(f"eps must be a positive finite number, got {eps}")
        self.lr = lr
        self.lr_decay = lr_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps
        self.steps = 0
        self.state: dict[str, Array] = {}  # "sum/<name>" per parameter

    def step(self, params: Params, grads: Params) -> None:
        _check_grads(params, grads)
        self.steps += 1
        rate = self.lr / (1.0 + (self.steps - 1) * self.lr_decay)
        for name, w in params.items():
            g = grads[name]
            s = _slot(self.state, f"sum/{name}", w, self.initial_accumulator_value)
            s += g * g
            w -= rate * g / (backend.namespace(s).sqrt(s) + self.eps)

    def state_arrays(self, params: Params) -> dict[str, NDArray[np.generic]]:
        """Copies of the sums of squared gradients (initial_accumulator_value before the
        first step) and the step count k."""
        arrays = _with_start(self.state, params, ("sum",), self.initial_accumulator_value)
        arrays["steps"] = np.array(self.steps, dtype=np.int64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, NDArray[np.generic]], params: Params) -> None:
        """Continue from `arrays` as state_arrays gave them, or ValueError if they do not fit."""
        _check_state(self.state_arrays(params), arrays)
        steps = _step_count(arrays)
        sums = {key: a for key, a in arrays.items() if key != "steps"}
        for key, a in sums.items():
            if np.less(a, 0).any():  # a sum of squares; its square root would be NaN
                raise ValueError(f"optimizer state {key} holds negative values")
        self.steps = steps
        self.state = _placed(sums, params)


def clip_grad_norm(grads: Params, max_norm: float) -> float:
    """Scale `grads` in place so that their joint L2 norm is at most max_norm; the norm before.

    ||g|| = sqrt(sum over every array of sum(g**2));  g <- g * max_norm / ||g|| if larger.
    """
    norm = float(np.sqrt(sum(float(backend.namespace(g).sum(g * g)) for g in grads.values())))
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


def _check_grads(params: Params, grads: Params) -> None:
    """ValueError unless the parameters are distinct arrays (one given under two names would
    be stepped twice) and each gradient is an array of its parameter's library and device,
    checked before any state or parameter changes."""
    check_distinct(params)
    for name, w in params.items():
        if not backend.same_place(w, grads[name]):
            raise ValueError(
                f"the gradient of {name} is not an array of its parameter's library and device"
            )


def _slot(state: dict[str, Array], key: str, like: Array, start: float = 0.0) -> Array:
    """state[key], made shaped like `like` and filled with `start` the first time it is
    asked for, and moved to where `like` is if the model has moved since (model.to).

    (dict.setdefault would build a fresh array on every call, every step.)
    """
    if key not in state:
        state[key] = backend.namespace(like).full_like(like, start)
    else:
        state[key] = _like(state[key], like)
    return state[key]


def _like(a: Array, like: Array) -> Array:
    """`a` in the library and on the device of `like`: itself if it is there already."""
    if backend.same_place(a, like):
        return a
    host = backend.to_numpy(a)
    if backend.is_numpy(like):
        return np.array(host)
    return backend.namespace(like).asarray(host, device=backend.device(like), copy=True)


def _with_start(
    state: dict[str, Array], params: Params, kinds: tuple[str, ...], start: float = 0.0
) -> dict[str, NDArray[np.generic]]:
    """A NumPy copy of state[f"{kind}/{name}"] for every kind and parameter, and where none
    yet the array _slot would start it as (filled with `start`)."""
    return {
        f"{kind}/{name}": backend.to_numpy(state[f"{kind}/{name}"]).copy()
        if f"{kind}/{name}" in state
        else np.full_like(backend.to_numpy(w), start)
        for kind in kinds
        for name, w in params.items()
    }


def _placed(arrays: dict[str, NDArray[np.generic]], params: Params) -> dict[str, Array]:
    """Copies of the state arrays `arrays`, each in the library and on the device of the
    parameter it belongs to ("m/W_hh" goes where "W_hh" is)."""
    return {key: _like(np.array(a), params[key.split("/", 1)[1]]) for key, a in arrays.items()}


def _step_count(arrays: dict[str, NDArray[np.generic]]) -> int:
    """The step count k saved beside an optimizer's state (Adam's, Adagrad's), or ValueError
    for a negative one."""
    steps = int(arrays["steps"])
    if steps < 0:
        raise ValueError(f"optimizer step count must not be negative, got {steps}")
    return steps


def _check_state(
    expected: dict[str, NDArray[np.generic]], found: dict[str, NDArray[np.generic]]
) -> None:
    """ValueError unless `found` has the keys, shapes and dtypes of `expected`, all finite."""
    if set(found) != set(expected):
        raise ValueError(f"optimizer state {sorted(found)}, expected {sorted(expected)}")
    for key, template in expected.items():
        a = found[key]
        if a.shape != template.shape or a.dtype != template.dtype:
            raise ValueError(
                f"optimizer state {key} is {a.dtype} {a.shape}, "
                f"expected {template.dtype} {template.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"optimizer state {key} holds non-finite values")
