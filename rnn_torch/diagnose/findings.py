"""The report's findings in words: what is wrong and what is right, how the wrong ones go
wrong (sequence length, dependences, distance back in time, gates), the known bugs they
equal, and, for the rest, which derivative to look at and where the walkthrough derives it.
"""

from __future__ import annotations

from collections import defaultdict

from . import catalogue
from .catalogue import Bug, walkthrough
from .probes import FACTORS, SIGMOID_LOSSES, UPSTREAM, B
from .report import Report

#: Each gate's parameters, for "which gate's parameters are wrong".
GATES: dict[str, dict[str, tuple[str, ...]]] = {
    "lstm": {q: (f"W_x{q}", f"W_h{q}", f"b_{q}") for q in "ifgo"},
    "gru": {
        "r": ("W_xr", "W_hr", "b_r"),
        "u": ("W_xu", "W_hu", "b_u"),
        "n": ("W_xn", "W_hn", "b_xn", "b_hn"),
    },
}


#: The initial states, whose gradients a backward pass returns after its loop.
STATES = ("h0", "c0")


def handed_back_only(wrong: list[str]) -> bool:
    """Only dx, dh0 or dc0 wrong: what the backward hands back to its inputs, while every
    weight's gradient and the loss are right."""
    return bool(wrong) and set(wrong) <= {"x", *STATES}


def label(key: str) -> str:
    return "the loss" if key == "loss" else f"d{key}"


