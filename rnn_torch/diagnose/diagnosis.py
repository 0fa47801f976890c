"""The diagnosis: run a learner's loss_and_grads on the probes, judge every answer against
autograd, localize what is wrong, and name the known bug it equals, if any.

Judging. A gradient (or the loss) is right on a probe only when it was compared with
autograd's element for element, at its exact shape (checked in the parent, by
answers.answer, which makes every Answer: the child's own checks run beside the learner's
code, which can replace them), and its normwise
relative error, computed so that it cannot overflow, is finite and within
rnn_torch.compare.FLOAT64_BOUND. It is right (ok) when it is right on every probe, the
localization probes included: a probe whose answer is missing, of the wrong shape, NaN or
inf leaves it not ok, never skipped.

Localizing, from the probes (probes.py), each differing from its setting's base probe in
one factor:
- first_bad_length: the smallest T at which a gradient is wrong (the base and the length
  probes);
- depends_on: the factors (loss, bias, activation, batch, initial_state) for which two
  probes differing in that factor alone disagree on whether the gradient is right;
- first_bad_distance: with the loss on one step s only, dL/dx_t holds exactly what travels
  back from s to t, so the smallest k = s - t at which the learner's dL/dx_t differs from
  autograd's is the first distance the backward path gets wrong (k = 0: within one step;
  k >= 1: what carries the gradient from a step to the one before; k < 0: a gradient that
  flows forward in time). Each step's error is measured against the norm of the whole
  dL/dx, as FLOAT64_BOUND's normwise errors are, so that the steps whose true gradient is
  (nearly) zero cannot show a false error;
- for the gated cells, the gates whose parameters are wrong.

Naming: each catalogue bug (catalogue.py) that shows on the probes is run on them too. A
bug is named when every gradient it changes is wrong in the learner's answers and equal,
within the same bound, to the bug's on every probe; the gradients it changes are then said
to be explained by it. What no named bug explains gets a pointer to the derivative to look
at (from the localization), never a guess.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from rnn_manual.core.gradcheck import relative_error

from ..compare import FLOAT64_BOUND
from . import catalogue
from .answers import Answer, Run
from .catalogue import Bug
from .findings import findings
from .probes import (
    ACTIVATION_NAMES,
    CELL_NAMES,
    FACTORS,
    LOSS_NAMES,
    SIGMOID_LOSSES,
    UPSTREAM,
    Array,
    B,
    Probe,
    Result,
    make_probes,
    model,
)
from .report import Report, Verdict, share
from .sandbox import run_file, run_function

#: Seconds a learner's file may take for all the probes together.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Settings:
    """Which probes: the cell, and the losses, bias settings and activations to cover."""

    cell: str
    losses: tuple[str, ...] = SIGMOID_LOSSES
    biases: tuple[bool, ...] = (True, False)
    activations: tuple[str, ...] = ACTIVATION_NAMES
    seed: int = 0
    c0: bool = True  # the LSTM's c_{-1} goes in (False: the code judged starts at zero)
    onehot: bool = False  # min-char-rnn's probes: one-hot characters, B = 1

    def describe(self) -> str:
        if self.losses == (UPSTREAM,):
            return f"{self.cell}, an upstream gradient on every hidden state, seed {self.seed}"
        words = [self.cell, " and ".join(self.losses)]
        biases: dict[tuple[bool, ...], str] = {(True,): "biases", (False,): "no biases"}
        words.append(biases.get(self.biases, "with and without biases"))
        if self.cell == "rnn":
            words.append(", ".join(self.activations))
        return ", ".join(words) + f", seed {self.seed}"


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread: its ops here are tiny, and threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=8)
def probes_for(settings: Settings) -> tuple[list[Probe], list[Result]]:
    """The probes and autograd's answers (cached: callers must not change them)."""
    with one_thread():
        return make_probes(
            settings.cell,
            settings.losses,
            settings.biases,
            settings.activations,
            settings.seed,
            c0=settings.c0,
            onehot=settings.onehot,
        )


