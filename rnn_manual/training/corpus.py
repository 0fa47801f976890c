"""The text a character-level model learns from, as numbers: its vocabulary, the index of
every character, and the chunks of B streams that training reads.

A text of N characters becomes N indices into its vocabulary, the V distinct characters in
order of code point. Its last HELD_OUT share is held out: never trained on, the loss on it
is the run's measure (sampling.held_out_loss). The rest is cut into B streams of L = N_train
// B characters, stream b starting at character b * L, so that a batch reads B far-apart
places of the text at once (min-char-rnn reads one, B = 1). A step reads the chunk at
`position` of every stream: inputs x_t = the characters position .. position + seq - 1,
targets y_t = the character after each, both one-hot, (seq, B, V):

    x[t, b] = one_hot(text[b L + position + t]),   y[t, b] = one_hot(text[b L + position + t + 1])

The next step reads the chunk after it (position + seq), carrying the hidden state on; a
chunk that would read past its stream's end is not read, and the streams start over from
position 0 and a zero state, as min-char-rnn does at the end of its text.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..core.limits import MAX_LAYER

#: The share of the text held out of training, its last characters.
HELD_OUT = 0.1
#: The largest text read: its indices take 8 bytes a character.
MAX_TEXT_BYTES = 16 << 20
#: The text `text` trains on when no --file is given: the project's own writing.
DEFAULT_TEXT = "bptt.txt"


class TextError(ValueError):
    """A text that cannot be trained on: unreadable, not UTF-8, too short, too large."""


@dataclass(frozen=True)
class Corpus:
    """A text as indices into its vocabulary, split into training and held-out parts."""

    vocabulary: str  # the V distinct characters, in order of code point
    indices: NDArray[np.int64]  # (N,) every character's index in the vocabulary
    digest: str  # sha256 of the text's UTF-8 bytes: a checkpoint resumes on this text only

    @property
    def held_out_start(self) -> int:
        """Where the held-out tail begins: the last HELD_OUT share, at least 2 characters."""
        n = len(self.indices)
        return n - max(2, round(HELD_OUT * n))

    @property
    def train(self) -> NDArray[np.int64]:
        return self.indices[: self.held_out_start]

    @property
    def held_out(self) -> NDArray[np.int64]:
        return self.indices[self.held_out_start :]

    def stream_length(self, batch: int) -> int:
        """L, the characters of training text each of `batch` streams reads."""
        return len(self.train) // batch

    def check_fits(self, seq: int, batch: int) -> None:
        """TextError unless every one of `batch` streams holds a chunk of seq steps (seq + 1
        characters: the last input's target is the character after it)."""
        if self.stream_length(batch) < seq + 1:
            need = batch * (seq + 1)
            raise TextError(
                f"the text is too short for --seq {seq} with --batch {batch}: training needs "
                f"{need} characters, and has {len(self.train)} (the last {HELD_OUT:.0%} are "
                "held out); lower --seq or --batch"
            )

    def next_position(self, position: int, seq: int, batch: int) -> int:
        """Where the chunk after the one at `position` starts: position + seq, or 0 where
        that chunk would read past its stream's end (the streams start over)."""
        after = position + seq
        return after if after + seq + 1 <= self.stream_length(batch) else 0

    def chunk(
        self, position: int, seq: int, batch: int, dtype: DTypeLike
    ) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
        """The inputs x and targets y (seq, batch, V), one-hot, of the chunk at `position`."""
        starts = position + self.stream_length(batch) * np.arange(batch)  # (B,)
        steps = np.arange(seq + 1)[:, None] + starts[None, :]  # (seq + 1, B) text positions
        read = self.train[steps]  # the characters x_0 .. x_{seq-1} and their successor
        return one_hot(read[:-1], len(self.vocabulary), dtype), one_hot(
            read[1:], len(self.vocabulary), dtype
        )


def one_hot(indices: NDArray[np.int64], size: int, dtype: DTypeLike) -> NDArray[np.floating]:
    """indices (...) -> (..., size), a 1 at each index and 0 elsewhere."""
    out = np.zeros((*indices.shape, size), dtype=dtype)
    np.put_along_axis(out, indices[..., None], 1.0, axis=-1)
    return out


def corpus_of(text: str) -> Corpus:
    """A text as a Corpus; TextError for one with fewer than two distinct characters or too
    many to be a model's input layer."""
    vocabulary = "".join(sorted(set(text)))
    if len(text) < 2 or len(vocabulary) < 2:
        raise TextError(
            f"a text needs at least two distinct characters to learn from, this one has "
            f"{len(vocabulary)} ({len(text)} characters)"
        )
    if len(vocabulary) > MAX_LAYER:
        raise TextError(
            f"the text has {len(vocabulary)} distinct characters, more than the {MAX_LAYER} a "
            "model's input layer may have"
        )
    lookup = {c: k for k, c in enumerate(vocabulary)}
    indices = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Corpus(vocabulary, indices, digest)


def read_corpus(path: str | os.PathLike[str] | None) -> Corpus:
    """The text in the file at `path` (None: the default text) as a Corpus; TextError, one
    line naming the file, for a file that cannot be read, is not UTF-8, is empty or larger
    than MAX_TEXT_BYTES."""
    if path is None:
        data = resources.files("rnn_manual.data").joinpath(DEFAULT_TEXT).read_bytes()
        name = f"the default text ({DEFAULT_TEXT})"
    else:
        name = str(path)
        try:
            if not Path(path).is_file() and Path(path).exists():  # opening a FIFO would wait
                raise TextError(f"{name}: not a regular file")
            with Path(path).open("rb") as f:
                data = f.read(MAX_TEXT_BYTES + 1)
        except OSError as e:
            raise TextError(f"{name}: cannot read the file ({e.strerror})") from None
    if len(data) > MAX_TEXT_BYTES:
        raise TextError(f"{name}: larger than the {MAX_TEXT_BYTES >> 20} MiB this program reads")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(
            f"{name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None
    if not text:
        raise TextError(f"{name}: the file is empty")
    try:
        return corpus_of(text)
    except TextError as e:
        raise TextError(f"{name}: {e}") from None
