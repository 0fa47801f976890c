"""The folder layout is the architecture: imports in rnn_manual only go downward.

    app        the command line and the figures
    files      the safe .npz reader and the model-file schema
    training   bits, optimisers, the training loop, the tutorial replay
    reference  the plain BPTT (it may use the cells' activations and losses)
    cells      the fast equations
    core       backends, input checks, limits, finite differences

A module may import its own layer and the layers below it, never one above, and nothing in
rnn_manual imports rnn_torch (which stands above all of it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnn_manual"

#: Bottom to top; a layer is a subpackage, or the one module reference.py.
LAYERS = ("core", "cells", "reference", "training", "files", "app")


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name inside rnn_manual (None: the package itself)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, text: str | None = None) -> list[str]:
    """Every module the source at `path` (or `text`, as if it were there) imports, as
    absolute dotted names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if node.module is None:  # `from . import x`: each name is a module
                found += [f"{target}.{alias.name}" for alias in node.names]
            else:
                found.append(target)
    return found


def violations(path: Path, text: str | None = None) -> list[str]:
    """The imports of `path` that go upward or into rnn_torch, in words."""
    source = module_name(path)
    mine = layer_of(source)
    found = []
    for target in imports(path, text):
        if target.startswith("rnn_torch"):
            found.append(f"{source} imports {target}")
        elif mine is not None and target.startswith("rnn_manual."):
            theirs = layer_of(target)  # (the package's __init__ and __main__ gather all)
            if theirs is None or theirs > mine:
                found.append(f"{source} ({LAYERS[mine]}) imports {target}, a layer above it")
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_downward(path: Path) -> None:
    assert not violations(path)


def test_every_module_is_in_a_layer() -> None:
    loose = [
        module_name(p) for p in SOURCES if layer_of(module_name(p)) is None and p.parent != PACKAGE
    ]
    top = {p.name for p in SOURCES if p.parent == PACKAGE}
    assert not loose, loose
    assert top == {"__init__.py", "__main__.py", "reference.py"}, sorted(top)


@pytest.mark.parametrize(
    "line",
    [
        "from ..training.train import train",  # cells -> training
        "from ..app import cli",  # cells -> app
        "from rnn_manual.files import modelfile",  # absolute, cells -> files
        "from .. import reference",  # cells -> reference
        "import rnn_torch",
    ],
)
def test_the_check_sees_an_upward_import(line: str) -> None:
    """The test bites: each of these lines added to a cell module is refused."""
    cell = PACKAGE / "cells" / "rnn.py"
    assert not violations(cell)
    assert violations(cell, cell.read_text() + "\n" + line + "\n")
