r"""Priors for maximum a posteriori fits and Laplace evidence.

A prior is either a callable ``log_prior(params) -> scalar`` (a normalised
log-density if you want :meth:`~fisherlab.FitResult.laplace` evidence), or a
pytree like ``params`` with an ``fl.dist`` distribution at every leaf, each
leaf independent: :math:`\log p(\theta) = \sum_{\text{leaf}} \log p_\text{leaf}(\theta_\text{leaf})`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.flatten_util import ravel_pytree

from .. import numeric
from .._errors import InvalidParameterError, ModelError
from ._pytree import path_name

__all__ = ["Prior"]


def _is_dist(node: Any) -> bool:
    return isinstance(node, nd.Distribution)


class Prior:
    """A checked prior: :meth:`log_density` is traceable; ``proper`` says if evidence makes sense."""

    def __init__(self, spec: Any, template: Any) -> None:
        self.spec = spec
        self.callable = callable(spec) and not _is_dist(spec)
        if self.callable:
            self.proper = True
            self._leaves: list[nd.Distribution] = []
            return
        flat, _ = jax.tree_util.tree_flatten_with_path(spec, is_leaf=_is_dist)
        by_path = {(path_name(path) or "theta"): leaf for path, leaf in flat}
        bad = [p for p, leaf in by_path.items() if not _is_dist(leaf)]
        if bad:
            raise ModelError(
                f"prior entries {bad} are not distributions; give an fl.dist distribution per parameter "
                "or a callable log_prior(params)"
            )
        paths = [path_name(path) or "theta" for path, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
        missing = [p for p in paths if p not in by_path]
        if missing:
            raise ModelError(
                f"the prior does not cover parameter(s) {missing}; give each a distribution "
                "(e.g. fl.dist.Normal(0, 10)) or pass a callable log_prior(params)"
            )
        extra = sorted(set(by_path) - set(paths))
        if extra:
            raise ModelError(f"the prior names {extra}, which are not parameters ({paths})")
        self._paths = paths
        self._leaves = [by_path[p] for p in paths]
        self.proper = all(not isinstance(d, nd.ImproperUniform) for d in self._leaves)

    def log_density(self, params: Any) -> jax.Array:
        """:math:`\\log p(\\theta)` (traceable)."""
        if self.callable:
            return jnp.asarray(self.spec(params), dtype=jnp.float64).reshape(())
        leaves = jax.tree_util.tree_leaves(params)
        return sum(
            (jnp.sum(d.log_prob(leaf)) for d, leaf in zip(self._leaves, leaves, strict=True)),
            start=jnp.zeros(()),
        )

    def negative_hessian(self, params: Any, names: list[str] | None = None) -> np.ndarray:
        r""":math:`-\nabla^2 \log p(\theta)` over the flattened parameters (the prior's curvature).

        By autodiff; a callable prior written with NumPy/SciPy (which JAX cannot trace) is
        differentiated numerically (:func:`fisherlab.numeric.hessian`, ``names`` label its errors).
        """
        flat, unravel = ravel_pytree(params)
        try:
            return -np.asarray(jax.hessian(lambda v: self.log_density(unravel(v)))(flat))
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
            res = numeric.hessian(
                lambda v: float(self.log_density(unravel(jnp.asarray(v)))), np.asarray(flat), names=names
            )
            return -res.hessian

    def check(self, params: Any) -> None:
        """Raise if ``params`` lie outside the prior's support (or the density is not finite there)."""
        if not self.callable:
            leaves = jax.tree_util.tree_leaves(params)
            for path, d, leaf in zip(self._paths, self._leaves, leaves, strict=True):
                if not bool(jnp.all(d.support(jnp.asarray(leaf)))):
                    raise InvalidParameterError(
                        f"initial value of {path} = {np.asarray(leaf)} is outside the support of its "
                        f"prior {type(d).__name__} ({d.support}); start inside it"
                    )
        value = float(self.log_density(params))
        if not np.isfinite(value):
            raise InvalidParameterError(
                f"the log-prior is {value} at the initial parameters; start where the prior is positive"
            )


def as_prior(spec: Any, template: Any) -> Prior | None:
    """``None`` stays ``None``; anything else becomes a checked :class:`Prior`."""
    if spec is None:
        return None
    if isinstance(spec, Prior):
        return spec
    if not (callable(spec) or isinstance(spec, (dict, list, tuple)) or _is_dist(spec)):
        raise ModelError(f"prior must be a callable or a pytree of distributions, got {type(spec).__name__}")
    return Prior(spec, template)


PriorLike = Callable[[Any], Any] | Any
