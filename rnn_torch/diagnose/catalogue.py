"""Known bugs of hand-written BPTT, each planted in rnn_manual/reference.py: the catalogue
`python -m rnn_torch diagnose` names a learner's bug from.

A bug is a list of edits to the reference's source, each a rnn_torch.planting.Plant: a
function of reference.py, one statement of it and what replaces it (zero or more
statements), found by its syntax tree, so formatting and comments do not matter; an edit
whose statement is not in its function exactly once raises CatalogueError, so that a change
to the reference cannot leave an entry silently planting nothing. Every statement an edit
names is marked as an anchor in reference.py, and tests/test_anchors.py names the entry and
the statement when one goes missing. `source(bug)` is the whole mutated module as Python
text, with absolute imports: a standalone file that follows the learner protocol (tests run
it as a learner's file); `mutant(bug)` is its `loss_and_grads`.

The entries started from the bugs the tests plant in the fast cells (tests/test_mutations.py,
tests/test_gated_mutations.py), and add the bugs learners make most; tests/test_reference.py
plants every one of them in the reference and checks that the autograd property fails.
Bugs in the loss's derivative are written as a correction of dz right after the reference's
loss call, so that they apply to every cell.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from rnn_manual import reference

from ..planting import Plant, PlantError, definition, plant
from .probes import UPSTREAM

LossAndGrads = Callable[..., tuple[float, dict[str, Any]]]

WALKTHROUGH = "docs/walkthrough.md"
#: The walkthrough's sections cited: number -> heading. Tests check that each heading, and
#: each phrase quoted in a pointer, is in docs/walkthrough.md.
SECTIONS = {
    2: "The forward pass",
    3: "The loss",
    4: "Backpropagation through time, step by step",
    11: "The LSTM: a cell state the gradient can travel on",
    12: "The GRU: the same idea with one state",
    15: "From bits to characters: a softmax output and min-char-rnn",
}


def walkthrough(section: int, *parts: str) -> str:
    """A pointer into the walkthrough: section 4 and its step 3 is 'docs/walkthrough.md,
    section 4 "Backpropagation through time, step by step", step 3 "Into the weights"'."""
    return ", ".join([f'{WALKTHROUGH}, section {section} "{SECTIONS[section]}"', *parts])


class CatalogueError(Exception):
    """An edit's statement is not in its function of reference.py exactly once."""


@dataclass(frozen=True)
class Bug:
    name: str  # short, unique: "rnn: h_t for h_{t-1} in dW_hh"
    cell: str  # "rnn", "lstm", "gru", or "any" (the loss's derivative)
    what: str  # completes "your dW_hh equals what you get when ..."
    see: str  # where the right term is derived
    edits: tuple[Plant, ...]  # each a function of reference.py, a statement, its replacement


def edit(function: str, old: str, new: str) -> Plant:
    return Plant(function, old, new)


def in_reference(function: str, detail: str) -> str:
    """A pointer to a function of the reference, where the gated cells' terms are derived."""
    return f"rnn_manual/reference.py, {function}: {detail}"


S1 = walkthrough(4, 'step 1 "Into the hidden state"')
S2 = walkthrough(4, 'step 2 "Through the nonlinearity"')
S3 = walkthrough(4, 'step 3 "Into the weights"')
S4 = walkthrough(4, 'step 4 "Pass it on"')
SUM = walkthrough(4, '"Unroll, then sum"')
LOSS = walkthrough(3)
CROSS_ENTROPY = walkthrough(15, '"Why p - y"')
#: Where each loss and its dL/dz are derived.
LOSS_DERIVED = {
    "mse": LOSS,
    "bce": LOSS,
    "ce": CROSS_ENTROPY,
    # the course styles' objective sum_t G_t . h_t, which is wrong only where an h_t is
    UPSTREAM: "the forward function's hidden states h_t, from which the objective "
    "sum_t G_t . h_t is computed",
}
LSTM = walkthrough(11)
LSTM_CELL = walkthrough(11, 'step 2 "Into the cell"')
LSTM_GATES = walkthrough(11, 'step 3 "Into the gates"')
LSTM_SLOPES = walkthrough(11, 'step 4 "Through each gate\'s nonlinearity"')
LSTM_WEIGHTS = walkthrough(11, 'step 5 "Into the weights"')
LSTM_CARRY = walkthrough(11, 'step 6 "Pass it on"', '"Why the gradient travels"')
GRU = walkthrough(12)
GRU_BACKWARD = walkthrough(12, '"What changes in the backward pass"')
GRU_CARRY = walkthrough(12, '"The direct path"', '"What changes in the backward pass"')
GRU_BIAS = walkthrough(12, '"sits inside the reset product"')
STATE = in_reference("loss_and_grads", "h0 and c0 None mean zeros; any other is the initial state")

