"""The structured cases a learner's loss_and_grads is run on, and autograd's answers.

One random float64 network per bias setting (a cell without biases has the same weights,
less the b_* keys), one random sequence, and around each combination of loss, bias and
activation ("a setting") these probes, each differing from the setting's base probe in one
factor only:

    base       T = 6, B = 4, random h_{-1} (and c_{-1}), targets y at every step
    length     T = 1 .. 5 (prefixes of the base sequence)
    batch      B = 1 (the first sequence of the batch)
    state      h_{-1} (and c_{-1}) None, that is zeros
    target s   y_t = p_t, the network's own output, at every step but s, for every step s
               in turn: every loss then sends no gradient back from any step but s
               (dL/dz_t = 0 where p_t = y_t, for mse, bce and ce alike), so dL/dx_t holds
               what reaches x_t from step s, over the distance k = s - t. This puts the
               upstream gradient on one step through the protocol, which takes targets,
               not upstream gradients. It holds up to rounding (the learner's p_t and the
               twin's differ in their last bits), so these probes judge dL/dx alone, step
               by step against its whole norm (diagnosis.first_bad_distance)

Sizes: T 6, B 4, I 3, H 5, O 2, all different, so that a transposed product cannot pass by
having the right shape. Weights and biases ~ N(0, 0.5^2) (non-zero biases, or a misplaced
bias would not show), x ~ N(0, 1), y ~ U(0, 1), and for ce (a softmax output) the same
y divided by its sum over the O outputs, so that each y_t is a distribution.

Two objectives serve the course styles (styles.py). "dh": L = sum_t sum(G_t * h_t) for an
upstream gradient G (T, B, H) ~ N(0, 1) given as y, what CS231n's rnn_backward(dh, cache)
and the Coursera notebook's rnn_backward(da, caches) take; no output layer (the probes'
params have no W_hy, b_y), and the one-step probes put G on step s alone, exactly. One-hot
probes (min-char-rnn's lossFun, which reads character indices): B = 1, x and y one-hot
over V = I = O = 4 characters at random, ce, and no target-s probes (a one-hot target
cannot equal p_t), but one more: T = 12, one character over and over, whose dL/db_y
passes 5, where min-char-rnn clips its gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from itertools import product
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from rnn_manual.cells import CELLS, Cell
from rnn_manual.cells.losses import LOSSES, OUTPUT_OF, losses_of

from ..twin import Twin

Array = NDArray[np.floating]
Result = tuple[float, dict[str, Array]]  # a loss and its gradients

T, B, I, H, O = 6, 4, 3, 5, 2
V = 4  # the one-hot probes' characters: I = O = V
#: The length of a one-hot probe whose true gradient exceeds min-char-rnn's clip of 5.
CLIPPED = 12
SCALE = 0.5  # of the weights, biases and initial states
LENGTHS = tuple(range(1, T))  # the shorter sequences; the base has T
#: The steps s that alone send a gradient back, one probe each: every step in turn, so that
#: a bug tied to one step shows at its own distances, not at an invented one.
TARGETS = tuple(range(T))
CELL_NAMES = ("rnn", "lstm", "gru")
LOSS_NAMES = tuple(LOSSES)  # mse, bce, ce
#: The losses diagnose judges unless told otherwise ("both"): the sigmoid output's, which
#: every file written to the reference's protocol handles; ce asks for a softmax output.
SIGMOID_LOSSES = losses_of("sigmoid")
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")
#: The objective of the course styles' backward functions: upstream gradients of every h_t.
UPSTREAM = "dh"
#: The factors a probe differs in from its setting's base, as they are reported.
FACTORS = ("loss", "bias", "activation", "batch", "initial_state", "logits")
#: Output biases that make a naive loss overflow while the true one stays finite (with biases
#: only): bce's z around +-45, where sigmoid(z) rounds to 1 or 0 and a naive log(1 - p) or
#: log(p) is log 0; the softmax's z around 800 with the usual small spread between the
#: outputs, where a naive exp(z) / sum(exp(z)) is inf / inf. (A wide spread of large logits
#: would make the true loss infinite too: the offset is common.)
LARGE_LOGITS = {"bce": 45.0, "ce": 800.0}


@dataclass
class Probe:
    """One call of loss_and_grads: its arguments and what sets it apart."""

    params: dict[str, Array]
    x: Array  # (T, B, I)
    y: Array  # (T, B, O)
    loss: str
    activation: str | None  # the RNN's; None for the gated cells
    h0: Array | None  # (B, H); None: zeros
    c0: Array | None  # the LSTM's
    # factor -> value: loss, bias, activation, batch, initial_state, length, target
    factors: dict[str, object] = field(default_factory=dict)
    # the initial states that go in, and whose gradients come back: h0, and the LSTM's c0
    # but where the code judged starts its cell state at zero
    states: tuple[str, ...] = ("h0",)
    # the gradients the code judged does not give (min-char-rnn's lossFun: x, h0)
    without: tuple[str, ...] = ()

    def keywords(self) -> dict[str, object]:
        """The keyword arguments of loss_and_grads: activation for the RNN only, c0 for the
        LSTM only, as a learner's file written for one cell may not take the others."""
        kwargs: dict[str, object] = {"loss": self.loss, "h0": self.h0}
        if self.activation is not None:
            kwargs["activation"] = self.activation
        if "c0" in self.states:
            kwargs["c0"] = self.c0
        return kwargs

    def expected(self) -> dict[str, tuple[int, ...]]:
        """Every key grads must have, with its shape."""
        shapes = {name: w.shape for name, w in self.params.items()}
        shapes["x"] = self.x.shape
        shapes["h0"] = (self.x.shape[1], H)
        if "c0" in self.states:
            shapes["c0"] = (self.x.shape[1], H)
        return {k: v for k, v in shapes.items() if k not in self.without}

    def describe(self) -> str:
        """The probe in words, e.g. 'mse, bias, sigmoid, T 6, B 4, random h0'."""
        f = self.factors
        words = [str(f["loss"]), "bias" if f["bias"] else "no bias"]
        if self.activation is not None:
            words.append(self.activation)
        words += [f"T {f['length']}", f"B {f['batch']}", f"{f['initial_state']} initial state"]
        if f["target"] != "all":
            words.append(f"loss on step {f['target']} only")
        return ", ".join(words)


