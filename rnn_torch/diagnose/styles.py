"""How a learner's functions, written in a course's own style, answer the diagnosis's protocol.

The diagnosis judges one protocol: loss_and_grads(params, x, y, *, loss, h0, c0, activation)
-> (loss, grads), x (T, B, I) time-major, grads keyed by our names (reference.py). A Unit
here wraps a learner's forward and backward functions of one style into that protocol, so
that the probes, autograd's answers, the localization and the catalogue stay one beneath
every style; only the arrays' layouts and names change on the way in and out.

    native   loss_and_grads itself (ours).
    cs231n   CS231n's rnn_layers.py, batch-first: x (N, T, D), h (N, T, H), Wx (D, H),
             Wh (H, H), b (H,); the LSTM's Wx (D, 4H) stacks the gates i, f, o, g. EECS 498's
             versions of the RNN functions take torch tensors: a file that imports torch
             and not NumPy gets tensors.
    dls      the Coursera Deep Learning Specialization's step-by-step notebook, column-major:
             xt (n_x, m), a (n_a, m), x (n_x, m, T_x), Wax (n_a, n_x), ba (n_a, 1), gradients
             in a dict; the LSTM's Wf, Wi, Wc, Wo (n_a, n_a + n_x) act on [a_prev; xt].
    minchar  min-char-rnn's lossFun(inputs, targets, hprev), reading the module's globals
             Wxh (H, V), Whh, Why (V, H), bh (H, 1), by (V, 1); inputs and targets are
             lists of character indices, hprev (H, 1).

The objective. cs231n's and dls's backward functions take the upstream gradient of every
hidden state (dh, da) and have no output layer: their units answer the objective "dh",
L = sum_t sum(G_t * h_t) for an upstream G (T, B, H) given as y, whose gradient into h_t is
G_t itself. A step unit (rnn_step_forward and rnn_step_backward, say) is run by a plain
loop here, which carries dprev_h from each step to the one before, so the learner's step
functions are judged over sequences as their sequence functions are. minchar's lossFun
answers "ce", the softmax cross-entropy it computes itself, summed over its steps (B = 1).

Whatever a learner's function changes in place among the arrays it was given (its own
parameter names: "rnn_backward: dh") is recorded in `Adapted.changed`.

This module imports only the standard library and NumPy: child.py loads it by path, in a
process that must start fast.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
Grads = dict[str, Array]
Params = dict[str, Array]

#: Each style, as the course names its file.
TITLES = {
    "native": "loss_and_grads, rnn_manual.reference's protocol",
    "cs231n": "CS231n's rnn_layers.py, or EECS 498's on torch tensors",
    "dls": "the Coursera Deep Learning Specialization's RNN step by step",
    "minchar": "min-char-rnn's lossFun",
}
STYLES = tuple(TITLES)
#: The gate blocks of a stacked LSTM weight, in each style's order (our g is dls's c).
CS231N_GATES = "ifog"
DLS_GATES = {"f": "f", "i": "i", "c": "g", "o": "o"}  # theirs -> ours
#: Rows of dls's Wya and by: their output layer, which the "dh" objective does not use.
DLS_OUTPUTS = 2
#: What min-char-rnn clips its gradients to.
MINCHAR_CLIP = 5.0


@dataclass
class Adapted:
    """A learner's functions answering loss_and_grads; `changed` collects the arrays they
    changed in place ("rnn_backward: dh"), to be read and cleared after each call."""

    function: Callable[..., tuple[float, Grads]]
    changed: list[str] = field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[float, Grads]:
        return self.function(*args, **kwargs)


# ---- calling a learner's function --------------------------------------------------------


def arrays_in(value: object, label: str, depth: int = 0) -> list[tuple[str, Any]]:
    """(label, array) for every NumPy array or torch tensor in value, looking into tuples,
    lists and dicts (a cache) three levels deep."""
    if isinstance(value, np.ndarray) or hasattr(value, "detach"):
        return [(label, value)]
    if depth >= 3:
        return []
    if isinstance(value, (tuple, list)):
        items: Sequence[tuple[object, object]] = list(enumerate(value))
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        return []
    found = []
    for key, item in items:
        found += arrays_in(item, f"{label}[{key!r}]", depth + 1)
    return found


def frozen(array: Any) -> np.ndarray:
    return np.array(numpy(array), copy=True)


def watched(changed: list[str], function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs), recording in `changed` each array argument it changed in
    place, by the function's own parameter name."""
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        names = []
    names += [f"argument {i + 1}" for i in range(len(names), len(args))]
    before = []
    for name, arg in [*zip(names, args, strict=False), *kwargs.items()]:
        before += [(label, a, frozen(a)) for label, a in arrays_in(arg, name)]
    result = function(*args, **kwargs)
    title = getattr(function, "__name__", "the function")
    for label, array, copy in before:
        now = numpy(array)
        if now.shape != copy.shape or not np.array_equal(now, copy, equal_nan=True):
            changed.append(f"{title}: {label}")
    return result


