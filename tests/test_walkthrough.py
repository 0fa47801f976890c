"""docs/walkthrough.md stays true: its code runs, and every name it gives exists.

- Every ```python block runs, top to bottom, in one namespace (the blocks assert what they
  claim).
- Every ```python excerpt block is quoted from rnn_manual/reference.py word for word (its
  anchor marks aside): each run of lines between `...` lines is a run of consecutive lines
  there, in order.
- Every `inline code` name that is not one of the tutorial's own names must exist in the
  package: dotted names are resolved attribute by attribute (`rnn_manual.cells.losses.mse`,
  `RNN.backward`, `trace.h`), params["..."] and grads["..."] keys must be real keys of some
  cell, bare names must be names the package uses (a function, parameter, local variable of
  the reference or the fast RNN, field, activation or loss) or PyTorch's for its cells, file
  paths must exist, and command lines must use real modules, subcommands and options.
- Every figure it shows is one that `python -m rnn_manual plot` writes (plot.FIGURES and
  docfigures.DOC_FIGURES), is there and is a PNG or GIF; every one of those that is in
  docs/img is shown.

And the manual around it (tests/manual.py: README.md and the pages under docs/) stays true
too: the other pages' ```python blocks run, each on its own; every page is linked from the
README; and every relative link of every page leads to a file, and to a heading there.
"""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import shlex
import types
from functools import cache
from pathlib import Path
from typing import Any

import manual
import numpy as np
import pytest
import torch

import rnn_manual
import rnn_manual.cells.rnn
import rnn_manual.reference
import rnn_torch.__main__
from rnn_manual import CELLS, RNN, SGD, Adam
from rnn_manual.app.cli import build_parser
from rnn_manual.app.docfigures import DOC_FIGURES
from rnn_manual.app.plot import FIGURES
from rnn_manual.cells.activations import ACTIVATIONS
from rnn_manual.cells.losses import LOSSES
from rnn_manual.cells.outputs import OUTPUTS
from rnn_manual.training.state import TrainConfig
from rnn_torch.planting import ANCHOR

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"
REFERENCE = ROOT / "rnn_manual" / "reference.py"
#: The modules whose local variables a reader meets: the BPTT the walkthrough explains.
EXPLAINED = (rnn_manual.cells.rnn, rnn_manual.reference)
#: PyTorch's cells, whose names (nn.LSTMCell, weight_ih, ...) the walkthrough maps to ours.
TORCH_CELLS = (torch.nn.RNNCell(2, 3), torch.nn.LSTMCell(2, 3), torch.nn.GRUCell(2, 3))
#: Image files and their first bytes.
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".gif": b"GIF89a"}

#: Names from the tutorial's code, which the walkthrough maps to ours; not ours to check.
TUTORIAL_NAMES = {
    "X",
    "alpha",
    "binary_dim",
    "d",
    "future_layer_1_delta",
    "hidden_dim",
    "input_dim",
    "int2binary",
    "largest_number",
    "layer_1",
    "layer_1_delta",
    "layer_1_values",
    "layer_2",
    "layer_2_delta",
    "layer_2_deltas",
    "layer_2_error",
    "output_dim",
    "overallError",
    "position",
    "sigmoid_output_to_derivative",
    "synapse_0",
    "synapse_0_update",
    "synapse_1",
    "synapse_1_update",
    "synapse_h",
    "synapse_h_update",
}

#: Names from min-char-rnn's code, which section 15 maps to ours; not ours to check either.
MINCHAR_NAMES = {
    "Whh",
    "Why",
    "Wxh",
    "bh",
    "by",
    "dhnext",
    "dhraw",
    "dparam",
    "dy",
    "hprev",
    "hs",
    "inputs",
    "lossFun",
    "mem",
    "np",
    "ps",
    "seed_ix",
    "seq_length",
    "smooth_loss",
    "targets",
    "vocab_size",
    "xs",
    "ys",
}

DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
KEYED = re.compile(r"\b(params|grads)\[\"(\w+)\"\]")
QUOTED = re.compile(r"\"(\w+)\"")


def text() -> str:
    return WALKTHROUGH.read_text()


def fenced_blocks(markdown: str, language: str) -> list[str]:
    """The blocks fenced as ```language (with nothing after it on the fence line)."""
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, flags=re.M | re.S)


