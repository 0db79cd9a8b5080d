"""Parameter pytrees: deterministic flattening and element names.

Every curvature fisherlab returns is a matrix over the *flattened* parameter
vector. The order is the one of :func:`jax.flatten_util.ravel_pytree`: leaves in
``jax.tree_util`` order (dict keys sorted), each leaf in C order. Names follow
that order: ``"sigma"`` for a scalar, ``"beta[0]"`` for a vector element,
``"W[1,2]"`` for a matrix element, nested dict keys joined with ``"."`` and
sequence positions written ``"[i]"`` (``"layers[0].W[1,2]"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._errors import InvalidParameterError

__all__ = ["ParamCodec", "as_params", "flatten_params", "param_names", "path_name", "tree_signature"]


def path_name(path: tuple[Any, ...]) -> str:
    name = ""
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            name = f"{name}.{key.key}" if name else str(key.key)
        elif isinstance(key, jax.tree_util.SequenceKey):
            name = f"{name}[{key.idx}]"
        elif isinstance(key, jax.tree_util.GetAttrKey):
            name = f"{name}.{key.name}" if name else key.name
        else:  # FlattenedIndexKey and custom nodes
            name = f"{name}[{getattr(key, 'key', key)}]"
    return name


def param_names(params: Any) -> list[str]:
    """Names of the flattened parameter vector, in the order fisherlab uses.

    Args:
        params: a pytree of scalars and arrays (dicts, lists, tuples, ...).

    Returns:
        One name per scalar element: ``"sigma"``, ``"beta[0]"``, ``"W[1,2]"``,
        nested dict keys joined with ``"."``.

    Example:
        >>> import fisherlab as fl
        >>> import numpy as np
        >>> fl.param_names({"sigma": 1.0, "beta": np.zeros(2), "W": np.zeros((1, 2))})
        ['W[0,0]', 'W[0,1]', 'beta[0]', 'beta[1]', 'sigma']
    """
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    names: list[str] = []
    for path, leaf in leaves:
        base = path_name(path) or "theta"
        shape = np.shape(leaf)
        if shape == ():
            names.append(base)
            continue
        for idx in itertools.product(*(range(s) for s in shape)):
            names.append(f"{base}[{','.join(map(str, idx))}]")
    return names


def as_params(params: Any) -> Any:
    """Return ``params`` with every leaf a float64 JAX array; reject non-finite values.

    Raises:
        InvalidParameterError: a leaf holds NaN/inf or is not numeric.
    """
    names = iter(param_names(params))

    def convert(leaf: Any) -> jax.Array:
        try:
            arr = np.asarray(leaf, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"parameter leaf {leaf!r} is not numeric; params must be a pytree of numbers"
            ) from exc
        leaf_names = [next(names) for _ in range(arr.size if arr.shape else 1)]
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
            raise InvalidParameterError(
                f"parameter {leaf_names[bad]} = {arr.ravel()[bad]} is not finite; pass finite starting values"
            )
        return jnp.asarray(arr)

    return jax.tree_util.tree_map(convert, params)


def flatten_params(params: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Flatten a parameter pytree to a float64 vector and return the inverse map."""
    flat, unravel = ravel_pytree(params)
    return jnp.asarray(flat, dtype=jnp.float64), unravel


def tree_signature(tree: Any) -> Any:
    """A hashable key for a pytree's structure, leaf shapes and dtypes (caches of compiled work)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((np.shape(a), str(getattr(a, "dtype", type(a).__name__))) for a in leaves)


class ParamCodec:
    """A parameter pytree as a flat float64 NumPy vector and back, in :func:`param_names` order.

    The one codec of the NumPy side (black-box models receive NumPy parameters; JAX code uses
    :func:`flatten_params`, the same order). Picklable, so a process pool can use it.

    Example:
        >>> import numpy as np
        >>> from fisherlab.params import ParamCodec
        >>> c = ParamCodec({"b": np.zeros(2), "a": 1.0})
        >>> c.names, c.flat.tolist()
        (['a', 'b[0]', 'b[1]'], [1.0, 0.0, 0.0])
        >>> c.to_numpy_tree(np.array([2.0, 3.0, 4.0]))["b"].tolist()
        [3.0, 4.0]
    """

    def __init__(self, params: Any) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten(params)
        self.shapes = [np.shape(leaf) for leaf in leaves]
        self.splits = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        self.names = param_names(params)
        self.flat = self.to_flat(params)

    @staticmethod
    def to_flat(tree: Any) -> np.ndarray:
        """The leaves of ``tree`` raveled and concatenated, float64."""
        leaves = jax.tree_util.tree_leaves(tree)
        if not leaves:
            return np.zeros(0)
        return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in leaves])

    def to_numpy_tree(self, v: np.ndarray) -> Any:
        """The pytree at the flat point ``v``, with NumPy leaves (``np.float64`` scalars)."""
        parts = np.split(np.asarray(v, dtype=np.float64), self.splits)
        leaves = [
            np.float64(p[0]) if s == () else p.reshape(s).copy()
            for p, s in zip(parts, self.shapes, strict=True)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)
