"""How far long work has got, said every few seconds, and nothing for work that ends sooner.

On a terminal the line redraws itself in place (a carriage return, then the new text) and
is erased when the work ends; elsewhere (a file, a pipe, a CI log) a whole line is written
every EVERY seconds. Work that ends within EVERY seconds writes nothing at all, so quick
runs print exactly what they printed before.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Seconds between progress lines when the output is not a terminal.
EVERY = 5.0
#: Seconds between redraws on a terminal (after the first EVERY seconds).
REDRAW = 0.5


class Progress:
    """Call it with (done, total) as work advances; `close` it when the work ends.

    what: names the work ("evaluating 1024-bit sums"). stream: where to write, stderr by
    default. A stream that fails (closed, full) silences it. since: when the caller last
    wrote a line (time.monotonic(); None: now), so that the first line comes EVERY seconds
    after that one: work in several pieces, each shorter than EVERY, is not silent longer.
    `last` is then when the last line was written, by the caller or by this.
    """

    def __init__(
        self,
        what: str,
        stream: TextIO | None = None,
        every: float | None = None,
        since: float | None = None,
    ) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.every = EVERY if every is None else every
        self.start = time.monotonic()
        self.last = self.start if since is None else since
        self.terminal = _isatty(self.stream)
        self.drawn = False  # a terminal line is showing

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < (REDRAW if self.drawn else self.every):
            return
        self.last = now
        elapsed = now - self.start
        text = f"{self.what}: {done / max(total, 1):.0%} after {elapsed:.0f} s"
        if 0 < done < total:
            text += f", about {elapsed * (total - done) / done:.0f} s to go"
        self._write(f"\r{text}\x1b[K" if self.terminal else f"{text}\n")
        self.drawn = self.terminal

    def close(self) -> None:
        """Erase a terminal line, so that what follows starts on a clean line."""
        if self.drawn:
            self._write("\r\x1b[K")
            self.drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or full: progress is not worth failing for
            self.every = float("inf")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
