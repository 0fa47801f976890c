"""The character task (`python -m rnn_manual text`) three ways, per cell, from the same
initial weights on the same default text:

    min-char-rnn   its algorithm: one stream (B = 1), chunks of 25, Adagrad at 0.1, the
                   gradient clipped, run by rnn_manual/reference.py (the plain loops)
    fast cells     `text` itself: the fast cells on B = 16 streams (training/language.py)
    PyTorch        the fused nn.RNN / nn.LSTM / nn.GRU and a linear output layer, autograd,
                   torch.optim.Adagrad, on the same B = 16 streams

Each trains for the same wall-clock budget; the table gives the characters trained on per
second, the held-out loss (nats per character) when the budget ran out, and the best one
seen along the way (measured after every EVAL_SECONDS of training, the clock stopped while
it is measured): on a text this small the gated cells pass their best within seconds and
then learn the training text by heart, so the loss at the end alone would hide the speed
that got them to their best sooner. The
reference is composed here, forward, loss and backward, rather than through its
loss_and_grads, because a chunk also needs the state it ended in (min-char-rnn's
lossFun returns hs[len(inputs)-1] for the same reason).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnn_manual import reference
from rnn_manual.cells import CELLS, Cell
from rnn_manual.cells.losses import ce
from rnn_manual.training.corpus import Corpus, read_corpus
from rnn_manual.training.language import TextConfig, start, update
from rnn_manual.training.optim import Adagrad, clip_grad_norm
from rnn_manual.training.sampling import held_out_loss, uniform_loss
from rnn_torch.twin import torch_module, torch_weights

#: The ways the task is run, in the table's order.
WAYS = ("min-char-rnn", "fast cells", "PyTorch")
#: min-char-rnn's streams; the others run `text`'s default.
MINCHAR_BATCH = 1
#: Seconds of training between two held-out evaluations.
EVAL_SECONDS = 1.0


@dataclass
class Outcome:
    """One way on one cell: how much it trained in the budget, and how well."""

    cell: str
    way: str
    batch: int
    steps: int
    seconds: float  # of training, evaluations aside
    held_out: float  # nats per character on the held-out tail, at the end
    best: float  # the lowest held-out loss measured along the way ...
    best_at: float  # ... after this many seconds of training

    @property
    def chars_per_second(self) -> float:
        return self.steps * TextConfig.seq * self.batch / self.seconds


@dataclass
class Timed:
    """What for_budget measured: steps, seconds of training, the held-out curve."""

    steps: int
    seconds: float
    held_out: list[tuple[float, float]]  # (seconds of training, held-out loss)

    def outcome(self, cell: str, way: str, batch: int) -> Outcome:
        best_at, best = min(self.held_out, key=lambda point: point[1])
        end = self.held_out[-1][1]
        return Outcome(cell, way, batch, self.steps, self.seconds, end, best, best_at)


def for_budget(step: Callable[[], None], evaluate: Callable[[], float], budget: float) -> Timed:
    """Call `step` until `budget` seconds of it have passed, and `evaluate` after every
    EVAL_SECONDS of them and at the end, its own time not counted."""
    steps, trained, curve = 0, 0.0, []
    next_eval = EVAL_SECONDS
    while trained < budget:
        begin = time.perf_counter()
        step()
        trained += time.perf_counter() - begin
        steps += 1
        if trained >= next_eval or trained >= budget:
            curve.append((trained, evaluate()))
            next_eval += EVAL_SECONDS
    return Timed(steps, trained, curve)


def forward(model: Cell, params: dict[str, Any], x: np.ndarray, states: list) -> dict:
    """The reference's forward pass of the model's cell, softmax output."""
    if model.name == "rnn":
        return reference.rnn_forward(params, x, states[0], "tanh", "softmax")
    if model.name == "lstm":
        return reference.lstm_forward(params, x, states[0], states[1], "softmax")
    return reference.gru_forward(params, x, states[0], "softmax")


def backward(model: Cell, params: dict[str, Any], cache: dict, dz: np.ndarray) -> dict:
    if model.name == "rnn":
        return reference.rnn_backward(params, cache, dz, "tanh")
    if model.name == "lstm":
        return reference.lstm_backward(params, cache, dz)
    return reference.gru_backward(params, cache, dz)


def minchar(cell: str, corpus: Corpus, budget: float) -> Outcome:
    """min-char-rnn's algorithm, by the reference, from `text`'s initial weights."""
    config = replace(TextConfig(cell=cell), batch=MINCHAR_BATCH)
    model = start(config, corpus).model
    optimizer, params = Adagrad(config.learning_rate), model.params
    state = {"position": 0, "states": model.zero_states(1)}

    def step() -> None:
        x, y = corpus.chunk(state["position"], config.seq, 1, model.dtype)
        cache = forward(model, params, x, state["states"])
        _, dz = ce(cache["z"], cache["p"], y)
        grads = backward(model, params, cache, dz)
        grads = {name: g for name, g in grads.items() if name in params}
        clip_grad_norm(grads, config.clip)  # type: ignore[arg-type]
        optimizer.step(params, grads)
        state["position"] = corpus.next_position(state["position"], config.seq, 1)
        if state["position"] == 0:
            state["states"] = model.zero_states(1)
        else:
            state["states"] = [cache[name][-1] for name in ("h", "c")[: len(model.states)]]

    timed = for_budget(step, lambda: held_out_loss(model, corpus), budget)
    return timed.outcome(cell, WAYS[0], MINCHAR_BATCH)


def fast(cell: str, corpus: Corpus, budget: float) -> Outcome:
    """`text` itself: training/language.update on `text`'s default streams."""
    config = TextConfig(cell=cell)
    state = start(config, corpus)
    timed = for_budget(
        lambda: update(state, corpus), lambda: held_out_loss(state.model, corpus), budget
    )
    return timed.outcome(cell, WAYS[1], config.batch)