def model(
    cell: str,
    bias: bool,
    activation: str | None,
    output: str = "sigmoid",
    sizes: tuple[int, int] = (I, O),
) -> Cell:
    """A float64 fast cell of the probe sizes (inputs, outputs): its parameter names and
    shapes, and the network the twins are built from."""
    options: dict[str, Any] = {}
    if CELLS[cell].activations:
        options["activation"] = activation or "sigmoid"
    inputs, outputs = sizes
    return CELLS[cell](inputs, H, outputs, bias=bias, dtype=np.float64, output=output, **options)


class Oracle:
    """Autograd's answers (the twins) on the networks of one cell and bias setting."""

    def __init__(self, cell: str, params: dict[str, Array]) -> None:
        self.cell, self.params = cell, params
        self.bias = any(name.startswith("b_") for name in params)
        self.twins: dict[tuple[str | None, str], Twin] = {}

    def twin(self, activation: str | None, loss: str) -> Twin:
        """The twin of the network with this activation and the output layer `loss` judges;
        for the upstream objective, an output layer that passes h_t through: z_t = h_t."""
        upstream = loss == UPSTREAM
        key = (activation, UPSTREAM if upstream else OUTPUT_OF[loss])
        if key not in self.twins:
            params = dict(self.params)
            if upstream:
                params.update(W_hy=np.eye(H))
                if self.bias:
                    params.update(b_y=np.zeros(H))
            output = "sigmoid" if upstream else key[1]
            inputs = next(w for k, w in params.items() if k.startswith("W_x")).shape[0]
            outputs = params["W_hy"].shape[1]
            network = model(self.cell, self.bias, activation, output, (inputs, outputs))
            for name, w in params.items():
                network.params[name][...] = w
            self.twins[key] = Twin.from_manual(network)
        return self.twins[key]

    def probabilities(self, probe: Probe) -> Array:
        """The network's outputs p (T, B, O) on the probe's input, by the twin."""
        twin = self.twin(probe.activation, probe.loss)
        h0, c0 = (None if s is None else torch.as_tensor(s) for s in (probe.h0, probe.c0))
        with torch.no_grad():
            return twin.run(torch.as_tensor(probe.x), h0, c0)[2].numpy()

    def answer(self, probe: Probe) -> Result:
        """The probe's loss and gradients by autograd."""
        twin = self.twin(probe.activation, probe.loss)
        if probe.loss == UPSTREAM:
            upstream = torch.as_tensor(probe.y)
            value, grads = twin.gradients(
                probe.x, lambda z, p: (upstream * z).sum(), h0=probe.h0, c0=probe.c0
            )
        else:
            kwargs = {"loss": probe.loss, "h0": probe.h0, "c0": probe.c0}
            value, grads = twin.loss_and_grads(probe.x, probe.y, **kwargs)  # type: ignore[arg-type]
        return value, {k: g for k, g in grads.items() if k in probe.expected()}


