"""Optimisers that update a dict of parameter arrays in place from a dict of gradients."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


class SGD:
    """Gradient descent, optionally with (heavy-ball) momentum.

    Plain:    w <- w - lr * g                 (the tutorial's update, alpha = lr)
    Momentum: v <- momentum * v + g;  w <- w - lr * v
    """

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr = lr
        self.momentum = momentum
        self.state: dict[str, Array] = {}  # velocity per parameter

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        for name, w in params.items():
            g = grads[name]
            if self.momentum:
                v = self.state.setdefault(name, np.zeros_like(w))
                v *= self.momentum
                v += g
                g = v
            w -= self.lr * g


class Adam:
    """Adam (Kingma & Ba, 2015), with bias-corrected moment estimates.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2
    w <- w - lr * (m / (1 - b1**k)) / (sqrt(v / (1 - b2**k)) + eps),  k = step number
    """

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.steps = 0
        self.state: dict[str, Array] = {}  # "m:<name>" and "v:<name>" per parameter

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        b1, b2 = self.betas
        self.steps += 1
        correction1 = 1.0 - b1**self.steps
        correction2 = 1.0 - b2**self.steps
        for name, w in params.items():
            g = grads[name]
            m = self.state.setdefault(f"m:{name}", np.zeros_like(w))
            v = self.state.setdefault(f"v:{name}", np.zeros_like(w))
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            w -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
