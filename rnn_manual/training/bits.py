"""Integers as bit sequences, least-significant bit first, and the addition task.

Time step t of a sequence holds bit t of the operands (bit 0 first), so the network
sees the low bits first and can carry into the high ones, as a person adds on paper.
Widths are not limited to NumPy's integer sizes: values are Python ints.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..core.limits import check_elements
from ..core.validate import check_size

Bits = NDArray[np.uint8]
Floats = NDArray[np.floating]

#: all_pairs enumerates 4**(bits-1) sums; past this width that is too many to hold.
MAX_ALL_PAIRS_BITS = 10


def encode(values: Sequence[int], width: int) -> Bits:
    """Bits of each value, least-significant first: shape (width, len(values)).

    Raises ValueError for a negative value or one that needs more than `width` bits.
    """
    width = check_size("width", width)
    check_elements("the bits (width x values)", width, len(values))
    n_bytes = (width + 7) // 8
    raw = bytearray()
    for value in values:
        try:
            v = operator.index(value)  # an integer; 1.5 or "3" are refused, not converted
        except TypeError:
            raise ValueError(f"values must be integers, got {value!r}") from None
        if v < 0 or v.bit_length() > width:
            raise ValueError(f"{v} does not fit in {width} unsigned bits")
        raw += v.to_bytes(n_bytes, "little")
    as_bytes = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(len(values), n_bytes)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :width]  # (N, width)
    return np.ascontiguousarray(bits.T)


def decode(bits: NDArray[np.integer] | NDArray[np.bool_]) -> list[int]:
    """The integers whose bits, least-significant first, are the columns of `bits` (width, N)."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must have shape (width, N), got {bits.shape}")
    if bits.size and not np.isin(bits, (0, 1)).all():
        raise ValueError("bits must be 0 or 1")
    packed = np.packbits(bits.T.astype(np.uint8), axis=1, bitorder="little")  # (N, bytes)
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def add_bits(a: Bits, b: Bits) -> Bits:
    """Bitwise ripple-carry sum of two (width, N) bit arrays; the final carry is dropped."""
    total = np.empty_like(a)
    carry = np.zeros(a.shape[1], dtype=np.uint8)
    for t in range(a.shape[0]):
        s = a[t] + b[t] + carry  # 0..3
        total[t] = s & 1
        carry = s >> 1
    return total


def addition_examples(a: Bits, b: Bits, dtype: DTypeLike = np.float64) -> tuple[Floats, Floats]:
    """Network inputs and targets for the sums a + b given as (width, N) bit arrays.

    x: (T, B, 2) holds bit t of a and of b at step t; y: (T, B, 1) holds bit t of a + b.
    """
    x = np.stack([a, b], axis=-1).astype(dtype)
    y = add_bits(a, b)[:, :, None].astype(dtype)
    return x, y


def random_addition_batch(
    rng: np.random.Generator, batch: int, bits: int, dtype: DTypeLike = np.float64
) -> tuple[Floats, Floats]:
    """A batch of sums a + b with a, b drawn uniformly from [0, 2**(bits-1)), as the tutorial.

    The top bit of each operand is 0 so that the sum fits in `bits` bits.
    Returns x: (bits, batch, 2) and y: (bits, batch, 1).
    """
    batch, bits = check_size("batch", batch), check_size("bits", bits)
    check_elements("the batch (bits x batch x 2)", bits, batch, 2)
    operands = rng.integers(0, 2, size=(2, bits, batch), dtype=np.uint8)
    operands[:, -1] = 0
    return addition_examples(operands[0], operands[1], dtype)


def all_pairs(bits: int) -> tuple[Bits, Bits]:
    """Every pair (a, b) with 0 <= a, b < 2**(bits-1), as (bits, 4**(bits-1)) bit arrays.

    a varies slowest: column k is a = k // 2**(bits-1), b = k % 2**(bits-1).
    """
    if not 1 <= bits <= MAX_ALL_PAIRS_BITS:
        raise ValueError(f"all_pairs supports 1 to {MAX_ALL_PAIRS_BITS} bits, got {bits}")
    half = 1 << (bits - 1)
    k = np.arange(half * half, dtype=np.int64)
    position = np.arange(bits, dtype=np.int64)[:, None]
    a = ((k // half) >> position) & 1
    b = ((k % half) >> position) & 1
    return a.astype(np.uint8), b.astype(np.uint8)