def random_params(
    cell: str, rng: np.random.Generator, sizes: tuple[int, int] = (I, O)
) -> dict[str, Array]:
    """Random parameters, with biases, keyed and shaped as the fast cell's."""
    shapes = {name: w.shape for name, w in model(cell, True, "sigmoid", sizes=sizes).params.items()}
    return {name: rng.normal(0.0, SCALE, shape) for name, shape in shapes.items()}


def probe(
    oracle: Oracle,
    setting: dict[str, object],
    x: Array,
    y: Array,
    h0: Array | None,
    c0: Array | None,
    target: object = "all",
    state: str = "random",
    states: tuple[str, ...] = ("h0",),
    without: tuple[str, ...] = (),
    logits: str = "ordinary",
) -> Probe:
    """A probe of one setting (loss, bias, activation) on the oracle's network."""
    factors = {**setting, "length": len(x), "batch": x.shape[1]}
    factors.update(initial_state=state, target=target, logits=logits)
    params = {k: w.copy() for k, w in oracle.params.items()}
    loss, activation = setting["loss"], setting["activation"]
    assert isinstance(loss, str) and (activation is None or isinstance(activation, str))
    return Probe(params, x, y, loss, activation, h0, c0, factors, states, without)


def one_hot(rng: np.random.Generator, shape: tuple[int, int]) -> Array:
    """(T, B, V): a random character at every step of every sequence, one-hot."""
    return np.eye(V)[rng.integers(0, V, shape)]


