import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_manual.training.bits import (
    MAX_ALL_PAIRS_BITS,
    add_bits,
    addition_examples,
    all_pairs,
    decode,
    encode,
    random_addition_batch,
)


@st.composite
def widths_and_values(draw: st.DrawFn) -> tuple[int, list[int]]:
    width = draw(st.integers(1, 4096))
    values = draw(st.lists(st.integers(0, 2**width - 1), min_size=1, max_size=8))
    return width, values


@given(widths_and_values())
def test_encode_decode_round_trip(case: tuple[int, list[int]]) -> None:
    width, values = case
    bits = encode(values, width)
    assert bits.shape == (width, len(values))
    assert decode(bits) == values


@given(widths_and_values())
def test_encode_is_least_significant_bit_first(case: tuple[int, list[int]]) -> None:
    width, values = case
    bits = encode(values, width)
    for t in range(0, width, max(1, width // 7)):
        assert list(bits[t]) == [(v >> t) & 1 for v in values]


@given(st.integers(1, 4096), st.data())
def test_add_bits_matches_integer_addition(width: int, data: st.DataObject) -> None:
    half = 2 ** (width - 1)
    a = data.draw(st.lists(st.integers(0, half - 1), min_size=1, max_size=6))
    b = data.draw(st.lists(st.integers(0, half - 1), min_size=len(a), max_size=len(a)))
    assert decode(add_bits(encode(a, width), encode(b, width))) == [
        i + j for i, j in zip(a, b, strict=True)
    ]


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode([256], 8)
    with pytest.raises(ValueError, match="does not fit"):
        encode([-1], 8)
    with pytest.raises(ValueError, match="width"):
        encode([0], 0)


def test_decode_refuses_non_bits() -> None:
    with pytest.raises(ValueError):
        decode(np.array([[2]]))


@given(st.integers(1, 300), st.integers(1, 64), st.integers(0, 2**32))
def test_random_batch_is_a_valid_addition(bits: int, batch: int, seed: int) -> None:
    x, y = random_addition_batch(np.random.default_rng(seed), batch, bits)
    assert x.shape == (bits, batch, 2) and y.shape == (bits, batch, 1)
    assert x.dtype == np.float64
    a = decode(x[:, :, 0].astype(np.uint8))
    b = decode(x[:, :, 1].astype(np.uint8))
    c = decode(y[:, :, 0].astype(np.uint8))
    assert all(0 <= v < 2 ** (bits - 1) for v in a + b)
    assert c == [i + j for i, j in zip(a, b, strict=True)]


def test_random_batch_covers_the_operand_range() -> None:
    x, _ = random_addition_batch(np.random.default_rng(0), 4096, 8)
    a = decode(x[:, :, 0].astype(np.uint8))
    assert set(a) == set(range(128))


@pytest.mark.parametrize("bits", [1, 2, 3, 8])
def test_all_pairs_enumerates_every_pair_once(bits: int) -> None:
    a_bits, b_bits = all_pairs(bits)
    half = 2 ** (bits - 1)
    pairs = list(zip(decode(a_bits), decode(b_bits), strict=True))
    assert sorted(pairs) == [(a, b) for a in range(half) for b in range(half)]
    x, y = addition_examples(a_bits, b_bits, np.float32)
    assert x.dtype == y.dtype == np.float32
    assert decode(y[:, :, 0].astype(np.uint8)) == [a + b for a, b in pairs]


def test_all_pairs_refuses_widths_too_large_to_enumerate() -> None:
    with pytest.raises(ValueError):
        all_pairs(MAX_ALL_PAIRS_BITS + 1)
