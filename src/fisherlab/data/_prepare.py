"""Validation of observations and covariates before any computation.

Data are checked on the host, with NumPy, before they reach a compiled kernel,
so the checks never vanish under ``jit``: every leaf must be real, numeric and
finite and every leaf of ``y`` and ``x`` must share the leading axis N. The
error names the field (``y``, ``x['dose']``, ``x[:, 2]``) and the first bad row.

Dtypes are kept (:func:`data_dtype`): a floating leaf keeps its precision (float32 data
with float32 parameters compute in float32), integer leaves stay integers (class labels
and counts, group indices in ``x``) as the canonical JAX integer (int64), and booleans
become integers 0/1. Complex data are refused.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._errors import InvalidDataError
from ..params._pytree import path_name

__all__ = ["Data", "as_observations", "data_dtype", "prepare_data"]


def data_dtype(dtype: Any) -> np.dtype:
    """The dtype fisherlab keeps for a data leaf of ``dtype``.

    Floating dtypes are kept (``float32`` stays ``float32``); integers (signed or unsigned)
    and booleans become the canonical JAX integer (``int64`` under fisherlab's x64 mode:
    unsigned arithmetic would wrap, ``Categorical`` needs integer labels, ``bool`` is not
    accepted by every ``log_prob``).
    """
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(dtype)
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def as_observations(tree: Any) -> Any:
    """Draws of ``y`` (traced or not) in the dtypes :func:`data_dtype` gives, e.g. from ``sample``."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=data_dtype(jnp.result_type(a))), tree)


class Data:
    """Validated observations ``y`` and covariates ``x``, N rows.

    Pytrees of JAX arrays, or of aligned NumPy arrays for the data of one call
    (:func:`prepare_data` with ``transient=True``); dtypes by :func:`data_dtype`.
    """

    __slots__ = ("n", "x", "y")

    def __init__(self, y: Any, x: Any, n: int) -> None:
        self.y = y
        self.x = x
        self.n = n