#: The loss call in reference.loss_and_grads, after which the loss bugs change dz (or value).
LOSS_CALL = 'value, dz = LOSSES[loss](cache["z"], cache["p"], y)'
#: Where the consistent gate swaps rename the parameters going in and the gradients coming out.
ENTRY, EXIT = "cell = cell_of(params)", "return float(value), grads"


def swapped(names: list[tuple[str, str]], entry: bool) -> Plant:
    """An edit of loss_and_grads that swaps parameter pairs on entry (or gradients on exit):
    a learner's cell that uses one gate's weights for another's, consistently."""
    target = "params" if entry else "grads"
    lines = [f"{target} = dict({target})"]
    for a, b in names:
        line = f'{target}["{a}"], {target}["{b}"] = {target}["{b}"], {target}["{a}"]'
        lines.append(line if not a.startswith("b_") else f'if "{a}" in {target}:\n    {line}')
    old = ENTRY if entry else EXIT
    body = "\n".join(lines)
    return edit("loss_and_grads", old, f"{old}\n{body}" if entry else f"{body}\n{old}")


def loss_fix(condition: str, statement: str) -> Plant:
    """dz (or the loss value) changed after the reference's loss call, for one loss or both."""
    return edit("loss_and_grads", LOSS_CALL, f"{LOSS_CALL}\nif {condition}:\n    {statement}")


RNN_ACTIVATION_DERIVATIVES = (
    "da = dh * h[t + 1] * (1 - h[t + 1])",  # sigmoid
    "da = dh * (1 - h[t + 1] ** 2)",  # tanh
    "da = dh * (h[t + 1] > 0)",  # relu
)
RNN_A = 'a = x[t] @ W_xh + h[t] @ W_hh + params.get("b_h", 0.0)'  # the pre-activation a_t
LSTM_DH_NEXT = "dh_next = da_i @ W_hi.T + da_f @ W_hf.T + da_g @ W_hg.T + da_o @ W_ho.T"
GRU_DH_NEXT = "dh_next = dh * u[t] + da_r @ W_hr.T + da_u @ W_hu.T + dhn @ W_hn.T"
GRU_DH_NEXT_GATES = "da_r @ W_hr.T + da_u @ W_hu.T + dhn @ W_hn.T"

