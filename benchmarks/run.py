"""The benchmark grid: one forward plus backward pass, manual NumPy against PyTorch autograd.

Every grid point times, interleaved (benchmarks.timing): the manual RNN.loss_and_grads, a
loop over nn.RNNCell, nn.RNN, and on a GPU the torch variants again there; at hidden >= 256
also a 2048 x 2048 NumPy matmul, the machine's practical peak, in the same rounds.
All use the same weights and data, tanh hidden units (the only smooth choice nn.RNN has) and
the manual model's "mse" loss, and compute the same gradients (weights, x and h0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from rnn_manual import RNN

from . import torch_models
from .timing import interleaved, matmul_peak, spread

MANUAL = "manual NumPy"
CELL = "torch RNNCell loop"
FUSED = "torch nn.RNN"
PEAK = "matmul peak"
PEAK_SIZE = 2048


@dataclass(frozen=True)
class Point:
    """One grid point: sequence length T, batch B, hidden size H, dtype."""

    T: int
    B: int
    H: int
    dtype: str


def grid(quick: bool) -> list[Point]:
    """The issue's grid, or a tiny one for --quick (the smoke test)."""
    if quick:
        shapes = [(8, 1, 16), (8, 32, 16), (8, 256, 16), (8, 256, 64)]
    else:
        shapes = [(8, B, 16) for B in (1, 32, 256, 4096)]
        shapes += [
            (T, 256, H) for H in (16, 64, 256, 1024) for T in (8, 32, 128) if (T, H) != (8, 16)
        ]
    return [Point(T, B, H, d) for d in ("float64", "float32") for T, B, H in shapes]


def matmul_flops(T: int, B: int, H: int, I: int = 2, O: int = 1) -> int:
    """Multiply-add flops (2 per multiply-add) of the matmuls in one manual forward + backward.

    Forward: x W_xh, h W_hh, h W_hy. Backward: dz W_hy^T, da W_hh^T, da W_xh^T and the three
    weight gradients. Elementwise work (activations, losses) is not counted.
    """
    return 2 * T * B * (3 * (I * H + H * H + H * O))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Normwise ||a - b|| / max(||a||, ||b||)."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b)) / scale


def check_same(manual: tuple[float, dict], torch_result: tuple[float, dict], dtype: str) -> float:
    """Largest normwise relative error between the manual and a torch pass's loss and gradients.

    Raises unless they agree to rounding: 1e-12 in float64 (seen: below 1e-14); in float32,
    whose unit roundoff is 6e-8 and whose sums here run over up to T*B = 32768 terms, 1e-4
    (seen: below 2e-6). A missing or wrong term shows as 1e-2 or more.
    """
    errors = [relative_error(torch_result[1][k], g) for k, g in manual[1].items()]
    worst = max([relative_error(np.array(manual[0]), np.array(torch_result[0])), *errors])
    if worst > (1e-12 if dtype == "float64" else 1e-4):
        raise AssertionError(f"torch and manual gradients differ: relative error {worst:.1e}")
    return worst


def measure(point: Point, rounds: int, min_sample: float, budget: float, seed: int = 0) -> dict:
    """Time every variant at one grid point; return times, ratios and GFLOP/s."""
    T, B, H, dtype = point.T, point.B, point.H, np.dtype(point.dtype)
    rng = np.random.default_rng(seed)
    model = RNN(2, H, 1, "tanh", bias=False, dtype=dtype, seed=rng)
    # The default weights make the recurrence chaotic (spectral radius ~2.5), which amplifies
    # rounding ~10x every 8 steps: two correct implementations could then differ in the
    # 5th digit at T 128. A spectral norm of 0.9 keeps every pass contracting, so that the
    # gradients must agree to rounding everywhere; the work, and so the timing, is the same.
    W_hh = model.params["W_hh"]
    W_hh *= 0.9 / np.linalg.norm(W_hh.astype(np.float64), 2)
    x = rng.integers(0, 2, (T, B, 2)).astype(dtype)
    y = rng.integers(0, 2, (T, B, 1)).astype(dtype)

    variants = {MANUAL: lambda: model.loss_and_grads(x, y, "mse")}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name, build in ((CELL, torch_models.cell_loop), (FUSED, torch_models.fused_rnn)):
            one_pass = build(model, x, y, device)
            if device == "cuda":
                one_pass = torch_models.synchronized(one_pass)
                name += " (cuDNN)" if build is torch_models.fused_rnn else " (CUDA)"
            variants[name] = one_pass
    manual = variants[MANUAL]()
    worst = max(
        check_same(manual, torch_models.as_manual_grads(fn()), point.dtype)
        for name, fn in variants.items()
        if name != MANUAL
    )
    if H >= 256:
        a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(dtype)
        out = np.empty_like(a)
        variants[PEAK] = lambda: np.matmul(a, a, out=out)
        variants[PEAK]()  # its warm-up; the others had theirs in the check above

    timings = interleaved(variants, rounds, min_sample, budget)
    flops = matmul_flops(T, B, H)
    result: dict = {
        "T": T,
        "B": B,
        "H": H,
        "dtype": point.dtype,
        "rounds": len(timings.seconds[MANUAL]),
        "max_grad_rel_error": worst,
        "seconds": timings.seconds,
        "samples_per_s": {name: B / timings.median(name) for name in variants if name != PEAK},
        # How many times faster the manual pass is, round by round: (median, min, max).
        "speedup": {
            name: spread(timings.ratios(name, MANUAL))
            for name in variants
            if name not in (MANUAL, PEAK)
        },
        "manual_gflops": flops / timings.median(MANUAL) / 1e9,
    }
    # Against whichever torch CPU variant was faster in each round.
    cpu = [timings.ratios(name, MANUAL) for name in (CELL, FUSED)]
    result["speedup_vs_fastest_cpu"] = spread([min(r) for r in zip(*cpu, strict=True)])
    if PEAK in variants:
        peak_flops = 2 * PEAK_SIZE**3
        result["peak_gflops"] = peak_flops / timings.median(PEAK) / 1e9
        # Manual GFLOP/s over the peak's, round by round (both timed in the same round).
        result["fraction_of_peak"] = spread(
            [flops / peak_flops / r for r in timings.ratios(MANUAL, PEAK)]
        )
    return result


def run_grid(points: list[Point], rounds: int, min_sample: float, budget: float, log) -> list:
    results = []
    for point in points:
        start = time.perf_counter()
        results.append(measure(point, rounds, min_sample, budget))
        log(f"  {point}  {time.perf_counter() - start:5.1f} s")
    return results


def peaks() -> dict[str, float]:
    """Best-of-5 2048 x 2048 matmul GFLOP/s, NumPy per dtype."""
    return {d: matmul_peak(np.dtype(d), PEAK_SIZE) for d in ("float64", "float32")}