def _to_tree(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return {str(c): value[c].to_numpy() for c in value.columns}
    if isinstance(value, pd.Series):
        return value.to_numpy()
    return value


def _field(prefix: str, path: tuple[Any, ...]) -> str:
    name = path_name(path)
    if not name:
        return prefix
    if name.startswith("["):
        return prefix + name
    return f"{prefix}[{name!r}]" if "." not in name else f"{prefix}.{name}"


def _check_leaf(field: str, leaf: Any) -> np.ndarray:
    try:
        arr = np.asarray(leaf)
    except Exception as exc:  # ragged lists and the like
        raise InvalidDataError(f"{field} cannot be read as an array: {exc}") from exc
    if arr.ndim == 0:
        raise InvalidDataError(f"{field} is a scalar; observations need a leading axis of rows")
    if arr.dtype in _KEPT_FLOATS:  # the common case, without the dtype lattice's lookups
        _check_finite(field, arr)
        return arr
    if np.issubdtype(arr.dtype, np.complexfloating):
        imag = np.argwhere(arr.imag != 0)
        bad = imag[0] if imag.size else np.zeros(arr.ndim, dtype=int)
        raise InvalidDataError(
            f"{field} {_where(arr, bad)} is complex ({arr[tuple(bad)]}; dtype {arr.dtype}): fisherlab works "
            "with real data; pass the real part (or the real and imaginary parts as two fields)"
        )
    if not (arr.dtype == np.bool_ or jnp.issubdtype(arr.dtype, jnp.number)):
        raise InvalidDataError(
            f"{field} is not numeric (dtype {arr.dtype}); encode categories as numbers first"
        )
    arr = np.asarray(arr, dtype=data_dtype(arr.dtype))  # no copy when the dtype is kept
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        return arr  # integers are finite
    _check_finite(field, arr)
    return arr


#: Floating dtypes kept as they are (:func:`data_dtype`).
_KEPT_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _check_finite(field: str, arr: np.ndarray) -> None:
    if np.isfinite(arr).all():
        return
    bad = np.argwhere(~np.isfinite(arr))[0]
    raise InvalidDataError(
        f"{field} {_where(arr, bad)} is {arr[tuple(bad)]}: data must be finite; drop or impute "
        "missing values before calling fisherlab"
    )


def _where(arr: np.ndarray, index: np.ndarray) -> str:
    """``"row 3"`` or ``"row 3, column (2,)"`` for an element of a data leaf."""
    row = int(index[0])
    return f"row {row}" + (f", column {tuple(int(b) for b in index[1:])}" if arr.ndim > 1 else "")


def _aligned_copy(arr: np.ndarray) -> np.ndarray:
    """A copy of ``arr`` in a 64-byte-aligned, C-ordered buffer fisherlab owns."""
    raw = np.empty(arr.nbytes + 64, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64
    out = raw[offset : offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
    np.copyto(out, arr)
    return out


def _to_device(arr: np.ndarray) -> jax.Array:
    """One copy into a 64-byte-aligned buffer fisherlab owns, handed to JAX without another copy.

    XLA adopts an aligned host buffer instead of copying it; ``jnp.asarray`` of a
    NumPy array (16-byte aligned) copies, slowly. Owning the copy keeps later
    changes to the caller's array out of fisherlab's data.
    """
    return jax.device_put(_aligned_copy(arr))


def _for_call(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a compiled kernel takes it without a copy: 64-byte aligned and C-ordered.

    For data that serve one call (``transient=True``): the caller's array itself when it is
    already aligned (it is read while the call runs, and the call returns only when its
    results are on the host), else one aligned copy. A NumPy argument goes through ``jit``'s
    C++ path, where ``jax.device_put`` would add tens of microseconds of Python per leaf.
    """
    if arr.flags.c_contiguous and arr.ctypes.data % 64 == 0:
        return arr
    return _aligned_copy(arr)


def _leaves(prefix: str, tree: Any) -> list[tuple[str, Any, np.ndarray]]:
    """``(field, given leaf, checked host array)`` for every leaf of ``tree``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for path, leaf in flat:
        field = _field(prefix, path)
        out.append((field, leaf, _check_leaf(field, leaf)))
    return out


def _kept(leaf: Any, arr: np.ndarray, transient: bool) -> Any:
    """The array a kernel receives for a checked leaf (see :func:`prepare_data`)."""
    if isinstance(leaf, jax.Array) and leaf.dtype == arr.dtype:
        return leaf  # immutable already: no copy
    return _for_call(arr) if transient else _to_device(arr)


def prepare_data(y: Any, x: Any = None, *, require_y: bool = True, transient: bool = False) -> Data:
    """Check ``y`` and ``x`` and convert them to JAX arrays, keeping their dtypes.

    Dtypes (:func:`data_dtype`): floating leaves keep their precision (float32 stays float32:
    with float32 parameters too, the model function sees float32 and the results are
    computed in float32; with float64 parameters JAX promotes to float64), integer leaves
    stay integers (int64: class labels for ``Categorical``, counts, group indices used to
    index parameters in ``x``), booleans become integers 0/1.

    Storage: a JAX array of the kept dtype is used as given (it is immutable). Otherwise the
    data are copied once into buffers fisherlab owns, so that later changes to the caller's
    arrays never reach a result that keeps its data (a fit). ``transient=True`` is for data
    that serve one call whose results are on the host when it returns (``fl.loglik``,
    ``fl.observed_information``, ...): the leaves stay NumPy arrays, 64-byte aligned (the
    caller's own array when it already is), which a compiled kernel reads without a copy on
    the CPU.

    Raises:
        InvalidDataError: a non-numeric, complex or non-finite value (first bad row and
            field named), leaves whose row counts disagree, or no rows.

    Examples:
        >>> import numpy as np
        >>> from fisherlab.data import prepare_data
        >>> d = prepare_data(np.array([0, 2, 1]), np.ones(3, dtype=np.float32))
        >>> str(d.y.dtype), str(d.x.dtype), d.n
        ('int64', 'float32', 3)
        >>> prepare_data(np.array([1.0, 2 + 1j]))
        Traceback (most recent call last):
        ...
        fisherlab._errors.InvalidDataError: y row 1 is complex ((2+1j); dtype complex128): fisherlab works ...
    """
    y, x = _to_tree(y), _to_tree(x)
    if y is None and require_y:
        raise InvalidDataError("y is required: pass the observations, one row per observation")
    checked_y = _leaves("y", y) if y is not None else []
    checked_x = _leaves("x", x) if x is not None else []
    lengths = {field: arr.shape[0] for field, _, arr in checked_y + checked_x}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{f} has {n}" for f, n in lengths.items())
        raise InvalidDataError(f"rows of y and x disagree: {detail}; every field needs the same N rows")
    if lengths and next(iter(lengths.values())) == 0:
        raise InvalidDataError("no rows: y and x are empty")
    n = next(iter(lengths.values())) if lengths else 0

    def rebuild(tree: Any, checked: list[tuple[str, Any, np.ndarray]]) -> Any:
        if tree is None:
            return None
        treedef = jax.tree_util.tree_structure(tree)
        return jax.tree_util.tree_unflatten(treedef, [_kept(leaf, a, transient) for _, leaf, a in checked])

    return Data(rebuild(y, checked_y), rebuild(x, checked_x), n)
