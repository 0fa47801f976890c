"""The benchmark grid: one forward plus backward pass, manual NumPy against PyTorch autograd.

Every grid point times, interleaved (benchmarks.timing): the manual loss_and_grads of the
RNN, LSTM or GRU, a loop over the matching torch cell (nn.RNNCell, nn.LSTMCell, nn.GRUCell),
the fused layer (nn.RNN, nn.LSTM, nn.GRU), the same manual loss_and_grads run by torch on the
CPU (benchmarks.manual_backends), and on a GPU the torch variants and the manual pass (torch,
and CuPy when installed) again there; at hidden >= 256 also a 2048 x 2048 NumPy matmul, the
machine's practical peak, in the same rounds. All use the same weights and data, no biases,
the manual model's "mse" loss (the RNN with tanh hidden units, the only smooth choice nn.RNN
has), and compute the same gradients (weights, x, h0 and for the LSTM c0).

The GPU grid (measure_gpu, `python -m benchmarks --gpu`) times the manual pass on CUDA
against cuDNN's nn.RNN and the nn.RNNCell loop there, at the issue's reference points.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnn_manual import RNN
from rnn_manual.cells import CELLS, Cell
from rnn_manual.core import threads
from rnn_manual.core.backend import first_line
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.twin import TORCH_MODULES

from . import manual_backends, torch_models
from .manual_backends import as_numpy
from .timing import interleaved, matmul_peak, spread

MANUAL = "manual NumPy"
PEAK = "matmul peak"
PEAK_SIZE = 2048
#: The issue's reference points for the GPU, all the RNN (tanh): (dtype, T, B, H).
GPU_POINTS = [
    ("float32", 8, 256, 16),
    ("float32", 8, 65536, 16),
    ("float32", 128, 256, 64),
    ("float32", 128, 4096, 1024),  # refused by rnn_manual.core.limits.MAX_ELEMENTS (541M > 2**27)
    ("float64", 8, 256, 256),
]


def loop_name(cell: str, device: str = "cpu") -> str:
    """The name of the torch cell-loop variant, e.g. "torch LSTMCell loop"."""
    name = f"torch {TORCH_MODULES[cell][0].__name__} loop"  # the cell, looped over in Python
    return name if device == "cpu" else f"{name} (CUDA)"


def fused_name(cell: str, device: str = "cpu") -> str:
    """The name of the fused torch variant, e.g. "torch nn.LSTM" ("torch nn.LSTM (cuDNN)")."""
    name = f"torch nn.{TORCH_MODULES[cell][1].__name__}"  # the fused layer
    return name if device == "cpu" else f"{name} (cuDNN)"


@dataclass(frozen=True)
class Point:
    """One grid point: the cell ("rnn", "lstm", "gru"), sequence length T, batch B, hidden
    size H, dtype."""

    cell: str
    T: int
    B: int
    H: int
    dtype: str


def grid(quick: bool) -> list[Point]:
    """The issue's grid (the RNN's, and a smaller one for the gated cells), or a tiny one for
    --quick (the smoke test)."""
    if quick:
        shapes = {
            "rnn": [(8, 1, 16), (8, 32, 16), (8, 256, 16), (8, 256, 64)],
            "lstm": [(8, 32, 16)],
            "gru": [(8, 32, 16)],
        }
    else:
        rnn = [(8, B, 16) for B in (1, 32, 256, 4096)]
        rnn += [(T, 256, H) for H in (16, 64, 256, 1024) for T in (8, 32, 128) if (T, H) != (8, 16)]
        gated = [(8, B, 16) for B in (1, 32, 256, 4096)] + [(32, 256, 64)]
        shapes = {"rnn": rnn, "lstm": gated, "gru": gated}
    return [
        Point(cell, T, B, H, d)
        for cell, cell_shapes in shapes.items()
        for d in ("float64", "float32")
        for T, B, H in cell_shapes
    ]


def matmul_flops(T: int, B: int, H: int, gates: int = 1, I: int = 2, O: int = 1) -> int:
    """Multiply-add flops (2 per multiply-add) of the matmuls in one manual forward + backward.

    Forward: x W_x, h W_h (each gates * H wide: W_xh and W_hh for the RNN, all gates side by
    side for the LSTM and GRU), h W_hy. Backward: dz W_hy^T, da W_h^T, da W_x^T and the three
    weight gradients. Elementwise work (activations, gate products, losses) is not counted.
    """
    return 2 * T * B * 3 * (gates * (I * H + H * H) + H * O)


def check_same(manual: tuple[float, dict], torch_result: tuple[float, dict], dtype: str) -> float:
    """Largest normwise relative error between the manual and a torch pass's loss and gradients.

    Raises unless they agree to rounding: 1e-12 in float64 (seen: below 3e-14 for every cell);
    in float32, whose unit roundoff is 6e-8 and whose sums here run over up to T*B = 32768
    terms (the weight gradients; dL/dh's sums over the stacked gates are shorter, at most
    4H = 256 terms), 1e-4 (seen: below 5e-6 for every cell). A missing or wrong term shows as
    1e-2 or more (two gates' weights swapped in the LSTM or GRU: about 1).
    """
    errors = [relative_error(torch_result[1][k], g) for k, g in manual[1].items()]
    worst = max([relative_error(np.array(manual[0]), np.array(torch_result[0])), *errors])
    if worst > (1e-12 if dtype == "float64" else 1e-4):
        raise AssertionError(f"torch and manual gradients differ: relative error {worst:.1e}")
    return worst


def make_model(cell: str, H: int, dtype: np.dtype, rng: np.random.Generator) -> Cell:
    """The manual model of one grid point: 2 inputs, H hidden, 1 output, no biases."""
    if cell == "rnn":  # tanh: nn.RNNCell and nn.RNN have no sigmoid
        return RNN(2, H, 1, "tanh", bias=False, dtype=dtype, seed=rng)
    return CELLS[cell](2, H, 1, bias=False, dtype=dtype, seed=rng)


def prepare(
    point: Point, seed: int = 0
) -> tuple[Cell, np.ndarray, np.ndarray, np.random.Generator]:
    """The manual NumPy model, x and y of one grid point, and the random generator they came
    from (for anything else the point needs)."""
    cell, T, B, H, dtype = point.cell, point.T, point.B, point.H, np.dtype(point.dtype)
    rng = np.random.default_rng(seed)
    model = make_model(cell, H, dtype, rng)
    # The default weights make the RNN's recurrence chaotic (spectral radius ~2.5), which
    # amplifies rounding ~10x every 8 steps: two correct implementations could then differ in
    # the 5th digit at T 128. A spectral norm of 0.9 keeps every pass contracting, so that the
    # gradients must agree to rounding everywhere; the work, and so the timing, is the same.
    # The gated cells need no such help at their grid points: with their default weights the
    # torch passes agree with the manual ones to rounding (seen: 2e-14 in float64, 5e-6 in
    # float32).
    if isinstance(model, RNN):
        W_hh = model.params["W_hh"]
        W_hh *= 0.9 / np.linalg.norm(W_hh.astype(np.float64), 2)
    x = rng.integers(0, 2, (T, B, 2)).astype(dtype)
    y = rng.integers(0, 2, (T, B, 1)).astype(dtype)
    return model, x, y, rng


def measure(point: Point, rounds: int, min_sample: float, budget: float, seed: int = 0) -> dict:
    """Time every variant at one grid point; return times, ratios and GFLOP/s."""
    cell, T, B, H, dtype = point.cell, point.T, point.B, point.H, np.dtype(point.dtype)
    model, x, y, rng = prepare(point, seed)

    baselines: dict[str, torch_models.Pass] = {}
    on_other: dict[str, manual_backends.ManualPass] = {}  # the manual pass on torch (and CuPy)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        on_other.update(manual_backends.manual_passes(model, x, y, device))
        for name, build in (
            (loop_name(cell, device), torch_models.cell_loop),
            (fused_name(cell, device), torch_models.fused),
        ):
            one_pass = build(model, x, y, device)
            baselines[name] = one_pass if device == "cpu" else torch_models.synchronized(one_pass)
    manual = model.loss_and_grads(x, y, "mse")
    worst = max(
        [
            check_same(manual, torch_models.as_manual_grads(model, one_pass()), point.dtype)
            for one_pass in baselines.values()
        ]
        + [check_same(manual, as_numpy(one_pass()), point.dtype) for one_pass in on_other.values()]
    )
    variants: dict[str, Callable[[], object]] = {
        MANUAL: lambda: model.loss_and_grads(x, y, "mse"),
        **baselines,
        **on_other,
    }
    if H >= 256:
        a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(dtype)
        out = np.empty_like(a)
        variants[PEAK] = lambda: np.matmul(a, a, out=out)
        variants[PEAK]()  # its warm-up; the others had theirs in the check above

    timings = interleaved(variants, rounds, min_sample, budget)
    flops = matmul_flops(T, B, H, CELLS[cell].width)  # width: weight blocks, 1, 4 or 3
    result: dict = {
        "cell": cell,
        "T": T,
        "B": B,
        "H": H,
        "dtype": point.dtype,
        "rounds": len(timings.seconds[MANUAL]),
        # How many parts the manual NumPy pass splits the batch into (core/threads.py).
        "manual_parts": len(threads.parts(B, model.state_width)),
        "max_grad_rel_error": worst,
        "seconds": timings.seconds,
        "samples_per_s": {name: B / timings.median(name) for name in variants if name != PEAK},
        # How many times faster the manual NumPy pass is than each other variant (the manual
        # pass on torch among them), round by round: (median, min, max).
        "speedup": {
            name: spread(timings.ratios(name, MANUAL))
            for name in variants
            if name not in (MANUAL, PEAK)
        },
        "manual_gflops": flops / timings.median(MANUAL) / 1e9,
    }
    # Against whichever torch autograd CPU variant was faster in each round (the manual pass
    # run by torch is not one of these baselines: it has its own ratio in "speedup").
    result.update(versus_autograd(timings.seconds, cell))
    if PEAK in variants:
        peak_flops = 2 * PEAK_SIZE**3
        result["peak_gflops"] = peak_flops / timings.median(PEAK) / 1e9
        # Manual GFLOP/s over the peak's, round by round (both timed in the same round).
        result["fraction_of_peak"] = spread(
            [flops / peak_flops / r for r in timings.ratios(MANUAL, PEAK)]
        )
    return result


def versus_autograd(seconds: dict[str, list[float]], cell: str) -> dict:
    """The hand-written pass against the fastest torch CPU autograd variant of each round (the
    cell loop or the fused layer), from the rounds' seconds: "speedup_vs_fastest_cpu" for
    manual NumPy, and "best_vs_fastest_cpu" for the manual pass on its faster CPU backend
    ("best_manual_cpu": NumPy or torch, whichever has the smaller median time at this point;
    one backend for all the rounds, as a user would pick it), each (median, min, max)."""
    rounds = zip(seconds[loop_name(cell)], seconds[fused_name(cell)], strict=True)
    fastest = [min(times) for times in rounds]
    backends = [name for name in (MANUAL, manual_backends.torch_name("cpu")) if name in seconds]
    best = min(backends, key=lambda name: statistics.median(seconds[name]))

    def over(name: str) -> tuple[float, float, float]:
        return spread([f / m for f, m in zip(fastest, seconds[name], strict=True)])

    return {
        "speedup_vs_fastest_cpu": over(MANUAL),
        "best_manual_cpu": best,
        "best_vs_fastest_cpu": over(best),
    }


def run_grid(
    points: list[Point],
    rounds: int,
    min_sample: float,
    budget: float,
    log: Callable[[str], object],
) -> list[dict]:
    """measure() at every point, logging each point's wall time."""
    results = []
    for point in points:
        start = time.perf_counter()
        results.append(measure(point, rounds, min_sample, budget))
        log(f"  {point}  {time.perf_counter() - start:5.1f} s")
    return results


def gpu_grid() -> list[Point]:
    """The issue's reference points for the GPU: the RNN (tanh) at GPU_POINTS."""
    return [Point("rnn", T, B, H, dtype) for dtype, T, B, H in GPU_POINTS]


def gpu_target(point: Point | dict) -> float:
    """The speed-up over the fused layer (cuDNN) the issue asks of the manual pass on the GPU:
    3x at batch 65536, 1x (no slower) elsewhere."""
    B = point.B if isinstance(point, Point) else point["B"]
    return 3.0 if B >= 65536 else 1.0


def _checked_results(
    model: Cell,
    x: np.ndarray,
    y: np.ndarray,
    baselines: dict[str, torch_models.Pass],
    on_other: dict[str, manual_backends.ManualPass],
) -> tuple[str, dict[str, tuple[float, dict]], dict[str, str]]:
    """One pass of each variant, in the manual model's names and as NumPy arrays; the passes a
    size limit (or any ValueError of rnn_manual) refused, with the reason; and the reference
    the others are checked against: the manual NumPy pass, or where that is refused too, the
    torch cell loop (the first baseline)."""
    results = {name: torch_models.as_manual_grads(model, p()) for name, p in baselines.items()}
    refused: dict[str, str] = {}
    for name, one_pass in on_other.items():
        try:
            results[name] = as_numpy(one_pass())
        except ValueError as error:  # rnn_manual.core.limits: more than MAX_ELEMENTS values
            refused[name] = first_line(error)
        except Exception as error:  # anything else (out of memory, ...) is noted too: one
            refused[name] = f"{type(error).__name__}: {first_line(error)}"  # GPU run, all points
    try:
        results[MANUAL] = model.loss_and_grads(x, y, "mse")
        reference = MANUAL
    except ValueError as error:
        refused[MANUAL] = first_line(error)
        reference = next(iter(baselines))
    return reference, results, refused


def measure_gpu(
    point: Point,
    rounds: int,
    min_sample: float,
    budget: float,
    device: str = "cuda",
    seed: int = 0,
) -> dict:
    """Time the manual pass on `device` (torch; with CuPy too on CUDA when it is installed)
    against the fused layer (cuDNN on CUDA) and the cell loop there, at one point.

    Every pass is first checked against the manual NumPy pass (check_same; where the size
    limit refuses that, against the cell loop). Unlike measure(), a refused pass or one that
    disagrees does not stop the run: it is left untimed and recorded with its reason, so that
    one run on a borrowed GPU gives every point it can. device="cpu" runs the same code on the
    CPU, for the tests.
    """
    cell = point.cell
    model, x, y, _ = prepare(point, seed)
    on_other = manual_backends.manual_passes(model, x, y, device)
    graphed = manual_backends.captured_pass(model, x, y, device)
    if device != "cpu":
        graphed = torch_models.synchronized(graphed)
    on_other[manual_backends.graph_name(device)] = graphed
    loop, fused = loop_name(cell, device), fused_name(cell, device)
    baselines = {
        loop: torch_models.cell_loop(model, x, y, device),
        fused: torch_models.fused(model, x, y, device),
    }
    if device != "cpu":
        baselines = {name: torch_models.synchronized(p) for name, p in baselines.items()}
    reference, results, refused = _checked_results(model, x, y, baselines, on_other)
    errors: dict[str, float] = {}
    disagree: dict[str, str] = {}
    for name, result in results.items():
        if name == reference:
            continue
        try:
            errors[name] = check_same(results[reference], result, point.dtype)
        except AssertionError as error:
            disagree[name] = str(error)
    passes: dict[str, Callable[[], object]] = {**baselines, **on_other}
    variants = {
        name: one_pass for name, one_pass in passes.items() if name in errors or name == reference
    }
    timings = interleaved(variants, rounds, min_sample, budget)
    return {
        "cell": cell,
        "T": point.T,
        "B": point.B,
        "H": point.H,
        "dtype": point.dtype,
        "device": device,
        "rounds": min((len(s) for s in timings.seconds.values()), default=0),
        "checked_against": reference,
        "max_grad_rel_error": max(errors.values(), default=None),
        "refused": refused,
        "disagree": disagree,
        "seconds": timings.seconds,
        "samples_per_s": {name: point.B / timings.median(name) for name in variants},
        # How many times faster each manual pass is than the fused layer, round by round.
        "speedup_vs_fused": {
            name: spread(timings.ratios(fused, name))
            for name in on_other
            if name in variants and fused in variants
        },
    }


def run_gpu_grid(
    points: list[Point],
    rounds: int,
    min_sample: float,
    budget: float,
    log: Callable[[str], object],
    device: str = "cuda",
    after: Callable[[list[dict]], object] | None = None,
) -> list[dict]:
    """measure_gpu() at every point, logging each point's wall time; after(results so far)
    after each point, so that a run cut short keeps what it measured."""
    results: list[dict] = []
    for point in points:
        start = time.perf_counter()
        results.append(measure_gpu(point, rounds, min_sample, budget, device))
        log(f"  {point}  {time.perf_counter() - start:5.1f} s")
        if after is not None:
            after(results)
    return results


def peaks() -> dict[str, float]:
    """Best-of-5 2048 x 2048 matmul GFLOP/s, NumPy per dtype."""
    return {d: matmul_peak(np.dtype(d), PEAK_SIZE) for d in ("float64", "float32")}
