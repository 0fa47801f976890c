"""What a diagnosis found: a Report, as text for a person and as one JSON object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..compare import FLOAT64_BOUND


@dataclass
class Verdict:
    """One gradient (or the loss) against autograd over every probe it could be judged on."""

    ok: bool
    relative_error: float | None  # the largest normwise error over the probes; None: none
    first_bad_length: int | None  # the smallest T at which it is wrong; None: never
    depends_on: list[str]  # the factors whose value alone turns it right or wrong
    explained_by: list[str] = field(default_factory=list)  # catalogue entries it equals

    @property
    def wrong(self) -> bool:
        """Judged wrong on some probe (not ok can also mean: not judged on every probe)."""
        error = self.relative_error
        return error is not None and not error <= FLOAT64_BOUND

    def to_json(self) -> dict[str, Any]:
        error = self.relative_error
        return {
            "ok": self.ok,
            "relative_error": None if error is None or not math.isfinite(error) else error,
            "first_bad_length": self.first_bad_length,
            "depends_on": self.depends_on,
            "explained_by": self.explained_by,
        }


@dataclass
class Report:
    """A learner's loss_and_grads judged against autograd, localized and, where a known bug
    matches, named. `exit_code`: 0 all right, 1 anything wrong or not judged, 2 the file could
    not be run at all."""

    file: str  # the file (or function) diagnosed
    cell: str
    settings: str  # the probes' settings, in words
    probes: int
    runnable: bool  # False: nothing could be judged (exit 2)
    loss: Verdict
    gradients: dict[str, Verdict]  # every expected key: parameters, "x", "h0" ("c0")
    first_bad_distance: int | None = None
    wrong_gates: list[str] = field(default_factory=list)  # the gated cells' only
    likely_bugs: list[str] = field(default_factory=list)  # catalogue names
    findings: list[str] = field(default_factory=list)  # in words, one line each
    errors: list[str] = field(default_factory=list)  # what could not be judged, and why
    notes: list[str] = field(default_factory=list)  # what did not stop the judging
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        verdicts = [self.loss, *self.gradients.values()]
        return self.runnable and not self.errors and all(v.ok for v in verdicts)

    @property
    def exit_code(self) -> int:
        return 2 if not self.runnable else 0 if self.ok else 1

    def wrong(self) -> list[str]:
        """The keys judged wrong on some probe, the loss first."""
        verdicts = {"loss": self.loss, **self.gradients}
        return [name for name, v in verdicts.items() if v.wrong]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "cell": self.cell,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "settings": self.settings,
            "probes": self.probes,
            "bound": FLOAT64_BOUND,
            "loss": self.loss.to_json(),
            "gradients": {name: v.to_json() for name, v in self.gradients.items()},
            "first_bad_distance": self.first_bad_distance,
            "wrong_gates": self.wrong_gates,
            "likely_bugs": self.likely_bugs,
            "findings": self.findings,
            "errors": self.errors,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def table(self) -> list[str]:
        """One line per gradient: ok, largest relative error, first bad T, what it depends on."""
        head = (
            f"{'gradient':<10} {'verdict':<8} {'rel. error':>10}  {'wrong from T':>12}  depends on"
        )
        lines = [head]
        for name, v in {"loss": self.loss, **self.gradients}.items():
            label = name if name == "loss" else f"d{name}"
            error = v.relative_error
            shown = "-" if error is None else "nan" if not math.isfinite(error) else f"{error:.1e}"
            # PARTIAL: right where judged, but not judged on every probe
            judged = error is not None
            verdict = "ok" if v.ok else "WRONG" if v.wrong else "PARTIAL" if judged else "UNJUDGED"
            length = "-" if v.first_bad_length is None else str(v.first_bad_length)
            depends = ", ".join(v.depends_on) or "-"
            lines.append(f"{label:<10} {verdict:<8} {shown:>10}  {length:>12}  {depends}")
        return lines

    def text(self) -> str:
        """The report for a person: what was run, the table, findings, errors, the verdict."""
        lines = [
            f"diagnose {self.file}: {self.settings} ({self.probes} probes, {self.seconds:.1f} s)"
        ]
        if self.runnable:
            lines.append(
                f"every gradient judged against PyTorch autograd, normwise relative error "
                f"<= {FLOAT64_BOUND:g}"
            )
            lines += self.table()
        lines += [f"- {line}" for line in self.findings]
        lines += [f"error: {line}" for line in self.errors]
        lines += [f"note: {line}" for line in self.notes]
        if self.exit_code == 0:
            lines.append("OK: every gradient and the loss equal autograd's")
        elif self.exit_code == 2:
            lines.append("NOT RUN: nothing could be judged")
        else:
            verdicts = {"loss": self.loss, **self.gradients}
            names = {n: n if n == "loss" else f"d{n}" for n in verdicts}
            wrong = ", ".join(names[n] for n in self.wrong())
            unjudged = ", ".join(names[n] for n, v in verdicts.items() if not v.ok and not v.wrong)
            verdict = [f"MISMATCH in {wrong}"] if wrong else []
            verdict += [f"NOT JUDGED on every probe: {unjudged}"] if unjudged else []
            lines.append("; ".join(verdict) or "NOT FULLY JUDGED: see the errors")
        return "\n".join(lines)
