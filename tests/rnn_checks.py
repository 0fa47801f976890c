"""The RNN's gradient check, for the tests that run it: test_properties.py on the RNN, and
test_mutations.py on deliberately broken copies of it; and what the RNN's properties share.

check_gradients raises AssertionError with the case's shapes and the failing gradient.
"""

from __future__ import annotations

from backends import on_backend
from hypothesis import assume
from strategies import Case, Problem, away_from_relu_kinks, make_problem

from rnn_manual import RNN
from rnn_torch.check import gradient_rows

#: relu pre-activations closer to 0 than this may land on different sides of the kink in the
#: two computations, whose forward passes differ by ~1e-16 (float64) or ~1e-7 (float32)
#: relative; such cases are skipped (assume), exact zeros excepted.
KINK_MARGIN = {"float64": 1e-9, "float32": 1e-5}

#: The worst normwise relative error seen per (property, dtype), printed at the end with -s.
WORST: dict[tuple[str, str], float] = {}


def record(prop: str, dtype: str, err: float) -> None:
    WORST[prop, dtype] = max(err, WORST.get((prop, dtype), 0.0))


def usable(case: Case, problem: Problem) -> bool:
    """False for relu cases too close to the kink to judge (hypothesis then skips them)."""
    return away_from_relu_kinks(problem, KINK_MARGIN[case.dtype])


def check_gradients(
    case: Case, rnn_class: type[RNN] = RNN, backend: tuple[str, str | None] = ("numpy", None)
) -> None:
    """Every manual gradient (params, x, h0) and the loss equal autograd's, within the bound
    of rnn_torch.compare (float64: 1e-10 normwise; float32: derived there). The manual model
    runs on `backend`; autograd on the same device."""
    problem = make_problem(case, rnn_class)
    assume(usable(case, problem))
    model = on_backend(problem.model, backend)
    rows = gradient_rows(
        model, problem.x, problem.target, case.objective, h0=problem.h0, fused=case.fused
    )
    for row in rows:
        if rnn_class is RNN:  # not test_mutations' broken copies
            record("gradients", case.dtype, row.relative)
        assert row.passed, (
            f"d{row.name} {row.shape}: normwise relative error {row.relative:.2e} "
            f"(allowed {row.limit:.1e}), max abs {row.max_abs:.2e} ({case.shapes()})"
        )
