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


def hidden_size(params: dict[str, Array]) -> int:
    """H, from the recurrent weight of any cell."""
    return int(next(w for name, w in params.items() if name.startswith("W_h")).shape[0])


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


# ---- the two courses' step and sequence functions, in one loop ---------------------------


@dataclass(frozen=True)
class Layout:
    """A course's arrays against ours, and what its functions take and return.

    sequence: the axes of its (T, B, .) sequences from ours (each transposition its own
    inverse); columns: its states are ours transposed, (H, B); step: the word in its step
    functions' names ("step": rnn_step_forward, "cell": rnn_cell_forward); weights(params,
    cell): the arguments that follow the states; grads(cell, given, H): the weights'
    gradients by our names, from those it returns after dx and the states'; read(result,
    function, names): a backward's result as a tuple (returned so, or a dict's entries);
    returns[kind, cell, "forward" or "backward"]: its functions' results, named."""

    sequence: tuple[int, int, int]
    columns: bool
    step: str
    weights: Callable[[Params, str], list[Any]]
    grads: Callable[[str, tuple[Any, ...], int], Grads]
    read: Callable[[object, str, str], tuple[Any, ...]]
    returns: dict[tuple[str, str, str], str]

    def state(self, a: Array) -> Array:
        """A state (B, H) of ours as theirs, or theirs as ours."""
        return a.T if self.columns else a


CS231N = Layout(
    sequence=(1, 0, 2),
    columns=False,
    step="step",
    weights=lambda params, cell: list(cs231n_weights(params, cell)),
    grads=lambda cell, given, H: cs231n_grads(cell, *given),
    read=unpacked,
    returns={
        ("step", "rnn", "forward"): "next_h, cache",
        ("step", "rnn", "backward"): "dx, dprev_h, dWx, dWh, db",
        ("step", "lstm", "forward"): "next_h, next_c, cache",
        ("step", "lstm", "backward"): "dx, dprev_h, dprev_c, dWx, dWh, db",
        ("sequence", "rnn", "forward"): "h, cache",
        ("sequence", "rnn", "backward"): "dx, dh0, dWx, dWh, db",
        ("sequence", "lstm", "forward"): "h, cache",
        ("sequence", "lstm", "backward"): "dx, dh0, dWx, dWh, db",
    },
)
DLS = Layout(
    sequence=(2, 1, 0),
    columns=True,
    step="cell",
    weights=lambda params, cell: [dls_parameters(params, cell)],
    grads=dls_grads,
    read=entries,
    returns={
        ("step", "rnn", "forward"): "a_next, yt_pred, cache",
        ("step", "rnn", "backward"): f"dxt, da_prev, {DLS_WEIGHT_GRADS['rnn']}",
        ("step", "lstm", "forward"): "a_next, c_next, yt_pred, cache",
        ("step", "lstm", "backward"): f"dxt, da_prev, dc_prev, {DLS_WEIGHT_GRADS['lstm']}",
        ("sequence", "rnn", "forward"): "a, y_pred, caches",
        ("sequence", "rnn", "backward"): f"dx, da0, {DLS_WEIGHT_GRADS['rnn']}",
        ("sequence", "lstm", "forward"): "a, y, c, caches",
        ("sequence", "lstm", "backward"): f"dx, da0, {DLS_WEIGHT_GRADS['lstm']}",
    },
)


def copied(value: Any, theirs: Callable[[Array], Any]) -> Any:
    """The learner's kind of our array, or of each array of a dict (dls's parameters)."""
    if isinstance(value, dict):
        return {k: theirs(w) for k, w in value.items()}
    return theirs(value)


def sequence_functions(
    layout: Layout, cell: str
) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_forward/rnn_backward (or lstm_*): the sequence functions, in the layout's arrays;
    the LSTM's cell state starts at zero (they take no c0)."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward, backward = getattr(module, f"{cell}_forward"), getattr(module, f"{cell}_backward")
        theirs = converter(module)
        returns = {f: layout.returns["sequence", cell, f] for f in ("forward", "backward")}

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
            H = hidden_size(params)
            h0 = np.zeros((x.shape[1], H)) if h0 is None else h0
            weights = [copied(w, theirs) for w in layout.weights(params, cell)]
            args = theirs(x.transpose(layout.sequence)), theirs(layout.state(h0)), *weights
            out = unpacked(watched(changed, forward, *args), forward.__name__, returns["forward"])
            h = numpy(out[0]).transpose(layout.sequence)
            value = float(np.sum(y * h))  # L = sum_t G_t . h_t
            result = watched(changed, backward, theirs(y.transpose(layout.sequence)), out[-1])
            got = layout.read(result, backward.__name__, returns["backward"])
            grads = layout.grads(cell, got[2:], H)
            grads.update(x=numpy(got[0]).transpose(layout.sequence), h0=layout.state(numpy(got[1])))
            return value, grads

        return loss_and_grads

    return adapt