def planted_answers(
    settings: Settings, names: tuple[str, ...], first: int | None = None
) -> list[Result]:
    """The reference with the catalogue entries `names` planted, on the probes (the `first`
    ones only, if given), but for the one-step-loss ones."""
    probes = probes_for(settings)[0][:first]
    upstream = settings.losses == (UPSTREAM,)
    function = (catalogue.upstream_pass if upstream else catalogue.mutant)(*names)
    return [
        function(copy(p.params), p.x.copy(), p.y.copy(), **p.keywords())
        if p.factors["target"] == "all"
        else (math.nan, {})  # the one-step-loss probes judge the learner's dL/dx only
        for p in probes
    ]


@lru_cache(maxsize=8)
def bug_answers(settings: Settings) -> dict[str, list[Result]]:
    """Every catalogue bug of the cell on the probes (cached)."""
    upstream = settings.losses == (UPSTREAM,)
    return {
        bug.name: planted_answers(settings, (bug.name,))
        for bug in catalogue.for_cell(settings.cell)
        if not (upstream and bug.cell == "any")  # a bug of the loss: this objective has none
    }


@lru_cache(maxsize=256)
def pair_answers(settings: Settings, a: str, b: str) -> list[Result] | None:
    """Two catalogue bugs planted at once (cached); None where they edit the same statement."""
    try:
        return planted_answers(settings, (a, b))
    except catalogue.CatalogueError:
        return None


def copy(params: dict[str, Array]) -> dict[str, Array]:
    return {name: w.copy() for name, w in params.items()}


# ---- judging -------------------------------------------------------------------------


def value(result: Answer | Result | None, key: str) -> Array | None:
    """A key's value ("loss" or a gradient) in an answer, None where there is none."""
    if result is None:
        return None
    if isinstance(result, Answer):
        if result.status != "ok":
            return None
        if key == "loss":
            return None if result.loss is None else np.asarray(result.loss)
        return result.grads.get(key)
    loss, grads = result
    return np.asarray(loss) if key == "loss" else grads.get(key)


def errors_by_key(
    keys: list[str],
    answers: list[Answer | None] | list[Result],
    truths: list[Result],
    probes: list[Probe],
    one_step: bool = True,
    large: bool = False,
) -> dict[str, list[float | None]]:
    """key -> each probe's relative error from autograd: None where the key is expected but
    has no usable value, NaN where it is not expected (a bias without biases). The verdicts
    judge every probe. Naming a bug leaves out the one-step-loss probes (`one_step` False:
    the catalogue's answers are not computed there) and the probes with large logits
    (`large` False: they judge the stability of the loss, not what a bug is)."""
    table: dict[str, list[float | None]] = {}
    for key in keys:
        row: list[float | None] = []
        for answer, truth, probe in zip(answers, truths, probes, strict=True):
            mine, right = value(answer, key), value(truth, key)
            skipped = (probe.factors["target"] != "all" and not one_step) or (
                probe.factors["logits"] == "large" and not large
            )
            if right is None or skipped:
                row.append(math.nan)
            else:
                # never NaN (inf where either is not finite): NaN marks a key not expected
                row.append(None if mine is None else relative_error(mine, right))
        table[key] = row
    return table


def judged(row: list[float | None]) -> list[float]:
    """The errors of the probes where the key was expected and had a value."""
    return [e for e in row if e is not None and not math.isnan(e)]


def depends_on(
    probes: list[Probe], right: list[bool | None]
) -> dict[str, set[tuple[object, object]]]:
    """factor -> {(value where wrong, value where right)} over the probe pairs that differ in
    that factor alone."""
    found: dict[str, set[tuple[object, object]]] = defaultdict(set)
    for factor in FACTORS:
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for i, probe in enumerate(probes):
            if right[i] is not None:
                rest = tuple(v for f, v in sorted(probe.factors.items()) if f != factor)
                groups[rest].append(i)
        for members in groups.values():
            for i in members:
                for j in members:
                    if right[i] is False and right[j] is True:
                        found[factor].add((probes[i].factors[factor], probes[j].factors[factor]))
    return found