def inline_spans(markdown: str) -> list[str]:
    """Every `inline code` span outside fenced blocks, line breaks read as spaces."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def package_modules() -> list[types.ModuleType]:
    found = pkgutil.walk_packages(rnn_manual.__path__, prefix="rnn_manual.")
    names = [m.name for m in found if not m.name.endswith("__main__")]
    return [rnn_manual, *(importlib.import_module(n) for n in names)]


def example_trace_and_grads() -> tuple[Any, dict[str, Any]]:
    model = RNN(hidden_size=3, bias=True)
    trace = model.run(np.zeros((2, 1, 2)))
    return trace, model.backward(trace, np.zeros_like(trace.z))


@cache
def vocabulary() -> frozenset[str]:
    """Every name a reader may meet in the package: module attributes, parameter names of
    every function and method, fields and instance attributes of its classes, the local
    variables of the RNN's own functions (rnn_manual/cells/rnn.py: the BPTT the walkthrough
    explains), the activations, losses and command-line subcommands; and builtins."""
    names: set[str] = set(dir(builtins)) | set(ACTIVATIONS) | set(LOSSES)
    names |= set(subcommands())
    for module in package_modules():
        names |= set(vars(module))
        for value in vars(module).values():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            functions = [value]
            if inspect.isclass(value):
                functions = [v for v in vars(value).values() if inspect.isfunction(v)]
                if dataclasses.is_dataclass(value):
                    names |= {f.name for f in dataclasses.fields(value)}
            for f in filter(inspect.isfunction, functions):
                names |= set(inspect.signature(f).parameters)
                if module in EXPLAINED:
                    names |= set(inspect.unwrap(f).__code__.co_varnames)
    for instance in (RNN(bias=True), SGD(0.1), Adam(0.1), TrainConfig()):
        names |= set(vars(instance))
    for cell in TORCH_CELLS:
        names |= {name for name, _ in cell.named_parameters()}
    return frozenset(names)


def param_keys() -> set[str]:
    """Every parameter name of every cell, biases included."""
    return {name for cell in CELLS.values() for name in cell(bias=True).params}


def subcommands(parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """A command line's subcommands and their parsers: rnn_manual's unless one is given."""
    parser = build_parser() if parser is None else parser
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@cache
def roots() -> dict[str, Any]:
    """What a dotted name may start with, besides `rnn_manual` and `rnn_torch` themselves."""
    trace, _ = example_trace_and_grads()
    found: dict[str, Any] = {"trace": trace}
    for module in package_modules():
        for name, value in vars(module).items():
            if not name.startswith("_") and getattr(value, "__module__", "").startswith(
                "rnn_manual"
            ):
                found.setdefault(name, value)
    return found


def resolve(dotted: str) -> bool:
    """Whether a dotted name exists: a module path, then attributes (or instance fields)."""
    head, *rest = dotted.split(".")
    if head == "nn":  # PyTorch's, as in nn.LSTMCell
        head, rest = "torch", ["nn", *rest]
    if head in ("rnn_manual", "rnn_torch", "torch"):
        value: Any = importlib.import_module(head)
        while (
            rest
            and hasattr(value, "__path__")  # a package: its submodules may not be imported yet
            and importlib.util.find_spec(f"{value.__name__}.{rest[0]}") is not None
        ):
            value = importlib.import_module(f"{value.__name__}.{rest.pop(0)}")
    elif head in roots():
        value = roots()[head]
    else:
        return False
    for i, attribute in enumerate(rest):
        fields = (
            {f.name for f in dataclasses.fields(value)}
            if dataclasses.is_dataclass(value)
            else set()
        )
        if value is RNN:
            fields |= set(vars(RNN(bias=True)))  # instance attributes: params, hidden_size, ...
        if attribute in fields:
            return i == len(rest) - 1  # a plain value: nothing below it to check
        if not hasattr(value, attribute):
            return False
        value = getattr(value, attribute)
    return True


def problems_in_command(span: str) -> list[str]:
    """A `python -m MODULE ...` line or bare `--option ...`: a real module; for rnn_manual and
    rnn_torch, real subcommands and options."""
    words = shlex.split(span.removeprefix("$ "))
    if words[:2] == ["python", "-m"]:
        module, words = words[2], words[3:]
        if module == "rnn_torch":
            return problems_in_options(words, subcommands(rnn_torch.__main__.build_parser()))
        if module != "rnn_manual":
            return [] if importlib.util.find_spec(module) else [f"no module {module!r}"]
    return problems_in_options(words, subcommands())


def problems_in_options(
    words: list[str], commands: dict[str, argparse.ArgumentParser]
) -> list[str]:
    """What is not a subcommand of `commands`, or not an option of it, in a command's words."""
    if words and not words[0].startswith("-"):
        if words[0] not in commands:
            return [f"no subcommand {words[0]!r}"]
        parsers = [commands[words[0]]]
    else:
        parsers = list(commands.values())
    options = {o for p in parsers for o in p._option_string_actions}
    return [f"no option {w!r}" for w in words if w.startswith("--") and w not in options]


