"""The notebooks (notebooks/*.ipynb) are their sources as notebooks/build.py makes them now,
and each runs headless, top to bottom, in a fresh Jupyter kernel.

- Each committed notebook is, byte for byte, what build.py makes of its source now
  (docs/walkthrough.md, exercises/*.py): no notebook is a second copy kept by hand.
- The walkthrough's code cells are exactly the blocks test_walkthrough.py runs, its links
  lead to files that exist, seen from notebooks/, and its headings carry the ids (GitHub's)
  that its in-page links name.
- Every notebook starts with the install cell, which does nothing where the project is
  installed, installs the checkout the notebook sits in where it is not, and says what to do
  where there is neither a checkout nor a public URL.
- Every notebook executes (nbclient, Python's warnings made errors in the kernel): the
  walkthrough, and the blank exercises, whose last cell prints the diagnosis's "not
  implemented yet" for TODO 1; the exercises filled in from rnn_manual/reference.py
  (exercise_answers.py) print every gradient right.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import manual
import nbformat
import pytest
from exercise_answers import STUBS, filled
from nbclient import NotebookClient
from nbformat import NotebookNode

from notebooks import build

NAMES = [path.name for path in build.built()]
#: The longest a cell may take (the slowest, a filled exercise's diagnosis, takes seconds).
CELL_TIMEOUT = 300


def executed(nb: NotebookNode) -> NotebookNode:
    """nb run top to bottom in a fresh python3 kernel started in notebooks/, as Jupyter opens
    it, with every Python warning an error (as pytest -W error makes them here); raises
    nbclient's CellExecutionError at the first cell that raises, and fails if a cell writes
    to stderr."""
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        # killed after the last cell: it is thrown away, and ipykernel 7.4 would warn of its own
        # do_shutdown (a PendingDeprecationWarning, an error here) if asked to shut down
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(build.HERE)}},
    )
    # an IPython profile of its own: none of the user's startup files, nothing written to ~
    with tempfile.TemporaryDirectory() as profile:
        env = {**os.environ, "PYTHONWARNINGS": "error", "IPYTHONDIR": profile}
        client.execute(env=env)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"{cell.id} wrote to stderr: {output.text}"
    return nb


def printed(cell: NotebookNode) -> str:
    """What a code cell printed."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_is_what_its_source_makes_now(name: str) -> None:
    path = build.HERE / name
    assert path.read_text(encoding="utf-8") == build.text(build.built()[path]), (
        f"{path.name} differs from its source: run `python -m notebooks`"
    )


def test_the_notebooks_are_clean_and_the_same_each_time() -> None:
    first, again = build.built(), build.built()
    for path, nb in first.items():
        assert build.text(nb) == build.text(again[path])
        ids = [cell.id for cell in nb.cells]
        assert len(set(ids)) == len(ids)
        assert all(cell.get("outputs", []) == [] for cell in nb.cells), path.name
        nbformat.validate(nb)


