"""Which array library evaluates the equations: NumPy by default, or PyTorch or CuPy.

The cells, activations and losses are written once, against the array API standard
(https://data-apis.org/array-api/): every array operation goes through `xp`, the namespace
of the arrays at hand, which `namespace` finds. A model moved with `model.to(torch)` (or
`model.to(torch, "cuda")`, `model.to(cupy)`) then runs the very same lines on that
library's arrays, on that library's device.

NumPy (2.1 and later) implements the standard itself and is used as it is; PyTorch and CuPy
go through the small `array-api-compat` package, which fills in the few names they spell
differently. A few things outside the standard are used because all three libraries have
them and they pay:
- `out=` on matmul and on elementwise functions, which writes a result into an array that
  already exists instead of allocating a new one (allocation is a large share of a pass
  at big batch sizes);
- the array methods `.reshape(...)`, `.sum(axis=...)`, `.all()` and `.any()`, which read
  more plainly than the standard's functions (`xp.reshape(x, shape)`) and cost less on NumPy;
- `np.errstate`, which quiets NumPy's floating-point warnings where an overflow is
  expected and handled (it has no effect on other libraries, which never warn).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np
from numpy.typing import NDArray

#: The libraries a model can move to, by module name.
LIBRARIES = ("numpy", "torch", "cupy")


def namespace(*arrays: Any) -> Any:
    """The array API namespace of `arrays` (TypeError if they mix libraries): NumPy itself
    for NumPy arrays, array-api-compat's wrapper of the library otherwise."""
    if type(arrays[0]) is np.ndarray and len(arrays) == 1:  # the common case, answered fast
        return np  # (the activations ask once per time step)
    xp = array_api_compat.array_namespace(*arrays)
    return np if array_api_compat.is_numpy_namespace(xp) else xp


def library_namespace(library: ModuleType | str) -> Any:
    """The namespace for a library given as a module (numpy, torch, cupy) or its name."""
    name = library if isinstance(library, str) else getattr(library, "__name__", repr(library))
    if name not in LIBRARIES:
        raise ValueError(f"array library must be one of {list(LIBRARIES)}, got {name!r}")
    if name == "numpy":
        return np
    try:  # array_api_compat.torch imports torch itself, and only when asked for
        return importlib.import_module(f"array_api_compat.{name}")
    except ImportError as error:
        raise ValueError(f"array library {name!r} is not installed: {error}") from None


def one_minus(a: Any, out: Any = None) -> Any:
    """1 - a, written into `out` when given. NumPy does it in one pass; PyTorch's subtract
    takes no number as its first argument, so other libraries get -a + 1, which rounds
    identically (two passes)."""
    if type(a) is np.ndarray:
        return np.subtract(1.0, a, out=out)
    d = namespace(a).negative(a, out=out)  # -a
    d += 1.0
    return d


def same_place(*arrays: Any) -> bool:
    """Whether the arrays belong to one library and live on one device."""
    if all(type(a) is np.ndarray for a in arrays):  # the common case, answered fast
        return True
    try:
        namespace(*arrays)
        return len({str(device(a)) for a in arrays}) == 1
    except (TypeError, ValueError, AttributeError):  # several libraries, or not arrays
        return False


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The start of an error's message: its first line (at most `limit` characters), or the
    error's type where it has none. Libraries' messages can run to many lines."""
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:limit]


def library_name(xp: Any) -> str:
    """The name of the library behind a namespace: "numpy", "torch", "cupy", ..."""
    return str(xp.__name__).split(".")[-1]


def device(array: Any) -> Any:
    """The device `array` lives on ("cpu" for NumPy)."""
    return "cpu" if type(array) is np.ndarray else array_api_compat.device(array)


def is_numpy(array: Any) -> bool:
    """Whether `array` is a NumPy array (or NumPy scalar)."""
    return isinstance(array, (np.ndarray, np.generic))


def to_numpy(array: Any) -> NDArray[Any]:
    """A NumPy array holding `array`'s values, copied to the host if it lives on a device."""
    if is_numpy(array):
        return np.asarray(array)
    if array_api_compat.is_torch_array(array):
        return array.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def move(arrays: dict[str, Any], library: ModuleType | str, device: Any = None) -> dict[str, Any]:
    """Copies of `arrays` in `library` (module or name), on device `device` (its default if
    None), with their dtypes kept."""
    xp = library_namespace(library)
    if xp is np:
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"NumPy arrays live on the cpu, not on {device!r}")
        return {name: to_numpy(a).copy() for name, a in arrays.items()}
    place = device
    try:
        if library_name(xp) == "cupy" and isinstance(device, str) and device.startswith("cuda"):
            place = int(device.split(":")[1]) if ":" in device else None  # CuPy numbers GPUs
        moved = {
            name: xp.asarray(to_numpy(a), device=place, copy=True) for name, a in arrays.items()
        }
        for a in moved.values():  # read back, so that a device that keeps no data (torch's
            to_numpy(a)  # "meta") fails here rather than in the middle of a pass
        return moved
    # (torch raises AssertionError for "cuda" on a build without CUDA, on some paths)
    except (RuntimeError, TypeError, ValueError, NotImplementedError, AssertionError) as error:
        reason = first_line(error, 200)
        raise ValueError(f"cannot place arrays on device {device!r}: {reason}") from None
