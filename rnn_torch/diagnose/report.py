"""What a diagnosis found: a Report, as text for a person and as one JSON object."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..compare import FLOAT64_BOUND
from .child import short


def share(n: int, total: int) -> str:
    """'on every probe', or 'on 9 of 10 probes'."""
    return "on every probe" if n == total else f"on {n} of {total} probes"


def printable(name: str) -> str:
    """A file name on one line: a newline or other control character in it is escaped, so
    that it cannot make a line of the report its own."""
    return short(name, 4096)


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
    likely_bugs: list[str] = field(default_factory=list)  # catalogue names (or a pair of them)
    # wrong only with logits where a naive loss overflows (probes.LARGE_LOGITS)
    unstable: list[str] = field(default_factory=list)
    # the function judged, as the learner's code names it
    function: str = "loss_and_grads"
    # the entry equal in most wrong gradients, where none is: name, equal_in, differs_in
    closest_bug: dict[str, Any] | None = None
    findings: list[str] = field(default_factory=list)  # in words, one line each
    errors: list[str] = field(default_factory=list)  # what could not be judged, and why
    notes: list[str] = field(default_factory=list)  # what did not stop the judging
    # "function: argument" -> on how many probes the code changed that array in place
    changed: dict[str, int] = field(default_factory=dict)
    # our key -> the learner's name for its gradient, for a course style ("W_xh": "dWx")
    names: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # the probes on which the loss and every expected gradient were compared with autograd's
    judged: int = 0

    @property
    def changed_inputs(self) -> list[str]:
        """'rnn_backward: dh (on 9 of 10 probes)': each array changed in place, in words."""
        return [f"{what} ({share(n, self.probes)})" for what, n in self.changed.items()]

    @property
    def ok(self) -> bool:
        verdicts = [self.loss, *self.gradients.values()]
        clean = not self.errors and not self.changed_inputs
        every = self.judged == self.probes
        return self.runnable and clean and every and all(v.ok for v in verdicts)

    def functions(self) -> list[tuple[str, Report]]:
        """The functions judged, each with its report: loss_and_grads, this one."""
        return [("loss_and_grads", self)]

    def label(self, key: str) -> str:
        """A gradient as the learner's code names it, ours beside it: 'dWx (dW_xh)'."""
        if key == "loss":
            return "loss"
        ours, theirs = f"d{key}", self.names.get(key)
        return ours if theirs in (None, ours) else f"{theirs} ({ours})"

    def in_their_names(self, text: str) -> str:
        """A finding with each of our gradient names (dW_xh, dh0) also in the learner's."""
        if not self.names:
            return text
        keys = "|".join(sorted(map(re.escape, self.names), key=len, reverse=True))
        # one pass, so that no label is put in twice; a quoted catalogue name stays as it is
        pattern = rf"grads\['({keys})'\]|'[^']*'|(?<![\w/])d({keys})\b"

        def named(m: re.Match[str]) -> str:
            key = m.group(1) or m.group(2)
            return m.group(0) if key is None else self.label(key)

        return re.sub(pattern, named, text)

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
            "judged_probes": self.judged,
            "bound": FLOAT64_BOUND,
            "loss": self.loss.to_json(),
            "gradients": {name: v.to_json() for name, v in self.gradients.items()},
            "first_bad_distance": self.first_bad_distance,
            "wrong_gates": self.wrong_gates,
            "likely_bugs": self.likely_bugs,
            "closest_bug": self.closest_bug,
            "unstable": self.unstable,
            "findings": self.findings,
            "errors": self.errors,
            "notes": self.notes,
            "changed_inputs": self.changed_inputs,
            "seconds": round(self.seconds, 3),
        }

    def table(self) -> list[str]:
        """One line per gradient: ok, largest relative error, first bad T, what it depends on."""
        width = max(10, *(len(self.label(k)) for k in self.gradients))
        head = "gradient" if not self.names else "gradient (ours)"
        lines = [
            f"{head:<{width}} {'verdict':<8} {'rel. error':>10}  {'wrong from T':>12}  depends on"
        ]
        for name, v in {"loss": self.loss, **self.gradients}.items():
            error = v.relative_error
            shown = "-" if error is None else "nan" if not math.isfinite(error) else f"{error:.1e}"
            # PARTIAL: right where judged, but not judged on every probe
            judged = error is not None
            verdict = "ok" if v.ok else "WRONG" if v.wrong else "PARTIAL" if judged else "UNJUDGED"
            length = "-" if v.first_bad_length is None else str(v.first_bad_length)
            depends = ", ".join(v.depends_on) or "-"
            label = self.label(name)
            lines.append(f"{label:<{width}} {verdict:<8} {shown:>10}  {length:>12}  {depends}")
        return lines

    def body(self) -> list[str]:
        """The report but its first line: the table, findings, errors, notes, the verdict."""
        lines = []
        if self.runnable:
            lines.append(
                f"every gradient judged against PyTorch autograd, normwise relative error "
                f"<= {FLOAT64_BOUND:g}"
            )
            lines += self.table()
        lines += [f"- {self.in_their_names(line)}" for line in self.findings]
        lines += [f"- changed in place: {line}" for line in self.changed_inputs]
        lines += [f"error: {self.in_their_names(line)}" for line in self.errors]
        lines += [f"note: {line}" for line in self.notes]
        if self.exit_code == 0:
            lines.append("OK: every gradient and the loss equal autograd's")
        elif self.exit_code == 2:
            lines.append("NOT RUN: nothing could be judged")
        else:
            verdicts = {"loss": self.loss, **self.gradients}
            names = {n: self.label(n) for n in verdicts}
            wrong = ", ".join(names[n] for n in self.wrong() if n not in self.unstable)
            unstable = ", ".join(names[n] for n in self.unstable)
            unjudged = ", ".join(names[n] for n, v in verdicts.items() if not v.ok and not v.wrong)
            verdict = [f"MISMATCH in {wrong}"] if wrong else []
            verdict += [f"NUMERICALLY UNSTABLE in {unstable}"] if unstable else []
            verdict += [f"NOT JUDGED on every probe: {unjudged}"] if unjudged else []
            verdict += ["INPUTS CHANGED in place"] if self.changed_inputs else []
            if self.judged < self.probes:
                verdict += [f"judged on {self.judged} of {self.probes} probes"]
            lines.append("; ".join(verdict) or "NOT FULLY JUDGED: see the errors")
        return lines

    def text(self) -> str:
        """The report for a person: what was run, the table, findings, errors, the verdict."""
        first = (
            f"diagnose {printable(self.file)}: {self.settings} "
            f"({self.probes} probes, {self.seconds:.1f} s)"
        )
        return "\n".join([first, *self.body()])


