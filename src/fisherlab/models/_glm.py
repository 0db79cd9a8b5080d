r"""Generalized linear models (McCullagh & Nelder 1989), the way R's ``glm`` states them.

A GLM for rows :math:`i = 1..N` with design row :math:`x_i \in \mathbb{R}^p`,
optional offset :math:`o_i` and coefficients :math:`\beta \in \mathbb{R}^p` is

.. math:: \eta_i = x_i^\top\beta + o_i, \qquad \mu_i = \mathbb{E}[y_i] = g^{-1}(\eta_i),
          \qquad \operatorname{Var}[y_i] = \phi\, V(\mu_i) / w_i,

with link :math:`g`, variance function :math:`V`, dispersion :math:`\phi` and
prior weight :math:`w_i` (the number of trials of a binomial row, else 1). The
log-likelihood is the total :math:`\sum_i \log p(y_i\mid\mu_i, \cdot)` of the
family's density (no 1/N). The families (distribution, extra parameter,
:math:`V`, :math:`\phi`, links) are the records of :mod:`fisherlab.models._families`
(:data:`FAMILIES`), the links those of :data:`LINKS`.

Standard errors: :func:`~fisherlab.fit` gives maximum-likelihood standard
errors (``res.se()``: inverse observed information, with the dispersion
estimated by ML). R's ``summary.glm`` reports instead
:math:`\hat\phi\,(X^\top W X)^{-1}`, with :math:`W` the Fisher-scoring (IRLS)
weights at :math:`\hat\beta` and :math:`\hat\phi` the Pearson estimate
:math:`\sum_i w_i (y_i-\hat\mu_i)^2/V(\hat\mu_i)/(N-p)` (1 for binomial and
Poisson): :func:`glm_covariance` and :func:`glm_dispersion` reproduce that.

References:
    P. McCullagh and J. A. Nelder (1989), *Generalized Linear Models*, 2nd ed.,
    Chapman & Hall. R Core Team, ``?glm``, ``?family``, ``?summary.glm``;
    W. N. Venables and B. D. Ripley (2002), *Modern Applied Statistics with S*,
    4th ed., Springer (``MASS::glm.nb``). J. R. Michael, W. R. Schucany and
    R. W. Haas (1976), "Generating random variates using transformations with
    multiple roots", *The American Statistician* 30, 88-90.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, final

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ModelError
from .._precision import float64, float64_methods
from ..data import prepare_data
from ..dist import Distribution, Weighted
from ..model import Model
from ..params import param_names
from ._design import Design, check_params, design
from ._families import FAMILIES, Family, FamilyRecord, as_family
from ._links import LINKS, Link

__all__ = ["GLM", "check_glm", "coefficient_index", "glm", "linear_regression"]


@float64_methods
@final
class GLM(Model):
    r"""A generalized linear model (a :class:`~fisherlab.Model`); ``GLM(...)`` takes :func:`glm`'s arguments.

    Attributes:
        family: the :class:`Family`.
        link: the :class:`Link`.
        dispersion_name: the extra parameter leaf (``"sigma"``, ``"shape"``,
            ``"alpha"``) when it is fitted, else ``None``.
        fixed: ``{name: value}`` of an extra parameter held fixed (``fixed=``).
    """

    def __init__(
        self,
        family: str | Family,
        link: str | Link | None = None,
        *,
        fixed: Mapping[str, float] | None = None,
    ) -> None:
        family = as_family(family)
        record = FAMILIES[family]
        self.family, self.link = family, record.choose_link(link)
        leaf = record.extra.name if record.extra is not None else None
        self.fixed: dict[str, float] = {}
        for name, value in (fixed or {}).items():
            if name != leaf:
                raise ModelError(
                    f"fixed={dict(fixed or {})!r}: the {family.value} family has "
                    + (f"only the extra parameter {leaf!r} to fix" if leaf else "no extra parameter to fix")
                )
            v = float(value)
            boundary = family is Family.NEGATIVE_BINOMIAL and v == 0.0  # the Poisson limit
            if not (math.isfinite(v) and (v > 0 or boundary)):
                zero = " (or 0 for the negative binomial's Poisson limit)" if leaf == "alpha" else ""
                raise ModelError(f"fixed {name} must be a positive finite number{zero}, got {value!r}")
            self.fixed[name] = v
        self.dispersion_name: str | None = None if (leaf is None or leaf in self.fixed) else leaf
        self._leaf = leaf
        self._record: FamilyRecord = record
        constraints = {self.dispersion_name: "positive"} if self.dispersion_name else None
        super().__init__(self._distribution, constraints=constraints)
        if type(self) is GLM:  # a subclass may change the function: its kernels stay in memory
            self.state.token = f"fisherlab.models.{self!r}"

    def __repr__(self) -> str:
        extra = f", {self.dispersion_name}" if self.dispersion_name else ""
        fixed = f", fixed={self.fixed}" if self.fixed else ""
        return f"GLM(family={self.family.value!r}, link={self.link.value!r}{fixed}; params: beta (p,){extra})"

    # ------------------------------------------------------------------ pieces
    def _extra(self, params: Mapping[str, Any]) -> Any:
        if self._leaf is None:
            return None
        if self._leaf in self.fixed:
            return jnp.asarray(self.fixed[self._leaf])
        return jnp.asarray(params[self._leaf])

    def _eta(self, params: Any, x: Any) -> tuple[jax.Array, Design]:
        d = design(x, self.family)
        beta = check_params(params, jnp.shape(d.X)[-1], self.family, self.dispersion_name)
        return d.X @ beta + d.offset, d

    @property
    def poisson_limit(self) -> bool:
        """A negative binomial with ``alpha`` fixed at 0: the Poisson model, its boundary."""
        return self.fixed.get(self._leaf or "", None) == 0.0

    def _distribution(self, params: Any, x: Any) -> Distribution:
        eta, d = self._eta(params, x)
        weights = None if d.weights is None else jnp.asarray(d.weights)
        if self.poisson_limit:
            base = FAMILIES[Family.POISSON].distribution(eta, LINKS[self.link], None, d.trials)
        else:
            extra = self._extra(params)
            per_weight = self._record.extra.per_weight if self._record.extra is not None else None
            if weights is not None and per_weight is not None:  # row i has dispersion phi / w_i
                extra, weights = per_weight(extra, weights), None
            base = self._record.distribution(eta, LINKS[self.link], extra, d.trials)
        # otherwise row i's log-likelihood counts w_i times
        return base if weights is None else Weighted(base, weights)

    # ------------------------------------------------------------------ public helpers
    def mean(self, params: Any, x: Any) -> np.ndarray:
        r"""Fitted means :math:`\mu_i = g^{-1}(x_i^\top\beta + o_i)` of all rows, shape ``(N,)``.

        For a binomial model this is the success probability per trial (multiply
        by ``trials`` for the expected count).
        """
        data = prepare_data(None, x, require_y=False)
        eta, _ = self._eta(params, data.x)
        return np.asarray(LINKS[self.link].inv(eta))

    def variance_function(self, mu: Any, params: Any = None) -> np.ndarray:
        r"""The variance function :math:`V(\mu)`; for the negative binomial :math:`\mu + \alpha\mu^2`.

        Args:
            mu: means, any shape.
            params: the fit's parameters (used for the negative binomial's α
                unless it is fixed).
        """
        extra = self._record.extra
        value = None
        if extra is not None and extra.in_variance:
            value = float(np.asarray(self._extra(params or {})))
        return self._record.variance(np.asarray(mu, dtype=np.float64), value)

    def ml_dispersion(self, params: Any) -> float:
        r"""The dispersion :math:`\phi` the extra parameter implies.

        :math:`\sigma^2` (gaussian), :math:`1/\nu` (Gamma), :math:`1/\lambda` (inverse Gaussian), else 1.
        """
        extra = self._record.extra
        if extra is None or extra.ml_dispersion is None:
            return 1.0
        return extra.ml_dispersion(float(np.asarray(self._extra(params))))


@float64
def glm(family: str, link: str | None = None, *, fixed: Mapping[str, float] | None = None) -> GLM:
    r"""A generalized linear model as a :class:`~fisherlab.Model`.

    .. math:: \eta_i = x_i^\top\beta + o_i,\quad \mu_i = g^{-1}(\eta_i),\quad
              \ell(\theta) = \sum_{i=1}^N \log p(y_i \mid \mu_i, \cdot)

    Covariates ``x`` are the design matrix ``(N, p)`` (include a column of ones
    for an intercept), or a dict ``{"X": design, "trials": n_i, "offset": o_i}``
    with the optional keys ``"trials"`` (binomial: ``y`` is then the number of
    successes out of ``n_i``; with a plain design, ``y`` is a 0/1 outcome) and
    ``"offset"`` (a known term added to :math:`\eta`, e.g. ``log(exposure)``).

    Parameters (the ``init`` of :func:`~fisherlab.fit`; :func:`glm_start`
    computes good ones): ``{"beta": (p,)}`` plus the family's extra parameter,
    kept positive by a ``"positive"`` constraint:

    - ``gaussian``: ``sigma``, the standard deviation,
      :math:`\log p = -\tfrac12\log(2\pi\sigma^2) - (y-\mu)^2/(2\sigma^2)`;
    - ``gamma``: ``shape`` ν, :math:`y \sim \mathrm{Gamma}(\nu, \text{rate } \nu/\mu)`,
      :math:`\operatorname{Var} = \mu^2/\nu`;
    - ``inverse_gaussian``: ``shape`` λ, :math:`\operatorname{Var} = \mu^3/\lambda`
      (:class:`InverseGaussian`);
    - ``negative_binomial``: ``alpha`` α, :math:`\operatorname{Var} = \mu + \alpha\mu^2`
      (R's ``MASS::glm.nb`` reports ``theta`` = 1/α);
    - ``binomial``: :math:`\log p = \log\binom{n}{y} + y\log\mu + (n-y)\log(1-\mu)`
      (with the logit link evaluated as :math:`y\eta - n\log(1+e^\eta)`, smooth
      everywhere), and ``poisson``: :math:`\log p = y\log\mu - \mu - \log y!`,
      have no extra parameter.

    Args:
        family: ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``,
            ``"inverse_gaussian"`` or ``"negative_binomial"`` (R's spellings
            ``"Gamma"``, ``"inverse.gaussian"``, ``"negative.binomial"`` work too).
        link: ``None`` for R's default link of the family, or one R allows for it:
            ``"identity"``, ``"log"``, ``"logit"``, ``"probit"``, ``"cauchit"``,
            ``"cloglog"``, ``"inverse"`` (1/μ), ``"inverse_squared"`` (1/μ², alias
            ``"1/mu^2"``), ``"sqrt"`` (see the module table).
        fixed: hold the extra parameter at a known value instead of fitting it,
            e.g. ``{"alpha": 1.0}`` for R's ``negative.binomial(theta = 1)`` or
            ``{"sigma": 2.0}``; the parameters are then ``{"beta"}`` only.
            ``{"alpha": 0.0}`` is the negative binomial's boundary, the Poisson model
            (where :func:`fit_glm` lands when the data show no overdispersion).

    Returns:
        A :class:`GLM` (a :class:`~fisherlab.Model`).

    Raises:
        ModelError: unknown family or link, a link the family does not take
            (the message lists the valid ones), or a bad ``fixed``.

    Examples:
        Poisson regression on counts; R: ``glm(y ~ x, family = poisson)``.

        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab import models
        >>> X = np.column_stack([np.ones(5), [0.0, 1.0, 2.0, 3.0, 4.0]])
        >>> y = np.array([1.0, 2.0, 2.0, 5.0, 9.0])
        >>> m = models.glm("poisson")
        >>> res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
        >>> res.params["beta"].round(4).tolist()
        [-0.0979, 0.5661]
        >>> models.glm("gamma", "logit")
        Traceback (most recent call last):
        ...
        fisherlab._errors.ModelError: the gamma family does not take the logit link (as in R); ...
    """
    return GLM(family, link, fixed=fixed)


@float64
def linear_regression() -> GLM:
    r"""Linear regression, :math:`y_i \sim N(x_i^\top\beta, \sigma^2)` with σ unknown: ``glm("gaussian")``.

    Parameters ``{"beta": (p,), "sigma": ()}``; ``x`` is the design matrix.
    The ML estimate of σ is :math:`\sqrt{\mathrm{RSS}/N}`; R's ``lm`` and
    :func:`glm_covariance` use :math:`\hat\sigma^2 = \mathrm{RSS}/(N-p)`.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> y = np.array([1.0, 3.0, 4.0, 7.0])
        >>> from fisherlab import models
        >>> m = models.linear_regression()
        >>> res = fl.fit(m, y, X, init={"beta": np.zeros(2), "sigma": 1.0})
        >>> res.params["beta"].round(6).tolist(), round(float(res.params["sigma"]) ** 2, 6)   # RSS/N
        ([0.9, 1.9], 0.175)
    """
    return glm(Family.GAUSSIAN.value)


def check_glm(model: Any, caller: str) -> GLM:
    """``model`` if it is a :class:`GLM`, else ``TypeError`` naming ``caller``."""
    if not isinstance(model, GLM):
        raise TypeError(f"{caller} needs a model from fisherlab.models.glm, got {type(model).__name__}")
    return model


def coefficient_index(params: Any) -> np.ndarray:
    """Positions of ``beta[0] .. beta[p-1]`` among a GLM's flattened parameters (``param_names`` order)."""
    return np.array([i for i, n in enumerate(param_names(params)) if n.startswith("beta[")], dtype=np.int64)