def numpy(value: Any) -> np.ndarray:
    """A learner's array (NumPy, or a torch tensor) as a float64 NumPy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def unpacked(result: object, function: str, names: str) -> tuple[Any, ...]:
    """A returned tuple of len(names.split(', ')) items, or TypeError in the learner's words."""
    count = len(names.split(", "))
    if not isinstance(result, (tuple, list)) or len(result) != count:
        got = (
            f"a {type(result).__name__} of {len(result)}"
            if isinstance(result, (tuple, list))
            else type(result).__name__
        )
        raise TypeError(f"{function} returned {got}, not ({names})")
    return tuple(result)


def entries(result: object, function: str, names: str) -> tuple[Any, ...]:
    """The named entries of a returned dict (dls's gradients), or KeyError/TypeError."""
    if not isinstance(result, dict):
        raise TypeError(f"{function} returned {type(result).__name__}, not a dict of {names}")
    missing = [n for n in names.split(", ") if n not in result]
    if missing:
        raise KeyError(f"{function}'s gradients have no {', '.join(missing)}")
    return tuple(result[n] for n in names.split(", "))


def takes_tensors(module: ModuleType) -> bool:
    """EECS 498's files work on torch tensors: they import torch and not NumPy."""
    names = vars(module)
    return "torch" in names and "np" not in names and "numpy" not in names


def converter(module: ModuleType) -> Callable[[Array], Any]:
    """What turns our float64 arrays into the learner's kind (copies)."""
    if takes_tensors(module):
        torch = vars(module)["torch"]
        return lambda a: torch.from_numpy(np.array(a, copy=True))
    return lambda a: np.array(a, copy=True)


def zeros_like_state(params: dict[str, Array], x: Array, hidden: str) -> Array:
    return np.zeros((x.shape[1], params[hidden].shape[0]))


def column(g: Any) -> np.ndarray:
    """A (n, 1) column's values as (n,); other shapes pass unchanged, to be reported."""
    g = numpy(g)
    return g[:, 0] if g.ndim == 2 and g.shape[1] == 1 else g


# ---- native ------------------------------------------------------------------------------


def native(function: Callable[..., Any]) -> Adapted:
    """Our own protocol, loss_and_grads itself, watched for arrays it changes in place."""
    changed: list[str] = []

    def loss_and_grads(*args: Any, **kwargs: Any) -> Any:
        return watched(changed, function, *args, **kwargs)

    return Adapted(loss_and_grads, changed)


# ---- cs231n ------------------------------------------------------------------------------


def cs231n_weights(params: dict[str, Array], cell: str) -> tuple[Array, Array, Array]:
    """Wx (D, H or 4H), Wh, b: ours, the LSTM's gates stacked i, f, o, g."""
    if cell == "rnn":
        return params["W_xh"], params["W_hh"], params["b_h"]
    stack = [params[f"W_x{q}"] for q in CS231N_GATES], [params[f"W_h{q}"] for q in CS231N_GATES]
    b = np.concatenate([params[f"b_{q}"] for q in CS231N_GATES])
    return np.concatenate(stack[0], axis=1), np.concatenate(stack[1], axis=1), b


def cs231n_grads(cell: str, dWx: Any, dWh: Any, db: Any) -> Grads:
    """dWx, dWh, db by our names, the LSTM's unstacked from i, f, o, g."""
    if cell == "rnn":
        return {"W_xh": numpy(dWx), "W_hh": numpy(dWh), "b_h": numpy(db)}
    grads: Grads = {}
    for prefix, g in (("W_x", dWx), ("W_h", dWh), ("b_", db)):
        g = numpy(g)
        if g.shape[-1] % 4:
            raise ValueError(f"d{prefix[:-1] or 'b'} has {g.shape[-1]} columns, not 4H")
        blocks = np.split(g, 4, axis=-1)
        grads.update({f"{prefix}{q}": b for q, b in zip(CS231N_GATES, blocks, strict=True)})
    return grads