def first_bad_length(probes: list[Probe], right: list[bool | None]) -> int | None:
    lengths = [
        int(p.factors["length"])  # type: ignore[call-overload]
        for p, ok in zip(probes, right, strict=True)
        if ok is False
        and p.factors["target"] == "all"
        and p.factors["logits"] == "ordinary"
        and p.factors["batch"] == B
        and p.factors["initial_state"] == "random"
    ]
    return min(lengths, default=None)


def first_bad_distance(
    probes: list[Probe], answers: list[Answer | None], truths: list[Result]
) -> int | None:
    """The smallest k = s - t at which dL/dx_t is wrong, with the loss on step s only."""
    distances = []
    for probe, answer, truth in zip(probes, answers, truths, strict=True):
        s = probe.factors["target"]
        mine, right = value(answer, "x"), value(truth, "x")
        if not isinstance(s, int) or mine is None or right is None:
            continue
        steps = np.arange(len(right)).reshape(-1, *[1] * (right.ndim - 1))
        for t in range(len(right)):
            # step t's share of the whole dL/dx's normwise error (overflow-safe)
            if relative_error(np.where(steps == t, mine, right), right) > FLOAT64_BOUND:
                distances.append(s - t)
    return min(distances, default=None)


# ---- naming --------------------------------------------------------------------------


def changed_keys(
    keys: list[str], results: list[Result], truths: list[Result], probes: list[Probe]
) -> list[str]:
    """The keys a bug's results get wrong on some probe."""
    table = errors_by_key(keys, results, truths, probes, one_step=False)
    return [k for k in keys if any(e > FLOAT64_BOUND for e in judged(table[k]))]


@lru_cache(maxsize=8)
def bug_changes(settings: Settings) -> dict[str, list[str]]:
    """Every catalogue bug of the cell -> the keys ("loss" too) it changes on the probes."""
    probes, truths = probes_for(settings)
    keys = ["loss", *probes[0].expected()]
    return {
        name: changed_keys(keys, results, truths, probes)
        for name, results in bug_answers(settings).items()
    }


def equal_on_every_probe(
    key: str, answers: list[Answer | None], results: list[Result], probes: list[Probe]
) -> bool:
    """The learner's key equals the bug's wherever the learner's could be judged."""
    row = errors_by_key([key], answers, results, probes, one_step=False)[key]
    return bool(judged(row)) and all(e <= FLOAT64_BOUND for e in judged(row))


def likely_bugs(
    settings: Settings,
    probes: list[Probe],
    wrong: list[str],
    answers: list[Answer | None],
    hold_out: tuple[str, ...],
    clip: float | None = None,
) -> list[tuple[Bug, list[str]]]:
    """The catalogue bugs the learner's answers equal, each with the keys it changes; clip:
    the bound the learner's code clips its gradients to (min-char-rnn's), for the bugs' too."""
    named = []
    changes = bug_changes(settings)
    for name, results in bug_answers(settings).items():
        changed = changes[name]
        if name in hold_out:
            continue
        results = clipped(results, clip)
        if changed and set(changed) <= set(wrong):
            if all(equal_on_every_probe(k, answers, results, probes) for k in changed):
                named.append((catalogue.BY_NAME[name], changed))
    return named


def clipped(results: list[Result], clip: float | None) -> list[Result]:
    """Results with every gradient clipped to [-clip, clip] (min-char-rnn's), or as they are."""
    if clip is None:
        return results
    return [(v, {k: np.clip(g, -clip, clip) for k, g in gs.items()}) for v, gs in results]


Closest = tuple[tuple[Bug, ...], list[str], list[str]]  # bugs, keys equal, keys that differ


def near(
    bugs: tuple[Bug, ...],
    changed: list[str],
    results: list[Result],
    wrong: list[str],
    answers: list[Answer | None],
    probes: list[Probe],
) -> Closest:
    """How close the learner's answers are to what `bugs` give: the wrong keys equal to
    theirs on every probe, and the keys that still differ (wrong but not equal, or changed by
    them but right)."""
    equal = [k for k in wrong if k in changed and equal_on_every_probe(k, answers, results, probes)]
    differ = [k for k in dict.fromkeys([*wrong, *changed]) if k not in equal]
    return bugs, equal, differ