def step_functions(
    layout: Layout, cell: str
) -> Callable[[ModuleType, list[str]], Callable[..., Any]]:
    """rnn_step_forward/rnn_step_backward (rnn_cell_*; or the LSTM's), run over the sequence
    by a loop that carries dprev_h (and dprev_c) from each step to the one before."""

    def adapt(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
        forward = getattr(module, f"{cell}_{layout.step}_forward")
        backward = getattr(module, f"{cell}_{layout.step}_backward")
        theirs = converter(module)
        returns = {f: layout.returns["step", cell, f] for f in ("forward", "backward")}
        carried = 2 if cell == "rnn" else 3  # h (and c), then the cache; dx, dh (and dc)

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
            H = hidden_size(params)
            zeros: Array = np.zeros((x.shape[1], H))
            state: list[Array] = [zeros if h0 is None else h0, zeros if c0 is None else c0][
                : carried - 1
            ]
            weights = [copied(w, theirs) for w in layout.weights(params, cell)]
            caches: list[Any] = []
            value = 0.0
            for t in range(len(x)):
                args = [theirs(layout.state(a)) for a in (x[t], *state)]
                result = watched(changed, forward, *args, *weights)
                out = unpacked(result, forward.__name__, returns["forward"])
                state = [layout.state(numpy(a)) for a in out[: carried - 1]]
                caches.append(out[-1])
                value += float(np.sum(y[t] * state[0]))  # L = sum_t G_t . h_t
            dx = np.zeros_like(x)
            upstream: list[Array] = [zeros, zeros][: carried - 1]  # from step t + 1: none
            sums: dict[str, Array] = {}
            for t in reversed(range(len(x))):
                upstream[0] = y[t] + upstream[0]  # dL/dh_t: G_t plus what step t + 1 sent
                args = [theirs(layout.state(a)) for a in upstream]
                result = watched(changed, backward, *args, caches[t])
                got = layout.read(result, backward.__name__, returns["backward"])
                dx[t] = layout.state(numpy(got[0]))
                upstream = [layout.state(numpy(a)) for a in got[1:carried]]
                for name, g in layout.grads(cell, got[carried:], H).items():
                    sums[name] = sums[name] + g if name in sums else g
            grads = {**sums, "x": dx, "h0": upstream[0]}
            if cell == "lstm":
                grads["c0"] = upstream[1]
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


# ---- CS231n's layers around the RNN ----------------------------------------------------------
#
# Their probes (layers.py) hold what each takes in params, x and y; the objective is
# sum(dout * out) for upstream dout = y (the embedding and the affine map), the loss itself
# for temporal_softmax_loss (y holds its targets and mask side by side).


def embedding(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
    """word_embedding_forward(x, W) / word_embedding_backward(dout, cache) -> dW; x (N, T)
    word indices, given as numbers."""
    forward, backward = module.word_embedding_forward, module.word_embedding_backward

    def loss_and_grads(params: Params, x: Array, y: Array, **kwargs: Any) -> tuple[float, Grads]:
        words = x.astype(np.int64)
        out, cache = unpacked(
            watched(changed, forward, words, params["W"].copy()), forward.__name__, "out, cache"
        )
        dW = watched(changed, backward, y.copy(), cache)
        return float(np.sum(y * numpy(out))), {"W": numpy(dW)}

    return loss_and_grads


def affine(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
    """temporal_affine_forward(x, w, b) / temporal_affine_backward(dout, cache) -> dx, dw, db."""
    forward, backward = module.temporal_affine_forward, module.temporal_affine_backward

    def loss_and_grads(params: Params, x: Array, y: Array, **kwargs: Any) -> tuple[float, Grads]:
        args = x.copy(), params["w"].copy(), params["b"].copy()
        out, cache = unpacked(watched(changed, forward, *args), forward.__name__, "out, cache")
        result = watched(changed, backward, y.copy(), cache)
        dx, dw, db = unpacked(result, backward.__name__, "dx, dw, db")
        return float(np.sum(y * numpy(out))), {"x": numpy(dx), "w": numpy(dw), "b": numpy(db)}

    return loss_and_grads


def softmax_loss(module: ModuleType, changed: list[str]) -> Callable[..., Any]:
    """temporal_softmax_loss(x, y, mask) -> loss, dx; y[..., 0] the targets, y[..., 1] the
    mask."""
    function = module.temporal_softmax_loss

    def loss_and_grads(params: Params, x: Array, y: Array, **kwargs: Any) -> tuple[float, Grads]:
        targets, mask = y[..., 0].astype(np.int64), y[..., 1] > 0
        result = watched(changed, function, x.copy(), targets, mask)
        loss, dx = unpacked(result, function.__name__, "loss, dx")
        return float(numpy(loss)), {"x": numpy(dx)}

    return loss_and_grads


# ---- the units ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """The functions of one style judged together, and how they answer loss_and_grads.

    functions: the forward and the backward (judged: the backward, and the forward through
    the loss); cell: rnn, lstm, or "layer" for CS231n's layers around the RNN (layers.py);
    objective: "dh" (upstream gradients of every hidden state), a loss, or the layer's name;
    c0: whether a c_{-1} goes in (the sequence functions start at zero); names: our gradient
    key -> the learner's name for it; adapt(module, changed)."""

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
    courses = (("cs231n", CS231N, cs231n_names), ("dls", DLS, dls_names))
    for style, layout, names in courses:
        found = []
        for cell in ("rnn", "lstm"):
            step = (f"{cell}_{layout.step}_forward", f"{cell}_{layout.step}_backward")
            steps = step_functions(layout, cell)
            found.append(Unit(style, step, cell, "dh", cell == "lstm", names(cell, True), steps))
            sequence = (f"{cell}_forward", f"{cell}_backward")
            whole = sequence_functions(layout, cell)
            found.append(Unit(style, sequence, cell, "dh", False, names(cell, False), whole))
        units[style] = tuple(found)
    units["cs231n"] += (
        Unit(
            "cs231n",
            ("word_embedding_forward", "word_embedding_backward"),
            "layer",
            "embedding",
            False,
            {"W": "dW"},
            embedding,
        ),
        Unit(
            "cs231n",
            ("temporal_affine_forward", "temporal_affine_backward"),
            "layer",
            "affine",
            False,
            {"x": "dx", "w": "dw", "b": "db"},
            affine,
        ),
        Unit(
            "cs231n",
            ("temporal_softmax_loss", "temporal_softmax_loss"),
            "layer",
            "softmax_loss",
            False,
            {"x": "dx"},
            softmax_loss,
        ),
    )
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
