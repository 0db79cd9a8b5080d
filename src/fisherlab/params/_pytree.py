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

from .._errors import FisherlabArgumentError, InvalidParameterError
from .._precision import float64

__all__ = [
    "ParamCodec",
    "as_params",
    "flatten_params",
    "named_values",
    "param_names",
    "path_name",
    "tree_signature",
]


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


@float64
def param_names(params: Any) -> list[str]:
    """Names of the flattened parameter vector, in the order fisherlab uses.

    Args:
        params: a pytree of scalars and arrays (dicts, lists, tuples, ...).

    Returns:
        One name per scalar element: ``"sigma"``, ``"beta[0]"``, ``"W[1,2]"``,
        nested dict keys joined with ``"."``.

    Examples:
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


def named_values(params: Any) -> dict[str, float]:
    """The parameters as a flat dict name -> float, in :func:`param_names` order (a forecast's center).

    Examples:
        >>> import numpy as np
        >>> named_values({"sigma": 2.0, "beta": np.array([1.0, -1.0])})
        {'beta[0]': 1.0, 'beta[1]': -1.0, 'sigma': 2.0}
    """
    values = [np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in jax.tree_util.tree_leaves(params)]
    flat = np.concatenate(values) if values else np.zeros(0)
    return dict(zip(param_names(params), flat.tolist(), strict=True))


def _element_name(base: str, shape: tuple[int, ...], flat_index: int) -> str:
    """The :func:`param_names` name of element ``flat_index`` (C order) of a leaf named ``base``."""
    if not shape:
        return base
    return f"{base}[{','.join(str(int(i)) for i in np.unravel_index(flat_index, shape))}]"


def _leaf(base: str, leaf: Any, keep_host: bool = False) -> Any:
    """One parameter leaf as a JAX array of a real floating dtype (see :func:`as_params`)."""
    if leaf is None:
        raise FisherlabArgumentError(
            f"parameter {base} is None; every parameter needs a real number (or an array of them)"
        )
    if isinstance(leaf, jax.Array):
        arr: Any = leaf  # stays on its device: no copy to the host for the dtype rules
    else:
        try:
            arr = np.asarray(leaf)
        except Exception as exc:  # ragged lists and the like
            raise FisherlabArgumentError(
                f"parameter {base} cannot be read as an array ({type(exc).__name__}: {exc}); "
                "params must be a pytree of real numbers and arrays"
            ) from exc
    dtype = arr.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        host = np.asarray(arr).ravel()
        imag = np.flatnonzero(host.imag != 0)
        at = int(imag[0]) if imag.size else 0
        raise FisherlabArgumentError(
            f"parameter {_element_name(base, np.shape(arr), at)} is complex ({host[at]}); fisherlab "
            "works with real parameters: pass real numbers (split a complex quantity into its real "
            "and imaginary parts as two parameters)"
        )
    if dtype == np.bool_:
        raise FisherlabArgumentError(
            f"parameter {base} is a bool ({np.asarray(arr).ravel()[0]}); parameters are real numbers "
            "(write 1.0 / 0.0 if that is what you mean)"
        )
    if jnp.issubdtype(dtype, jnp.integer):
        arr = np.asarray(arr, dtype=np.float64)
    elif not jnp.issubdtype(dtype, jnp.floating):
        given = repr(leaf)
        given = given if len(given) <= 40 else given[:37] + "..."
        raise FisherlabArgumentError(
            f"parameter {base} is not numeric ({given}, dtype {dtype}); params must be a pytree of "
            "real numbers and arrays"
        )
    finite = jnp.isfinite(arr) if isinstance(arr, jax.Array) else np.isfinite(arr)
    if not bool(finite.all()):
        host = np.asarray(arr).ravel()
        bad = int(np.flatnonzero(~np.isfinite(host))[0])
        raise InvalidParameterError(
            f"parameter {_element_name(base, np.shape(arr), bad)} = {host[bad]} is not finite; "
            "pass finite starting values"
        )
    return arr if keep_host and isinstance(arr, np.ndarray) else jnp.asarray(arr)


def as_params(params: Any, *, host: bool = False) -> Any:
    """Return ``params`` with every leaf a real floating JAX array; reject anything else.

    ``host=True`` leaves host (NumPy) leaves as checked NumPy arrays, for a caller that hands
    them straight to one compiled call (which transfers them itself; a separate transfer per
    leaf costs more than the call's own work for a small model).

    Dtypes: a floating leaf keeps its dtype (``float32`` stays ``float32``: pass float32
    parameters AND float32 data and every computation on the data runs in float32, with
    JAX's promotion rules otherwise: one float64 leaf or data field makes it float64);
    Python numbers and integer leaves become JAX's default float, ``float64`` in fisherlab's
    public calls, which run with 64-bit mode on (:mod:`fisherlab._precision`). A JAX array leaf
    stays on its device.

    Raises:
        InvalidParameterError: a leaf holds NaN/inf (the element is named), or ``params``
            holds no numbers at all (``{}``, ``[]``).
        FisherlabArgumentError: ``params`` is ``None``; a leaf that is complex (the element
            and value are named: fisherlab works with real parameters), a bool, ``None``, a
            string or another non-number.

    Examples:
        >>> import numpy as np
        >>> from fisherlab._precision import x64_scope
        >>> from fisherlab.params import as_params
        >>> with x64_scope():  # as inside fisherlab's public calls
        ...     p = as_params({"a": 1, "w": np.ones(2, dtype=np.float32)})
        >>> str(p["a"].dtype), str(p["w"].dtype)
        ('float64', 'float32')
        >>> as_params({"a": 1 + 2j})
        Traceback (most recent call last):
        ...
        fisherlab._errors.FisherlabArgumentError: parameter a is complex ((1+2j)); fisherlab works ...
    """
    if params is None:
        raise FisherlabArgumentError(
            "params is None; pass a pytree of real numbers, e.g. {'mu': 0.0, 'sigma': 1.0}"
        )
    # ``None`` marks the fixed parts of an Equinox module's parameters (eqx.partition); anywhere
    # else it is a parameter without a value
    module = any(c.__module__.split(".")[0] == "equinox" for c in type(params).__mro__)
    flat, treedef = jax.tree_util.tree_flatten_with_path(
        params, is_leaf=None if module else lambda v: v is None
    )
    if not flat:
        raise InvalidParameterError(
            f"params holds no parameters ({params!r}); pass a pytree of real numbers, "
            "e.g. {'mu': 0.0, 'sigma': 1.0}"
        )
    leaves = [_leaf(path_name(path) or "theta", leaf, host) for path, leaf in flat]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def flatten_params(params: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Flatten a parameter pytree to a vector (the leaves' promoted dtype) and return the inverse map."""
    flat, unravel = ravel_pytree(params)
    return jnp.asarray(flat), unravel


def tree_signature(tree: Any) -> Any:
    """A hashable key for a pytree's structure, leaf shapes and dtypes (caches of compiled work)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((np.shape(a), str(getattr(a, "dtype", type(a).__name__))) for a in leaves)


class ParamCodec:
    """A parameter pytree as a flat float64 NumPy vector and back, in :func:`param_names` order.

    The one codec of the NumPy side (black-box models receive NumPy parameters; JAX code uses
    :func:`flatten_params`, the same order). Picklable, so a process pool can use it.

    Examples:
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
