"""The mutation score per module, from the results `mutmut run` left in mutants/.

    python tests/mutation_score.py          # after `make mutate` (or `mutmut run`)

A mutant is killed when a test failed (or timed out) on it. Mutants listed as equivalent in
tests/mutants_equivalent.md (each with the reason no test can tell it from the original)
are left out of the score, which is killed / (mutants - equivalent). Prints one line per
module, then every survivor not listed as equivalent; exits 1 if the score of all modules
together is under TARGET, or if a listed equivalent mutant no longer exists.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "tests" / "mutants_equivalent.md"
TARGET = 0.95

#: mutmut's exit codes (mutmut/stats.py) that count as killed: a failing test, an internal
#: pytest error, a timeout (the mutant loops or crawls) or a crash.
KILLED = {1, 3, 24, -24, 36, 152, 255, -9, -11}
SURVIVED = {0}


def equivalent_names(text: str) -> set[str]:
    """The mutant names of the list: a line `- `name`: reason` per mutant."""
    return set(re.findall(r"^- `([^`]+)`", text, flags=re.MULTILINE))


def main() -> int:
    results: dict[str, dict[str, int | None]] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            results[str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]] = codes
    if not results:
        print("no mutation results in mutants/: run `make mutate` first", file=sys.stderr)
        return 2
    equivalent = equivalent_names(EQUIVALENT.read_text()) if EQUIVALENT.exists() else set()
    known = {name for codes in results.values() for name in codes}
    stale = sorted(equivalent - known)

    print(f"{'module':<34} {'mutants':>7} {'killed':>7} {'equiv':>6} {'other':>6} {'score':>7}")
    total: Counter[str] = Counter()
    survivors = []
    for module, codes in results.items():
        count: Counter[str] = Counter()
        for name, code in codes.items():
            count["mutants"] += 1
            if name in equivalent:
                count["equivalent"] += 1
            elif code in KILLED:
                count["killed"] += 1
            else:  # survived, no test reached it, or not run
                count["other"] += 1
                status = "survived" if code in SURVIVED else f"exit code {code}"
                survivors.append(f"  {name}: {status}")
        total += count
        print(line(module, count))
    print(line("all", total))
    if survivors:
        print("\nnot killed and not listed as equivalent (`mutmut show NAME` shows one):")
        print("\n".join(survivors))
    if stale:
        print(f"\nlisted as equivalent but no longer a mutant: {', '.join(stale)}")
    judged = total["mutants"] - total["equivalent"]
    return 0 if not stale and judged and total["killed"] / judged >= TARGET else 1


def line(module: str, count: Counter[str]) -> str:
    judged = count["mutants"] - count["equivalent"]
    score = f"{100 * count['killed'] / judged:.1f}%" if judged else "-"
    return (
        f"{module:<34} {count['mutants']:>7} {count['killed']:>7} {count['equivalent']:>6} "
        f"{count['other']:>6} {score:>7}"
    )


if __name__ == "__main__":
    sys.exit(main())
