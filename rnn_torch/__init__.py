"""PyTorch twins of the manual models, for autograd to judge their gradients."""
