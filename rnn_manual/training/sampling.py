"""What a character-level model says: text sampled from it, and its loss on text it has not
seen, in nats per character.

A model reads one character at a time (one-hot, corpus.py) and its softmax output p_t is
its guess at the next one. Sampling feeds the prime text in, then draws each next
character from the softmax of z / temperature and feeds it back: a temperature below 1
sharpens the distribution (towards the likeliest character at every step), above 1
flattens it (towards uniform noise).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..cells.losses import ce
from ..cells.outputs import softmax
from ..core.validate import check_outputs
from .corpus import Corpus, one_hot

#: Steps per pass of the held-out evaluation (the state runs on from one pass to the next):
#: the pass's arrays stay small however long the text.
EVAL_STEPS = 1024


def held_out_loss(model: Cell, corpus: Corpus) -> float:
    """The mean of -log p(next character) over the held-out tail, in nats per character,
    read from a zero state in one stream. The uniform guess scores log V."""
    text, size = corpus.held_out, len(corpus.vocabulary)
    predicted = len(text) - 1  # every character but the first is predicted
    states = model.zero_states(1)
    total = 0.0
    for start in range(0, predicted, EVAL_STEPS):
        stop = min(start + EVAL_STEPS, predicted)
        x = one_hot(text[start:stop, None], size, model.dtype)  # (T, 1, V)
        y = one_hot(text[start + 1 : stop + 1, None], size, model.dtype)
        trace = model.run(x, *states)
        check_outputs(trace.z)
        total += float(ce(trace.z, trace.p, y)[0])  # summed over the steps (B = 1)
        states = model.final_states(trace)
    return total / predicted


def uniform_loss(corpus: Corpus) -> float:
    """log V: the loss of a guess that knows nothing but the vocabulary."""
    return math.log(len(corpus.vocabulary))


def next_distribution(z: NDArray[np.floating], temperature: float) -> NDArray[np.floating]:
    """softmax(z / temperature) in float64, for any positive temperature: the largest logit
    is subtracted first, so that a tiny temperature sends the others to -inf (probability
    0) rather than overflowing."""
    shifted = np.asarray(z, dtype=np.float64) - float(np.max(z))
    with np.errstate(over="ignore", divide="ignore"):
        return softmax(shifted / temperature)


def sample(
    model: Cell,
    vocabulary: str,
    prime: str,
    length: int,
    temperature: float,
    rng: np.random.Generator,
) -> str:
    """`length` characters drawn one by one after the prime text (at least one character,
    every one in the vocabulary, else ValueError); the same rng state gives the same text."""
    lookup = {c: k for k, c in enumerate(vocabulary)}
    unknown = sorted({c for c in prime if c not in lookup})
    if not prime:
        raise ValueError("the prime text is empty; give at least one character")
    if unknown:
        raise ValueError(f"the prime holds characters the model never saw: {unknown[:5]}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    size = len(vocabulary)
    indices = np.array([lookup[c] for c in prime], dtype=np.int64)
    x = one_hot(indices[:, None], size, model.dtype)  # (P, 1, V)
    states = model.zero_states(1)
    drawn: list[str] = []
    while len(drawn) < length:
        trace = model.run(x, *states)  # the prime, then each character drawn
        check_outputs(trace.z)
        k = int(rng.choice(size, p=next_distribution(trace.z[-1, 0], temperature)))
        drawn.append(vocabulary[k])
        states = model.final_states(trace)
        x = one_hot(np.array([[k]]), size, model.dtype)
    return "".join(drawn)