BUGS: tuple[Bug, ...] = (
    # ---- the RNN ---------------------------------------------------------------------
    Bug(
        "rnn: recurrent term of dL/dh_t dropped",
        "rnn",
        "dL/dh_t takes only its own output's term, without dh_next from step t + 1",
        S1,
        (edit("rnn_backward", "dh = dz[t] @ W_hy.T + dh_next", "dh = dz[t] @ W_hy.T"),),
    ),
    Bug(
        "rnn: only the last step's output term (dz_t dropped inside the loop)",
        "rnn",
        "dL/dh_t takes its own output's term at the last step only, and only dh_next before",
        S1,
        (
            edit(
                "rnn_backward",
                "dh = dz[t] @ W_hy.T + dh_next",
                "dh = dz[t] @ W_hy.T * (t == len(x) - 1) + dh_next",
            ),
        ),
    ),
    Bug(
        "rnn: h_t for h_{t-1} in dW_hh",
        "rnn",
        "h_t is used instead of h_{t-1} in dL/dW_hh",
        S3,
        (edit("rnn_backward", 'grads["W_hh"] += h[t].T @ da', 'grads["W_hh"] += h[t + 1].T @ da'),),
    ),
    Bug(
        "rnn: h_{t-1} for h_t in dW_hy",
        "rnn",
        "h_{t-1} is used instead of h_t in dL/dW_hy",
        S3,
        (
            edit(
                "rnn_backward",
                'grads["W_hy"] += h[t + 1].T @ dz[t]',
                'grads["W_hy"] += h[t].T @ dz[t]',
            ),
        ),
    ),
    Bug(
        "rnn: activation derivative dropped",
        "rnn",
        "dL/da_t is taken to be dL/dh_t, without the activation's derivative f'(a_t)",
        S2,
        tuple(edit("rnn_backward", old, "da = dh") for old in RNN_ACTIVATION_DERIVATIVES),
    ),
    Bug(
        "rnn: f'(a_{t-1}) for f'(a_t)",
        "rnn",
        "the activation's derivative is taken at the previous step, f'(a_{t-1}) for f'(a_t)",
        S2,
        tuple(
            edit("rnn_backward", old, old.replace("h[t + 1]", "h[t]"))
            for old in RNN_ACTIVATION_DERIVATIVES
        ),
    ),
    Bug(
        "rnn: activation derivative at the pre-activation",
        "rnn",
        "the derivative's formula in h_t is applied to the pre-activation a_t "
        "(a (1 - a) for h (1 - h), 1 - a^2 for 1 - h^2)",
        S2,
        (
            edit("rnn_backward", RNN_ACTIVATION_DERIVATIVES[0], f"{RNN_A}\nda = dh * a * (1 - a)"),
            edit("rnn_backward", RNN_ACTIVATION_DERIVATIVES[1], f"{RNN_A}\nda = dh * (1 - a ** 2)"),
        ),
    ),
    Bug(
        "rnn: relu' = 1 everywhere",
        "rnn",
        "relu's derivative is taken as 1 everywhere (h >= 0 for h > 0)",
        S2,
        (edit("rnn_backward", RNN_ACTIVATION_DERIVATIVES[2], "da = dh * (h[t + 1] >= 0)"),),
    ),
    Bug(
        "rnn: W_hh for W_hh^T",
        "rnn",
        "dL/dh_{t-1} is computed with W_hh instead of its transpose W_hh^T",
        S4,
        (edit("rnn_backward", "dh_next = da @ W_hh.T", "dh_next = da @ W_hh"),),
    ),
    Bug(
        "rnn: dL/dh_t passed back for dL/da_t",
        "rnn",
        "dL/dh_t instead of dL/da_t is sent back through W_hh^T to step t - 1",
        S4,
        (edit("rnn_backward", "dh_next = da @ W_hh.T", "dh_next = dh @ W_hh.T"),),
    ),
    Bug(
        "rnn: dL/dh_{-1} from the wrong step",
        "rnn",
        "dL/dh_{-1} is taken to be dL/da_0, not dL/da_0 W_hh^T",
        S4,
        (edit("rnn_backward", 'grads["h0"] = dh_next', 'grads["h0"] = da'),),
    ),
    Bug(
        "rnn: forward without b_h",
        "rnn",
        "the forward pass leaves b_h out of a_t",
        walkthrough(2),
        (
            edit(
                "rnn_forward",
                "a = x[t] @ W_xh + h[t] @ W_hh + b_h",
                "a = x[t] @ W_xh + h[t] @ W_hh",
            ),
        ),
    ),
    Bug(
        "rnn: gradients not summed over time (= for +=)",
        "rnn",
        "each step overwrites the weights' gradients (=) instead of adding to them (+=), "
        "so only step 0's share is left",
        SUM,
        tuple(
            edit("rnn_backward", f'grads["{name}"] += {term}', f'grads["{name}"] = {term}')
            for name, term in (
                ("W_xh", "x[t].T @ da"),
                ("W_hh", "h[t].T @ da"),
                ("W_hy", "h[t + 1].T @ dz[t]"),
                ("b_h", "da.sum(axis=0)"),
                ("b_y", "dz[t].sum(axis=0)"),
            )
        ),
    ),
    Bug(
        "rnn: bias gradients averaged over the batch",
        "rnn",
        "the bias gradients are averaged over the batch (the mean is already in dz), not summed",
        S3,
        (
            edit(
                "rnn_backward", 'grads["b_h"] += da.sum(axis=0)', 'grads["b_h"] += da.mean(axis=0)'
            ),
            edit(
                "rnn_backward",
                'grads["b_y"] += dz[t].sum(axis=0)',
                'grads["b_y"] += dz[t].mean(axis=0)',
            ),
        ),
    ),
    # ---- the loss's derivative, any cell ---------------------------------------------
    Bug(
        "loss: batch mean forgotten (mse)",
        "any",
        "mse's dL/dz is not divided by the batch size B",
        LOSS,
        (loss_fix('loss == "mse"', "dz = dz * x.shape[1]"),),
    ),
    Bug(
        "loss: batch mean forgotten (bce)",
        "any",
        "bce's dL/dz is not divided by the batch size B",
        LOSS,
        (loss_fix('loss == "bce"', "dz = dz * x.shape[1]"),),
    ),
    Bug(
        "loss: batch mean forgotten (every loss)",
        "any",
        "dL/dz is not divided by the batch size B",
        LOSS,
        (loss_fix("True", "dz = dz * x.shape[1]"),),
    ),
    Bug(
        "loss: mse without its 0.5",
        "any",
        "the mse loss is sum((p - y)^2) / B, without the 0.5 its gradient assumes",
        LOSS,
        (loss_fix('loss == "mse"', "value = 2 * value"),),
    ),
    Bug(
        "loss: mse's dL/dz with 2 (p - y)",
        "any",
        "mse's dL/dz has 2 (p - y), the derivative of (p - y)^2 without the loss's 0.5",
        LOSS,
        (loss_fix('loss == "mse"', "dz = 2 * dz"),),
    ),
    Bug(
        "loss: mse's dL/dz without p (1 - p)",
        "any",
        "mse's dL/dz is (p - y) / B, without the output sigmoid's derivative p (1 - p)",
        LOSS,
        (loss_fix('loss == "mse"', 'dz = (cache["p"] - y) / x.shape[1]'),),
    ),
    Bug(
        "loss: bce's dL/dz with an extra p (1 - p)",
        "any",
        "bce's dL/dz is multiplied by p (1 - p), which bce's derivative has already cancelled",
        LOSS,
        (loss_fix('loss == "bce"', 'dz = dz * cache["p"] * (1 - cache["p"])'),),
    ),
    Bug(
        "loss: ce's dL/dz without the -1 at the target",
        "any",
        "ce's dL/dz is p / B, without subtracting the target y (min-char-rnn's dy[target] -= 1)",
        CROSS_ENTROPY,
        (loss_fix('loss == "ce"', 'dz = cache["p"] / x.shape[1]'),),
    ),
    Bug(
        "loss: batch mean forgotten (ce)",
        "any",
        "ce's dL/dz is not divided by the batch size B",
        CROSS_ENTROPY,
        (loss_fix('loss == "ce"', "dz = dz * x.shape[1]"),),
    ),
    Bug(
        "loss: ce's dL/dz through a sigmoid's derivative",
        "any",
        "ce's dL/dz is multiplied by p (1 - p), a sigmoid's derivative, which the softmax "
        "and its cross-entropy have cancelled",
        CROSS_ENTROPY,
        (loss_fix('loss == "ce"', 'dz = dz * cache["p"] * (1 - cache["p"])'),),
    ),
    # ---- the initial state, any cell -------------------------------------------------
    Bug(
        "state: h0 ignored",
        "any",
        "the argument h0 is ignored and every sequence starts from h_{-1} = 0",
        STATE,
        (
            edit(
                "loss_and_grads",
                'if h0 is None:\n    h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)',
                'h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)',
            ),
        ),
    ),
    Bug(
        "lstm: c0 ignored",
        "lstm",
        "the argument c0 is ignored and every sequence starts from c_{-1} = 0",
        STATE,
        (
            edit(
                "loss_and_grads",
                'if c0 is None:\n    c0 = np.zeros((B, H), dtype=params["W_hy"].dtype)',
                'c0 = np.zeros((B, H), dtype=params["W_hy"].dtype)',
            ),
        ),
    ),
    # ---- the LSTM --------------------------------------------------------------------
    Bug(
        "lstm: gates g and o swapped (CS231n's order i, f, o, g)",
        "lstm",
        "the gates g and o use each other's weights (the order i, f, o, g for i, f, g, o)",
        LSTM,
        (
            swapped([("W_xg", "W_xo"), ("W_hg", "W_ho"), ("b_g", "b_o")], entry=True),
            swapped([("W_xg", "W_xo"), ("W_hg", "W_ho"), ("b_g", "b_o")], entry=False),
        ),
    ),
    Bug(
        "lstm: forget-gate bias in the output gate",
        "lstm",
        "the forward pass adds b_f to the output gate and b_o to the forget gate",
        LSTM,
        (
            edit(
                "lstm_forward",
                'W_xf, W_hf, b_f = params["W_xf"], params["W_hf"], params.get("b_f", 0.0)',
                'W_xf, W_hf, b_f = params["W_xf"], params["W_hf"], params.get("b_o", 0.0)',
            ),
            edit(
                "lstm_forward",
                'W_xo, W_ho, b_o = params["W_xo"], params["W_ho"], params.get("b_o", 0.0)',
                'W_xo, W_ho, b_o = params["W_xo"], params["W_ho"], params.get("b_f", 0.0)',
            ),
        ),
    ),
    Bug(
        "lstm: recurrent term dh_next dropped",
        "lstm",
        "nothing is sent back to h_{t-1} through the gates (dh_next = 0)",
        LSTM_CARRY,
        (edit("lstm_backward", LSTM_DH_NEXT, "dh_next = 0 * dh"),),
    ),
    Bug(
        "lstm: tanh(c_t) dropped from h_t (h_t = o_t c_t)",
        "lstm",
        "the hidden state is o_t * c_t, without the tanh, in the forward pass and, "
        "consistently, in the backward pass",
        LSTM_CELL,
        (
            edit(
                "lstm_forward", "h[t + 1] = o[t] * np.tanh(c[t + 1])", "h[t + 1] = o[t] * c[t + 1]"
            ),
            edit("lstm_backward", "tanh_c = np.tanh(c[t + 1])", "tanh_c = c[t + 1]"),
            edit(
                "lstm_backward",
                "dc = dc_next + dh * o[t] * (1 - tanh_c**2)",
                "dc = dc_next + dh * o[t]",
            ),
        ),
    ),
    Bug(
        "lstm: cell path dropped",
        "lstm",
        "nothing is carried back along the cell state (dc_next = 0)",
        LSTM_CARRY,
        (edit("lstm_backward", "dc_next = dc * f[t]", "dc_next = 0 * dc"),),
    ),
    Bug(
        "lstm: dc carried without the forget gate",
        "lstm",
        "dL/dc_t is carried back to c_{t-1} without the factor f_t (dc_next = dc)",
        LSTM_CARRY,
        (edit("lstm_backward", "dc_next = dc * f[t]", "dc_next = dc"),),
    ),
    Bug(
        "lstm: c_t for c_{t-1} in df",
        "lstm",
        "c_t is used instead of c_{t-1} in dL/df_t",
        LSTM_GATES,
        (edit("lstm_backward", "df = dc * c[t]", "df = dc * c[t + 1]"),),
    ),
    Bug(
        "lstm: h_t for h_{t-1} in dW_h",
        "lstm",
        "h_t is used instead of h_{t-1} in the gradients of W_hi, W_hf, W_hg and W_ho",
        LSTM_WEIGHTS,
        tuple(
            edit(
                "lstm_backward",
                f'grads["W_h{q}"] += h[t].T @ da_{q}',
                f'grads["W_h{q}"] += h[t + 1].T @ da_{q}',
            )
            for q in "ifgo"
        ),
    ),
    Bug(
        "lstm: h_{t-1} for h_t in dW_hy",
        "lstm",
        "h_{t-1} is used instead of h_t in dL/dW_hy",
        S3,
        (
            edit(
                "lstm_backward",
                'grads["W_hy"] += h[t + 1].T @ dz[t]',
                'grads["W_hy"] += h[t].T @ dz[t]',
            ),
        ),
    ),
    Bug(
        "lstm: tanh'(c_t) dropped from dc",
        "lstm",
        "dL/dc_t takes dh_t * o_t without tanh's derivative 1 - tanh(c_t)^2",
        LSTM_CELL,
        (
            edit(
                "lstm_backward",
                "dc = dc_next + dh * o[t] * (1 - tanh_c**2)",
                "dc = dc_next + dh * o[t]",
            ),
        ),
    ),
    Bug(
        "lstm: tanh' taken at c_t, not tanh(c_t)",
        "lstm",
        "tanh's derivative in dL/dc_t is written 1 - c_t^2 instead of 1 - tanh(c_t)^2",
        LSTM_CELL,
        (
            edit(
                "lstm_backward",
                "dc = dc_next + dh * o[t] * (1 - tanh_c**2)",
                "dc = dc_next + dh * o[t] * (1 - c[t + 1] ** 2)",
            ),
        ),
    ),
    Bug(
        "lstm: c_t for tanh(c_t) in do",
        "lstm",
        "dL/do_t is dh_t * c_t instead of dh_t * tanh(c_t)",
        LSTM_GATES,
        (edit("lstm_backward", "do = dh * tanh_c", "do = dh * c[t + 1]"),),
    ),
    Bug(
        "lstm: sigmoid' for tanh' at g",
        "lstm",
        "the candidate g_t's derivative is the sigmoid's g (1 - g), not tanh's 1 - g^2",
        LSTM_SLOPES,
        (edit("lstm_backward", "da_g = dg * (1 - g[t] ** 2)", "da_g = dg * g[t] * (1 - g[t])"),),
    ),
    # ---- the GRU ---------------------------------------------------------------------
    Bug(
        "gru: gates r and u swapped (order z, r, n)",
        "gru",
        "the reset and update gates use each other's weights (the order z, r, n for r, z, n)",
        GRU,
        (
            swapped([("W_xr", "W_xu"), ("W_hr", "W_hu"), ("b_r", "b_u")], entry=True),
            swapped([("W_xr", "W_xu"), ("W_hr", "W_hu"), ("b_r", "b_u")], entry=False),
        ),
    ),
    Bug(
        "gru: b_hn outside the reset product",
        "gru",
        "b_hn is added outside the reset gate's product, r_t * (h_{t-1} W_hn) + b_hn, as in "
        "some write-ups but not in PyTorch's GRU",
        GRU_BIAS,
        (
            edit("gru_forward", "hn[t] = h[t] @ W_hn + b_hn", "hn[t] = h[t] @ W_hn"),
            edit(
                "gru_forward",
                "n[t] = np.tanh(x[t] @ W_xn + b_xn + r[t] * hn[t])",
                "n[t] = np.tanh(x[t] @ W_xn + b_xn + b_hn + r[t] * hn[t])",
            ),
            edit(
                "gru_backward",
                'grads["b_hn"] += dhn.sum(axis=0)',
                'grads["b_hn"] += da_n.sum(axis=0)',
            ),
        ),
    ),
    Bug(
        "gru: recurrent term through the gates dropped",
        "gru",
        "dL/dh_{t-1} keeps only the direct path u_t * dL/dh_t, nothing through the gates",
        GRU_CARRY,
        (edit("gru_backward", GRU_DH_NEXT, "dh_next = dh * u[t]"),),
    ),
    Bug(
        "gru: direct path u_t * dh dropped",
        "gru",
        "dL/dh_{t-1} misses the direct path u_t * dL/dh_t",
        GRU_CARRY,
        (edit("gru_backward", GRU_DH_NEXT, f"dh_next = {GRU_DH_NEXT_GATES}"),),
    ),
    Bug(
        "gru: h_t for h_{t-1} in du",
        "gru",
        "h_t is used instead of h_{t-1} in dL/du_t",
        GRU_BACKWARD,
        (edit("gru_backward", "du = dh * (h[t] - n[t])", "du = dh * (h[t + 1] - n[t])"),),
    ),
    Bug(
        "gru: update gate's derivative with the wrong sign",
        "gru",
        "dL/du_t has the wrong sign: n_t - h_{t-1} for h_{t-1} - n_t",
        GRU_BACKWARD,
        (edit("gru_backward", "du = dh * (h[t] - n[t])", "du = dh * (n[t] - h[t])"),),
    ),
    Bug(
        "gru: update gate the other way round",
        "gru",
        "the cell is h_t = u_t * n_t + (1 - u_t) * h_{t-1} (the update gate the other way "
        "round from PyTorch's), consistently in both passes",
        GRU,
        (
            edit(
                "gru_forward",
                "h[t + 1] = (1 - u[t]) * n[t] + u[t] * h[t]",
                "h[t + 1] = u[t] * n[t] + (1 - u[t]) * h[t]",
            ),
            edit("gru_backward", "dn = dh * (1 - u[t])", "dn = dh * u[t]"),
            edit("gru_backward", "du = dh * (h[t] - n[t])", "du = dh * (n[t] - h[t])"),
            edit("gru_backward", GRU_DH_NEXT, f"dh_next = dh * (1 - u[t]) + {GRU_DH_NEXT_GATES}"),
        ),
    ),
    Bug(
        "gru: reset gate left out of dhn",
        "gru",
        "dL/dhn_t is dL/da_n without the reset gate's factor r_t",
        GRU_BACKWARD,
        (edit("gru_backward", "dhn = da_n * r[t]", "dhn = da_n"),),
    ),
    Bug(
        "gru: b_hn left out of dr",
        "gru",
        "dL/dr_t uses h_{t-1} W_hn without b_hn, where the reset gate multiplies both",
        GRU_BACKWARD,
        (edit("gru_backward", "dr = da_n * hn[t]", 'dr = da_n * (h[t] @ params["W_hn"])'),),
    ),
    Bug(
        "gru: h_t for h_{t-1} in dW_h",
        "gru",
        "h_t is used instead of h_{t-1} in the gradients of W_hr, W_hu and W_hn",
        GRU_BACKWARD,
        (
            edit(
                "gru_backward",
                'grads["W_hr"] += h[t].T @ da_r',
                'grads["W_hr"] += h[t + 1].T @ da_r',
            ),
            edit(
                "gru_backward",
                'grads["W_hu"] += h[t].T @ da_u',
                'grads["W_hu"] += h[t + 1].T @ da_u',
            ),
            edit(
                "gru_backward", 'grads["W_hn"] += h[t].T @ dhn', 'grads["W_hn"] += h[t + 1].T @ dhn'
            ),
        ),
    ),
)

