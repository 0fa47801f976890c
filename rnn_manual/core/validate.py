"""Checks on what callers pass to the models, shared by the three cells.

Each returns the value in the form the models use, or raises ValueError with one line that
says what was wrong. Sizes that would exhaust memory are refused before anything is
allocated (see limits.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import array_api_compat
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import backend
from .limits import MAX_HIDDEN, MAX_LAYER, check_elements

Array = NDArray[np.floating]

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Their names, as the command lines and model files spell them: ("float32", "float64").
DTYPE_NAMES = tuple(dtype.name for dtype in DTYPES)


def check_size(name: str, value: int, limit: int | None = None) -> int:
    """`value` as an int, or ValueError unless it is a positive integer (at most `limit`)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if limit is not None and value > limit:
        raise ValueError(f"{name} must be at most {limit}, got {value}")
    return int(value)


def check_sizes(input_size: int, hidden_size: int, output_size: int) -> tuple[int, int, int]:
    """The three layer sizes of a model, each checked against its limit."""
    return (
        check_size("input_size", input_size, MAX_LAYER),
        check_size("hidden_size", hidden_size, MAX_HIDDEN),
        check_size("output_size", output_size, MAX_LAYER),
    )


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """`value`, or ValueError unless it is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_flag(name: str, value: object) -> bool:
    """`value`, or ValueError unless it is True or False (the string "False" is not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(seed: object) -> np.random.Generator:
    """A generator from `seed`: a non-negative integer, a Generator (used as is) or None
    (fresh entropy); ValueError otherwise."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
    ):
        raise ValueError(
            f"seed must be a non-negative integer, a numpy.random.Generator or None, got {seed!r}"
        )
    return np.random.default_rng(seed)


def check_dtype(dtype: DTypeLike) -> np.dtype:
    """`dtype` as a NumPy dtype, or ValueError unless it is float32 or float64."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    # `resolved in DTYPES` alone would let None through: np.dtype(None) is float64.
    if resolved is None or dtype is None or resolved not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def _real_array(name: str, value: ArrayLike, dtype: np.dtype, like: Array) -> Array:
    """`value` as a finite array of `dtype`, in the library and on the device of `like` (a
    parameter of the model); ValueError if it is not real, finite and in range.

    Lists and NumPy arrays are checked in NumPy and then copied to the model's library and
    device; an array of another library must already be where the model is.
    """
    if not backend.is_numpy(value) and array_api_compat.is_array_api_obj(value):
        return _library_array(name, value, like)
    if np.ma.is_masked(value):  # np.asarray would silently use the hidden values
        raise ValueError(f"{name} has masked entries: fill them first (numpy.ma.filled)")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":  # bool, signed, unsigned, float
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    with np.errstate(over="raise"):
        try:
            array = array.astype(dtype, copy=False)
        except FloatingPointError:
            raise ValueError(f"{name} has values too large for {dtype}") from None
    if backend.is_numpy(like):
        return array
    return backend.namespace(like).asarray(array, device=backend.device(like))


def _library_array(name: str, value: Any, like: Array) -> Array:
    """An array of PyTorch, CuPy, ... as `_real_array` wants it, checked in its own library."""
    xp = backend.namespace(like)
    where, theirs = backend.device(like), array_api_compat.array_namespace(value)
    if theirs is not array_api_compat.array_namespace(like):
        raise ValueError(
            f"{name} is a {backend.library_name(theirs)} array but the model's parameters are "
            f"{backend.library_name(xp)} arrays: move the model with model.to(...)"
        )
    if backend.device(value) != where:
        raise ValueError(f"{name} is on {backend.device(value)}, the model on {where}")
    if array_api_compat.is_torch_array(value):
        if str(value.layout) != "torch.strided":
            raise ValueError(f"{name} must be a dense tensor, got layout {value.layout}")
        value = value.detach()  # the manual pass writes with out=, which autograd forbids
    try:
        if not xp.isdtype(value.dtype, ("bool", "integral", "real floating")):
            raise ValueError(f"{name} must be real numbers, got dtype {value.dtype}")
        if not bool(xp.all(xp.isfinite(value))):
            raise ValueError(f"{name} must be finite")
        cast = xp.astype(value, like.dtype, copy=False)
    except (RuntimeError, TypeError, NotImplementedError) as error:  # exotic dtypes, layouts
        raise ValueError(f"{name} cannot be checked: {backend.first_line(error, 200)}") from None
    if not bool(xp.all(xp.isfinite(cast))):
        raise ValueError(f"{name} has values too large for {like.dtype}")
    return cast


def _shape(name: str, value: Any) -> tuple[int, ...]:
    """The shape of `value`, or ValueError if it has none (a list of tensors that need
    autograd, say)."""
    try:
        return tuple(np.shape(value))
    except (RuntimeError, TypeError, NotImplementedError) as error:
        raise ValueError(
            f"{name} is not an array of numbers: {backend.first_line(error, 200)}"
        ) from None


def dtype_name(dtype: object) -> str:
    """The name of a dtype of any library: "float64" for NumPy's, CuPy's and torch.float64."""
    return str(dtype).removeprefix("torch.")


def check_params(
    params: dict[str, Any], shapes: dict[str, tuple[int, ...]], dtype: np.dtype | None = None
) -> None:
    """ValueError unless the parameters are those named in `shapes`, of those shapes, all of
    `dtype` (None: of one dtype, float32 or float64), arrays of one library on one device,
    which the manual pass can compute with (PyTorch tensors that autograd tracks it cannot:
    it writes into arrays with out=), distinct (check_distinct) and finite."""
    if set(params) != set(shapes):
        raise ValueError(f"params must hold {sorted(shapes)}, got {sorted(params)}")
    for name, shape in shapes.items():
        if _shape(f"params[{name!r}]", params[name]) != shape:
            found = _shape(f"params[{name!r}]", params[name])
            raise ValueError(f"params[{name!r}] must have shape {shape}, got {found}")
    # The pass writes its results into arrays of the parameters' dtype (out=): another dtype
    # (integers, complex numbers, float16, one float32 among float64) fails deep inside it.
    allowed = DTYPE_NAMES if dtype is None else (dtype.name,)
    found_dtypes = {
        name: dtype_name(getattr(a, "dtype", type(a).__name__)) for name, a in params.items()
    }
    for name, kind in found_dtypes.items():
        if kind not in allowed:
            raise ValueError(
                f"params[{name!r}] must be an array of {' or '.join(allowed)}, got {kind}"
            )
    if len(set(found_dtypes.values())) > 1:
        raise ValueError(f"the parameters must all have one dtype, got {found_dtypes}")
    arrays = list(params.values())
    if not backend.same_place(*arrays):
        raise ValueError(
            "the model's parameters must be arrays of one library on one device: "
            "move them together with model.to(...)"
        )
    if any(getattr(a, "requires_grad", False) for a in arrays):
        raise ValueError(
            "the model's parameters require grad; the manual pass computes its own "
            "gradients: detach them (model.to(torch) makes plain tensors)"
        )
    check_distinct(params)
    for name, a in params.items():
        if not bool(backend.namespace(a).all(backend.namespace(a).isfinite(a))):
            raise ValueError(f"params[{name!r}] is not finite: it holds NaN or infinite values")


def check_distinct(params: dict[str, Any]) -> None:
    """ValueError if two parameters are one array, or NumPy views of the same memory: each
    would be stepped once for each of its names, and its gradient would be the one of two
    separate arrays. (Arrays of other libraries are compared by identity only.)"""
    # Arrays can share memory only if they are views of one object (their root base): only
    # those are compared, so that the usual case, arrays of their own, costs a lookup each.
    seen: dict[int, list[tuple[str, Any]]] = {}
    for name, a in params.items():
        root = a
        while isinstance(root, np.ndarray) and root.base is not None:
            root = root.base
        views = seen.setdefault(id(root), [])
        for other, b in views:
            if a is b or _overlap(a, b):
                raise ValueError(
                    f"params[{other!r}] and params[{name!r}] share their memory: give each "
                    "parameter an array of its own (a copy)"
                )
        views.append((name, a))


def _overlap(a: object, b: object) -> bool:
    """Do the NumPy arrays a and b share memory? (False for arrays of other libraries.)"""
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.shares_memory(a, b)


def check_sequence(
    x: ArrayLike, input_size: int, width: int, dtype: np.dtype, like: Array
) -> Array:
    """x as a finite (T, B, input_size) array of `dtype` where `like` is, or ValueError.

    `width` is how many values per sequence and step the model keeps (H for the RNN,
    4H for the LSTM's gates): a pass holds about (T + 1) * B * width of them.
    """
    shape = _shape("x", x)
    if len(shape) != 3 or shape[2] != input_size:
        raise ValueError(f"x must have shape (T, B, {input_size}), got {shape}")
    T, B, _ = shape
    if T == 0 or B == 0:
        raise ValueError(f"x must hold at least one time step and one sequence, got {shape}")
    check_elements("a pass over x (steps x batch x state)", T + 1, B, width)
    return _real_array("x", x, dtype, like)


def check_state(
    name: str, value: ArrayLike | None, shape: tuple[int, int], dtype: np.dtype, like: Array
) -> Array:
    """An initial state as a finite array of `shape` and `dtype` where `like` is (zeros for
    None), or ValueError."""
    if value is None:
        xp = backend.namespace(like)
        return xp.zeros(shape, dtype=like.dtype, device=backend.device(like))
    if _shape(name, value) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {_shape(name, value)}")
    return _real_array(name, value, dtype, like)


def check_targets(
    y: ArrayLike, shape: tuple[int, ...], dtype: np.dtype, like: Array, distributions: bool = False
) -> Array:
    """Targets as an array of `shape` and `dtype` where `like` is, with values in [0, 1], or
    ValueError. distributions: each y_t (its last axis) must also sum to 1, as a softmax's
    targets (one-hot, or probabilities), within the rounding of a sum of O values."""
    if _shape("y", y) != shape:
        raise ValueError(f"y must have shape {shape}, got {_shape('y', y)}")
    y = _real_array("y", y, dtype, like)
    if bool(((y < 0) | (y > 1)).any()):
        raise ValueError("y must be probabilities, between 0 and 1")
    if distributions:
        xp = backend.namespace(y)
        slack = 4 * shape[-1] * float(np.finfo(dtype).eps)  # a sum of O roundings, and spare
        if bool((xp.abs(xp.sum(y, axis=-1) - 1.0) > slack).any()):
            raise ValueError(
                "y must sum to 1 over the outputs at every step (one-hot or probabilities)"
            )
    return y


def check_upstream(dz: ArrayLike, shape: tuple[int, ...], truncate: int | None) -> None:
    """ValueError unless dz = dL/dz has the outputs' `shape` and truncate is None or a
    positive integer (what backward takes)."""
    if _shape("dz", dz) != shape:
        raise ValueError(f"dz must have the outputs' shape {shape}, got {_shape('dz', dz)}")
    if truncate is not None:
        check_size("truncate", truncate)


class Overflow(ValueError):
    """A forward pass whose output logits are not finite: inputs or weights far too large."""


def check_outputs(z: Array) -> None:
    """Overflow (a ValueError) if the output logits are not finite."""
    if not bool(backend.namespace(z).isfinite(z).all()):
        raise Overflow("the forward pass overflowed: inputs or weights are far too large")


def blas_invalid_flag_ignored() -> np.errstate:
    """A context in which NumPy's "invalid value" floating-point warning is off, for the
    manual passes (base.Cell.run and backward enter it).

    OpenBLAS's small matrix-vector kernels can raise the processor's invalid flag on padding
    they read and throw away (see numpy/numpy#24067), which NumPy then reports as a warning
    about a matmul whose result is fine. The arrays here are checked finite on the way in,
    so a real NaN can only follow an overflow, which still warns (and which forward and
    loss_and_grads refuse).
    """
    return np.errstate(invalid="ignore")
