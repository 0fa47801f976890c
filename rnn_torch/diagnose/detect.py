"""Which style a learner's file is written in, read from the functions it defines and their
parameters, without running it.

A style is recognized by its functions' names and their parameters' names together: other
course code reuses `rnn_forward` and `rnn_backward` with other signatures (CS231n's take
x, h0, Wx, Wh, b and dh, cache; the Coursera notebook's x, a0, parameters and da, caches).
The style with the most functions matching in both wins; a file that defines
loss_and_grads is native (ours) whatever else it defines, and so is a file that matches no
course (its loss_and_grads may be imported; if there is none, the diagnosis says so).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

#: style -> function -> its parameters' names, as the course writes them.
SIGNATURES: dict[str, dict[str, tuple[str, ...]]] = {
    "native": {"loss_and_grads": ("params", "x", "y")},
    "cs231n": {
        "rnn_step_forward": ("x", "prev_h", "Wx", "Wh", "b"),
        "rnn_step_backward": ("dnext_h", "cache"),
        "rnn_forward": ("x", "h0", "Wx", "Wh", "b"),
        "rnn_backward": ("dh", "cache"),
        "lstm_step_forward": ("x", "prev_h", "prev_c", "Wx", "Wh", "b"),
        "lstm_step_backward": ("dnext_h", "dnext_c", "cache"),
        "lstm_forward": ("x", "h0", "Wx", "Wh", "b"),
        "lstm_backward": ("dh", "cache"),
        "word_embedding_forward": ("x", "W"),
        "word_embedding_backward": ("dout", "cache"),
        "temporal_affine_forward": ("x", "w", "b"),
        "temporal_affine_backward": ("dout", "cache"),
        "temporal_softmax_loss": ("x", "y", "mask"),
    },
    "dls": {
        "rnn_cell_forward": ("xt", "a_prev", "parameters"),
        "rnn_forward": ("x", "a0", "parameters"),
        "rnn_cell_backward": ("da_next", "cache"),
        "rnn_backward": ("da", "caches"),
        "lstm_cell_forward": ("xt", "a_prev", "c_prev", "parameters"),
        "lstm_forward": ("x", "a0", "parameters"),
        "lstm_cell_backward": ("da_next", "dc_next", "cache"),
        "lstm_backward": ("da", "caches"),
    },
    "minchar": {"lossFun": ("inputs", "targets", "hprev")},
}


class StyleError(ValueError):
    """A file whose style cannot be read (not Python 3, or nothing of any style)."""


@dataclass
class Found:
    """What a file defines: its style, and each function of that style it defines."""

    style: str
    functions: list[str] = field(default_factory=list)  # defined with the course's parameters
    other_signature: list[str] = field(default_factory=list)  # the name, other parameters


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    return tuple(a.arg for a in [*node.args.posonlyargs, *node.args.args])


def defined(body: list[ast.stmt]) -> dict[str, tuple[str, ...]]:
    """The module's functions (top level, and inside if and try blocks, not in classes or
    other functions) -> their positional parameters."""
    found: dict[str, tuple[str, ...]] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.setdefault(node.name, parameters(node))
        elif isinstance(node, (ast.If, ast.Try)):
            inner = [*node.body, *node.orelse]
            if isinstance(node, ast.Try):
                inner += [*node.finalbody, *(s for h in node.handlers for s in h.body)]
            for name, given in defined(inner).items():
                found.setdefault(name, given)
    return found


PYTHON2 = "{name} is Python 2 ({what}): port it to Python 3 (print(...), range) to diagnose it"


def python2_names(tree: ast.Module) -> list[str]:
    """Python 2's builtins a parsed file reads and never assigns (a shim such as
    `xrange = range` is Python 3): xrange, raw_input, unicode, and .iteritems()."""
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
    assigned = {n.id for n in names if isinstance(n.ctx, ast.Store)}
    found = {n.id for n in names if isinstance(n.ctx, ast.Load)} - assigned
    found &= {"xrange", "raw_input", "unicode"}
    if any(isinstance(n, ast.Attribute) and n.attr == "iteritems" for n in ast.walk(tree)):
        found.add("iteritems")
    return sorted(found)


def read_tree(source: str, name: str) -> ast.Module | None:
    """The file's syntax tree; None for a syntax error (which loading it reports, as for
    any file); StyleError for Python 2, in one line."""
    try:
        tree = ast.parse(source, name)
    except SyntaxError:
        if re.search(r"^[ \t]*print[ \t]+[\"'%\w]", source, re.MULTILINE):
            raise StyleError(PYTHON2.format(name=name, what="print statements")) from None
        return None
    old = python2_names(tree)
    if old:
        raise StyleError(PYTHON2.format(name=name, what=", ".join(old)))
    return tree


def matches(style: str, functions: dict[str, tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """(the style's functions defined with its parameters, those defined with others)."""
    right: list[str] = []
    other: list[str] = []
    for name, wanted in SIGNATURES[style].items():
        if name in functions:
            given = functions[name]
            (right if given[: len(wanted)] == wanted else other).append(name)
    return right, other


def detect(source: str, name: str, style: str | None = None) -> Found:
    """The file's style (or the one asked for) and its functions of that style."""
    tree = read_tree(source, name)
    if tree is None:
        return Found("native")
    functions = defined(tree.body)
    if style is not None:
        right, other = matches(style, functions)
        return Found(style, right, other)
    if "loss_and_grads" in functions:
        return Found("native", ["loss_and_grads"])
    scores = {s: matches(s, functions) for s in SIGNATURES if s != "native"}
    best = max(scores, key=lambda s: len(scores[s][0]))
    if not scores[best][0]:  # loss_and_grads imported or assigned, or nothing: as ours
        return Found("native", [])
    return Found(best, *scores[best])