def cs231n_sequence(cell: str) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_forward/rnn_backward (or lstm_*): the sequence functions, batch-first."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward, backward = getattr(module, f"{cell}_forward"), getattr(module, f"{cell}_backward")
        theirs = converter(module)

        def loss_and_grads(
            params: Params,
            x: Array,
            y: Array,
            *,
            loss: str,
            h0: Array | None = None,
            c0: Array | None = None,
            activation: str | None = None,
        ) -> tuple[float, Grads]:
            h0 = (
                zeros_like_state(params, x, "W_hh" if cell == "rnn" else "W_hi")
                if h0 is None
                else h0
            )
            weights = [theirs(w) for w in cs231n_weights(params, cell)]
            result = watched(changed, forward, theirs(x.transpose(1, 0, 2)), theirs(h0), *weights)
            h, cache = unpacked(result, forward.__name__, "h, cache")
            value = float(np.sum(y * numpy(h).transpose(1, 0, 2)))  # L = sum_t G_t . h_t
            result = watched(changed, backward, theirs(y.transpose(1, 0, 2)), cache)
            dx, dh0, dWx, dWh, db = unpacked(result, backward.__name__, "dx, dh0, dWx, dWh, db")
            grads = cs231n_grads(cell, dWx, dWh, db)
            grads.update(x=numpy(dx).transpose(1, 0, 2), h0=numpy(dh0))
            return value, grads

        return loss_and_grads

    return adapt


def cs231n_steps(cell: str) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_step_forward/rnn_step_backward (or lstm_step_*), run over the sequence by a loop
    that carries dprev_h (and dprev_c) from each step to the one before."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward = getattr(module, f"{cell}_step_forward")
        backward = getattr(module, f"{cell}_step_backward")
        theirs = converter(module)
        lstm = cell == "lstm"

        def loss_and_grads(
            params: Params,
            x: Array,
            y: Array,
            *,
            loss: str,
            h0: Array | None = None,
            c0: Array | None = None,
            activation: str | None = None,
        ) -> tuple[float, Grads]:
            hidden = "W_hi" if lstm else "W_hh"
            h = zeros_like_state(params, x, hidden) if h0 is None else h0
            c = zeros_like_state(params, x, hidden) if c0 is None else c0
            weights = [theirs(w) for w in cs231n_weights(params, cell)]
            caches: list[Any] = []
            value = 0.0
            for t in range(len(x)):
                state = (theirs(h), theirs(c)) if lstm else (theirs(h),)
                result = watched(changed, forward, theirs(x[t]), *state, *weights)
                names = "next_h, next_c, cache" if lstm else "next_h, cache"
                out = unpacked(result, forward.__name__, names)
                h, caches = numpy(out[0]), [*caches, out[-1]]
                c = numpy(out[1]) if lstm else c
                value += float(np.sum(y[t] * h))  # L = sum_t G_t . h_t
            dx = np.zeros_like(x)
            dh_next, dc_next = np.zeros_like(h), np.zeros_like(h)
            sums: dict[str, Array] = {}
            for t in reversed(range(len(x))):
                upstream = [theirs(y[t] + dh_next)]  # dL/dh_t: G_t plus what step t + 1 sent
                if lstm:
                    upstream.append(theirs(dc_next))
                result = watched(changed, backward, *upstream, caches[t])
                names = (
                    "dx, dprev_h, dprev_c, dWx, dWh, db" if lstm else "dx, dprev_h, dWx, dWh, db"
                )
                out = unpacked(result, backward.__name__, names)
                dx[t], dh_next = numpy(out[0]), numpy(out[1])
                dc_next = numpy(out[2]) if lstm else dc_next
                for name, g in cs231n_grads(cell, *out[-3:]).items():
                    sums[name] = sums[name] + g if name in sums else g
            grads = {**sums, "x": dx, "h0": dh_next}
            if lstm:
                grads["c0"] = dc_next
            return value, grads

        return loss_and_grads

    return adapt


# ---- dls ---------------------------------------------------------------------------------


