"""`python -m notebooks`: writes the notebooks anew from their sources (build.py).

`--check` writes nothing: it lists the notebooks that differ from their sources and exits 1
if there are any.
"""

from __future__ import annotations

import argparse
import sys

from .build import ROOT, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebooks", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    paths = stale() if args.check else write()
    for path in paths:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and paths else 0


if __name__ == "__main__":
    sys.exit(main())
