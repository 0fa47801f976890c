"""The diagnosis measured on learners' bugs: `python tests/learners/measure.py`.

Per style, every variant of variants.py: flagged (exit 1), localized exactly (the keys
listed wrong are those the bug changes, found by comparing with the correct file on the
same probes, with nothing held out and with the names it got held out), named, the nearest
miss, and the seconds per file. Then HELD_OUT: bugs kept out of variants.py (and so out of
every test), written to see what the diagnosis does on bugs it was not shaped on.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import test_styles as ts  # noqa: E402  (after the path: the tests' own helpers)
from learners.variants import CS231N, DLS, HERE, MINCHAR, VARIANTS, names  # noqa: E402

from rnn_torch.diagnose import StyleReport, diagnose  # noqa: E402

#: (file, what the bug is, old text, new text): one edit each, none of them in variants.py.
HELD_OUT = [
    (
        CS231N,
        "db from dnext_h",
        "    db = np.sum(dtanh, axis=0)\n",
        "    db = np.sum(dnext_h, axis=0)\n",
    ),
    (
        CS231N,
        "the loop forward in time",
        "    for t in reversed(range(T)):\n        # the hidden state at t gets",
        "    for t in range(T):\n        # the hidden state at t gets",
    ),
    (
        CS231N,
        "dh0 the upstream, not carried",
        "    dh0 = dprev_h\n",
        "    dh0 = dh[:, 0, :].copy()\n",
    ),
    (CS231N, "o's sigmoid' dropped", "    dao = do * o * (1 - o)\n", "    dao = do * o\n"),
    (
        CS231N,
        "forward with Wh transposed",
        "    next_h = np.tanh(affine)\n",
        "    next_h = np.tanh(affine + prev_h.dot(Wh.T - Wh))\n",
    ),
    (
        DLS,
        "da_prev without the transpose",
        "    da_prev = np.dot(Waa.T, dtanh)\n",
        "    da_prev = np.dot(Waa, dtanh)\n",
    ),
    (DLS, "tanh' as 1 - cct", "* (1 - cct**2)\n", "* (1 - cct)\n"),
    (
        DLS,
        "concat swapped in the weights' gradients",
        "    concat = np.concatenate((a_prev, xt), axis=0)\n    dWf",
        "    concat = np.concatenate((xt, a_prev), axis=0)\n    dWf",
    ),
    (
        DLS,
        "the last step counted twice",
        "    da_prevt = np.zeros((n_a, m))\n\n    # last step first\n",
        "    da_prevt = da[:, :, -1].copy()\n\n    # last step first\n",
    ),
    (MINCHAR, "dbh from dh", "        dbh += dhraw\n", "        dbh += dh\n"),
    (
        MINCHAR,
        "the loss at the input's row",
        "-np.log(ps[t][targets[t], 0])",
        "-np.log(ps[t][inputs[t], 0])",
    ),
    (
        MINCHAR,
        "hprev ignored",
        "    hs[-1] = np.copy(hprev)\n",
        "    hs[-1] = np.zeros_like(hprev)\n",
    ),
]


def judged(file: str, text: str) -> tuple[StyleReport, float, dict[str, set[str]]]:
    """The diagnosis of `text` saved as `file`, its seconds, and what the bug changes."""
    path = Path(tempfile.mkdtemp()) / file
    path.write_text(text)
    start = time.perf_counter()
    report = diagnose(path)
    seconds = time.perf_counter() - start
    ts.variant = lambda f, b: text  # changed_against_correct plants this text
    truth = ts.changed_against_correct(file, "", Path(tempfile.mkdtemp()))
    assert isinstance(report, StyleReport)
    return report, seconds, truth


def main() -> None:
    planted = ts.variant
    for file in VARIANTS:
        rows = []
        for bug in names(file):
            report, seconds, truth = judged(file, planted(file, bug))
            named = sorted({n for j in report.judged for n in j.report.likely_bugs})
            held = diagnose(report.file, hold_out=tuple(named)) if named else report
            assert isinstance(held, StyleReport)
            near = any(j.report.closest_bug for j in report.judged)
            exact, exact_held = ts.localized(report) == truth, ts.localized(held) == truth
            rows.append((report.exit_code, exact, exact_held, bool(named), near, seconds, truth))
        values = [r for r in rows if r[6]]
        print(
            f"{file}: {len(rows)} variants, {len(values)} change values; flagged "
            f"{sum(r[0] == 1 for r in rows)}; exact {sum(r[1] for r in values)}/{len(values)}, "
            f"held out {sum(r[2] for r in values)}/{len(values)}; named "
            f"{sum(r[3] for r in values)}; nearest miss {sum(r[4] for r in values)}; seconds "
            f"median {statistics.median(r[5] for r in rows):.2f}, max {max(r[5] for r in rows):.2f}"
        )
    print("held out of every test:")
    for file, what, old, new in HELD_OUT:
        text = (HERE / file).read_text()
        assert text.count(old) == 1, what
        report, _, truth = judged(file, text.replace(old, new))
        exact = ts.localized(report) == truth
        print(f"  {file} :: {what}: exit {report.exit_code}, listed exactly: {exact}")
        for j in report.judged:
            for line in j.report.findings[-2:] if not j.report.ok else []:
                print(f"      {j.name} | {j.report.in_their_names(line)[:160]}")


if __name__ == "__main__":
    main()
