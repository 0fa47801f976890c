"""Truncated BPTT: where the gradient is cut, written once for the reference and every cell.

With truncate = K the sequence is cut into chunks of K steps (0..K-1, K..2K-1, ...). The
state runs on across a cut, but no gradient crosses one, as `h = h.detach()` at the start of
each chunk does in PyTorch. A backward pass walks t from T - 1 down to 0, carrying dh_next
(and the LSTM's dc_next), what step t + 1 sends back to step t; at a step that ends a chunk
nothing comes back, so the carried gradient starts again from zero there.
"""

from __future__ import annotations


def ends_chunk(t: int, truncate: int | None) -> bool:
    """Does step t end a chunk of `truncate` steps, so that no gradient reaches it from step
    t + 1? Never for full BPTT (truncate None)."""
    if not truncate:
        return False
    return (t + 1) % truncate == 0