def dls_parameters(params: dict[str, Array], cell: str) -> dict[str, Array]:
    """The notebook's `parameters`: ours transposed to column-major, biases as columns, the
    LSTM's gates on [a_prev; xt]; Wya (Wy) and by of an output layer the objective ignores."""
    H = params["W_hh" if cell == "rnn" else "W_hf"].shape[0]
    out: dict[str, Array] = {"by": np.zeros((DLS_OUTPUTS, 1))}
    if cell == "rnn":
        out.update({"Wax": params["W_xh"].T, "Waa": params["W_hh"].T, "ba": params["b_h"][:, None]})
        out["Wya"] = np.zeros((DLS_OUTPUTS, H))
        return out
    for theirs, q in DLS_GATES.items():
        out[f"W{theirs}"] = np.concatenate([params[f"W_h{q}"], params[f"W_x{q}"]]).T
        out[f"b{theirs}"] = params[f"b_{q}"][:, None]
    out["Wy"] = np.zeros((DLS_OUTPUTS, H))
    return out


def dls_grads(cell: str, gradients: tuple[Any, ...], H: int) -> Grads:
    """The weights' and biases' gradients by our names: (dWax, dWaa, dba), or the LSTM's
    (dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo) split at [a_prev; xt]."""
    if cell == "rnn":
        dWax, dWaa, dba = gradients
        return {"W_xh": numpy(dWax).T, "W_hh": numpy(dWaa).T, "b_h": column(dba)}
    grads: Grads = {}
    for i, q in enumerate(DLS_GATES.values()):
        dW = numpy(gradients[2 * i]).T  # (n_a + n_x, n_a): the rows of a_prev, then of xt
        grads[f"W_h{q}"], grads[f"W_x{q}"] = dW[:H], dW[H:]
        grads[f"b_{q}"] = column(gradients[2 * i + 1])
    return grads


DLS_WEIGHT_GRADS = {
    "rnn": "dWax, dWaa, dba",
    "lstm": "dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo",
}


def dls_sequence(cell: str) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_forward/rnn_backward (or lstm_*): x (n_x, m, T_x), caches (list, x), and the
    gradients dict."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward, backward = getattr(module, f"{cell}_forward"), getattr(module, f"{cell}_backward")

        def loss_and_grads(
            params: Params,
            x: Array,
            y: Array,
            *,
            loss: str,
            h0: Array | None = None,
            c0: Array | None = None,
            activation: str | None = None,
        ) -> tuple[float, Grads]:
            H = params["W_hh" if cell == "rnn" else "W_hf"].shape[0]
            a0 = np.zeros((H, x.shape[1])) if h0 is None else h0.T.copy()
            parameters = {
                k: np.ascontiguousarray(w) for k, w in dls_parameters(params, cell).items()
            }
            result = watched(changed, forward, x.transpose(2, 1, 0).copy(), a0, parameters)
            names = "a, y_pred, caches" if cell == "rnn" else "a, y, c, caches"
            out = unpacked(result, forward.__name__, names)
            value = float(np.sum(y * numpy(out[0]).transpose(2, 1, 0)))  # L = sum_t G_t . a_t
            gradients = watched(changed, backward, y.transpose(2, 1, 0).copy(), out[-1])
            names = f"dx, da0, {DLS_WEIGHT_GRADS[cell]}"
            got = entries(gradients, backward.__name__, names)
            grads = dls_grads(cell, got[2:], H)
            grads.update(x=numpy(got[0]).transpose(2, 1, 0), h0=numpy(got[1]).T)
            return value, grads

        return loss_and_grads

    return adapt


