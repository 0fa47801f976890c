"""The diagnosis of a file written in a course's style (styles.py): each of the style's
units the file defines (a backward function and its forward) judged as a diagnosis of its
own, on the probes of its objective, and reported in the learner's names."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from rnn_manual.core.gradcheck import relative_error

from ..compare import FLOAT64_BOUND
from . import layers
from .answers import Answer
from .detect import Found
from .diagnosis import Settings, bug_changes, probes_for, report_on, value
from .probes import UPSTREAM, Probe, Result
from .report import Judged, Report, StyleReport
from .sandbox import run_file
from .styles import MINCHAR_CLIP, MINCHAR_NAMES, TITLES, UNITS, Unit

#: Wrong loops a course itself spread, by (style, function): the catalogue entries the loop
#: equals (named, or the closest pair) and what to tell a learner who wrote it.
SPREAD = {
    ("dls", "lstm_backward"): (
        {"lstm: recurrent term dh_next dropped", "lstm: cell path dropped"},
        "this is the loop behind the notebook's own expected output for lstm_backward, which "
        "carries neither da_prevt nor dc_prevt from step t to step t - 1; that output is not "
        "the true gradient, and learners with the true loop were told they were wrong: pass "
        "da[:, :, t] + da_prevt and dc_prevt to lstm_cell_backward, and keep both it returns",
    ),
}


def spread_loop(unit: Unit, report: Report) -> list[str]:
    """The finding for a loop the course itself spread, where the report points at it."""
    known = SPREAD.get((unit.style, unit.name))
    if known is None:
        return []
    closest = (report.closest_bug or {}).get("names", [])
    return [known[1]] if known[0] in (set(report.likely_bugs), set(closest)) else []


def settings_for(unit: Unit, seed: int) -> Settings:
    """The probes of a unit: upstream gradients on every hidden state for CS231n's and the
    notebook's backward functions (with biases, tanh: theirs always have them), min-char-rnn's
    one-hot characters and cross-entropy for lossFun."""
    if unit.objective == UPSTREAM:
        return Settings(unit.cell, (UPSTREAM,), (True,), ("tanh",), seed, c0=unit.c0)
    return Settings(unit.cell, (unit.objective,), (True,), ("tanh",), seed, onehot=True)


def clip_of(
    probes: list[Probe], truths: list[Result], answers: list[Answer | None]
) -> tuple[list[Result], str | None]:
    """min-char-rnn clips the gradients lossFun returns to [-5, 5]. Where some gradient whose
    true value passes 5 comes back equal to autograd's clipped so, that is the clip, not a
    wrong derivative: the truths to judge every gradient by are then the clipped ones, and
    a note says so (they equal autograd's own where no true gradient passes 5)."""
    bound = MINCHAR_CLIP
    clipped = [(v, {k: np.clip(g, -bound, bound) for k, g in grads.items()}) for v, grads in truths]
    shown = []  # (the true value past the clip, the key), where the learner's is clipped
    for answer, (_, grads), (_, cut) in zip(answers, truths, clipped, strict=True):
        for key, g in grads.items():
            mine = value(answer, key)
            size = float(np.abs(g).max())
            if size > bound and mine is not None and mine.shape == g.shape:
                if relative_error(mine, cut[key]) <= FLOAT64_BOUND:
                    shown.append((size, key))
    if not shown:
        return truths, None
    size, key = max(shown)
    note = (
        f"lossFun clips the gradients it returns to [-{bound:g}, {bound:g}] (np.clip(dparam, "
        f"-5, 5, out=dparam)): that is gradient clipping, not a wrong derivative. Every "
        f"gradient is judged against autograd's clipped the same way, which is autograd's own "
        f"where no true gradient passes {bound:g}; the clip shows where the true "
        f"{MINCHAR_NAMES[key]} reaches {size:.1f}"
    )
    return clipped, note


def within(answers: list[Answer | None], bound: float) -> bool:
    """Every finite value of every gradient given lies in [-bound, bound] (a NaN is the
    stability probe's, judged apart)."""
    given = [g for a in answers if a is not None for g in a.grads.values()]
    return bool(given) and all(np.all(np.abs(g[np.isfinite(g)]) <= bound) for g in given)


def judge_unit(
    path: Path, unit: Unit, seed: int, timeout: float, hold_out: tuple[str, ...]
) -> Report:
    """An RNN's or LSTM's unit on the probes of its objective, localized and named."""
    settings = settings_for(unit, seed)
    probes, truths = probes_for(settings)
    meanwhile = partial(bug_changes, settings)  # the catalogue, while the child runs
    run = run_file(path, probes, timeout, meanwhile=meanwhile, unit=unit)
    note, clip = None, None
    if settings.onehot:
        truths, note = clip_of(probes, truths, run.answers)
        # a clipping file's bug is the catalogue's bug clipped, whether or not its right
        # gradients reach the clip: compare the catalogue's clipped where every value the
        # file returned lies within the clip
        clip = MINCHAR_CLIP if note or within(run.answers, MINCHAR_CLIP) else None
    report = report_on(settings, str(path), probes, truths, run, hold_out, clip, unit.name)
    report.notes += [note] if note else []
    return report


def probes_of(unit: Unit, seed: int) -> tuple[list[Probe], list[Result]]:
    """A unit's probes and autograd's answers: a layer's own (layers.py), or those of its
    settings (settings_for)."""
    if unit.cell == "layer":
        return layers.probes_for(unit.objective, seed)
    return probes_for(settings_for(unit, seed))


def judge_layer(
    path: Path, unit: Unit, seed: int, timeout: float, hold_out: tuple[str, ...]
) -> Report:
    """One of CS231n's layers around the RNN (layers.py), on its own probes."""
    probes, truths = probes_of(unit, seed)
    run = run_file(path, probes, timeout, unit=unit)
    return layers.report_on(unit.objective, str(path), probes, truths, run, unit.name)


def diagnose_style(
    path: Path, found: Found, seed: int, timeout: float, hold_out: tuple[str, ...]
) -> StyleReport:
    """Every unit of the file's style whose functions it defines, judged in a child process
    of its own (at most `timeout` seconds each)."""
    start = time.perf_counter()
    defined = set(found.functions)
    judged, unjudged = [], []
    for unit in UNITS[found.style]:
        present = [f for f in dict.fromkeys(unit.functions) if f in defined]
        if len(present) < len(set(unit.functions)):
            if present:
                missing = next(f for f in unit.functions if f not in defined)
                unjudged.append(f"{present[0]}: judged only together with {missing}")
            continue
        report = (judge_layer if unit.cell == "layer" else judge_unit)(
            path, unit, seed, timeout, hold_out
        )
        report.names = dict(unit.names)
        report.findings += spread_loop(unit, report)
        called = " or ".join(dict.fromkeys(unit.functions))  # not loss_and_grads: theirs
        report.errors = [e.replace("loss_and_grads ", f"{called} ", 1) for e in report.errors]
        judged.append(Judged(unit.functions, report))
    for name in found.other_signature:
        unjudged.append(f"{name}: defined with other parameters than the course's")
    units = {f for unit in UNITS[found.style] for f in unit.functions}
    others = [f for f in found.functions if f not in units]
    unjudged += [f"{name}: this version does not judge it yet" for name in others]
    absent = [f for unit in UNITS[found.style] for f in dict.fromkeys(unit.functions)]
    absent = [f for f in absent if f not in defined and f not in found.other_signature]
    title = TITLES[found.style]
    style_report = StyleReport(str(path), found.style, title, judged, absent, unjudged)
    style_report.seconds = time.perf_counter() - start
    return style_report
