"""The notebooks, built from their sources: docs/walkthrough.md and exercises/{rnn,lstm,gru}.py.

Each notebook is made from its source alone, so it is never a second copy kept by hand:
`python -m notebooks` writes them all (`--check`: says which differ from their source, and
exits 1), and tests/test_notebooks.py fails when a committed one differs from what this
module makes of the source now. They are written without outputs, with cell ids from the
cells' positions, so that the same source gives the same file byte for byte.

Every notebook starts with INSTALL, the cell that installs the project where the notebook is
opened (nothing where it is installed already). Then:

- the walkthrough: its Markdown, cut at each ```python block (the blocks that
  tests/test_walkthrough.py runs, top to bottom in one namespace), which become the code
  cells; everything else stays Markdown, as the page shows it: the ```python excerpt blocks
  (quotes of reference.py, not run), the ```sh command lines and their output, the folded
  <details> blocks. Links relative to docs/ are rewritten relative to notebooks/;
- an exercise: the stub's docstring as Markdown (its first line the title), the rest of the
  file as one code cell, and last the diagnosis of that cell's loss_and_grads (DIAGNOSIS),
  which on a blank stub says "not implemented yet" for the first TODO.
"""

from __future__ import annotations

import ast
import importlib.metadata
import posixpath
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "notebooks"
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"
EXERCISES = {cell: ROOT / "exercises" / f"{cell}.py" for cell in ("rnn", "lstm", "gru")}

#: The fence of a block that runs: ```python with nothing after it, to the next ``` line (the
#: rule of tests/test_walkthrough.py's fenced_blocks; ```python excerpt is not one).
PYTHON_FENCE = "```python"
#: The fence that opens any other block, which its own fence closes.
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: A folded block with nothing left in it, once a code cell has been cut out of it.
EMPTY_FOLD = re.compile(r"^<details>.*\n(\s*\n)*</details>\n?", flags=re.M)
#: A heading: its level's hashes and its text.
HEADING = re.compile(r"^(#{1,6}) (.+)$")
#: A Markdown link or image target: ](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")

KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}

INSTALL = """\
# Installs this project where the notebook is opened, unless it is installed already: from
# the checkout the notebook is in, or else (Colab) from REPOSITORY. Run it first.
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

REPOSITORY = {repository}  # [project.urls] Repository in pyproject.toml
if importlib.util.find_spec("rnn_torch") is None:
    here = Path.cwd().resolve()
    checkout = next((d for d in (here, *here.parents) if (d / "rnn_torch").is_dir()), None)
    if checkout is None and REPOSITORY is None:
        raise RuntimeError("open this notebook in a checkout of the project (no public URL)")
    source = checkout.as_uri() if checkout else f"git+{{REPOSITORY}}"
    pip = [sys.executable, "-m", "pip", "install", "-q", f"rnn-manual[torch] @ {{source}}"]
    subprocess.run(pip, check=True)
    importlib.invalidate_caches()
"""

DIAGNOSIS = """\
# The diagnosis of loss_and_grads above, as the command line gives it for the file:
#     {command}
# Run this cell again after each TODO you replace.
from rnn_torch.diagnose import diagnose

print(diagnose(loss_and_grads, "{cell}").text())
"""

DIAGNOSIS_INTRO = """\
## Check it

The next cell judges the `loss_and_grads` above against PyTorch autograd on random networks
and prints the table of every gradient: right or wrong, the largest relative error, from
which sequence length it goes wrong, what it depends on, and the known bug it equals. While
TODOs are left, it says which one comes next ("not implemented yet").
"""


def repository() -> str | None:
    """The project's public git URL: [project.urls] Repository in pyproject.toml, as the
    installed project's metadata holds it (None while it names none)."""
    for entry in importlib.metadata.metadata("rnn-manual").get_all("Project-URL") or []:
        label, _, url = entry.partition(", ")
        if label == "Repository":
            return url
    return None


def install_cell(url: str | None) -> str:
    """INSTALL, to install from url where there is no checkout (None: there is none)."""
    return INSTALL.format(repository="None" if url is None else f'"{url}"').rstrip("\n")


def notebook(cells: list[NotebookNode]) -> NotebookNode:
    """A notebook of INSTALL and then cells, ids from positions, valid nbformat 4.5."""
    install = new_code_cell(install_cell(repository()))
    nb = new_notebook(cells=[install, *cells], metadata=KERNEL)
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    nbformat.validate(nb)
    return nb


def relinked(markdown: str, source: Path) -> str:
    """markdown's relative link targets, written relative to source's folder, rewritten
    relative to notebooks/ (in-page #anchors and URLs unchanged)."""

    def move(m: re.Match[str]) -> str:
        target = m.group(1)
        if target.startswith("#") or re.match(r"[a-z][a-z0-9+.-]*:", target):
            return m.group(0)
        path, hash_, anchor = target.partition("#")
        folder = source.parent.relative_to(ROOT).as_posix()
        moved = posixpath.relpath(posixpath.join(folder, path), HERE.relative_to(ROOT).as_posix())
        return f"]({moved}{hash_}{anchor})"

    return LINK.sub(move, markdown)


