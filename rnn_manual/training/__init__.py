"""Training: the addition task's data (bits), the optimisers, the training loop with its
evaluation, and the replay of the tutorial's exact run."""
