"""The manual: README.md, the front page, and the pages under docs/ that it links to.

The tests that rerun what the manual shows (its Python blocks, its command runs, its links)
find the pages here, so which pages there are is stated once.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The walkthrough: one story whose Python blocks run in order in one namespace
#: (tests/test_walkthrough.py); the other pages' blocks run each on its own.
WALKTHROUGH = DOCS / "walkthrough.md"


def pages() -> list[Path]:
    """Every page of the manual: the README, then docs/*.md by name."""
    return [README, *sorted(DOCS.glob("*.md"))]


def reference_pages() -> list[Path]:
    """The pages whose blocks stand alone: every page but the walkthrough."""
    return [page for page in pages() if page != WALKTHROUGH]


def fenced_blocks(markdown: str, language: str) -> list[str]:
    """The blocks fenced as ```language (with nothing after it on the fence line)."""
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, flags=re.M | re.S)


def blocks(language: str) -> list[tuple[Path, str]]:
    """Every ```language block of the reference pages, with its page, in page order."""
    return [
        (page, block)
        for page in reference_pages()
        for block in fenced_blocks(page.read_text(), language)
    ]


def name(page: Path) -> str:
    """A page as the project's root sees it: README.md, docs/suite.md."""
    return page.relative_to(ROOT).as_posix()


def prose(markdown: str) -> str:
    """Markdown without its fenced blocks (indented ones too), where `# ...` is a comment."""
    return re.sub(r"^[ \t]*```.*?^[ \t]*```", "", markdown, flags=re.M | re.S)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The ids of a page's headings; a repeated heading's second id ends in -1, as GitHub's."""
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(markdown), flags=re.M):
        anchor = github_anchor(heading)
        repeat = 0
        while (anchor if repeat == 0 else f"{anchor}-{repeat}") in found:
            repeat += 1
        found.add(anchor if repeat == 0 else f"{anchor}-{repeat}")
    return found


def links(markdown: str) -> list[str]:
    """Every relative link target of a page's prose, as written: `suite.md#what-it-proves`,
    `#train`; links to the web (`https:`, `mailto:`) left out."""
    targets = re.findall(r"\]\(([^)\s]+)\)", prose(markdown))
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def broken_links(page: Path, markdown: str | None = None) -> list[str]:
    """The links of a page (or of `markdown` read as if it were there) that lead nowhere: no
    such file, or no heading of that anchor in it."""
    broken = []
    for target in links(page.read_text() if markdown is None else markdown):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text())):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken
