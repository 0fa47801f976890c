"""Hypothesis profiles: "ci" (default; derandomized, so CI is reproducible), "thorough",
"gpu" (short, for the GPU run) and "mutation" (short, for `make mutate`).

Choose one with `pytest --hypothesis-profile=thorough`.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, Phase, settings

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
# For the one short run on a borrowed GPU (benchmarks/gpu_check.sh): a fifth of ci's examples,
# and no shrinking, which could spend the whole session re-running one failing case.
settings.register_profile(
    "gpu",
    derandomize=True,
    deadline=None,
    max_examples=10,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For mutation testing (`make mutate`, mutmut), which reruns the tests that reach a function
# once per mutant of it: a fifth of ci's examples, no shrinking (only whether a test fails
# matters) and no example database, so that every run and every mutant sees the same cases.
settings.register_profile(
    "mutation",
    derandomize=True,
    deadline=None,
    max_examples=10,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")