def problems_in_span(span: str) -> list[str]:
    """What in one inline span does not exist, if anything."""
    if span.startswith(("python -m ", "--")):
        return problems_in_command(span)
    if "/" in span and re.fullmatch(r"[\w./-]+\.(py|md)", span):  # a file of the project
        return [] if (ROOT / span).is_file() else [span]
    _, grads = example_trace_and_grads()
    keys = {"params": param_keys(), "grads": set(grads)}
    problems = [f"{s}[{k!r}]" for s, k in KEYED.findall(span) if k not in keys[s]]
    strings = {k for s, k in KEYED.findall(span)}
    for quoted in QUOTED.findall(span):
        names = set(grads) | set(ACTIVATIONS) | set(LOSSES) | set(OUTPUTS)
        if quoted not in strings and quoted not in names:
            problems.append(f'"{quoted}"')
    unquoted = re.sub(r"\"\w*\"", "", span)
    for name in DOTTED.findall(unquoted):
        head = name.split(".")[0]
        if head in TUTORIAL_NAMES | MINCHAR_NAMES or re.fullmatch(r"[A-Za-z]", head):  # x, t, K
            continue
        exists = (
            resolve(name)
            if "." in name or head in ("rnn_manual", "rnn_torch")
            else name in vocabulary() or name in roots()
        )
        if not exists:
            problems.append(name)
    return problems


def test_every_python_block_runs() -> None:
    blocks = fenced_blocks(text(), "python")
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {"__name__": "walkthrough"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"walkthrough block {number}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"python block {number} of {WALKTHROUGH.name} fails: {e!r}\n{block}")


def manual_python_blocks() -> dict[str, str]:
    """Each ```python block of the README and its pages, by where it is."""
    found: dict[str, str] = {}
    for page, block in manual.blocks("python"):
        number = sum(where.startswith(manual.name(page)) for where in found) + 1
        found[f"{manual.name(page)} python block {number}"] = block
    return found


@pytest.mark.parametrize("where", list(manual_python_blocks()))
def test_every_python_block_of_the_readme_and_its_pages_runs(where: str) -> None:
    namespace: dict[str, Any] = {"__name__": "manual"}
    exec(compile(manual_python_blocks()[where], where, "exec"), namespace)


def test_the_readmes_pages_have_python_blocks() -> None:
    assert len(manual_python_blocks()) >= 3


def test_every_name_in_the_text_exists() -> None:
    spans = inline_spans(text())
    assert len(spans) > 100
    missing = {span: p for span in spans if (p := problems_in_span(span))}
    assert not missing, f"names in {WALKTHROUGH.name} that the package does not have: {missing}"


#: The command lines whose arguments can be parsed here, by the parser of each.
PARSERS = {"rnn_manual": build_parser, "rnn_torch": rnn_torch.__main__.build_parser}


def test_every_command_line_parses() -> None:
    lines = [
        line.removeprefix("$ ")
        for block in fenced_blocks(text(), "sh")
        for line in block.splitlines()
        if line.removeprefix("$ ").startswith("python -m ")
    ]
    assert lines
    for line in lines:
        _, _, module, *words = shlex.split(line, comments=True)
        if module not in PARSERS:
            assert importlib.util.find_spec(module), f"{WALKTHROUGH.name}: {line!r}: no module"
            continue
        try:
            PARSERS[module]().parse_args(words)
        except SystemExit:
            pytest.fail(f"{WALKTHROUGH.name}: {line!r} is not a valid command line")


def excerpt_runs(block: str) -> list[list[str]]:
    """An excerpt's runs of lines, split at its `...` lines (lines left out)."""
    runs: list[list[str]] = [[]]
    for line in block.splitlines():
        if line.strip() == "...":
            runs.append([])
        else:
            runs[-1].append(line.rstrip())
    return [run for run in runs if run]


def quoted_in_order(runs: list[list[str]], source: list[str]) -> bool:
    """Whether each run is a run of consecutive lines of source, each after the one before."""
    start = 0
    for run in runs:
        found = next(
            (i for i in range(start, len(source)) if source[i : i + len(run)] == run), None
        )
        if found is None:
            return False
        start = found + len(run)
    return True


def unanchored(line: str) -> str:
    """A line of the reference as the walkthrough quotes it: without the anchor mark (the
    reference's docstring explains it; the reader of the walkthrough need not see it)."""
    line = line.rstrip().removesuffix(ANCHOR).rstrip()
    return line.removesuffix("#").rstrip()


def test_every_excerpt_is_quoted_from_the_reference_word_for_word() -> None:
    source = [unanchored(line) for line in REFERENCE.read_text().splitlines()]
    excerpts = fenced_blocks(text(), "python excerpt")
    assert len(excerpts) >= 5
    for block in excerpts:
        assert quoted_in_order(excerpt_runs(block), source), f"not in reference.py:\n{block}"


def test_the_excerpt_check_tells_quotes_from_misquotes() -> None:
    source = ["def f():", "    a = 1", "    b = 2", "    c = 3"]
    assert quoted_in_order(excerpt_runs("    a = 1\n    b = 2\n"), source)
    assert quoted_in_order(excerpt_runs("    a = 1\n    ...\n    c = 3\n"), source)
    assert not quoted_in_order(excerpt_runs("    a = 1\n    c = 3\n"), source)  # not adjacent
    assert not quoted_in_order(excerpt_runs("    c = 3\n    ...\n    a = 1\n"), source)
    assert not quoted_in_order(excerpt_runs("    a = 2\n"), source)
    assert unanchored(f"    a = 1  # a_t {ANCHOR}") == "    a = 1  # a_t"
    assert unanchored(f"    a = 1  # {ANCHOR}") == unanchored("    a = 1  ") == "    a = 1"


def test_figures_are_the_plot_commands_images() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text())
    names = [Path(p).name for p in shown]
    assert shown and len(set(names)) == len(names)
    assert set(names) <= set(FIGURES) | set(DOC_FIGURES), "not drawn by plot"
    for path in shown:
        data = (WALKTHROUGH.parent / path).read_bytes()
        assert data.startswith(MAGIC[Path(path).suffix]), path
    committed = {p.name for p in (WALKTHROUGH.parent / "img").iterdir()}
    assert committed & (set(FIGURES) | set(DOC_FIGURES)) <= set(names), "drawn, not shown"


