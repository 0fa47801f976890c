"""Argument parsing shared by the two command lines, `python -m rnn_manual` and
`python -m rnn_torch`: one-line usage errors (exit status 2) and the option types.

It lives here, under both, so that rnn_torch's commands need nothing of rnn_manual's.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from .limits import check_elements


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def one_line(text: object, limit: int = 500) -> str:
    """`text` with unprintable characters (line breaks) escaped, cut short after `limit`."""
    text = str(text)
    text = text if len(text) <= limit else f"{text[:limit]}..."
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit status 2, no usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def positive_int(text: str) -> int:
    """An integer >= 1, for argparse."""
    if len(text) > 20:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text[:20]!r}...")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed, 0 to 2**64 - 1, for argparse."""
    try:
        value = int(text) if len(text) <= 20 else -1
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**64-1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def within_limits(what: str, *dims: int) -> None:
    """UsageError unless an array of shape `dims` stays within rnn_manual.core.limits."""
    try:
        check_elements(what, *dims)
    except ValueError as e:
        raise UsageError(str(e)) from None
