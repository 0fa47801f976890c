"""What the figures show, computed from a model with NumPy alone: the carry unit, the
gradient through time, the backward pass step by step, the loss of guessing.

Each measure is returned as numbers, so that the tests can check on the very numbers a
figure plots what the figure claims (plot.py, docfigures.py draw them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..cells.losses import LOSSES
from ..training.bits import random_addition_batch
from ..training.state import TrainConfig

Array = NDArray[np.floating]


def carry_bits(x: Array) -> NDArray[np.uint8]:
    """The carry out of every bit position of the sums whose operand bits are x: (T, B, 2).

    Returns (T, B): carry[t] = 1 when at least two of a_t, b_t and carry[t-1] are 1.
    """
    a, b = (x[..., 0] > 0.5).astype(np.uint8), (x[..., 1] > 0.5).astype(np.uint8)
    carry = np.zeros(a.shape, dtype=np.uint8)  # (T, B)
    c = np.zeros(a.shape[1], dtype=np.uint8)
    for t in range(a.shape[0]):
        c = (a[t] + b[t] + c) >> 1  # c_t = (a_t + b_t + c_{t-1}) // 2
        carry[t] = c
    return carry


def correlations(h: Array, target: NDArray[np.generic]) -> NDArray[np.float64]:
    """Pearson r of each hidden unit with `target`, over every step and sequence.

    h: (T, B, H) hidden states, target: (T, B). A unit that never changes gets r = 0.
    """
    units = h.reshape(-1, h.shape[-1]).astype(np.float64)  # (T*B, H)
    values = target.reshape(-1).astype(np.float64)  # (T*B,)
    du, dv = units - units.mean(axis=0), values - values.mean()
    spread = np.sqrt((du * du).sum(axis=0) * (dv @ dv))  # (H,)
    return np.divide(du.T @ dv, spread, out=np.zeros(h.shape[-1]), where=spread > 0)


@dataclass
class CarryUnit:
    """The hidden unit that best tracks the carry bit, and how well."""

    unit: int  # index into the hidden state h_t
    r: float  # its Pearson correlation with the carry out of bit t
    r_all: NDArray[np.float64]  # (H,) every unit's correlation
    readout_r: float  # correlation of the best linear read-out of all units together


def find_carry_unit(model: Cell, x: Array) -> CarryUnit:
    """Compare every hidden unit h_t[j] with the carry out of bit t, over the sums x."""
    h = model.run(x).h[1:]  # (T, B, H): h_t after reading bit t
    carry = carry_bits(x)  # (T, B)
    r_all = correlations(h, carry)
    unit = int(np.argmax(np.abs(r_all)))
    # Least squares: carry ~ h_t @ w + c, the best any linear read-out of h_t can do.
    design = np.column_stack([h.reshape(-1, h.shape[-1]), np.ones(h.shape[0] * h.shape[1])])
    w, *_ = np.linalg.lstsq(design.astype(np.float64), carry.reshape(-1), rcond=None)
    fitted = (design @ w).reshape(*carry.shape, 1)  # (T, B, 1)
    readout_r = float(correlations(fitted, carry)[0])
    return CarryUnit(unit, float(r_all[unit]), r_all, readout_r)


def gradient_norms(model: Cell, x: Array) -> NDArray[np.float64]:
    """||dz_last / dh_t|| for every t, per sequence: how much the last output hears of h_t.

    Returns (T, B); row t is for h[t], the state before bit t (h[0] = h0). The gradient is
    what the cell's backward hands back as "h0" when the model reruns x[t:] from its state
    at t (h[t], and c[t] for the LSTM, which is held fixed) with dL/dz = 1 at the last step
    and 0 elsewhere. Any cell: the RNN, the LSTM, the GRU.
    """
    trace = model.run(x)
    norms = np.empty(x.shape[:2])  # (T, B)
    for t in range(x.shape[0]):
        state = {name: getattr(trace, name[0])[t] for name in model.states}  # h0=h[t], c0=c[t]
        tail = model.run(x[t:], **state)
        dz = np.zeros_like(tail.z)  # (T - t, B, O)
        dz[-1] = 1.0
        norms[t] = np.linalg.norm(model.backward(tail, dz)["h0"], axis=1)
    return norms


def chance_loss(config: TrainConfig) -> float:
    """The loss of a network that answers p = 0.5 at every bit, on config's sums.

    The same whatever the targets: 0.5 (0.5 - y)^2 = 1/8 per bit for mse, ln 2 for bce; so
    bits x ln 2 for the defaults. Training starts near it (small weights: p near 0.5) and stays
    on a plateau there until the network begins to add.
    """
    z = np.zeros((config.bits, 1, 1))  # (T, B, O) logits 0: p = sigmoid(0) = 0.5
    p = np.full_like(z, 0.5)
    return float(LOSSES[config.loss](z, p, np.zeros_like(z))[0])


def plateau_end(loss: NDArray[np.float64], chance: float) -> int:
    """The last training step (1-based) whose loss is no better than 5% below `chance`:
    where the plateau at the start of training ends. 0 if there is none."""
    within = np.flatnonzero(np.asarray(loss) >= 0.95 * chance)
    return int(within[-1]) + 1 if len(within) else 0


@dataclass
class BackwardStep:
    """Step t of the backward pass over one sequence (batch of one)."""

    t: int
    own: NDArray[np.float64]  # (H,) dL/dh_t through h_t's own output: dL/dz_t W_hy^T
    future: NDArray[np.float64]  # (H,) dL/dh_t from step t + 1: dh_next (0 at the last step)
    dW_hh: NDArray[np.float64]  # (H, H) dL/dW_hh summed over the steps done, s = t .. T-1

    @property
    def dh(self) -> NDArray[np.float64]:
        """dL/dh_t, both sources together."""
        return self.own + self.future


def backward_steps(model: Cell, x: Array, y: Array, loss: str) -> list[BackwardStep]:
    """The backward pass of `loss` over one sequence x: (T, 1, I), step by step from t = T-1
    down to 0, as BPTT walks it, in an RNN (`model`'s W_hh, the tutorial's synapse_h).

    No BPTT is written a second time here: the cell's own backward, run on the tail x[s:]
    started from h[s] (the state before bit s), returns as "h0" what steps s .. T-1 send
    back to h[s], and as "W_hh" their part of dL/dW_hh; the rest of the sequence is not in
    the tail and cannot contribute.
    """
    done = model.loss_pass(x, model.zero_states(1), y, loss)
    trace, dz = done.trace, done.dz  # dz: (T, 1, O) dL/dz_t
    T, H = x.shape[0], model.hidden_size

    def tail(s: int) -> dict[str, Array]:  # backward over steps s .. T-1 alone
        return model.backward(model.run(x[s:], h0=trace.h[s]), dz[s:])

    steps = []
    for t in reversed(range(T)):
        own = dz[t, 0] @ model.params["W_hy"].T  # dL/dz_t dz_t/dh_t = dz_t W_hy^T
        future = tail(t + 1)["h0"][0] if t + 1 < T else np.zeros(H)  # dL/dh_t = dL/dh[t + 1]
        steps.append(BackwardStep(t, own, future, np.asarray(tail(t)["W_hh"], np.float64)))
    return steps


def pass_overflows(model: Cell, bits: int, count: int) -> bool:
    """Does the model's pass over `count` random sums of `bits` bits overflow (a hidden
    state, an output or a gradient not finite)? The figures are drawn from such passes."""
    x, y = random_addition_batch(np.random.default_rng(0), count, bits, model.dtype)
    with np.errstate(all="ignore"):  # an overflow is what is looked for here, not warned of
        done = model.loss_pass(x, model.zero_states(count), y, "mse", refuse_overflow=False)
    arrays = (done.trace.h, done.trace.z, *done.grads.values())
    return not all(np.isfinite(a).all() for a in arrays)