def pytorch(cell: str, corpus: Corpus, budget: float) -> Outcome:
    """The fused torch layer and a linear output, from `text`'s initial weights, on its
    streams; autograd, torch.optim.Adagrad and clip_grad_norm_ as `text` does them."""
    config = TextConfig(cell=cell)
    model = start(config, corpus).model
    dtype = torch.float64
    layer = torch_module(model, True, dtype, torch.device("cpu"))
    manual = {name: torch.from_numpy(w) for name, w in model.params.items()}
    V = model.output_size
    out = torch.nn.Linear(model.hidden_size, V, dtype=dtype)
    with torch.no_grad():
        for name, w in torch_weights(model, manual).items():
            getattr(layer, f"{name}_l0").copy_(w)
        out.weight.copy_(manual["W_hy"].T)
        out.bias.copy_(manual["b_y"])
    weights = [*layer.parameters(), *out.parameters()]
    optimizer = torch.optim.Adagrad(weights, lr=config.learning_rate)
    B = config.batch
    state: dict[str, Any] = {"position": 0, "states": None}

    def run(x: np.ndarray, states: Any) -> tuple[torch.Tensor, Any]:
        hs, last = layer(torch.from_numpy(x), states)
        return out(hs), last  # z: (T, B, V)

    def step() -> None:
        x, y = corpus.chunk(state["position"], config.seq, B, model.dtype)
        z, last = run(x, state["states"])
        targets = torch.from_numpy(y.argmax(-1)).reshape(-1)
        loss = F.cross_entropy(z.reshape(-1, V), targets, reduction="sum") / B
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(weights, config.clip)
        optimizer.step()
        state["position"] = corpus.next_position(state["position"], config.seq, B)
        zero = state["position"] == 0
        detached = tuple(s.detach() for s in last) if isinstance(last, tuple) else last.detach()
        state["states"] = None if zero else detached

    text = corpus.held_out
    x_held = np.eye(V, dtype=model.dtype)[text[:-1, None]]  # (N - 1, 1, V), one stream

    def held_out() -> float:  # -log p(next character), averaged, as held_out_loss
        with torch.no_grad():
            z, _ = run(x_held, None)
            targets = torch.from_numpy(text[1:])
            return float(F.cross_entropy(z.reshape(-1, V), targets, reduction="mean"))

    return for_budget(step, held_out, budget).outcome(cell, WAYS[2], B)


RUNNERS = {WAYS[0]: minchar, WAYS[1]: fast, WAYS[2]: pytorch}


def run_text(budget: float, log: Callable[[str], object] = print) -> dict[str, Any]:
    """Every way on every cell, `budget` seconds each, from the same initial weights."""
    corpus = read_corpus(None)
    outcomes = []
    for cell in CELLS:
        for way, runner in RUNNERS.items():
            outcome = runner(cell, corpus, budget)  # each from `text`'s initial weights
            log(
                f"text task, {cell} {way}: {outcome.steps} steps, "
                f"{outcome.chars_per_second:,.0f} chars/s, held-out {outcome.held_out:.3f} "
                f"(best {outcome.best:.3f} after {outcome.best_at:.0f} s)"
            )
            outcomes.append(outcome)
    return {
        "budget": budget,
        "uniform": uniform_loss(corpus),
        "outcomes": [vars(o) | {"chars_per_second": o.chars_per_second} for o in outcomes],
    }


def markdown(meta: dict[str, Any], results: dict[str, Any]) -> str:
    """The table: per cell, each way's characters per second, its ratio to min-char-rnn's,
    and the held-out loss it reached in the budget."""
    by = {(o["cell"], o["way"]): o for o in results["outcomes"]}
    lines = [
        f"The character task for {results['budget']:g} s of training each, on the default text "
        f"(held-out loss of the uniform guess: log V = {results['uniform']:.3f} nats/char); "
        f"{meta['machine']}, BLAS and torch at {meta['blas_threads']} thread(s), "
        f"{meta['date']}.",
        "",
        "| cell | way | streams | steps | chars/s | vs min-char-rnn | held-out at the end "
        "| best held-out (after) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in CELLS:
        base = by[cell, WAYS[0]]["chars_per_second"]
        for way in WAYS:
            o = by[cell, way]
            lines.append(
                f"| {cell} | {way} | {o['batch']} | {o['steps']} | "
                f"{o['chars_per_second']:,.0f} | {o['chars_per_second'] / base:.1f}x | "
                f"{o['held_out']:.3f} | {o['best']:.3f} ({o['best_at']:.0f} s) |"
            )
    return "\n".join(lines) + "\n"
