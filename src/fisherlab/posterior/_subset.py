r"""Which parameters a network Laplace is over: all, the last layer, or named groups (a subnetwork).

The others stay at their values :math:`\theta^*`: the posterior is
:math:`p(\theta_S \mid D, \theta^*_{\bar S})`, the curvature that of the model as a function of
:math:`\theta_S` alone (Daxberger et al. 2021, subnetwork inference; the last layer is the common
case, Kristiadi et al. 2020). The chosen leaves become a parameter pytree of their own, keyed by
their layer (the path without its last key) and last key, so that their names are those of the
full model (``layers[2].weight[0,1]``), and a model of them alone calls the user's model with the
others fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from .._errors import FisherlabArgumentError, InvalidOptionError, MethodUnavailableError
from ..model._model import Model
from ..operators._exact import Exact, layer_name
from ..params._pytree import path_name

__all__ = ["Subset", "choose_subset"]


class Subset(NamedTuple):
    """The posterior's parameters and how to put them back into the model's.

    Attributes:
        model: the model as a function of the chosen parameters (the model itself for ``"all"``).
        params: the chosen parameters (a pytree).
        full: chosen parameters (a pytree like ``params``) -> all of the model's parameters.
        leaves: the paths of the chosen leaves (``[]`` for ``"all"``).
    """

    model: Model
    params: Any
    full: Callable[[Any], Any]
    leaves: list[str]


def _identity(params: Any) -> Any:
    return params


def _last_layer(model: Model, params: Any, data: Callable[[], Any], x64: bool) -> list[int]:
    exact = Exact(
        model, params, data(), kind="ggn", num_samples=1, seed=0, mean=False, x64=x64, defer_head=True
    )
    tagged = exact.layers()
    if tagged is None:
        raise MethodUnavailableError(
            "subset='last_layer' needs a dense or convolutional layer that fisherlab finds in the model "
            "(a weight used once by a product with the activations), and it found none; pass the "
            "parameters' names instead, e.g. subset=['head.weight', 'head.bias']"
        )
    last = tagged.layers[-1]
    return [last.w] if last.b is None else [last.w, last.b]


def _named(paths: list[str], wanted: Any) -> list[int]:
    if isinstance(wanted, str) or not all(isinstance(n, str) for n in wanted) or not wanted:
        raise FisherlabArgumentError(
            f"subset must be 'all', 'last_layer' or a non-empty list of parameter names, got {wanted!r}"
        )
    chosen: set[int] = set()
    for name in wanted:
        hits = [i for i, p in enumerate(paths) if p == name or p.startswith((f"{name}.", f"{name}["))]
        if not hits:
            layers = sorted({p.rsplit(".", 1)[0] for p in paths})
            raise InvalidOptionError(
                f"subset: {name!r} names no parameter; the parameters are {paths[:8]}"
                f"{'...' if len(paths) > 8 else ''} (layers {layers[:8]}{'...' if len(layers) > 8 else ''})"
            )
        chosen.update(hits)
    return sorted(chosen)


def choose_subset(model: Model, params: Any, subset: Any, data: Callable[[], Any], x64: bool) -> Subset:
    """The :class:`Subset` of ``subset`` (``"all"``, ``"last_layer"`` or a list of names); ``data()``
    gives the rows (prepared, or a chunk source), asked for only to find the last layer.

    Raises:
        InvalidOptionError: a name that matches no parameter, or an unknown string.
        MethodUnavailableError: ``"last_layer"`` where no layer is found.
        FisherlabArgumentError: something else.
    """
    if isinstance(subset, str) and subset == "all":
        return Subset(model, params, _identity, [])
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [path_name(p) for p, _ in flat]
    if isinstance(subset, str) and subset == "last_layer":
        chosen = _last_layer(model, params, data, x64)
    elif isinstance(subset, str):
        raise InvalidOptionError(
            f"subset={subset!r} is not one of ['all', 'last_layer'] nor a list of parameter names"
        )
    elif isinstance(subset, (list, tuple)):
        chosen = _named(paths, list(subset))
    else:
        raise FisherlabArgumentError(
            f"subset must be 'all', 'last_layer' or a list of parameter names, got {subset!r}"
        )
    if len(chosen) == len(paths):
        return Subset(model, params, _identity, paths)
    leaves = [leaf for _, leaf in flat]
    keys: list[tuple[str, str | None]] = []
    sub: dict[str, Any] = {}
    for i in chosen:
        path = flat[i][0]
        if len(path) == 1:
            keys.append((paths[i], None))
            sub[paths[i]] = leaves[i]
        else:
            group, last = layer_name(path), path_name(path[-1:]).lstrip(".")
            keys.append((group, last))
            sub.setdefault(group, {})[last] = leaves[i]

    def full(s: Any) -> Any:
        out = list(leaves)
        for i, (group, last) in zip(chosen, keys, strict=True):
            out[i] = s[group] if last is None else s[group][last]
        return jax.tree_util.tree_unflatten(treedef, out)

    fn = model.fn
    return Subset(
        Model(lambda s, x: fn(full(s), x), derivatives="autodiff"), sub, full, [paths[i] for i in chosen]
    )
