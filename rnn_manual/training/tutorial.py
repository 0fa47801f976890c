"""A digit-for-digit replay of the tutorial's run, on this package's batched RNN.

Same network (2-16-1, sigmoid, no biases), same initial weights and problems drawn from
the legacy `np.random.seed(0)` stream in the tutorial's order, one sum per step, plain
SGD with alpha = 0.1 on the tutorial's loss, 10000 steps, a progress block every 1000.
The legacy RandomState is used here only because the replay needs its exact stream.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..cells.rnn import RNN
from .bits import addition_examples, decode, encode
from .optim import SGD

BITS = 8
ALPHA = 0.1
STEPS = 10000
PRINT_EVERY = 1000


def tutorial_model(rng: np.random.RandomState) -> RNN:
    """The tutorial's network with its initial weights, 2 * random - 1, drawn in its order."""
    model = RNN(input_size=2, hidden_size=16, output_size=1, activation="sigmoid", bias=False)
    for name in ("W_xh", "W_hy", "W_hh"):  # synapse_0, synapse_1, synapse_h
        w = model.params[name]
        w[...] = 2 * rng.random_sample(w.shape) - 1
    return model


def replay(print_line: Callable[[str], None] = print, steps: int = STEPS) -> RNN:
    """Run the tutorial's training loop and print its progress blocks; return the model."""
    rng = np.random.RandomState(0)
    model = tutorial_model(rng)
    optimizer = SGD(ALPHA)
    largest = 2**BITS
    for j in range(steps):
        a_int = rng.randint(largest // 2)
        b_int = rng.randint(largest // 2)
        x, y = addition_examples(encode([a_int], BITS), encode([b_int], BITS))

        done = model.loss_pass(x, model.zero_states(1), y, "mse")  # x, y, p: (8, 1, ...)
        optimizer.step(model.params, done.grads)
        trace = done.trace

        if j % PRINT_EVERY == 0:
            # The tutorial prints bits most-significant first, and its error as an array.
            error = np.abs(y[:, 0] - trace.p[:, 0]).sum(axis=0)  # (1,)
            guess = np.round(trace.p[:, 0, 0]).astype(np.uint8)  # (8,)
            truth = y[:, 0, 0].astype(np.uint8)
            print_line(f"Error: {error}")
            print_line(f"Pred: {guess[::-1]}")
            print_line(f"True: {truth[::-1]}")
            print_line(f"{a_int}  +  {b_int}  =  {decode(guess[:, None])[0]}")
            print_line("------------")
    return model