def github_anchor(heading: str, taken: set[str]) -> str:
    """The id GitHub gives a heading, which the page's #links name: lower case, punctuation
    dropped, spaces to hyphens; a repeated one's second id ends in -1 (added to taken)."""
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    repeat = 0
    while (anchor if repeat == 0 else f"{anchor}-{repeat}") in taken:
        repeat += 1
    taken.add(anchor if repeat == 0 else f"{anchor}-{repeat}")
    return anchor if repeat == 0 else f"{anchor}-{repeat}"


def walkthrough_cells(markdown: str, source: Path = WALKTHROUGH) -> list[NotebookNode]:
    """The walkthrough's Markdown as cells: each ```python block a code cell, the text between
    them Markdown, each heading with the id GitHub gives it (the page's #links lead there in
    Jupyter too). A ```python block inside a folded <details> block (code that shows a
    derivation's answer) becomes a code cell with its source hidden, JupyterLab's fold: the
    <details> is closed before it and opened again after it, where anything is left in it."""
    cells: list[NotebookNode] = []
    text: list[str] = []  # the Markdown since the last code cell
    code: list[str] | None = None  # the lines of the ```python block being read
    fence = ""  # the fence of the other block being read (```sh, ```python excerpt, ...)
    folds: list[str] = []  # the opening lines of the <details> blocks open here
    anchors: set[str] = set()  # the headings' ids so far

    def markdown_cell() -> None:
        closed = "\n".join([*text, *(["</details>"] * len(folds))])
        kept = EMPTY_FOLD.sub("", closed).strip("\n")
        if kept.strip():
            cells.append(new_markdown_cell(relinked(kept, source)))

    for line in markdown.splitlines():
        if code is not None:
            if line == "```":
                hidden = {"jupyter": {"source_hidden": True}} if folds else {}
                cells.append(new_code_cell("\n".join(code).rstrip("\n"), metadata=hidden))
                code, text = None, list(folds)
            else:
                code.append(line)
        elif fence:
            fence = "" if line.strip() == fence else fence
            text.append(line)
        elif line == PYTHON_FENCE:
            markdown_cell()
            code = []
        else:
            opened = FENCE.match(line)
            fence = opened[1] if opened else ""
            folds += [line] if line.startswith("<details") and "</details>" not in line else []
            folds = folds[:-1] if line.strip() == "</details>" else folds
            if heading := HEADING.match(line):  # Jupyter names it otherwise: give it GitHub's id
                anchor = github_anchor(heading[2], anchors)
                line = f'{heading[1]} <a id="{anchor}"></a>{heading[2]}'
            text.append(line)
    if code is not None or fence or folds:
        raise ValueError(f"{source.name} ends inside a block: {code or fence or folds}")
    markdown_cell()
    return cells


def walkthrough_notebook(markdown: str, source: Path = WALKTHROUGH) -> NotebookNode:
    """The walkthrough as a notebook: INSTALL, then walkthrough_cells."""
    return notebook(walkthrough_cells(markdown, source))


def exercise_notebook(code: str, cell: str, source: Path) -> NotebookNode:
    """An exercise's file as a notebook: its docstring, its code, its diagnosis."""
    module = ast.parse(code)
    docstring = ast.get_docstring(module)
    first = module.body[0]
    if docstring is None or first.end_lineno is None:
        raise ValueError(f"{source.name} has no module docstring to open its notebook with")
    title, _, rest = docstring.partition("\n")
    lines = code.splitlines()[first.end_lineno :]
    command = f"python -m rnn_torch diagnose {source.relative_to(ROOT).as_posix()}"
    command += "" if cell == "rnn" else f" --cell {cell}"  # as exercises/README.md gives it
    diagnosis = DIAGNOSIS.format(command=command, cell=cell)
    return notebook(
        [
            new_markdown_cell(f"# {title}\n{rest}".rstrip("\n")),
            new_code_cell("\n".join(lines).strip("\n")),
            new_markdown_cell(DIAGNOSIS_INTRO.rstrip("\n")),
            new_code_cell(diagnosis.rstrip("\n")),
        ]
    )


def built() -> dict[Path, NotebookNode]:
    """Every notebook, by the path it is committed at, made from its source as it is now."""
    notebooks = {HERE / "walkthrough.ipynb": walkthrough_notebook(WALKTHROUGH.read_text())}
    for cell, stub in EXERCISES.items():
        notebooks[HERE / f"{cell}.ipynb"] = exercise_notebook(stub.read_text(), cell, stub)
    return notebooks


def text(nb: NotebookNode) -> str:
    """A notebook as its file holds it."""
    return nbformat.writes(nb) + "\n"


def stale() -> list[Path]:
    """The notebooks whose file is not what their source makes now (or is missing)."""
    return [
        path
        for path, nb in built().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text(nb)
    ]


def write() -> list[Path]:
    """Writes every notebook whose file differs from its source's; returns those written."""
    written = []
    for path, nb in built().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text(nb):
            path.write_text(text(nb), encoding="utf-8")
            written.append(path)
    return written