BY_NAME = {bug.name: bug for bug in BUGS}


def for_cell(cell: str) -> list[Bug]:
    """The bugs a learner's `cell` can have: its own and the loss's."""
    return [bug for bug in BUGS if bug.cell in (cell, "any")]


def _absolute_imports(tree: ast.Module) -> None:
    """`from .cells.losses import LOSSES` -> `from rnn_manual.cells.losses import LOSSES`
    (reference.py imports at its top level only)."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            relative = "." * node.level + (node.module or "")
            node.module = importlib.util.resolve_name(relative, reference.__package__)
            node.level = 0


@cache
def _reference_source() -> str:
    return inspect.getsource(reference)


def source(*bugs: Bug) -> str:
    """reference.py with every one of `bugs` planted, in order, as the text of a standalone
    module (absolute imports) that defines loss_and_grads. Two bugs that edit the same
    statement cannot both be planted: CatalogueError."""
    return ast.unparse(planted_tree(*bugs)) + "\n"


def planted_tree(*bugs: Bug) -> ast.Module:
    """source's module as a syntax tree, to compile without writing it out and reading it
    back (a pair of bugs is planted and compiled for every pair the diagnosis tries)."""
    tree = ast.parse(_reference_source())
    for bug in bugs:
        for change in bug.edits:
            try:
                plant(tree, change)
            except PlantError as error:
                raise CatalogueError(
                    f"catalogue bug {bug.name!r}: in rnn_manual/reference.py, {error}: update "
                    "rnn_torch/diagnose/catalogue.py to the reference's source"
                ) from None
    _absolute_imports(tree)
    names = " and ".join(bug.name for bug in bugs) or "none"
    docstring = f"rnn_manual/reference.py with known bugs planted: {names}."
    tree.body[0] = ast.copy_location(ast.Expr(ast.Constant(docstring)), tree.body[0])
    for function in {f for bug in bugs for f in edited(bug)} | {"<doc>"}:
        # the new nodes lack positions: fix only where they are (the whole tree is slow)
        node = tree.body[0] if function == "<doc>" else definition(tree, function)
        ast.fix_missing_locations(node)
    return tree


def upstream_objective(z: Any, p: Any, y: Any) -> tuple[Any, Any]:
    """The course styles' objective (probes.UPSTREAM) as a loss of the reference's: with an
    output layer that passes h_t through (z_t = h_t), L = sum_t sum(G_t * z_t) for G = y, and
    dL/dz_t = G_t."""
    return np.sum(y * z), y


def edited(bug: Bug) -> set[str]:
    """The functions of reference.py a bug's edits change."""
    return {change.function for change in bug.edits}


