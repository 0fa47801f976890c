"""Hypothesis profiles: "ci" (default; derandomized, so CI is reproducible) and "thorough".

Choose one with `pytest --hypothesis-profile=thorough`.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings

# On a GPU, judge float32 in full float32: cuDNN's RNNs (the fused judges) would otherwise
# round through TensorFloat-32 and loosen the bound derived from torch's own error.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=1000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")
