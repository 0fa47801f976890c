"""Argument parsing shared by the two command lines, `python -m rnn_manual` and
`python -m rnn_torch`: one-line usage errors (exit status 2) and the option types.

It lives here, under both, so that rnn_torch's commands need nothing of rnn_manual's.
"""

from __future__ import annotations

import argparse
import math
import re
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


#: An integer option, as typed: ASCII digits and nothing else. int() also takes spaces around
#: the digits, underscores, a sign and other scripts' digits ("١٦", "１６"), which an option
#: would then read as a number its reader never meant.
DIGITS = re.compile(r"[0-9]+")
#: A number option, as typed: ASCII digits with a decimal point and an exponent (0.1, .5,
#: 1e-3), and nothing else that float() takes (spaces, underscores, signs, "nan", "inf",
#: other scripts' digits).
NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Digits an integer option may have: 2**64 has 20.
MAX_DIGITS = 20


def shown(text: str) -> str:
    """`text` as an error message quotes it: its repr, cut short after 20 characters."""
    return repr(text) if len(text) <= MAX_DIGITS else f"{text[:MAX_DIGITS]!r}..."


def digits(text: str, expected: str) -> int:
    """The integer that ASCII digits `text` spell, or ArgumentTypeError naming what was
    `expected`."""
    if len(text) > MAX_DIGITS or not DIGITS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected {expected} (digits 0-9), got {shown(text)}")
    return int(text)


def positive_int(text: str) -> int:
    """An integer >= 1, for argparse."""
    value = digits(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {shown(text)}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0, for argparse."""
    return digits(text, "a non-negative integer")


def seed(text: str) -> int:
    """A random seed, 0 to 2**64 - 1, for argparse."""
    value = digits(text, "an integer from 0 to 2**64-1")
    if value >= 2**64:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to 2**64-1, got {shown(text)}"
        )
    return value


def positive_float(text: str) -> float:
    """A finite number > 0, for argparse."""
    if not NUMBER.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a positive finite number (such as 0.1 or 1e-3), got {shown(text)}"
        )
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {shown(text)}")
    return value


def within_limits(what: str, *dims: int) -> None:
    """UsageError unless an array of shape `dims` stays within rnn_manual.core.limits."""
    try:
        check_elements(what, *dims)
    except ValueError as e:
        raise UsageError(str(e)) from None