def combined(spaces: list[dict[str, Any]], functions: list[set[str]]) -> dict[str, Any]:
    """One namespace from planted ones whose bugs edit different functions: the first's, with
    each other's edited functions taken from it, every function of theirs rebound to look
    its globals up here (so that a planted lstm_backward is the one loss_and_grads calls)."""
    namespace = dict(spaces[0])
    for space, names in zip(spaces[1:], functions[1:], strict=True):
        namespace.update({name: space[name] for name in names})
    for name, value in list(namespace.items()):
        if isinstance(value, types.FunctionType) and any(value.__globals__ is s for s in spaces):
            function = types.FunctionType(
                value.__code__, namespace, value.__name__, value.__defaults__, value.__closure__
            )
            function.__kwdefaults__ = value.__kwdefaults__
            namespace[name] = function
    return namespace


@cache
def planted(names: tuple[str, ...] = (), upstream: bool = False) -> dict[str, Any]:
    """The namespace of reference.py with the catalogue entries `names` planted (none: the
    reference itself). upstream: its loss_and_grads also takes loss=probes.UPSTREAM.

    Entries that edit different functions (most pairs the diagnosis tries) are combined
    from their own planted namespaces, without planting and compiling the source again."""
    functions = [edited(BY_NAME[name]) for name in names]
    disjoint = sum(map(len, functions)) == len(set().union(*functions))
    if len(names) > 1 and disjoint and not any("." in f for f in set().union(*functions)):
        return combined([planted((name,), upstream) for name in names], functions)
    label = " + ".join(names) or "reference"
    namespace: dict[str, Any] = {"__name__": f"rnn_torch.diagnose.catalogue[{label}]"}
    tree = planted_tree(*(BY_NAME[name] for name in names))
    exec(compile(tree, f"<catalogue: {label}>", "exec"), namespace)
    if upstream:  # this namespace's own tables: the shared ones stay as they are
        namespace["LOSSES"] = {**namespace["LOSSES"], UPSTREAM: upstream_objective}
        namespace["OUTPUT_OF"] = {**namespace["OUTPUT_OF"], UPSTREAM: "sigmoid"}
    return namespace


def mutant(*names: str) -> LossAndGrads:
    """The catalogue entries' loss_and_grads: the reference with the bugs `names` planted."""
    function: LossAndGrads = planted(names)["loss_and_grads"]
    return function


def upstream_pass(*names: str) -> LossAndGrads:
    """loss_and_grads for the upstream objective of the course styles (probes.UPSTREAM): y is
    G (T, B, H), L = sum_t sum(G_t * h_t), by the reference's own pass (with `names`
    planted) through an output layer that passes h_t through (W_hy = I, no b_y), whose
    gradients are left out."""
    function = planted(names, upstream=True)["loss_and_grads"]

    def loss_and_grads(
        params: dict[str, Any], x: Any, y: Any, **kwargs: Any
    ) -> tuple[float, dict[str, Any]]:
        H = y.shape[2]
        full = {**params, "W_hy": np.eye(H)}
        if any(k.startswith("b_") for k in params):
            full["b_y"] = np.zeros(H)
        value, grads = function(full, x, y, **kwargs)
        grads.pop("W_hy")
        grads.pop("b_y", None)
        return value, grads

    return loss_and_grads
