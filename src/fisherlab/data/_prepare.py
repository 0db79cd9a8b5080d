"""Validation of observations and covariates before any computation.

Data are checked on the host, with NumPy, before they reach a compiled kernel,
so the checks never vanish under ``jit``: every leaf must be numeric and
finite and every leaf of ``y`` and ``x`` must share the leading axis N. The
error names the field (``y``, ``x['dose']``, ``x[:, 2]``) and the first bad row.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pandas as pd

from .._errors import InvalidDataError
from ..params._pytree import path_name

__all__ = ["Data", "prepare_data"]


class Data:
    """Validated observations ``y`` and covariates ``x`` (pytrees of float64 arrays), N rows."""

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
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidDataError(
            f"{field} is not numeric (dtype {arr.dtype}); encode categories as numbers first"
        )
    if arr.ndim == 0:
        raise InvalidDataError(f"{field} is a scalar; observations need a leading axis of rows")
    arr = np.asarray(arr, dtype=np.float64)  # no copy when it already is float64
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        row = int(bad[0])
        where = f"row {row}" + (f", column {tuple(int(b) for b in bad[1:])}" if arr.ndim > 1 else "")
        raise InvalidDataError(
            f"{field} {where} is {arr[tuple(bad)]}: data must be finite; drop or impute "
            "missing values before calling fisherlab"
        )
    return arr


def _to_device(arr: np.ndarray) -> jax.Array:
    """One copy into a 64-byte-aligned buffer fisherlab owns, handed to JAX without another copy.

    XLA adopts an aligned host buffer instead of copying it; ``jnp.asarray`` of a
    NumPy array (16-byte aligned) copies, slowly. Owning the copy keeps later
    changes to the caller's array out of fisherlab's data.
    """
    raw = np.empty(arr.nbytes + 64, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64
    out = raw[offset : offset + arr.nbytes].view(np.float64).reshape(arr.shape)
    np.copyto(out, arr)
    return jax.device_put(out)


def _leaves(prefix: str, tree: Any) -> list[tuple[str, np.ndarray]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(_field(prefix, path), _check_leaf(_field(prefix, path), leaf)) for path, leaf in flat]


def prepare_data(y: Any, x: Any = None, *, require_y: bool = True) -> Data:
    """Check ``y`` and ``x`` and convert them to float64 JAX arrays.

    Raises:
        InvalidDataError: a non-numeric or non-finite value (first bad row and
            field named), leaves whose row counts disagree, or no rows.
    """
    y, x = _to_tree(y), _to_tree(x)
    if y is None and require_y:
        raise InvalidDataError("y is required: pass the observations, one row per observation")
    checked_y = _leaves("y", y) if y is not None else []
    checked_x = _leaves("x", x) if x is not None else []
    lengths = {field: arr.shape[0] for field, arr in checked_y + checked_x}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{f} has {n}" for f, n in lengths.items())
        raise InvalidDataError(f"rows of y and x disagree: {detail}; every field needs the same N rows")
    if lengths and next(iter(lengths.values())) == 0:
        raise InvalidDataError("no rows: y and x are empty")
    n = next(iter(lengths.values())) if lengths else 0

    def rebuild(tree: Any, checked: list[tuple[str, np.ndarray]]) -> Any:
        if tree is None:
            return None
        treedef = jax.tree_util.tree_structure(tree)
        return jax.tree_util.tree_unflatten(treedef, [_to_device(a) for _, a in checked])

    return Data(rebuild(y, checked_y), rebuild(x, checked_x), n)