def dls_cells(cell: str) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_cell_forward/rnn_cell_backward (or lstm_cell_*), run over the sequence by a loop
    that carries da_prev (and dc_prev) from each step to the one before."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward = getattr(module, f"{cell}_cell_forward")
        backward = getattr(module, f"{cell}_cell_backward")
        lstm = cell == "lstm"

        def loss_and_grads(
            params: Params,
            x: Array,
            y: Array,
            *,
            loss: str,
            h0: Array | None = None,
            c0: Array | None = None,
            activation: str | None = None,
        ) -> tuple[float, Grads]:
            H = params["W_hh" if cell == "rnn" else "W_hf"].shape[0]
            a = np.zeros((H, x.shape[1])) if h0 is None else h0.T.copy()
            c = np.zeros((H, x.shape[1])) if c0 is None else c0.T.copy()
            parameters = {
                k: np.ascontiguousarray(w) for k, w in dls_parameters(params, cell).items()
            }
            caches: list[Any] = []
            value = 0.0
            for t in range(len(x)):
                state = (a, c) if lstm else (a,)
                result = watched(changed, forward, x[t].T.copy(), *state, parameters)
                names = "a_next, c_next, yt_pred, cache" if lstm else "a_next, yt_pred, cache"
                out = unpacked(result, forward.__name__, names)
                a, caches = numpy(out[0]), [*caches, out[-1]]
                c = numpy(out[1]) if lstm else c
                value += float(np.sum(y[t].T * a))  # L = sum_t G_t . a_t
            dx = np.zeros_like(x)
            da_next, dc_next = np.zeros_like(a), np.zeros_like(a)
            sums: dict[str, Array] = {}
            for t in reversed(range(len(x))):
                upstream = (y[t].T + da_next, dc_next) if lstm else (y[t].T + da_next,)
                gradients = watched(changed, backward, *upstream, caches[t])
                carried = "dxt, da_prev, dc_prev" if lstm else "dxt, da_prev"
                got = entries(gradients, backward.__name__, f"{carried}, {DLS_WEIGHT_GRADS[cell]}")
                dx[t], da_next = numpy(got[0]).T, numpy(got[1])
                dc_next = numpy(got[2]) if lstm else dc_next
                for name, g in dls_grads(cell, got[len(carried.split(", ")) :], H).items():
                    sums[name] = sums[name] + g if name in sums else g
            grads = {**sums, "x": dx, "h0": da_next.T}
            if lstm:
                grads["c0"] = dc_next.T
            return value, grads

        return loss_and_grads

    return adapt


# ---- minchar -----------------------------------------------------------------------------


