"""Size limits: work that would exhaust memory is refused before anything is allocated.

A forward and backward pass over x: (T, B, I) holds a few arrays of T * B * H values
(pre-activations, hidden states, their gradients), so that product is what is capped.
"""

from __future__ import annotations

import math

#: Largest hidden layer: W_hh then holds 4096**2 values (128 MiB in float64).
MAX_HIDDEN = 4096
#: Largest input or output layer of a model read from a file.
MAX_LAYER = 4096
#: Most values in one array of a pass, e.g. (T + 1) * B * H: 1 GiB in float64, a few of
#: which fit a 24 GiB machine, and enough for the benchmark grid (129 x 256 x 1024).
MAX_ELEMENTS = 1 << 27


def check_elements(what: str, *dims: int) -> None:
    """ValueError unless an array of shape `dims` stays within MAX_ELEMENTS values."""
    n = math.prod(dims)
    if n > MAX_ELEMENTS:
        shape = " x ".join(str(d) for d in dims)
        raise ValueError(
            f"{what} would hold {shape} = {n} values, more than the limit of {MAX_ELEMENTS}"
        )