def closer(best: Closest | None, found: Closest, wrong: list[str]) -> Closest | None:
    """The nearer miss: equal in more wrong keys, at least half of them, fewer bugs first."""
    _, equal, differ = found
    if not equal or 2 * len(equal) < len(wrong) or not differ:
        return best
    if best is None or (len(equal), -len(found[0])) > (len(best[1]), -len(best[0])):
        return found
    return best


def known_bugs(
    settings: Settings,
    probes: list[Probe],
    wrong: list[str],
    answers: list[Answer | None],
    hold_out: tuple[str, ...],
    clip: float | None = None,
) -> tuple[list[tuple[Bug, Bug]], Closest | None]:
    """Where no single catalogue bug explains every wrong key: the pairs of entries that,
    planted together, change exactly the wrong keys and equal the learner's answers in each
    of them on every probe (two bugs at once); and, where there is none, the nearest miss of
    a single entry or a pair (equal in most wrong keys). Only entries that change nothing
    but wrong keys are paired."""
    _, truths = probes_for(settings)
    keys = ["loss", *probes[0].expected()]
    changes = bug_changes(settings)
    best: Closest | None = None
    for name, results in bug_answers(settings).items():
        if name not in hold_out and changes[name]:
            bug = catalogue.BY_NAME[name]
            found = near((bug,), changes[name], clipped(results, clip), wrong, answers, probes)
            best = closer(best, found, wrong)
    candidates = [
        name
        for name, changed in changes.items()
        if changed and set(changed) <= set(wrong) and name not in hold_out
    ]
    pairs = []
    for a, b in combinations(candidates, 2):
        try:  # first on the base probe alone, which rules out most pairs at once
            base = clipped(planted_answers(settings, (a, b), first=1), clip)
        except catalogue.CatalogueError:
            continue  # the two edit the same statement
        equal = [k for k in wrong if equal_on_every_probe(k, answers[:1], base, probes[:1])]
        if 2 * len(equal) < len(wrong):
            continue  # neither the pair nor a near miss
        given = pair_answers(settings, a, b)
        if given is None:
            continue
        results = clipped(given, clip)
        changed = changed_keys(keys, results, truths, probes)
        bugs = (catalogue.BY_NAME[a], catalogue.BY_NAME[b])
        found = near(bugs, changed, results, wrong, answers, probes)
        if set(changed) == set(wrong) and found[1] == wrong:
            pairs.append(bugs)
        best = closer(best, found, wrong)
    return pairs, None if pairs else best


# ---- the diagnosis -------------------------------------------------------------------


def grouped(messages: list[tuple[str, str, int]], total: int, limit: int = 5) -> list[str]:
    """One line per group of (group, message, probe): the group's first message and the
    share of probes it happened on."""
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for group, message, i in messages:
        groups[group].append((message, i))
    lines = []
    for members in list(groups.values())[:limit]:
        lines.append(f"{members[0][0]} ({share(len({i for _, i in members}), total)})")
    if len(groups) > limit:
        lines.append(f"and {len(groups) - limit} more different messages")
    return lines


