"""CS231n's layers around the RNN, which the course provides and learners edit and copy:
word_embedding_*, temporal_affine_* and temporal_softmax_loss, judged by autograd on the
same formulas written in torch.

    embedding     out = W[x]                     x (N, T) words, W (V, D)     -> dW
    affine        out = x @ w + b                x (N, T, D), w (D, M), b (M,) -> dx, dw, db
    softmax_loss  L = -sum(mask * log softmax(x)[y]) / N   x (N, T, V)     -> L, dx

The embedding and the affine map are judged on L = sum(dout * out) for a random upstream
dout, as the RNN's functions are on sum(G * h); the loss is its own. Three probes each, of
different sizes (so that a transposed product cannot pass), the embedding's with words
repeated in the batch (a dW[x] += dout that drops repeats shows), the loss's with a mask
that is False in places (and once all True). The styles.py units run the learner's
functions on them; the verdicts are diagnosis.verdicts_on's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .answers import Run
from .diagnosis import verdicts_on
from .findings import listing
from .probes import Array, Probe, Result
from .report import Report

#: (N, T) of each probe; D, V, M the other sizes, all different.
SHAPES = ((3, 4), (2, 5), (4, 3))
D, V, M = 5, 7, 6
SCALE = 0.5


def probe(objective: str, params: dict[str, Array], x: Array, y: Array, case: int) -> Probe:
    """A layer probe: what the unit takes in params, x and y; every factor the same but the
    length, so that no two probes pair up as differing in one factor."""
    factors: dict[str, object] = {"loss": objective, "bias": True, "activation": None}
    factors.update(batch=x.shape[0], length=x.shape[1], initial_state="none")
    factors.update(target="all", logits="ordinary", case=case)
    without = ("x", "h0") if objective == "embedding" else ("h0",)
    return Probe(params, x, y, objective, None, None, None, factors, (), without)


def make_embedding(rng: np.random.Generator, N: int, T: int, case: int) -> Probe:
    words = rng.integers(0, V, (N, T))
    words[-1, -1] = words[0, 0]  # a word twice in the batch: its rows of dW add up
    W: Array = rng.normal(0.0, SCALE, (V, D))
    return probe("embedding", {"W": W}, words.astype(np.float64), rng.normal(size=(N, T, D)), case)


def make_affine(rng: np.random.Generator, N: int, T: int, case: int) -> Probe:
    params: dict[str, Array] = {"w": rng.normal(0.0, SCALE, (D, M)), "b": rng.normal(0.0, SCALE, M)}
    return probe("affine", params, rng.normal(size=(N, T, D)), rng.normal(size=(N, T, M)), case)


def make_softmax_loss(rng: np.random.Generator, N: int, T: int, case: int) -> Probe:
    targets = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) < 0.7 if case else np.ones((N, T), dtype=bool)
    y = np.stack([targets, mask], axis=-1).astype(np.float64)  # styles.softmax_loss: both
    return probe("softmax_loss", {}, rng.normal(size=(N, T, V)), y, case)


def answer(probe: Probe) -> Result:
    """Autograd's loss and gradients on a layer probe."""
    params = {k: torch.tensor(w, requires_grad=True) for k, w in probe.params.items()}
    x = torch.tensor(probe.x, requires_grad="x" not in probe.without)
    y = torch.tensor(probe.y)
    if probe.loss == "embedding":
        value = (y * params["W"][x.long()]).sum()
    elif probe.loss == "affine":
        value = (y * (x @ params["w"] + params["b"])).sum()
    else:
        targets, mask = y[..., 0].long(), y[..., 1]
        picked = F.log_softmax(x, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        value = -(mask * picked).sum() / x.shape[0]
    leaves = {**params, **({"x": x} if "x" not in probe.without else {})}
    found = torch.autograd.grad(value, list(leaves.values()))
    return float(value.detach()), {k: g.numpy() for k, g in zip(leaves, found, strict=True)}


MAKERS: dict[str, Callable[[np.random.Generator, int, int, int], Probe]] = {
    "embedding": make_embedding,
    "affine": make_affine,
    "softmax_loss": make_softmax_loss,
}
#: Each layer's gradients as the walkthrough would derive them, for "look at".
DERIVED = {
    ("embedding", "W"): "dW[v] = the sum of dout[n, t] over every (n, t) where x[n, t] = v "
    "(np.add.at: a word used twice adds twice)",
    ("affine", "x"): "dx = dout @ w^T",
    ("affine", "w"): "dw = the sum over n and t of x[n, t]^T dout[n, t]",
    ("affine", "b"): "db = the sum of dout over n and t",
    ("softmax_loss", "x"): "dx = mask * (softmax(x) - onehot(y)) / N",
    ("embedding", "loss"): "out = W[x]",
    ("affine", "loss"): "out = x @ w + b",
    ("softmax_loss", "loss"): "L = -sum(mask * log softmax(x)[y]) / N, summed over time, "
    "averaged over N",
}


def probes_for(objective: str, seed: int) -> tuple[list[Probe], list[Result]]:
    """The layer's probes and autograd's answers."""
    rng = np.random.default_rng(seed)
    probes = [MAKERS[objective](rng, N, T, case) for case, (N, T) in enumerate(SHAPES)]
    return probes, [answer(p) for p in probes]


def report_on(
    objective: str, name: str, probes: list[Probe], truths: list[Result], run: Run, function: str
) -> Report:
    """The verdicts, and findings that point at each wrong value's formula."""
    described = f"{objective.replace('_', ' ')}, {len(probes)} random cases"
    report, _ = verdicts_on("layer", described, name, probes, truths, run, function)
    if not report.runnable:
        return report
    verdicts = {"loss": report.loss, **report.gradients}
    wrong = [k for k, v in verdicts.items() if v.wrong]
    right = [k for k in verdicts if k not in wrong]
    if not wrong:
        report.findings = [f"every value equals autograd's on all {len(probes)} probes"]
        return report
    report.findings = [f"wrong: {listing(wrong)}; right: {listing(right)}"]
    report.findings += [f"look at {listing([k])}: {DERIVED[objective, k]}" for k in wrong]
    return report