@dataclass
class Judged:
    """One function of a course style, judged with its forward: the unit's report."""

    functions: tuple[str, str]  # forward, backward
    report: Report

    @property
    def name(self) -> str:
        return self.functions[1]

    @property
    def title(self) -> str:
        """'rnn_backward (with rnn_forward)', or 'lossFun' where one function does both."""
        forward, backward = self.functions
        return backward if forward == backward else f"{backward} (with {forward})"


@dataclass
class StyleReport:
    """A file in a course's style: each of the style's functions it defines judged, the
    others listed as not defined. `exit_code` as Report's, over every function judged."""

    file: str
    style: str  # cs231n, dls, minchar
    title: str  # the course's file, in words
    judged: list[Judged]
    absent: list[str]  # the style's functions the file does not define
    unjudged: list[str]  # defined, but not judged, and why (one line each)
    seconds: float = 0.0

    @property
    def runnable(self) -> bool:
        return any(j.report.runnable for j in self.judged)

    def functions(self) -> list[tuple[str, Report]]:
        """The functions judged, each with its report: 'rnn_backward (with rnn_forward)'."""
        return [(j.title, j.report) for j in self.judged]

    @property
    def ok(self) -> bool:
        return self.runnable and all(j.report.ok for j in self.judged)

    @property
    def exit_code(self) -> int:
        return 2 if not self.runnable else 0 if self.ok else 1

    def text(self) -> str:
        names = ", ".join(j.name for j in self.judged) or "nothing"
        lines = [
            f"diagnose {printable(self.file)}: {self.style} style ({self.title}); judged: {names} "
            f"({self.seconds:.1f} s)"
        ]
        for j in self.judged:
            r = j.report
            state = "ok" if r.ok else "NOT RUN" if not r.runnable else "WRONG"
            lines.append("")
            lines.append(f"== {j.title}: {state}; {r.settings}, {r.probes} probes")
            lines += r.body()
        lines.append("")
        lines += [f"not judged: {line}" for line in self.unjudged]
        if self.absent:
            lines.append(f"not defined in the file (not judged): {', '.join(self.absent)}")
        if self.exit_code == 0:
            lines.append(f"OK: every function judged equals autograd ({names})")
        elif self.exit_code == 2:
            lines.append("NOT RUN: nothing could be judged")
        else:
            unrun = [j.name for j in self.judged if not j.report.runnable]
            wrong = [j.name for j in self.judged if j.report.runnable and not j.report.ok]
            summary = [f"MISMATCH in {', '.join(wrong)}"] if wrong else []
            summary += [f"NOT RUN: {', '.join(unrun)}"] if unrun else []
            lines.append("; ".join(summary))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        functions = {}
        for j in self.judged:
            r = j.report
            gradients = {
                r.names.get(key, f"d{key}"): {"ours": f"d{key}", **v.to_json()}
                for key, v in r.gradients.items()
            }
            functions[j.name] = {
                "with": j.functions[0],
                "ok": r.ok,
                "gradients": gradients,
                "outputs": {"loss": r.loss.to_json()},
                "report": r.to_json(),
            }
        findings = [  # beside each function's report: what no gradient shows
            {
                "kind": "changed in place",
                "function": what.split(": ", 1)[0],
                "array": what.split(": ", 1)[1],
                "probes": n,
            }
            for j in self.judged
            for what, n in j.report.changed.items()
        ]
        return {
            "file": self.file,
            "style": self.style,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "functions": functions,
            "not_defined": self.absent,
            "not_judged": self.unjudged,
            "findings": findings,
            "seconds": round(self.seconds, 3),
        }