def answer_errors(probes: list[Probe], answers: list[Answer | None]) -> tuple[list[str], list[str]]:
    """(errors, notes) from the answers: failed calls, and problems with single keys (a key
    missing, of the wrong shape or type, NaN; notes: extra keys, not float64)."""
    failures: list[tuple[str, str, int]] = []
    problems: list[tuple[str, str, int]] = []
    notes: list[tuple[str, str, int]] = []
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        if answer.status == "todo":
            message = f"not implemented yet: {answer.message}"
        elif answer.status == "exit":
            message = f"loss_and_grads {answer.message}"
        else:
            message = f"loss_and_grads {raised(answer.message)}"
        if answer.status != "ok":
            failures.append((answer.group or message, message, i))
        missing = [key for kind, key, _ in answer.problems if kind == "missing"]
        if missing:
            text = f"grads has no {', '.join(map(repr, missing))}"
            problems.append((text, text, i))
        for kind, key, text in answer.problems:
            if kind != "missing":
                target = notes if kind in ("extra", "dtype") else problems
                target.append((f"{kind} {key}", text, i))
        if answer.status == "ok" and probes[i].factors["logits"] == "ordinary":
            # (with large logits, a NaN is judged wrong: the finding on stability says why)
            bad = [k for k, g in answer.grads.items() if not np.all(np.isfinite(g))]
            if answer.loss is not None and not math.isfinite(answer.loss):
                bad.insert(0, "loss")
            for key in bad:
                what = "the loss is" if key == "loss" else f"grads[{key!r}] has"
                problems.append((f"nan {key}", f"{what} NaN or inf", i))
    total = len(probes)
    errors = grouped(failures, total) + grouped(problems, total, limit=20)
    return errors, grouped(notes, total)


def other_cell(cell: str, errors: list[str]) -> list[str]:
    """A note when the learner's code looks up another cell's parameter: the wrong --cell?"""
    for line in errors:
        found = re.search(r"KeyError: '(\w+)'", line)
        if found is None:
            continue
        name = found.group(1)
        for other in CELL_NAMES:
            if other != cell and name in model(other, True, None).params and name != "W_hy":
                return [f"the file looks up {name!r}, the {other}'s: is it for --cell {other}?"]
    return []


def raised(message: str) -> str:
    return message if message.startswith("returned") else f"raised {message}"


def learner_name(fn: object) -> str:
    if isinstance(fn, (str, os.PathLike)):
        return str(fn)
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def diagnose(
    fn: str | os.PathLike[str] | Callable[..., object],
    cell: str = "rnn",
    *,
    activation: str | None = None,
    loss: str = "both",
    bias: bool | None = None,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    hold_out: tuple[str, ...] = (),
) -> Report:
    """Judge, localize and name the bugs of a learner's loss_and_grads.

    fn: a path to a Python file that defines loss_and_grads (run in a child process, for at
    most `timeout` seconds), or the function itself (called in this process). cell: "rnn",
    "lstm" or "gru". activation: the RNN's one activation, or None for all three. loss:
    "mse", "bce", "ce" (a softmax output) or "both" (mse and bce).
    bias: True or False, or None for both. seed: the networks and
    data. hold_out: catalogue names not to name (for measuring the localization alone).
    Raises ValueError for settings that make no sense (an activation for a gated cell).
    """
    start = time.perf_counter()
    if cell not in CELL_NAMES:
        raise ValueError(f"cell must be one of {', '.join(CELL_NAMES)}, got {cell!r}")
    if activation is not None and cell != "rnn":
        raise ValueError(f"an activation is for the rnn only; the {cell} has its own")
    if activation is not None and activation not in ACTIVATION_NAMES:
        raise ValueError(
            f"activation must be one of {', '.join(ACTIVATION_NAMES)}, got {activation!r}"
        )
    if loss not in (*LOSS_NAMES, "both"):
        raise ValueError(f"loss must be mse, bce, ce or both, got {loss!r}")
    settings = Settings(
        cell,
        SIGMOID_LOSSES if loss == "both" else (loss,),
        (True, False) if bias is None else (bool(bias),),
        ACTIVATION_NAMES if activation is None else (activation,),
        seed,
    )
    probes, truths = probes_for(settings)
    if callable(fn):
        run = run_function(fn, probes)
    else:
        run = run_file(Path(fn), probes, timeout, meanwhile=lambda: bug_changes(settings))
    report = report_on(settings, learner_name(fn), probes, truths, run, hold_out)
    report.seconds = time.perf_counter() - start
    return report


