"""PyTorch twins of the manual models, for autograd to judge their gradients.

`python -m rnn_torch check` compares the two on a model built from options;
`python -m rnn_torch diagnose FILE` judges a learner's own backward pass (rnn_torch.diagnose).
"""

from .check import gradient_rows
from .compare import Row
from .twin import SigmoidRNNCell, Twin, manual_upstream_grads, torch_loss

__all__ = ["Row", "SigmoidRNNCell", "Twin", "gradient_rows", "manual_upstream_grads", "torch_loss"]
