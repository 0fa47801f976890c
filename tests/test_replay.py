"""`train --seed-compatible` replays the tutorial's run digit for digit."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

from rnn_manual.training.tutorial import replay

EXPECTED = Path(__file__).parent / "data" / "seed_rnn.expected.txt"


def squeeze(text: str) -> list[str]:
    """Lines with runs of spaces folded to one (NumPy's array printing may pad)."""
    return [re.sub(r" +", " ", line).strip() for line in text.strip().splitlines()]


def test_replay_prints_the_tutorials_output_line_for_line() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        replay()
    assert squeeze(out.getvalue()) == squeeze(EXPECTED.read_text())


def test_replay_is_not_trivially_equal() -> None:
    """A different number of steps prints a different log: the comparison can fail."""
    out = io.StringIO()
    with redirect_stdout(out):
        replay(steps=3001)
    assert squeeze(out.getvalue()) == squeeze(EXPECTED.read_text())[:20]
    assert len(squeeze(out.getvalue())) < len(squeeze(EXPECTED.read_text()))