def test_every_page_is_linked_from_the_readme() -> None:
    readme = manual.README
    linked = {
        (readme.parent / link.partition("#")[0]).resolve()
        for link in manual.links(readme.read_text())
    }
    unlinked = [manual.name(page) for page in manual.pages() if page not in linked | {readme}]
    assert len(manual.pages()) >= 7
    assert not unlinked, f"manual pages that README.md does not link to: {unlinked}"


def test_every_link_of_the_readme_and_its_pages_leads_to_a_file_and_heading() -> None:
    assert any("#" in link for link in manual.links(text()))  # the walkthrough's own sections
    broken = {manual.name(page): b for page in manual.pages() if (b := manual.broken_links(page))}
    assert not broken, f"links that lead nowhere: {broken}"


@pytest.mark.parametrize(
    "target, ok",
    [
        ("suite.md", True),
        ("suite.md#what-it-proves", True),
        ("suite.md#what-it-disproves", False),
        ("nothing.md", False),
        ("../README.md#manual", True),
        ("architecture.md#the-folders", True),
        ("#train", True),
        ("#training", False),
        ("../rnn_manual/reference.py", True),
        ("../rnn_manual/reference.py#L1", False),
        ("https://data-apis.org/array-api/#nowhere", True),
    ],
)
def test_the_link_check_tells_links_that_lead_somewhere(target: str, ok: bool) -> None:
    page = manual.DOCS / "command-line.md"
    broken = manual.broken_links(page, f"[a link]({target})")
    assert (broken == []) is ok, broken


@pytest.mark.parametrize(
    "span, ok",
    [
        ("RNN.backward", True),
        ("RNN.backprop", False),
        ('params["W_hh"]', True),
        ('params["W_hx"]', False),
        ('grads["h0"]', True),
        ("rnn_manual.cells.losses.mse", True),
        ("rnn_manual.cells.losses.mae", False),
        ("trace.h[t + 1]", True),
        ("trace.q", False),
        ("h0", True),
        ("dh_later", False),
        ("future_layer_1_delta.dot(synapse_h.T)", True),
        ("synapse_h", True),
        ("python -m rnn_manual train --hidden", True),
        ("python -m rnn_manual train --hiden", False),
        ("python -m rnn_manual frobnicate", False),
        ("rnn_manual/cells/rnn.py", True),
        ("tests/test_nothing.py", False),
        ("exercises/README.md", True),
        ("docs/nothing.md", False),
        ('params["b_hn"]', True),
        ('params["b_hx"]', False),
        ("dc_next", True),
        ("nn.LSTMCell", True),
        ("nn.LSTMCel", False),
        ("weight_ih", True),
        ("truncate=K", True),
        ("python -m rnn_manual.app.worked_example", True),
        ("python -m rnn_manual.app.nothing", False),
        ("python -m rnn_torch check --loss upstream", True),
        ("python -m rnn_torch check --los upstream", False),
    ],
)
def test_the_name_check_tells_real_names_from_made_up_ones(span: str, ok: bool) -> None:
    assert (problems_in_span(span) == []) is ok