def verdicts_on(
    cell: str,
    described: str,
    name: str,
    probes: list[Probe],
    truths: list[Result],
    run: Run,
    function: str = "loss_and_grads",
) -> tuple[Report, dict[str, dict[str, set[tuple[object, object]]]]]:
    """A run's report as far as every probe judges it: each key's verdict (its largest error,
    from which length, on which factor), the errors and notes, the inputs changed in place;
    and the factor pairs behind each key's dependences. The findings are the caller's."""
    keys = list(probes[0].expected())
    answers = run.answers
    errors, notes = answer_errors(probes, answers)
    errors = run.errors + errors
    notes += other_cell(cell, errors)
    if run.fatal:
        errors.insert(0, run.fatal)
    notes = run.notes + notes
    table = errors_by_key(["loss", *keys], answers, truths, probes, large=True)
    verdicts: dict[str, Verdict] = {}
    pairs_by_key = {}
    for key, row in table.items():
        right = [None if e is None or math.isnan(e) else e <= FLOAT64_BOUND for e in row]
        errors_ = judged(row)
        pairs = depends_on(probes, right)
        pairs_by_key[key] = pairs
        verdicts[key] = Verdict(
            ok=bool(errors_) and None not in row and all(e <= FLOAT64_BOUND for e in errors_),
            relative_error=max(errors_) if errors_ else None,
            first_bad_length=first_bad_length(probes, right),
            depends_on=[f for f in FACTORS if f in pairs],
        )
    runnable = run.fatal is None and any(judged(row) for row in table.values())
    every = sum(all(row[i] is not None for row in table.values()) for i in range(len(probes)))
    changed = Counter(c for answer in answers if answer is not None for c in answer.changed)
    report = Report(
        file=name,
        cell=cell,
        settings=described,
        probes=len(probes),
        runnable=runnable,
        loss=verdicts.pop("loss"),
        gradients=verdicts,
        errors=errors,
        notes=notes,
        changed=dict(changed),
        function=function,
        judged=every,
    )
    return report, pairs_by_key


def report_on(
    settings: Settings,
    name: str,
    probes: list[Probe],
    truths: list[Result],
    run: Run,
    hold_out: tuple[str, ...] = (),
    clip: float | None = None,
    function: str = "loss_and_grads",
) -> Report:
    """The report on a run of the learner's code over the probes (clip: see likely_bugs;
    function: the learner's function judged, as its code names it)."""
    cell = settings.cell
    keys = list(probes[0].expected())
    answers = run.answers
    report, pairs_by_key = verdicts_on(
        cell, settings.describe(), name, probes, truths, run, function
    )
    if not report.runnable:
        return report
    ordinary = errors_by_key(["loss", *keys], answers, truths, probes)
    wrong = [k for k in ["loss", *keys] if any(e > FLOAT64_BOUND for e in judged(ordinary[k]))]
    # wrong only where a naive loss overflows: numerically unstable, apart from the rest
    judged_all = {"loss": report.loss, **report.gradients}
    report.unstable = [k for k, v in judged_all.items() if v.wrong and k not in wrong]
    if "loss" not in wrong:  # the one-step probes need the right outputs p_t
        report.first_bad_distance = first_bad_distance(probes, answers, truths)
    named = likely_bugs(settings, probes, wrong, answers, hold_out, clip)
    both: list[tuple[Bug, Bug]] = []
    closest = None
    if not named and wrong:
        both, closest = known_bugs(settings, probes, wrong, answers, hold_out, clip)
    report.likely_bugs = [bug.name for bug, _ in named]
    report.likely_bugs += [bug.name for pair in both for bug in pair]
    for bug, keys_changed in named:
        for key in keys_changed:
            target = report.loss if key == "loss" else report.gradients[key]
            target.explained_by.append(bug.name)
    for pair in both:
        for key in wrong:
            target = report.loss if key == "loss" else report.gradients[key]
            target.explained_by += [bug.name for bug in pair]
    if closest is not None:
        bugs, equal, differ = closest
        report.closest_bug = {
            "names": [bug.name for bug in bugs],
            "equal_in": equal,
            "differs_in": differ,
        }
    report.findings = findings(
        report, wrong, keys, pairs_by_key, named, settings.losses, both, closest
    )
    return report
