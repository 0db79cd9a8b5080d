r"""Models from neural-network modules: Equinox and Flax NNX.

A module maps inputs to outputs; a *likelihood* maps the outputs of all rows to the
distribution of the observations, e.g. ``lambda logits: fl.dist.Categorical(logits=logits)``.
The module's floating-point arrays become the parameter pytree, named by their attribute paths
(``layers[0].weight``, ``l1.kernel``); everything else in the module (activation functions,
integer buffers, RNG state) is held fixed. Equinox modules act on one example, so the model
maps them over the rows of ``x`` (``jax.vmap``); Flax NNX modules take the batch.

Equinox and Flax are optional (``pip install fisherlab[networks]``); these functions import
them when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from .._errors import FisherlabArgumentError, MethodUnavailableError

__all__ = ["from_equinox", "from_flax"]


def _import(name: str) -> Any:
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        package = name.split(".")[0]
        raise MethodUnavailableError(
            f"{package} is not installed: pip install fisherlab[networks] (or {package})"
        ) from exc


def _check_likelihood(likelihood: Any) -> None:
    if not callable(likelihood):
        raise FisherlabArgumentError(
            "likelihood must be a function output -> distribution, e.g. "
            f"lambda logits: fl.dist.Categorical(logits=logits); got {type(likelihood).__name__}"
        )


def from_equinox(module: Any, likelihood: Callable[[Any], Any]) -> tuple[Callable[[Any, Any], Any], Any]:
    """``(fn, params)`` of an Equinox module: ``fn(params, x) = likelihood(vmap(module)(x))``."""
    eqx = _import("equinox")
    if not isinstance(module, eqx.Module):
        raise FisherlabArgumentError(f"from_equinox needs an equinox.Module, got {type(module).__name__}")
    _check_likelihood(likelihood)
    params, static = eqx.partition(module, eqx.is_inexact_array)

    def fn(p: Any, x: Any) -> Any:
        net = eqx.combine(p, static)
        return likelihood(jax.vmap(net)(x))

    return fn, params


def from_flax(module: Any, likelihood: Callable[[Any], Any]) -> tuple[Callable[[Any, Any], Any], Any]:
    """``(fn, params)`` of a Flax NNX module: ``fn(params, x) = likelihood(module(x))``.

    ``params`` is the module's ``nnx.Param`` state as a plain nested dict (``{"l1": {"kernel":
    ...}}``); other state (batch statistics, RNG counters) is held at its current value.
    """
    nnx = _import("flax.nnx")
    if not isinstance(module, nnx.Module):
        raise FisherlabArgumentError(f"from_flax needs a flax.nnx.Module, got {type(module).__name__}")
    _check_likelihood(likelihood)
    graphdef, state, rest = nnx.split(module, nnx.Param, ...)
    treedef = jax.tree_util.tree_structure(state)
    params = nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict()
    if len(jax.tree_util.tree_leaves(params)) != len(jax.tree_util.tree_leaves(state)):  # pragma: no cover
        raise FisherlabArgumentError("from_flax: the module's parameters could not be read as a dict")

    def fn(p: Any, x: Any) -> Any:
        merged = nnx.merge(
            graphdef, jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(p)), rest
        )
        return likelihood(merged(x))

    return fn, params