def listing(keys: list[str], the: bool = True) -> str:
    """'the loss, dW_xh and dx' ('loss, dW_xh and dx' with the=False)."""
    names = [label(k) if the or k != "loss" else k for k in keys] or ["nothing"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def derivative(cell: str, key: str, losses: tuple[str, ...] = SIGMOID_LOSSES) -> str:
    """The derivative behind a key, and where it is derived: what to look at (for the loss
    and dL/dz, where the `losses` probed are)."""
    step3, step4 = catalogue.S3, catalogue.S4
    if key == "loss" and losses == (UPSTREAM,):
        return f"the forward function: {loss_derived(losses)}"
    if key == "loss":
        return (
            f"the loss L itself: the forward pass or the loss's formula ({walkthrough(2)}; "
            f"{loss_derived(losses)})"
        )
    if key == "W_hy":
        return f"dL/dW_hy = sum_t h_t^T dL/dz_t ({step3})"
    if key == "b_y":
        return f"dL/db_y = the sum of dL/dz_t over steps and the batch ({step3})"
    if cell == "rnn":
        return {
            "W_xh": f"dL/dW_xh = sum_t x_t^T dL/da_t ({step3})",
            "W_hh": f"dL/dW_hh = sum_t h_{{t-1}}^T dL/da_t ({step3})",
            "b_h": f"dL/db_h = the sum of dL/da_t over steps and the batch ({step3})",
            "x": f"dL/dx_t = dL/da_t W_xh^T ({step4})",
            "h0": f"dL/dh_{{-1}} = dL/da_0 W_hh^T, what is left after the loop ({step4})",
        }[key]
    where = catalogue.LSTM_WEIGHTS if cell == "lstm" else catalogue.GRU_BACKWARD
    if key in ("x", "h0", "c0"):
        what = {
            "x": "dL/dx_t, the sum over the gates of dL/da_q,t W_xq^T",
            "h0": "dL/dh_{-1}, the dh_next left after the loop",
            "c0": "dL/dc_{-1}, the dc_next left after the loop",
        }[key]
        carry = catalogue.LSTM_CARRY if cell == "lstm" else catalogue.GRU_CARRY
        return f"{what} ({carry})"
    gate = key[-1] if key != "b_xn" else "n"
    pre = "dL/dhn_t" if key in ("W_hn", "b_hn") else f"dL/da_{gate},t"
    if key.startswith("W_x"):
        return f"dL/d{key} = sum_t x_t^T {pre} ({where})"
    if key.startswith("W_h"):
        return f"dL/d{key} = sum_t h_{{t-1}}^T {pre} ({where})"
    return f"dL/d{key} = the sum of {pre} over steps and the batch ({where})"


#: What overflows where a loss is computed naively, and the stable way: by loss.
NAIVE = {
    "bce": (
        "logits z around +-45, where p = sigmoid(z) rounds to 1 or 0 and a naive log(1 - p) or "
        "log(p) is log 0",
        "compute bce from z: max(z, 0) - y z + log(1 + exp(-|z|))",
    ),
    "ce": (
        "logits around 800 (a small spread between the outputs), where a naive "
        "exp(z) / sum(exp(z)) is inf / inf",
        "subtract max(z) before exp, or compute log p as z - logsumexp(z)",
    ),
}


def instability(report: Report, losses: tuple[str, ...]) -> str:
    """The finding for keys wrong only where a naive loss overflows."""
    where = "; ".join(f"{NAIVE[loss][0]}: {NAIVE[loss][1]}" for loss in losses if loss in NAIVE)
    return (
        f"numerically unstable: {report.function} gives {listing(report.unstable)} wrong "
        f"only with {where} (the true values are finite there; "
        f"{walkthrough(3) if 'bce' in losses else walkthrough(15)})"
    )


def shown(factor: str, value: object) -> str:
    """A factor's value in words."""
    if factor == "logits":
        return f"{value} logits"
    if factor == "bias":
        return "biases" if value else "no biases"
    if factor == "batch":
        return f"B = {value}"
    if factor == "initial_state":
        return f"a {value} initial state"
    return str(value)


HINTS = {
    ("batch", B): "a missing batch mean or a product over the batch transposed",
    ("loss", "mse"): f"look at mse's dL/dz_t ({walkthrough(3)})",
    ("loss", "bce"): f"look at bce's dL/dz_t ({walkthrough(3)})",
    ("loss", "ce"): f"look at ce's dL/dz_t ({walkthrough(15)})",
    ("initial_state", "random"): "the terms that carry the initial state (is h0 used?)",
    ("initial_state", "zero"): "what the code does with h0=None (zeros)",
    ("bias", True): "the biases' terms",
    ("bias", False): "what the code does with params without b_* keys",
}


def dependence(factor: str, pairs: set[tuple[object, object]]) -> str:
    """'wrong with B = 4, right with B = 1: a missing batch mean or ...'."""
    bad = sorted({shown(factor, w) for w, _ in pairs})
    good = sorted({shown(factor, r) for _, r in pairs})
    text = f"wrong with {' and '.join(bad)}, right with {' and '.join(good)}"
    hints = [HINTS[(factor, w)] for w in {w for w, _ in pairs} if (factor, w) in HINTS]
    return f"{text}: {hints[0]}" if len(hints) == 1 else text


WITHIN_ONE_STEP = walkthrough(
    4, 'step 1 "Into the hidden state"', 'step 2 "Through the nonlinearity"'
)
PASS_IT_ON = walkthrough(4, 'step 4 "Pass it on"', 'step 1 "Into the hidden state"')


def distance_finding(cell: str, k: int, output_wrong: bool) -> str:
    """What the first bad distance says about the backward path."""
    head = "with the loss on one step s only,"
    if k < 0:
        return (
            f"{head} dL/dx_t is wrong at steps t after s (k = s - t = {k}): a gradient flows "
            "forward in time; look for a time index shifted by one"
        )
    if k == 0:
        if output_wrong:
            return f"{head} dL/dx_s is already wrong at s (k = 0), as is the output layer"
        within = {
            "rnn": "dL/dh_t from the output and dL/da_t through the activation "
            f"({WITHIN_ONE_STEP})",
            "lstm": "the gates' derivatives within one step "
            f"({catalogue.LSTM_CELL}, to {catalogue.LSTM_SLOPES})",
            "gru": f"the gates' derivatives within one step ({catalogue.GRU_BACKWARD})",
        }[cell]
        return f"{head} dL/dx_s is already wrong at s (k = 0): look within one step, at {within}"
    carry = {
        "rnn": f"dL/dh_{{t-1}} = dL/da_t W_hh^T ({PASS_IT_ON})",
        "lstm": "dh_next (through the gates' W_h*) and dc_next = dc * f_t "
        f"({catalogue.LSTM_CARRY})",
        "gru": "dh_next: the direct path u_t * dL/dh_t plus the gates' W_h* terms "
        f"({catalogue.GRU_CARRY})",
    }[cell]
    return (
        f"{head} dL/dx_t is right for k = s - t < {k} and wrong from k = {k}: what carries the "
        f"gradient from step t back to step t - 1 is wrong; look at {carry}"
    )


def findings(
    report: Report,
    wrong: list[str],
    keys: list[str],
    pairs_by_key: dict[str, dict[str, set[tuple[object, object]]]],
    named: list[tuple[Bug, list[str]]],
    losses: tuple[str, ...],
    both: list[tuple[Bug, Bug]] | None = None,
    closest: tuple[tuple[Bug, ...], list[str], list[str]] | None = None,
) -> list[str]:
    """The report's findings, in words, one line each: what is wrong and what is right, how
    the wrong ones go wrong, the bugs they equal, and where to look for the rest (for the
    loss and dL/dz: where the `losses` probed are derived). Sets report.wrong_gates on the
    way."""
    cell = report.cell
    verdicts = {"loss": report.loss, **report.gradients}
    never = [k for k in verdicts if verdicts[k].relative_error is None]
    right = [k for k in verdicts if k not in wrong and k not in never and k not in report.unstable]
    partly = " where judged" if any(not v.ok for k, v in verdicts.items() if k in right) else ""
    unjudged = f"; not judged at all: {listing(never)}" if never else ""
    if not wrong and report.unstable:
        also = f"; {listing(right)} on every probe" if right else ""
        line = f"right but where a naive loss overflows: {listing(report.unstable)}{also}"
        return [line + unjudged, instability(report, losses)]
    if not wrong:
        if partly or unjudged:
            return [f"right{partly}: {listing(right)}{unjudged}"]
        return [f"the loss and every gradient equal autograd's on all {report.probes} probes"]
    lines = [f"wrong: {listing(wrong)}" + (f"; right{partly}: {listing(right)}" if right else "")]
    lines[0] += unjudged
    if cell in GATES:
        lines += gate_findings(report, GATES[cell], wrong)
    lines += how_wrong(report, wrong, pairs_by_key)
    if report.unstable:
        lines.append(instability(report, losses))
    output_wrong = "W_hy" in wrong or "b_y" in wrong
    if handed_back_only(wrong):
        # the weights' gradients, all made from what is carried back, are right: the error
        # is in the line that hands dx (or dh0, dc0) back, not on the path through time
        verb = "is" if len(wrong) == 1 else "are"
        lines.append(
            f"only {listing(wrong)} {verb} wrong, and every weight's gradient is right: what "
            "is carried back through time is right, and the error is in the line that computes "
            f"{'it' if len(wrong) == 1 else 'each of them'}"
        )
    elif report.first_bad_distance is not None:
        lines.append(distance_finding(cell, report.first_bad_distance, output_wrong))
    elif "loss" in wrong:
        lines.append(
            "the distance back in time cannot be measured while the loss is wrong (the "
            "one-step probes need the right outputs)"
        )
    elif "x" in keys and "x" not in wrong and any(k in wrong for k in keys):
        # (min-char-rnn's lossFun returns no dL/dx, and its probes have no one-step losses)
        lines.append(
            "dL/dx_t is right at every distance from the step with the loss: the path back "
            "through time is right; the wrong terms are in the sums for the weights"
        )
    explained: set[str] = set()
    for bug, changed in named:
        explained |= set(changed)
        verb = "equals" if len(changed) == 1 else "equal"
        lines.append(
            f"your {listing(changed, the=False)} {verb} what you get when {bug.what}: likely bug "
            f"{bug.name!r}; the right term is derived in {bug.see}"
        )
    for a, b in both or []:
        explained |= set(wrong)
        lines.append(
            f"your {listing(wrong, the=False)} equal what you get with two known bugs at once: "
            f"when {a.what} ({a.name!r}; derived in {a.see}), and when {b.what} ({b.name!r}; "
            f"derived in {b.see})"
        )
    if closest is not None:
        bugs, equal, differ = closest
        verb = "differs" if len(differ) == 1 else "differ"
        what = " and ".join(f"{bug.name!r} ({bug.what})" for bug in bugs)
        one = len(bugs) == 1
        lines.append(
            f"closest known {'bug' if one else 'pair of bugs, at once'}: {what}: your "
            f"{listing(equal, the=False)} equal what {'it gives' if one else 'they give'}, but "
            f"{listing(differ, the=False)} still {verb}"
        )
    rest = [k for k in wrong if k not in explained]
    if rest:
        distance = report.first_bad_distance
        lines += where_to_look(cell, rest, wrong, distance, bool(named), losses, bool(closest))
    return lines


def gate_findings(report: Report, gates: dict[str, tuple[str, ...]], wrong: list[str]) -> list[str]:
    """Which gates' parameters are wrong, and which go wrong first."""
    bad = [g for g, names in gates.items() if any(n in wrong for n in names)]
    report.wrong_gates = bad
    if not bad:
        return ["every gate's parameters are right"]
    good = [g for g in gates if g not in bad]
    lines = [
        f"gates with wrong parameters: {', '.join(bad)}"
        + (f"; right: {', '.join(good)}" if good else "")
    ]
    first = {}
    for gate in bad:
        lengths = [report.gradients[n].first_bad_length for n in gates[gate] if n in wrong]
        first[gate] = min((n for n in lengths if n is not None), default=None)
    known = [n for n in first.values() if n is not None]
    if known:
        earliest = min(known)
        leaders = [g for g in bad if first[g] == earliest]
        if len(leaders) < len(bad):
            lines.append(
                f"at T = {earliest}, only the parameters of gate {', '.join(leaders)} are wrong; "
                "the others go wrong later, through the recurrence: look at "
                f"{' and '.join(f'dL/da_{g}' for g in leaders)} first"
            )
    return lines


def how_wrong(
    report: Report, wrong: list[str], pairs_by_key: dict[str, dict[str, set[tuple[object, object]]]]
) -> list[str]:
    """The sequence length each wrong key goes wrong from and what it depends on; the keys
    that go wrong alike on one line."""
    alike: dict[tuple[object, ...], list[str]] = defaultdict(list)
    verdicts = {"loss": report.loss, **report.gradients}
    for key in wrong:
        pairs = pairs_by_key[key]
        signature = tuple((f, tuple(sorted(map(str, pairs[f])))) for f in FACTORS if f in pairs)
        alike[(verdicts[key].first_bad_length, signature)].append(key)
    lines = []
    for (length, _), group in alike.items():
        parts = []
        if length == 1:
            parts.append("wrong from T = 1")
        elif length == 2:
            parts.append("right at T = 1, wrong from T = 2 (the recurrent path)")
        elif length is not None:
            parts.append(f"right for T < {length}, wrong from T = {length}")
        pairs = pairs_by_key[group[0]]
        parts += [dependence(f, pairs[f]) for f in FACTORS if f in pairs]
        if parts:
            lines.append(f"{listing(group)}: {'; '.join(parts)}")
    return lines


def loss_derived(losses: tuple[str, ...]) -> str:
    """Where the losses probed, and their dL/dz, are derived (each place once)."""
    return "; ".join(dict.fromkeys(catalogue.LOSS_DERIVED[loss] for loss in losses))


def where_to_look(
    cell: str,
    rest: list[str],
    wrong: list[str],
    distance: int | None,
    named: bool,
    losses: tuple[str, ...],
    near: bool = False,
) -> list[str]:
    """Pointers for the wrong keys no known bug explains: the shared term they are computed
    from when the localization points at one, else each key's own derivative."""
    head = (
        "not explained by the bugs named above"
        if named
        else "no known bug gives all of these"
        if near
        else "no known bug gives these"
    )
    if "loss" in rest:
        return [
            f"{head}; the loss value is wrong: fix the forward pass or the loss first, every "
            f"gradient is computed from them; look at {derivative(cell, 'loss', losses)}"
        ]
    if "W_hy" in rest and len(set(wrong) - {"W_hy", "b_y"}) > 0:
        return [
            f"{head}; the output layer's dW_hy is wrong with the rest while the loss is right: "
            "look first at dL/dz_t, which every gradient is computed from "
            f"({loss_derived(losses)})"
        ]
    if distance is not None and "x" in rest and not handed_back_only(wrong):
        return [
            f"{head}; look first at the path named above (the distance k = {distance}): every "
            "gradient below it is computed from it"
        ]
    return [f"{head}; look at {label(key)}: {derivative(cell, key)}" for key in rest]
