"""The folder layout is the architecture: imports in rnn_manual only go downward, no
module imports itself through others, no file grows past MAX_LINES, and no module of tests/
imports a test module (shared helpers have modules of their own).

    app        the command line and the figures
    files      the safe .npz reader and the model-file schema
    training   bits, optimisers, evaluation, the stopping rule, the loop, the tutorial replay
    reference  the plain BPTT (it may use the cells' activations, losses and truncation rule)
    cells      the fast equations
    core       backends, input checks, limits, threads, finite differences, argument types

A module may import its own layer and the layers below it, never one above, and nothing in
rnn_manual imports rnn_torch (which stands above all of it). Inside a layer, and inside
rnn_torch, the imports between modules form no circle: each module can be read knowing only
the ones it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rnn_manual"
#: Longest a file of rnn_manual may be: a file longer than this answers more than one
#: question, and is split by question.
MAX_LINES = 400
#: The files allowed to be longer, each with the reason (none now).
LONGER: dict[str, str] = {}

#: Bottom to top; a layer is a subpackage, or the one module reference.py.
LAYERS = ("data", "core", "cells", "reference", "training", "files", "app")


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name inside rnn_manual (None: the package itself)."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, text: str | None = None) -> list[tuple[str, list[str]]]:
    """Every import of the source at `path` (or `text`, as if it were there), anywhere in it:
    the module it names, as an absolute dotted name, and the modules it takes from it
    (`from package import a, b`: package.a and package.b; those that are not modules of this
    project are left to the caller to tell apart). `from . import x` names x alone."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            taken = [f"{target}.{alias.name}" for alias in node.names]
            if node.module is None:  # `from . import x`: each name is a module
                found += [(module, []) for module in taken]
            else:
                found.append((target, taken))
    return found


def imports(path: Path, text: str | None = None) -> list[str]:
    """Every module the source at `path` (or `text`) imports, as absolute dotted names."""
    return [target for target, _ in imported(path, text)]


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
        "from ..training.loop import train",  # cells -> training
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


# ---- no circle -----------------------------------------------------------------------------


def module_path(module: str) -> Path | None:
    """The file of a dotted module name of this project's packages (None: not one of them)."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def edges(path: Path, text: str | None = None) -> set[str]:
    """The project modules the source at `path` imports, anywhere in it (a function's own
    imports too): `from package import name` counts as package.name where that is a module,
    and as the package (its __init__) in any case."""
    found = set()
    for target, taken in imported(path, text):
        found.update(module for module in taken if module_path(module) is not None)
        while target and module_path(target) is None:  # `from a.b import f`: a.b's module
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    found.discard(module_name(path))
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports in `graph` (module -> the modules it imports), each once, as
    the modules along it."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                if frozenset(path) not in seen:
                    seen.add(frozenset(path))
                    found.append([*path, start])
            elif nxt not in path and nxt > start:  # each circle from its least module
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def import_graph(package: str, changed: dict[Path, str] | None = None) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports; `changed`: sources to read instead."""
    changed = changed or {}
    paths = sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return {
        module_name(p): {m for m in edges(p, changed.get(p)) if m.split(".")[0] == package}
        for p in paths
    }


@pytest.mark.parametrize("package", ["rnn_manual", "rnn_torch"])
def test_no_import_circle(package: str) -> None:
    assert circles(import_graph(package)) == []


def test_the_circle_check_sees_a_circle() -> None:
    """It bites: plot importing figures, which imports plot, is a circle (the one there was,
    plot.py and docfigures.py importing each other); and a circle through a package's
    __init__ is one too."""
    plot = PACKAGE / "app" / "plot.py"
    lazy = "\n\ndef f() -> None:\n    from . import figures\n"
    found = circles(import_graph("rnn_manual", {plot: plot.read_text() + lazy}))
    assert ["rnn_manual.app.figures", "rnn_manual.app.plot", "rnn_manual.app.figures"] in found
    base = PACKAGE / "cells" / "base.py"
    via_init = base.read_text() + "\nfrom ..cells import CELLS\n"
    found = circles(import_graph("rnn_manual", {base: via_init}))
    assert any(
        "rnn_manual.cells" in circle and "rnn_manual.cells.base" in circle for circle in found
    )
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# ---- one question per file -----------------------------------------------------------------


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_is_longer_than_max_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    name = str(path.relative_to(ROOT))
    assert lines <= MAX_LINES or name in LONGER, (
        f"{name}: {lines} lines, more than {MAX_LINES}: split it by the questions it answers "
        "(or say in tests/test_layers.py LONGER why it must be longer)"
    )


# ---- tests ---------------------------------------------------------------------------------


def imported_test_modules(path: Path, text: str | None = None) -> list[str]:
    """The test modules (tests/test_*.py) that the source at `path` imports."""
    tree = ast.parse(path.read_text() if text is None else text)
    names = [alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    return sorted(name for name in names if name.split(".")[0].startswith("test_"))


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")), ids=lambda p: p.name)
def test_no_module_of_tests_imports_a_test_module(path: Path) -> None:
    """Shared helpers live in helper modules (strategies.py, nets.py, ...), which tests
    import; a test module is never a library for another: its tests would run twice, and
    its helpers would be found in the wrong room."""
    assert imported_test_modules(path) == []


def test_the_test_import_check_bites() -> None:
    path = ROOT / "tests" / "test_truncate.py"
    assert imported_test_modules(path, "from test_reference import make\nimport test_gated\n") == [
        "test_gated",
        "test_reference",
    ]