def test_the_walkthroughs_code_cells_are_the_blocks_that_test_walkthrough_runs() -> None:
    nb = build.built()[build.HERE / "walkthrough.ipynb"]
    code = [cell.source for cell in nb.cells[1:] if cell.cell_type == "code"]
    blocks = manual.fenced_blocks(manual.WALKTHROUGH.read_text(), "python")
    assert code == [block.rstrip("\n") for block in blocks]
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert prose.count("```python excerpt") == build.WALKTHROUGH.read_text().count(
        "```python excerpt"
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_links_lead_to_files_that_exist(name: str) -> None:
    nb = build.built()[build.HERE / name]
    targets = [
        target.partition("#")[0]
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for target in build.LINK.findall(cell.source)
        if not target.startswith("#") and "://" not in target
    ]
    missing = [t for t in targets if not (build.HERE / t).is_file()]
    assert not missing, f"{name} links to what is not there from notebooks/: {missing}"


def test_the_walkthroughs_headings_have_the_ids_its_links_name() -> None:
    nb = build.built()[build.HERE / "walkthrough.ipynb"]
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    ids = re.findall(r'^#+ <a id="([^"]+)"></a>', prose, flags=re.M)
    assert len(set(ids)) == len(ids)
    assert set(ids) == manual.anchors(manual.WALKTHROUGH.read_text())
    linked = {target[1:] for target in build.LINK.findall(prose) if target.startswith("#")}
    assert linked and linked <= set(ids)


def test_links_are_moved_from_the_sources_folder_to_notebooks() -> None:
    markdown = "![a](img/a.png) [b](../README.md#x) [c](#4-bptt) [d](https://x.org/y)"
    assert build.relinked(markdown, build.WALKTHROUGH) == (
        "![a](../docs/img/a.png) [b](../README.md#x) [c](#4-bptt) [d](https://x.org/y)"
    )


def cut(markdown: str) -> list[tuple[str, str, bool]]:
    """The cells walkthrough_cells makes of markdown: type, source, source hidden."""
    return [
        (c.cell_type, c.source, c.metadata.get("jupyter", {}).get("source_hidden", False))
        for c in build.walkthrough_cells(markdown)
    ]


def test_only_python_blocks_become_code_and_a_folded_one_stays_folded() -> None:
    assert cut("a\n\n```python\nx = 1\n```\n\n```python excerpt\n```python\n```\nb\n") == [
        ("markdown", "a", False),
        ("code", "x = 1", False),
        ("markdown", "```python excerpt\n```python\n```\nb", False),
    ]
    fold = "<details><summary>s</summary>"
    folded = f"{fold}\n\n```sh\n</details>\n```\n\n```python\ny = 2\n```\n\n</details>\nc"
    assert cut(folded) == [
        ("markdown", f"{fold}\n\n```sh\n</details>\n```\n\n</details>", False),
        ("code", "y = 2", True),
        ("markdown", "c", False),  # the fold, empty after the code, is left out
    ]
    assert cut(f"{fold}\n```python\ny = 2\n```\nmore\n</details>\n") == [
        ("code", "y = 2", True),
        ("markdown", f"{fold}\nmore\n</details>", False),  # what is left stays folded
    ]
    with pytest.raises(ValueError, match="ends inside a block"):
        cut(f"{fold}\n```python\ny = 2\n```\n")


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_starts_with_the_install_cell(name: str) -> None:
    nb = build.built()[build.HERE / name]
    assert nb.cells[0].source == build.install_cell(build.repository())


def run_install_cell(
    monkeypatch: pytest.MonkeyPatch, cwd: Path, installed: bool, url: str | None = None
) -> list[list[str]]:
    """The install cell's code (for a repository at url) run in cwd, with the project
    installed or not; returns the commands it ran (recorded, not run)."""
    commands: list[list[str]] = []
    find_spec = importlib.util.find_spec  # the real one, which the patched one asks

    def recorded(command: list[str], **options: Any) -> subprocess.CompletedProcess:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", recorded)
    monkeypatch.setattr(
        "importlib.util.find_spec",
        lambda name, *a: find_spec(name, *a) if installed or name != "rnn_torch" else None,
    )
    monkeypatch.chdir(cwd)
    exec(build.install_cell(url), {"__name__": "notebook"})
    return commands


def test_the_install_cell_installs_only_where_the_project_is_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert run_install_cell(monkeypatch, build.HERE, installed=True) == []
    (command,) = run_install_cell(monkeypatch, build.HERE, installed=False)
    assert command == [
        sys.executable,
        *("-m", "pip", "install", "-q"),
        f"rnn-manual[torch] @ {build.ROOT.as_uri()}",
    ]
    with pytest.raises(RuntimeError, match="checkout of the project"):
        run_install_cell(monkeypatch, tmp_path, installed=False)
    url = "https://example.org/rnn-manual.git"
    (command,) = run_install_cell(monkeypatch, tmp_path, installed=False, url=url)
    assert command[-1] == f"rnn-manual[torch] @ git+{url}"


def test_the_walkthrough_notebook_runs() -> None:
    nb = executed(build.built()[build.HERE / "walkthrough.ipynb"])
    assert all(cell.execution_count for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("cell", STUBS)
def test_a_blank_exercise_notebook_runs_and_says_not_implemented(cell: str) -> None:
    nb = executed(build.built()[build.HERE / f"{cell}.ipynb"])
    diagnosis = printed(nb.cells[-1])
    assert "error: not implemented yet: 1. " in diagnosis, diagnosis
    assert diagnosis.rstrip().splitlines()[-1] == "NOT RUN: nothing could be judged", diagnosis


@pytest.mark.parametrize("cell", STUBS)
def test_an_exercise_notebook_filled_in_shows_every_gradient_right(cell: str) -> None:
    nb = executed(build.exercise_notebook(filled(STUBS[cell]), cell, STUBS[cell]))
    diagnosis = printed(nb.cells[-1])
    table = re.findall(r"^(\S+) +(ok|WRONG|PARTIAL|UNJUDGED) ", diagnosis, flags=re.M)
    assert len(table) >= 8 and {verdict for _, verdict in table} == {"ok"}, diagnosis
    last = diagnosis.rstrip().splitlines()[-1]
    assert last.startswith("OK: every gradient and the loss equal autograd's"), diagnosis


def test_the_notebooks_readme_names_each_and_its_links_lead_somewhere() -> None:
    readme = build.HERE / "README.md"
    assert manual.broken_links(readme) == []
    text = readme.read_text()
    assert all(f"`{name}`" in text for name in NAMES)
    assert "python -m notebooks" in text and "make notebooks" in text
