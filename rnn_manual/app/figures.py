"""Which figures are written, and where: the one place that decides.

`python -m rnn_manual plot` writes plot.py's four figures of a trained adder; with --docs
also the walkthrough's own (docfigures.py), for which it first retrains the walkthrough's
adder to check that the model given is that one (docruns.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cells import Cell
from ..training.bits import addition_examples, encode, random_addition_batch
from ..training.state import History, TrainConfig
from . import docfigures, docruns, plot, textfigure
from .draw import figure, save_png
from .measures import BackwardStep, CarryUnit, backward_steps, find_carry_unit, gradient_norms

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Log = Callable[[str], None]


def write_figures(
    model: Cell,
    history: History | None,
    out: Path,
    log: Log = print,
    *,
    config: TrainConfig | None = None,
    docs: bool = False,
) -> CarryUnit:
    """Write every figure (the training curve only when there is a history) into `out`.

    config: the config the model was trained with, when known: the training curve then
    marks the loss of answering 0.5 everywhere. docs: the model is the walkthrough's adder
    (`train --loss mse --long-bits 0 --save adder.npz`); also write the walkthrough's
    figures (write_doc_figures), retraining it first to check that and to watch the carry
    unit emerge (docruns.NotTheAdder otherwise), and training an RNN, an LSTM and a GRU to
    compare.
    """
    figure()  # fail early, before any work, when matplotlib is missing
    rng = np.random.default_rng(0)
    a, b = plot.EXAMPLE
    write = _writer(out, log)
    run = None
    if docs:
        run = docruns.rerun_adder(model)  # NotTheAdder unless model is the walkthrough's
        config = docruns.ADDER
    if history is None or not len(history.loss):
        log("no training history in the model file: training curve skipped")
    else:
        write("training_curve.png", plot.plot_training_curve(history, config))
    x, _ = random_addition_batch(rng, plot.CARRY_SUMS, plot.CARRY_BITS, model.dtype)
    found = find_carry_unit(model, x)
    write("hidden_heatmap.png", plot.plot_hidden_heatmap(model, found, a, b))
    write("carry_unit.png", plot.plot_carry_unit(model, found, a, b))
    x, _ = random_addition_batch(rng, plot.GRADIENT_SUMS, plot.GRADIENT_BITS, model.dtype)
    trained, untrained = gradient_norms(model, x), gradient_norms(model.fresh(seed=0), x)
    write("gradient_flow.png", plot.plot_gradient_flow(trained, untrained))
    if run is not None:
        write_doc_figures(model, run, out, log)
    return found


@dataclass
class DocData:
    """What the walkthrough's figures plot."""

    backward: list[BackwardStep]
    flow: docruns.CellsFlow
    run: docruns.AdderRun
    text: docruns.TextRuns


def write_doc_figures(model: Cell, run: docruns.AdderRun, out: Path, log: Log = print) -> DocData:
    """Write docfigures.DOC_FIGURES into `out`; `model` is the walkthrough's adder, `run`
    its training run (docruns.rerun_adder). Returns what the figures plot."""
    write = _writer(out, log)
    write("unrolled.png", docfigures.plot_unrolled())
    a, b = docfigures.BACKWARD_EXAMPLE
    bits = docruns.ADDER.bits
    x, y = addition_examples(encode([a], bits), encode([b], bits), model.dtype)
    steps = backward_steps(model, x, y, docruns.ADDER.loss)
    docfigures.animate_backward(model, steps, x, y, out / "backward.gif")
    log(f"wrote {out / 'backward.gif'}")
    log("training an RNN, an LSTM and a GRU to compare them (under a minute)")
    flow = docruns.cells_flow()
    write("gradient_flow_cells.png", docfigures.plot_gradient_flow_cells(flow))
    write("carry_emerging.png", docfigures.plot_carry_emerging(run))
    log("training an RNN, an LSTM and a GRU on the default text (under a minute)")
    text = docruns.text_runs()
    write("text_cells.png", textfigure.plot_text_cells(text))
    return DocData(steps, flow, run, text)


def _writer(out: Path, log: Log) -> Callable[[str, Figure], None]:
    """write(name, fig): fig saved as PNG to out / name, and said so."""

    def write(name: str, fig: Figure) -> None:
        save_png(fig, out / name)
        log(f"wrote {out / name}")

    return write
