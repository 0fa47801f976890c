"""A manual model's loss and gradients on a GPU, captured once as a CUDA graph and replayed.

The hand-written BPTT, run by PyTorch on a GPU, launches a handful of small kernels per time
step, each from Python; at small sizes the GPU spends most of a pass waiting for the next
launch. A CUDA graph records every kernel of one pass (for fixed shapes) and replays them
all with a single launch. The pass recorded is the library's own: `Cell.loss_pass`, the
one composition of `run_unchecked`, the loss and `backward_unchecked`, here without its
overflow check, since nothing in a captured pass may wait for the host (the input checks
and reading the loss as a float do, so they happen once, before capture, or are left to
the caller).

    model = RNN(hidden_size=16, activation="tanh").to(torch, "cuda")
    captured = CapturedPass(model, x, y, "mse")  # checks x, y and the model, then captures
    loss, grads = captured()  # replays: loss a 0-d float64 tensor, grads a dict of tensors
    loss, grads = captured(x2, y2)  # new data of the same shapes, copied in, then replayed

On a CPU there are no graphs: a call runs the same pass directly (which is how this module
is tested on machines without a GPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnn_manual.cells import Cell
from rnn_manual.cells.losses import LOSSES
from rnn_manual.core.validate import check_choice, check_sequence, check_targets

Model = Cell
Grads = dict[str, Tensor]

#: Passes run on a side stream before capture: cuBLAS and the allocator set up there.
WARMUP = 3


def unchecked_pass(
    model: Model, x: Tensor, states: list[Tensor], y: Tensor, loss: str
) -> tuple[Any, dict[str, Any]]:
    """The model's one pass (Cell.loss_pass) without the check that waits for the host: the
    loss as a 0-d float64 tensor, the gradients keyed as loss_and_grads keys them. x, the
    initial states and y must be tensors of the model's dtype on its device."""
    # (The cells are typed for NumPy arrays; the same lines run on tensors here.)
    done = model.loss_pass(x, states, y, loss, refuse_overflow=False)  # type: ignore[arg-type]
    return done.loss, done.grads


class CapturedPass:
    """`model.loss_and_grads(x, y, loss)` for a model on torch, captured as a CUDA graph.

    Made once: the model and data are checked (by a first loss_and_grads, which also warms
    up the libraries), x and y are copied into tensors the graph reads, the pass runs
    WARMUP times on a side stream, then is captured. Each call replays it and returns
    (loss, grads), which live in the graph's memory: the next call overwrites them, so
    clone what you keep. The parameters are read in place, so an optimiser that updates
    them in place (as rnn_manual's do) trains through replays; replacing a parameter array
    (model.to, or assigning a new one) is refused, since the graph would go on reading the
    old one. New x and y are checked for shape only: their values are not read on the host.
    """

    def __init__(self, model: Model, x: Any, y: Any, loss: str = "mse") -> None:
        check_choice("loss", loss, LOSSES)
        params = dict(model.params)
        like = params["W_hy"]
        if not isinstance(like, Tensor):
            raise ValueError("a captured pass needs a model on torch: model.to(torch, 'cuda')")
        model.loss_and_grads(x, y, loss)  # every check, once; ValueError if anything is off
        x = check_sequence(x, model.input_size, model.state_width, model.dtype, like)
        T, B, _ = x.shape
        self.model: Model = model
        self.loss: str = loss
        self.params: dict[str, Any] = params
        self.x: Tensor = x.clone()  # (T, B, I), the graph's own copies
        self.y: Tensor = check_targets(y, (T, B, model.output_size), model.dtype, like).clone()
        self.states: list[Any] = model.zero_states(B)  # h0 (and c0), as loss_and_grads's
        self.value: Tensor
        self.grads: Grads
        self.graph: torch.cuda.CUDAGraph | None = None
        if like.device.type != "cuda":
            self.value, self.grads = self._pass()
            return
        side = torch.cuda.Stream(device=like.device)
        side.wait_stream(torch.cuda.current_stream(like.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                self._pass()
        torch.cuda.current_stream(like.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.value, self.grads = self._pass()

    def _pass(self) -> tuple[Any, dict[str, Any]]:
        return unchecked_pass(self.model, self.x, self.states, self.y, self.loss)

    def __call__(self, x: Any = None, y: Any = None) -> tuple[Tensor, Grads]:
        """Replay (copying in new x and y of the captured shapes first, if given):
        the loss as a 0-d float64 tensor and the gradients."""
        if any(self.model.params.get(name) is not w for name, w in self.params.items()):
            raise ValueError("the model's parameters were replaced after capture: capture again")
        for name, value, static in (("x", x, self.x), ("y", y, self.y)):
            if value is None:
                continue
            new = torch.as_tensor(value, dtype=static.dtype, device=static.device).detach()
            if new.shape != static.shape:
                raise ValueError(
                    f"{name} must have the captured shape {tuple(static.shape)}, "
                    f"got {tuple(new.shape)}"
                )
            static.copy_(new)
        if self.graph is None:
            self.value, self.grads = self._pass()
        else:
            self.graph.replay()
        return self.value, self.grads
