r"""A distribution whose log-density counts a known weight times: likelihood weights per row.

.. math:: \log q(y) = w \, \log p(y), \qquad w > 0,

what NumPyro's ``handlers.scale`` does to a sample site, for one distribution. Summed over
rows, :math:`\sum_i w_i \log p(y_i \mid \theta)` is the weighted log-likelihood R's ``glm``
maximises for the Poisson and negative binomial families with prior ``weights`` (and
``MASS::glm.nb``): integer weights are frequency weights (row :math:`i` counted :math:`w_i`
times), and non-integer ones give R's estimates, log-likelihood and deviance.

Its derivatives are those of the base distribution times :math:`w`: the score
:math:`w\,s(y)`, the Hessian :math:`w\,\nabla^2\log p`, and the Fisher information registered
for it is :math:`w\, I_{\text{base}}` (R's :math:`X^\top W X` with the prior weights in
:math:`W`). The empirical Fisher then has :math:`w^2 s s^\top`, as R's ``sandwich`` does for a
weighted ``glm``. It is not a distribution of :math:`y` for :math:`w \ne 1`: it has no sampler
(Monte-Carlo Fisher and the parametric bootstrap refuse it), and the information-matrix
equality :math:`\mathbb E[w^2 s s^\top] = w I` does not hold, so :func:`fisherlab.check`
refuses it too.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from numpyro.distributions import constraints as nc

from .._errors import FisherlabArgumentError, MethodUnavailableError
from ._registry import WRAPPERS, FamilyFisher, family_fisher, register_fisher

__all__ = ["Weighted"]


class _ArgConstraints(dict[str, Any]):
    """``Weighted.arg_constraints``: ``weight``'s on the class, the base's and ``weight``'s on an instance.

    A dict on the class (NumPyro reads the class's ``__dict__`` when it collects pytree fields);
    on an instance it adds the base distribution's constraints, so support checks see them.
    """

    def __get__(self, obj: Any, cls: Any = None) -> dict[str, Any]:
        if obj is None or "base_dist" not in vars(obj):
            return self
        return {**vars(obj)["base_dist"].arg_constraints, **self}


class Weighted(nd.Distribution):
    r"""``base_dist`` with its log-density multiplied by ``weight`` (see the module docstring).

    Args:
        base_dist: any NumPyro distribution.
        weight: positive weights, broadcast against ``base_dist``'s batch shape.

    The base distribution's parameters are checked through it (``d.rate`` reads
    ``d.base_dist.rate``), with ``weight`` required positive.

    Examples:
        >>> import fisherlab as fl
        >>> d = fl.dist.Weighted(fl.dist.Poisson(2.0), 3.0)
        >>> round(float(d.log_prob(1.0)) / float(fl.dist.Poisson(2.0).log_prob(1.0)), 12)
        3.0
        >>> fl.dist.family_fisher(d).matrix.tolist()     # 3 x 1/rate
        [[1.5]]
    """

    pytree_data_fields = ("base_dist", "weight")
    arg_constraints = _ArgConstraints({"weight": nc.positive})

    def __init__(self, base_dist: nd.Distribution, weight: Any, *, validate_args: bool | None = None) -> None:
        if not isinstance(base_dist, nd.Distribution):
            raise FisherlabArgumentError(
                f"Weighted needs a distribution to weight, got {type(base_dist).__name__}"
            )
        self.base_dist = base_dist
        self.weight = weight
        batch_shape = jax.lax.broadcast_shapes(tuple(base_dist.batch_shape), jnp.shape(weight))
        super().__init__(batch_shape, base_dist.event_shape, validate_args=validate_args)

    def get_args(self) -> dict[str, Any]:
        return {**self.base_dist.get_args(), "weight": self.weight}

    def __getattr__(self, name: str) -> Any:
        # a parameter of the base distribution (its support checks and messages read it here)
        if name != "base_dist" and "base_dist" in vars(self):
            base = vars(self)["base_dist"]
            if name in base.arg_constraints:
                return getattr(base, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def support(self) -> Any:  # type: ignore[override]
        return self.base_dist.support

    def log_prob(self, value: Any) -> jax.Array:
        return jnp.asarray(self.weight) * self.base_dist.log_prob(value)

    def sample(self, key: Any, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        raise MethodUnavailableError(
            "a Weighted distribution (likelihood weights, w·log p) is not a distribution of y and has "
            "no sampler: Monte-Carlo Fisher and the parametric bootstrap are unavailable; use the "
            "closed-form Fisher (method='exact')"
        )

    @property
    def mean(self) -> Any:
        return self.base_dist.mean

    @property
    def variance(self) -> Any:
        return self.base_dist.variance


@register_fisher(Weighted)
def _weighted_fisher(d: Weighted) -> FamilyFisher:
    inner = family_fisher(d.base_dist)
    w = jnp.asarray(d.weight)[..., None, None]
    return FamilyFisher(inner.names, inner.params, w * inner.matrix)


WRAPPERS.add(Weighted)
