"""What the three fast cells share, so that each cell module holds its equations alone.

A cell module (rnn.py, lstm.py, gru.py) defines its parameters (`param_shapes`), its
forward recurrence (`run_unchecked`) and its backpropagation through time
(`backward_unchecked`). Everything around them is here, once: the size and dtype checks of
the constructor, moving the parameters to another array library (`to`), checking a call's
inputs before the equations see them (`run`, `backward`), refusing an overflowed pass
(`forward`), and the one composition of a pass, run, loss and backward (`loss_pass`), which
every caller that takes gradients of a loss goes through (`loss_and_grads`, training, the
CUDA graphs, the tutorial's replay, the figures).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..core import backend, threads
from ..core.validate import (
    blas_invalid_flag_ignored,
    check_choice,
    check_dtype,
    check_flag,
    check_outputs,
    check_params,
    check_seed,
    check_sequence,
    check_size,
    check_sizes,
    check_state,
    check_targets,
    check_upstream,
)
from .losses import LOSSES, OUTPUT_OF, losses_of
from .outputs import OUTPUTS

Array = NDArray[np.floating]
Grads = dict[str, Array]
Shapes = dict[str, tuple[int, ...]]
#: Each initial state and the trace's array of that state at every step (T + 1, B, H)
TRACED = {"h0": "h", "c0": "c"}


def init_params(shapes: Shapes, dtype: np.dtype, rng: np.random.Generator) -> dict[str, Array]:
    """Weights uniform in [-1, 1) as in the tutorial, scaled by min(1, 4 / sqrt(fan_in)) so
    that large layers do not saturate; biases zero."""
    params: dict[str, Array] = {}
    for name, shape in shapes.items():
        if name.startswith("W"):
            scale = min(1.0, 4.0 / np.sqrt(shape[0]))
            params[name] = (scale * rng.uniform(-1.0, 1.0, size=shape)).astype(dtype)
        else:
            params[name] = np.zeros(shape, dtype=dtype)
    return params


@dataclass
class Pass:
    """One pass over a batch: what the forward pass kept, the loss, dL/dz and the gradients."""

    trace: Any  # the cell's trace: x, h, ..., z and p (T, B, O)
    loss: Any  # the loss, a 0-d float64 array of the model's library (float() reads it)
    dz: Array  # (T, B, O) dL/dz_t, the loss gradient at each output logit
    grads: Grads  # keyed as params, plus "x", "h0" (and "c0")


def split_gates(a: Array, n: int) -> list[Array]:
    """The n equal blocks of a's last axis, as views (np.split's, without its overhead)."""
    width = a.shape[-1] // n
    return [a[..., k * width : (k + 1) * width] for k in range(n)]


class Cell:
    """A one-layer recurrent network with an output layer and hand-written BPTT.

    A subclass sets the class attributes below and defines `param_shapes`, `run_unchecked`
    and `backward_unchecked`. The parameters (`params`) are NumPy arrays until `to` moves
    them to another array library; writing into them changes the model. `output` names
    the output layer, "sigmoid" or "softmax" (outputs.py), and with it the losses the model
    takes (losses.OUTPUT_OF).
    """

    #: The cell's name in the command line and in model files: "rnn", "lstm", "gru".
    name: ClassVar[str]
    #: Its gates in PyTorch's stacking order (the RNN has none).
    gates: ClassVar[tuple[str, ...]]
    #: The initial states a pass starts from: ("h0",), or ("h0", "c0") for the LSTM.
    states: ClassVar[tuple[str, ...]] = ("h0",)
    #: The hidden-layer nonlinearities it can be built with (only the RNN's is a choice).
    activations: ClassVar[tuple[str, ...]] = ()
    #: Values a pass keeps per sequence, step and hidden unit: 1 (RNN), 4 (LSTM), 3 (GRU).
    width: ClassVar[int]

    activation: str | None = None
    #: The forward equations on checked inputs, x and one array per state: the trace
    #: that backward needs (defined by each cell).
    run_unchecked: Callable[..., Any]

    def __init__(
        self,
        input_size: int = 2,
        hidden_size: int = 16,
        output_size: int = 1,
        bias: bool = False,
        dtype: DTypeLike = np.float64,
        seed: int | np.random.Generator | None = 0,
        output: str = "sigmoid",
    ) -> None:
        self.output = check_choice("output", output, OUTPUTS)
        self.input_size, self.hidden_size, self.output_size = check_sizes(
            input_size, hidden_size, output_size
        )
        self.bias = check_flag("bias", bias)
        self.dtype = check_dtype(dtype)
        self.state_width = self.width * self.hidden_size  # values kept per sequence and step
        rng = check_seed(seed)
        shapes = self.param_shapes(self.input_size, self.hidden_size, self.output_size, self.bias)
        self.params = init_params(shapes, self.dtype, rng)

    @staticmethod
    def param_shapes(input_size: int, hidden_size: int, output_size: int, bias: bool) -> Shapes:
        """The name and shape of every parameter of a network of these sizes."""
        raise NotImplementedError

    def probabilities(self, z: Array) -> Array:
        """The output layer: p = sigmoid(z) or softmax(z) over the O outputs, from logits z."""
        return OUTPUTS[self.output].forward(z)

    def loss_for(self, loss: str | None) -> str:
        """The loss named, checked against the model's output layer; None: the output's
        default (mse for a sigmoid, ce for a softmax). ValueError for one the output has not."""
        if loss is None:
            return losses_of(self.output)[0]
        check_choice("loss", loss, LOSSES)
        if OUTPUT_OF[loss] != self.output:
            raise ValueError(
                f"loss {loss!r} is for a {OUTPUT_OF[loss]} output; this model's output is "
                f"{self.output}, whose losses are {', '.join(losses_of(self.output))}"
            )
        return loss

    def backward_unchecked(self, trace: Any, dz: Array, truncate: int | None) -> Grads:
        """backward's equations alone, on a dz it has checked and put where the model is."""
        raise NotImplementedError

    def backward(self, trace: Any, dz: ArrayLike, truncate: int | None = None) -> Grads:
        """Backpropagation through time from dz = dL/dz_t: (T, B, O), the loss gradient at
        each output logit (any float dtype; the pass computes in the model's), through the
        trace that run made. Returns the gradients keyed as params plus "x", "h0" (and "c0"
        for the LSTM). truncate: K for truncated BPTT, no gradient crossing from one chunk
        of K steps into the one before (reference.loss_and_grads says how); None for full
        BPTT. ValueError for a dz of the wrong shape or a truncate that is not positive."""
        p = trace.p
        check_upstream(dz, tuple(p.shape), truncate)
        placed = backend.namespace(p).asarray(dz, dtype=p.dtype, device=backend.device(p))
        with blas_invalid_flag_ignored(), self.pass_threads(placed):
            return self.backward_unchecked(trace, placed, truncate)

    def loss_pass(
        self,
        x: Array,
        initial: Sequence[Array],
        y: Array,
        loss: str,
        truncate: int | None = None,
        weight: float | None = None,
        refuse_overflow: bool = True,
    ) -> Pass:
        """Run, loss, backward: the one composition of a pass with a loss's gradients, on
        inputs that are already what run_unchecked takes (x (T, B, I), one initial state per
        name in `states`, targets y (T, B, O), arrays of the model's library, device, dtype).

        truncate: K for truncated BPTT (cells/truncation.py), None for full BPTT. weight: a
        factor on the loss and its gradients (a part of a batch counts as its share of it).
        refuse_overflow: Overflow (a ValueError) for output logits that are not finite; the
        check reads them back to the host, so a pass captured as a CUDA graph goes without
        it (and its loss is then inf or NaN).
        """
        with self.pass_threads(x):
            with blas_invalid_flag_ignored():
                trace = self.run_unchecked(x, *initial)
            if refuse_overflow:
                check_outputs(trace.z)
            value, dz = LOSSES[loss](trace.z, trace.p, y)
            if weight is not None:
                value, dz = value * weight, dz * weight
            with blas_invalid_flag_ignored():
                grads = self.backward_unchecked(trace, dz, truncate)
        return Pass(trace, value, dz, grads)

    def pass_threads(self, x: Array) -> AbstractContextManager[None]:
        """The context of a pass over x: the threads core/threads.py gives it."""
        return threads.one_pass(backend.is_numpy(x))

    def fresh(self, seed: int | np.random.Generator | None = 0) -> Cell:
        """A new model of this one's cell, sizes and options, its weights made anew from seed."""
        options: dict[str, Any] = {"activation": self.activation} if self.activations else {}
        sizes = (self.input_size, self.hidden_size, self.output_size)
        return type(self)(
            *sizes, bias=self.bias, dtype=self.dtype, seed=seed, output=self.output, **options
        )

    def zero_states(self, batch: int) -> list[Array]:
        """The initial states h0 (and c0) of `batch` sequences, zeros, where the model is."""
        like = self.params["W_hy"]
        xp, shape = backend.namespace(like), (batch, self.hidden_size)
        return [xp.zeros(shape, dtype=like.dtype, device=backend.device(like)) for _ in self.states]

    def final_states(self, trace: Any) -> list[Array]:
        """The states after a pass's last step, h_{T-1} (and c_{T-1}): what a next pass over
        the text that follows starts from, as its h0 (and c0)."""
        return [getattr(trace, TRACED[state])[-1] for state in self.states]

    def to(self, library: ModuleType | str, device: Any = None) -> Cell:
        """Move the parameters to `library` (numpy, torch or cupy; module or name), on
        `device` ("cuda", ...; the library's default if None). Returns the model."""
        self.params = backend.move(self.params, library, device)
        return self

    def refuse_other_states(self, given: Mapping[str, object]) -> None:
        """ValueError for an initial state given (not None) that the cell has not: c0 is the
        LSTM's only."""
        for state, value in given.items():
            if value is not None and state not in self.states:
                raise ValueError(
                    f"{state} is an initial state of the LSTM only, not the {self.name}"
                )

    def checked_inputs(
        self, x: ArrayLike, h0: ArrayLike | None = None, c0: ArrayLike | None = None
    ) -> tuple[Array, list[Array]]:
        """x and the initial states (zeros for None) as run_unchecked takes them: arrays of
        the model's library, device and dtype; ValueError for anything else."""
        given = {"h0": h0, "c0": c0}
        self.refuse_other_states(given)
        sizes = (self.input_size, self.hidden_size, self.output_size, self.bias)
        check_params(self.params, self.param_shapes(*sizes), self.dtype)
        like = self.params["W_hy"]  # where the model is: its library, device and dtype
        x = check_sequence(x, self.input_size, self.state_width, self.dtype, like)
        shape = (x.shape[1], self.hidden_size)
        return x, [check_state(s, given[s], shape, self.dtype, like) for s in self.states]

    def run(self, x: ArrayLike, h0: ArrayLike | None = None, c0: ArrayLike | None = None) -> Any:
        """Forward pass over the whole sequence, keeping what backward needs; ValueError for
        inputs that are not what the model takes (h0 and c0: (B, H), None for zeros; c0 is
        the LSTM's only).

        Unchecked: after an overflow (weights or inputs far too large) the trace holds inf
        or NaN, which forward and loss_and_grads refuse.
        """
        x, initial = self.checked_inputs(x, h0, c0)
        with blas_invalid_flag_ignored(), self.pass_threads(x):
            return self.run_unchecked(x, *initial)

    def forward(
        self, x: ArrayLike, h0: ArrayLike | None = None, c0: ArrayLike | None = None
    ) -> Array:
        """Output probabilities p: (T, B, O) for inputs x: (T, B, I); ValueError on overflow."""
        trace = self.run(x, h0, c0)
        check_outputs(trace.z)
        return trace.p

    def loss_and_grads(
        self,
        x: ArrayLike,
        y: ArrayLike,
        loss: str | None = None,
        h0: ArrayLike | None = None,
        c0: ArrayLike | None = None,
        truncate: int | None = None,
    ) -> tuple[float, Grads]:
        """The loss on targets y: (T, B, O) and its gradients, keyed as params plus "x",
        "h0" (and "c0" for the LSTM). loss: one of the output layer's (loss_for; None: mse
        for a sigmoid output, ce for a softmax, whose targets must each sum to 1). truncate:
        None for full BPTT, K for truncated BPTT (no gradient crosses from one chunk of K
        steps into the one before; the state does; see reference.loss_and_grads).

        On NumPy a large batch runs in parts on several threads (core/threads.py): the loss
        and the weight gradients are the parts' sums, weighted by their share of the batch,
        and the gradients of x and of the initial states the parts' side by side.
        """
        judged = self.loss_for(loss)
        if truncate is not None:
            check_size("truncate", truncate)
        x, initial = self.checked_inputs(x, h0, c0)
        T, B, _ = x.shape
        shape, like = (T, B, self.output_size), self.params["W_hy"]
        y = check_targets(y, shape, self.dtype, like, OUTPUTS[self.output].distributions)
        split = threads.parts(B, self.state_width) if backend.is_numpy(x) else [slice(0, B)]

        def part(rows: slice) -> tuple[float, Grads]:
            # The loss averages over the part: weighted by its share, it is the batch's.
            share = (rows.stop - rows.start) / B if len(split) > 1 else None
            states = [state[rows] for state in initial]
            done = self.loss_pass(x[:, rows], states, y[:, rows], judged, truncate, share)
            return float(done.loss), done.grads

        results = threads.run_parts(part, split)
        if len(results) == 1:
            return results[0]
        value = sum(v for v, _ in results)
        grads = {}
        for name in results[0][1]:
            pieces = [g[name] for _, g in results]
            if name in self.params:  # a weight's gradient sums over the batch
                grads[name] = np.sum(pieces, axis=0)
            else:  # x: (T, B, I), h0 and c0: (B, H), one slice of the batch per part
                grads[name] = np.concatenate(pieces, axis=0 if name != "x" else 1)
        return value, grads
