"""The equations, made fast: the RNN, LSTM and GRU cells, their activations and losses.

Each cell is the math of `rnn_manual/reference.py` (read that one first) with `out=`
buffers, stacked gates and the array-API namespace, so that it runs fast on NumPy and
unchanged on PyTorch or CuPy. What the three share (input checks, moving between
libraries, the one pass of run, loss and backward) is `base.Cell`; each cell module holds
its parameters, its forward recurrence and its backward pass; truncation.py says where
truncated BPTT cuts the gradient, for them and the reference. The tests check every cell
against the reference and against PyTorch autograd.
"""

from .base import Cell
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

#: Every cell by its name in the command line and in model files. What differs between
#: them is on the class: `states`, `gates`, `activations`, `width`.
CELLS: dict[str, type[Cell]] = {cell.name: cell for cell in (RNN, LSTM, GRU)}

__all__ = ["CELLS", "GRU", "LSTM", "RNN", "Cell"]