def minchar(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
    """lossFun(inputs, targets, hprev) with the weights set as the module's globals; x and y
    are one-hot (T, 1, V), h0 (1, H)."""
    loss_fun = module.lossFun

    def loss_and_grads(
        params: Params,
        x: Array,
        y: Array,
        *,
        loss: str,
        h0: Array | None = None,
        c0: Array | None = None,
        activation: str | None = None,
    ) -> tuple[float, Grads]:
        H, V = params["W_hh"].shape[0], x.shape[2]
        weights = {
            "Wxh": params["W_xh"].T,
            "Whh": params["W_hh"].T,
            "Why": params["W_hy"].T,
            "bh": params["b_h"][:, None],
            "by": params["b_y"][:, None],
        }
        for name, w in weights.items():
            setattr(module, name, np.array(w, copy=True))  # a copy: w stays to compare with
        vars(module).update(vocab_size=V, hidden_size=H)
        inputs = [int(i) for i in np.argmax(x[:, 0], axis=-1)]
        targets = [int(i) for i in np.argmax(y[:, 0], axis=-1)]
        hprev = np.zeros((H, 1)) if h0 is None else h0.T.copy()
        result = watched(changed, loss_fun, inputs, targets, hprev)
        names = "loss, dWxh, dWhh, dWhy, dbh, dby, hprev"
        value, dWxh, dWhh, dWhy, dbh, dby, _ = unpacked(result, "lossFun", names)
        for name, w in weights.items():
            if not np.array_equal(vars(module)[name], w):
                changed.append(f"lossFun: the global {name}")
        grads = {"W_xh": numpy(dWxh).T, "W_hh": numpy(dWhh).T, "W_hy": numpy(dWhy).T}
        grads.update(b_h=column(dbh), b_y=column(dby))
        return float(numpy(value)), grads

    return loss_and_grads


# ---- the units ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """The functions of one style judged together, and how they answer loss_and_grads.

    functions: the forward and the backward (judged: the backward, and the forward through
    the loss); cell: rnn or lstm; objective: "dh" (upstream gradients of every hidden
    state) or a loss; c0: whether a c_{-1} goes in (the sequence functions start at zero);
    names: our gradient key -> the learner's name for it; adapt(module, changed)."""

    style: str
    functions: tuple[str, str]
    cell: str
    objective: str
    c0: bool
    names: dict[str, str]
    adapt: Callable[[ModuleType, list[str]], Callable[..., Any]]

    @property
    def name(self) -> str:
        """The backward function's name: what the unit's verdict is about."""
        return self.functions[1]

    def adapted(self, module: ModuleType) -> Adapted:
        changed: list[str] = []
        return Adapted(self.adapt(module, changed), changed)


def cs231n_names(cell: str, step: bool) -> dict[str, str]:
    names = {"x": "dx", "h0": "dprev_h (at t = 0)" if step else "dh0"}
    if cell == "rnn":
        return {"W_xh": "dWx", "W_hh": "dWh", "b_h": "db", **names}
    for k, q in enumerate(CS231N_GATES):
        rows = [":H", "H:2H", "2H:3H", "3H:"][k]
        block = f"[:, {rows}]"
        names.update({f"W_x{q}": f"dWx{block}", f"W_h{q}": f"dWh{block}", f"b_{q}": f"db[{rows}]"})
    if step:
        names["c0"] = "dprev_c (at t = 0)"
    return names


def dls_names(cell: str, step: bool) -> dict[str, str]:
    names = {"x": "dxt" if step else "dx", "h0": "da_prev (at t = 0)" if step else "da0"}
    if cell == "rnn":
        return {"W_xh": "dWax", "W_hh": "dWaa", "b_h": "dba", **names}
    for theirs, q in DLS_GATES.items():
        names.update({f"W_h{q}": f"dW{theirs}[:, :n_a]", f"W_x{q}": f"dW{theirs}[:, n_a:]"})
        names[f"b_{q}"] = f"db{theirs}"
    if step:
        names["c0"] = "dc_prev (at t = 0)"
    return names


MINCHAR_NAMES = {"W_xh": "dWxh", "W_hh": "dWhh", "W_hy": "dWhy", "b_h": "dbh", "b_y": "dby"}


def style_units() -> dict[str, tuple[Unit, ...]]:
    units: dict[str, tuple[Unit, ...]] = {"native": ()}
    cs231n, dls = [], []
    for cell in ("rnn", "lstm"):
        cs231n += [
            Unit(
                "cs231n",
                (f"{cell}_step_forward", f"{cell}_step_backward"),
                cell,
                "dh",
                cell == "lstm",
                cs231n_names(cell, True),
                cs231n_steps(cell),
            ),
            Unit(
                "cs231n",
                (f"{cell}_forward", f"{cell}_backward"),
                cell,
                "dh",
                False,
                cs231n_names(cell, False),
                cs231n_sequence(cell),
            ),
        ]
        dls += [
            Unit(
                "dls",
                (f"{cell}_cell_forward", f"{cell}_cell_backward"),
                cell,
                "dh",
                cell == "lstm",
                dls_names(cell, True),
                dls_cells(cell),
            ),
            Unit(
                "dls",
                (f"{cell}_forward", f"{cell}_backward"),
                cell,
                "dh",
                False,
                dls_names(cell, False),
                dls_sequence(cell),
            ),
        ]
    units.update(cs231n=tuple(cs231n), dls=tuple(dls))
    units["minchar"] = (
        Unit("minchar", ("lossFun", "lossFun"), "rnn", "ce", False, MINCHAR_NAMES, minchar),
    )
    return units


#: style -> its units, in the order a course builds them (steps before sequences).
UNITS = style_units()


def unit(style: str, name: str) -> Unit:
    """The unit of `style` whose backward is `name`."""
    return next(u for u in UNITS[style] if u.name == name)


# ---- loading a course file ----------------------------------------------------------------


def calls(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def kept(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that define: imports, functions, classes, assignments that call
    nothing (constants, lambdas), and the same inside if and try blocks."""
    defining = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, defining):
            found.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and not calls(node):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            node.body = kept(node.body) or [ast.Pass()]
            if isinstance(node, ast.If):
                node.orelse = kept(node.orelse)
            else:
                node.orelse, node.finalbody = kept(node.orelse), kept(node.finalbody)
                for handler in node.handlers:
                    handler.body = kept(handler.body) or [ast.Pass()]
            found.append(node)
    return found


def definitions(tree: ast.Module) -> ast.Module:
    """The module's definitions only (see kept): a course file may train forever at module
    level (min-char-rnn opens input.txt and loops), or run a notebook's test cells."""
    tree.body = kept(tree.body)
    return ast.fix_missing_locations(tree)


def softmax(x: Array) -> Array:
    """Over axis 0, the columns' softmax (the notebook's rnn_utils.softmax), stable."""
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def rnn_utils() -> ModuleType:
    """What the Coursera notebook's `from rnn_utils import *` brings: softmax and sigmoid."""
    module = ModuleType("rnn_utils")
    module.__dict__.update(np=np, softmax=softmax, sigmoid=sigmoid)
    return module
