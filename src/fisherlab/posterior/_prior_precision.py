r"""The prior precision of a network Laplace: one number, one per layer, or one per parameter.

The prior is :math:`\theta \sim N(0, \Lambda^{-1})` with :math:`\Lambda = \operatorname{diag}(\lambda)`.
What the user gives becomes a :class:`PriorPrecision`: its ``structure`` (``"scalar"``,
``"layer"``, ``"diagonal"``), its free ``values`` and ``groups`` (the index into ``values`` of
every parameter), so :math:`\lambda = ` ``values[groups]``:

- a positive number: every parameter;
- a dict ``{layer: number}`` over all layers (``la.layers``: leaves grouped by their path without
  the last key, ``"layers[0]"``, ``"l1"``), or a sequence of one number per layer in that order;
- a pytree shaped like the parameters, or a sequence of :math:`P` numbers: one per parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from .._errors import FisherlabArgumentError, InvalidOptionError
from ..params._pytree import param_names

__all__ = ["PriorPrecision", "parse_prior_precision", "prior_of_structure"]

Layers = Sequence[tuple[str, int, int]]


class PriorPrecision(NamedTuple):
    """:math:`\\lambda` = ``values[groups]`` (see the module docstring)."""

    structure: str
    values: np.ndarray
    groups: np.ndarray

    @property
    def flat(self) -> np.ndarray:
        """:math:`\\lambda`, one per parameter."""
        return self.values[self.groups]

    def public(self, layers: Layers, params: Any) -> Any:
        """As the user writes it: a float, a dict per layer, or a pytree like the parameters."""
        if self.structure == "scalar":
            return float(self.values[0])
        if self.structure == "layer":
            return {name: float(v) for (name, _, _), v in zip(layers, self.values, strict=True)}
        leaves, treedef = jax.tree_util.tree_flatten(params)
        out, start = [], 0
        for leaf in leaves:
            size = int(np.size(leaf))
            out.append(self.values[start : start + size].reshape(np.shape(leaf)))
            start += size
        return jax.tree_util.tree_unflatten(treedef, out)


def _layer_groups(layers: Layers, p: int) -> np.ndarray:
    groups = np.empty(p, dtype=np.int64)
    for i, (_, a, b) in enumerate(layers):
        groups[a:b] = i
    return groups


def prior_of_structure(structure: str, values: np.ndarray, layers: Layers, p: int) -> PriorPrecision:
    """A :class:`PriorPrecision` of ``structure`` with free ``values`` (checked positive)."""
    values = np.asarray(values, dtype=np.float64)
    if structure == "scalar":
        groups = np.zeros(p, dtype=np.int64)
    elif structure == "layer":
        groups = _layer_groups(layers, p)
    else:
        groups = np.arange(p)
    return PriorPrecision(structure, values, groups)


def _checked(values: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        i = int(bad[0])
        raise InvalidOptionError(
            f"prior_precision of {labels[i]} is {values[i]!r}: a prior precision must be a finite number > 0 "
            "(the prior is N(0, 1/precision))"
        )
    return values


def _numbers(value: Any, what: str) -> np.ndarray:
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FisherlabArgumentError(
            f"prior_precision{' ' + what if what else ''} must be numbers, "
            f"got {type(value).__name__}: {value!r}"
        ) from exc
    return out


def _same_tree(value: Any, params: Any) -> bool:
    try:
        lv, tv = jax.tree_util.tree_flatten(value)
    except Exception:  # pragma: no cover - tree_flatten takes anything
        return False
    lp, tp = jax.tree_util.tree_flatten(params)
    return str(tv) == str(tp) and [np.shape(a) for a in lv] == [np.shape(b) for b in lp]


def parse_prior_precision(value: Any, params: Any, layers: Layers, p: int) -> PriorPrecision:
    """The user's ``prior_precision`` as a :class:`PriorPrecision` (see the module docstring).

    Raises:
        InvalidOptionError: a value that is not a finite number > 0 (the layer or parameter is
            named); a sequence whose length is neither 1, the number of layers nor :math:`P`; a
            dict that misses layers or names one that does not exist.
        FisherlabArgumentError: something that is not numbers.
    """
    names = [name for name, _, _ in layers]
    if isinstance(value, bool) or value is None:
        raise FisherlabArgumentError(f"prior_precision must be a number > 0, got {value!r}")
    if np.ndim(value) == 0 and not isinstance(value, Mapping):
        number = _numbers(value, "")
        return prior_of_structure("scalar", _checked(number.reshape(1), ["every parameter"]), layers, p)
    if _same_tree(value, params) and not isinstance(value, (list, tuple, np.ndarray)):
        flat = np.concatenate([_numbers(a, "entries").ravel() for a in jax.tree_util.tree_leaves(value)])
        return prior_of_structure("diagonal", _checked(flat, param_names(params)), layers, p)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in names]
        missing = [k for k in names if k not in value]
        if unknown or missing:
            raise InvalidOptionError(
                "prior_precision as a dict gives one number per layer, and "
                + (f"{unknown[0]!r} is not a layer" if unknown else f"misses layer {missing[0]!r}")
                + f"; the layers are {names}"
            )
        values = np.array([float(_numbers(value[k], f"of layer {k}")) for k in names])
        return prior_of_structure("layer", _checked(values, names), layers, p)
    flat = _numbers(value, "").ravel()
    if flat.size == 1:
        return prior_of_structure("scalar", _checked(flat, ["every parameter"]), layers, p)
    if flat.size == len(layers):
        return prior_of_structure("layer", _checked(flat, names), layers, p)
    if flat.size == p:
        return prior_of_structure("diagonal", _checked(flat, param_names(params)), layers, p)
    raise InvalidOptionError(
        f"prior_precision has {flat.size} values: give 1, one per layer ({len(layers)}: {names[:6]}"
        f"{'...' if len(names) > 6 else ''}) or one per parameter ({p})"
    )
