"""The walkthrough's worked example (rnn_manual/app/worked_example.py): its numbers are the
document's, and they are right.

- docs/walkthrough.md holds exactly what `markdown()` writes today, between its markers, so
  the numbers can never drift from the code.
- The table's backward columns, computed step by step (the future's share by a backward
  pass over the tail alone), add up to the reference's gradient, and to autograd's.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from rnn_manual import RNN, reference
from rnn_manual.app import worked_example
from rnn_manual.app.worked_example import BEGIN, END, fill, inputs, markdown, params
from rnn_manual.cells.activations import sigmoid_derivative
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.twin import Twin

WALKTHROUGH = Path(__file__).resolve().parents[1] / "docs" / "walkthrough.md"


def test_the_walkthrough_shows_the_numbers_the_code_computes() -> None:
    text = WALKTHROUGH.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert fill(text) == text, (
        "docs/walkthrough.md's worked example differs from what the code computes; "
        "paste the output of `python -m rnn_manual.app.worked_example` between its markers"
    )


def test_fill_replaces_only_what_lies_between_the_markers() -> None:
    document = f"before\n{BEGIN}\nstale numbers\n{END}\nafter\n"
    filled = fill(document)
    assert filled.startswith(f"before\n{BEGIN}\n") and filled.endswith(f"{END}\nafter\n")
    assert "stale numbers" not in filled and markdown() in filled
    assert fill(filled) == filled
    with pytest.raises(ValueError, match="has no"):
        fill("no markers here\n")


def test_the_module_prints_the_fragment(capsys: pytest.CaptureFixture[str]) -> None:
    worked_example.main()
    assert capsys.readouterr().out == markdown()


def test_the_steps_add_up_to_the_reference_gradient() -> None:
    example = worked_example.worked_example()
    w = params()
    x, y = inputs()
    loss, grads = reference.loss_and_grads(w, x, y)
    assert example.loss == loss
    total = sum(step.dW_hh for step in example.steps)
    assert relative_error(total, grads["W_hh"]) <= FLOAT64_BOUND
    assert relative_error(total, example.grads["W_hh"]) <= FLOAT64_BOUND
    for before, after in pairwise(example.steps):
        # what step t + 1 sends back is dL/da_{t+1} W_hh^T: the table's own columns agree
        np.testing.assert_allclose(before.dh_future, after.da @ w["W_hh"].T, rtol=1e-14)
    for step in example.steps:
        np.testing.assert_allclose(step.dh, step.dh_own + step.dh_future, rtol=1e-15)
        np.testing.assert_allclose(step.da, step.dh * sigmoid_derivative(step.h), rtol=1e-15)
    assert not example.steps[-1].dh_future.any()  # nothing after the last step
    assert not example.steps[0].dW_hh.any()  # h_{-1} = 0
    assert relative_error(example.numeric, grads["W_hh"][worked_example.ENTRY]) < 1e-8


def test_the_table_agrees_with_autograd() -> None:
    model = RNN(input_size=2, hidden_size=2, output_size=1, activation="sigmoid")
    model.params.update(params())
    x, y = inputs()
    loss, grads = Twin.from_manual(model).loss_and_grads(x, y, loss="mse")
    example = worked_example.worked_example()
    assert example.loss == pytest.approx(loss, rel=1e-14)
    total = sum(step.dW_hh for step in example.steps)
    assert relative_error(total, grads["W_hh"]) <= FLOAT64_BOUND


def test_numbers_print_without_negative_zero() -> None:
    assert worked_example.number(-0.00001) == "0.0000"
    assert worked_example.number(-0.5) == "-0.5000"
    assert worked_example.matrix(np.array([[1.0, -2.0]]), 1) == "[1.0, -2.0]"
