"""A diagnosis as Gradescope's results.json: one test per function judged, for course staff
who grade submissions with `python -m rnn_torch diagnose FILE --format gradescope`.

Each judged function (a course style's backward with its forward, or loss_and_grads) is
one test of max_score 1: score 1 when every gradient, the loss and the inputs it was given
are right, 0 otherwise; its output is that function's part of the report. A function the
file does not define is no test at all: set the assignment's total to the number of
functions asked for, and a missing one costs its point. A file that cannot be run at all
gets a score of 0 and the reason as the output.
"""

from __future__ import annotations

from typing import Any

from .report import Report, StyleReport


def results(report: Report | StyleReport) -> dict[str, Any]:
    """Gradescope's results.json for a report."""
    lines = report.text().splitlines()
    remarks = [line for line in lines if line.startswith(("not judged", "not defined"))]
    tests = [
        {
            "name": name,
            "score": 1.0 if unit.ok else 0.0,
            "max_score": 1.0,
            "status": "passed" if unit.ok else "failed",
            "output": "\n".join(unit.body()),
        }
        for name, unit in report.functions()
        if unit.runnable
    ]
    if not tests:  # nothing could be judged: say why, and score it
        return not_judged(report.text())
    return {"output": "\n".join([lines[0], *remarks]), "tests": tests}


def not_judged(why: str) -> dict[str, Any]:
    """results.json for a submission nothing of which could be judged: score 0, and why."""
    return {"score": 0.0, "output": why, "tests": []}
