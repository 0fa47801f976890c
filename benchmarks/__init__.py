"""Benchmarks: the hand-written NumPy BPTT against PyTorch autograd, side by side.

Run with `python -m benchmarks` (see benchmarks/README.md).
"""