def make_probes(
    cell: str,
    losses: tuple[str, ...],
    biases: tuple[bool, ...],
    activations: tuple[str, ...],
    seed: int,
    *,
    c0: bool = True,
    onehot: bool = False,
) -> tuple[list[Probe], list[Result]]:
    """Every probe for the chosen settings, and autograd's answer to each. c0: whether the
    LSTM's initial cell state goes in (False: the code judged starts it at zero); onehot:
    min-char-rnn's probes (B = 1, one-hot characters, no gradients of x and h0)."""
    rng = np.random.default_rng(seed)
    sizes = (V, V) if onehot else (I, O)
    with_bias = random_params(cell, rng, sizes)
    batch = 1 if onehot else B
    x = one_hot(rng, (T, batch)) if onehot else rng.normal(0.0, 1.0, (T, B, I))
    uniform = rng.uniform(0.0, 1.0, (T, B, O))
    targets: dict[str, Array] = {loss: uniform for loss in losses}
    if "ce" in targets:  # a softmax's targets: a distribution over the outputs at each step
        targets["ce"] = one_hot(rng, (T, 1)) if onehot else uniform / uniform.sum(-1, keepdims=True)
    if UPSTREAM in targets:  # the upstream gradient of every hidden state
        targets[UPSTREAM] = rng.normal(0.0, 1.0, (T, B, H))
    h0 = rng.normal(0.0, SCALE, (batch, H))
    c0_ = rng.normal(0.0, SCALE, (batch, H)) if cell == "lstm" and c0 else None
    without = ("x", "h0") if onehot else ()
    states = ("h0", "c0") if c0_ is not None else ("h0",)

    def keep(name: str, loss: str) -> bool:
        return (bias or not name.startswith("b_")) and not (
            loss == UPSTREAM and name in ("W_hy", "b_y")
        )

    acts: tuple[str | None, ...] = activations if cell == "rnn" else (None,)
    probes: list[Probe] = []
    owners: list[Oracle] = []  # whose network each probe runs
    oracles: dict[tuple[bool, str], Oracle] = {}
    for loss, bias, activation in product(losses, biases, acts):
        if (bias, loss) not in oracles:
            kept = {k: w for k, w in with_bias.items() if keep(k, loss)}
            oracles[bias, loss] = Oracle(cell, kept)
        oracle, y = oracles[bias, loss], targets[loss]
        setting = {"loss": loss, "bias": bias, "activation": activation}
        made = partial(probe, oracle, setting, states=states, without=without)

        base = made(x, y, h0, c0_)
        probes.append(base)
        probes += [made(x[:n], y[:n], h0, c0_) for n in LENGTHS]
        if batch > 1:
            probes.append(made(x[:, :1], y[:, :1], h0[:1], None if c0_ is None else c0_[:1]))
        probes.append(made(x, y, None, None, state="zero"))
        if onehot:  # one character over and over: dL/db_y sums the same -(1 - p) at every step
            same = np.repeat(one_hot(rng, (1, 1)), CLIPPED, axis=0)
            probes.append(made(same, np.roll(same, 1, axis=-1), h0, None))
        else:
            probes += [made(x, one, h0, c0_, target=s) for s, one in one_step(oracle, base)]
        owners += [oracle] * (len(probes) - len(owners))
        if bias and loss in LARGE_LOGITS:  # a naive loss overflows; the true one does not
            large = Oracle(cell, {**oracle.params, "b_y": large_biases(oracle.params, loss)})
            big = probe(
                large, setting, x, y, h0, c0_, states=states, without=without, logits="large"
            )
            probes.append(big)
            owners.append(large)
    return probes, [owner.answer(p) for owner, p in zip(owners, probes, strict=True)]


def one_step(oracle: Oracle, base: Probe) -> list[tuple[int, Array]]:
    """(s, the targets that send a gradient back from step s alone), for every step s: the
    upstream gradient on step s alone, or y_t = p_t, the network's own output, but at s."""
    if base.loss == UPSTREAM:
        steps = np.arange(len(base.y))[:, None, None]
        return [(s, np.where(steps == s, base.y, 0.0)) for s in TARGETS]
    p = oracle.probabilities(base)
    found = []
    for s in TARGETS:
        target = p.copy()  # y_t = p_t: no gradient from step t ...
        target[s] = base.y[s]  # ... but from s
        found.append((s, target))
    return found


def large_biases(params: dict[str, Array], loss: str) -> Array:
    """b_y shifted by LARGE_LOGITS[loss]: every output up for the softmax (a common offset),
    alternate outputs up and down for the sigmoid's bce (both ends of it)."""
    offset = LARGE_LOGITS[loss] * np.ones_like(params["b_y"])
    if loss == "bce":
        offset[1::2] *= -1
    return params["b_y"] + offset
