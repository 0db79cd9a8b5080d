r"""Generalized linear models (McCullagh & Nelder 1989), the way R's ``glm`` states them.

A GLM for rows :math:`i = 1..N` with design row :math:`x_i \in \mathbb{R}^p`,
optional offset :math:`o_i` and coefficients :math:`\beta \in \mathbb{R}^p` is

.. math:: \eta_i = x_i^\top\beta + o_i, \qquad \mu_i = \mathbb{E}[y_i] = g^{-1}(\eta_i),
          \qquad \operatorname{Var}[y_i] = \phi\, V(\mu_i) / w_i,

with link :math:`g`, variance function :math:`V`, dispersion :math:`\phi` and
prior weight :math:`w_i` (the number of trials of a binomial row, else 1). The
log-likelihood is the total :math:`\sum_i \log p(y_i\mid\mu_i, \cdot)` of the
family's density (no 1/N). Families, their parameters in fisherlab (the
dispersion leaf is fitted on the log scale by :func:`~fisherlab.fit`, so it
stays positive), R's default link and the links R accepts:

======================  ==========================  =========  ====  ========================
family                  distribution; extra         V(μ)       φ     links (R's default first)
                        parameter
======================  ==========================  =========  ====  ========================
``gaussian``            Normal(μ, σ); ``sigma``     1          σ²    identity, log, inverse
``binomial``            Bernoulli, or Binomial      μ(1−μ)     1     logit, probit, cauchit,
                        with n trials                                log, cloglog
``poisson``             Poisson(μ)                  μ          1     log, identity, sqrt
``gamma``               Gamma(ν, rate ν/μ);         μ²         1/ν   inverse, identity, log
                        ``shape`` ν
``inverse_gaussian``    IG(μ, λ); ``shape`` λ       μ³         1/λ   inverse_squared (1/μ²),
                                                                     inverse, identity, log
``negative_binomial``   NB2(μ, 1/α); ``alpha`` α    μ + αμ²    1     log, sqrt, identity
======================  ==========================  =========  ====  ========================

The negative binomial is R's ``MASS::glm.nb`` with ``theta = 1/alpha``
(statsmodels' ``NegativeBinomial(alpha)``): for fixed α it is a one-parameter
exponential family with :math:`\phi = 1`. The inverse Gaussian has density
:math:`\sqrt{\lambda/(2\pi y^3)}\,\exp\{-\lambda(y-\mu)^2/(2\mu^2 y)\}`
(:class:`InverseGaussian`, registered with its closed-form Fisher information).

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

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, final

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.scipy.special import log_ndtr, ndtr, ndtri

from .._errors import InvalidDataError, ModelError
from ..data._prepare import prepare_data
from ..dist._families import Bernoulli, Binomial, InverseGaussian, NegativeBinomial2
from ..inference._result import FitResult
from ..information._fisher import fisher
from ..information._matrix import Covariance
from ..model._model import Model

__all__ = [
    "GLM",
    "Dispersion",
    "Family",
    "Link",
    "glm",
    "glm_covariance",
    "glm_dispersion",
    "glm_start",
    "linear_regression",
]


# --------------------------------------------------------------------------- links and families


class Link(str, enum.Enum):
    r"""Link functions :math:`\eta = g(\mu)`."""

    IDENTITY = "identity"
    LOG = "log"
    LOGIT = "logit"
    PROBIT = "probit"
    CAUCHIT = "cauchit"
    CLOGLOG = "cloglog"
    INVERSE = "inverse"
    INVERSE_SQUARED = "inverse_squared"
    SQRT = "sqrt"


class Family(str, enum.Enum):
    """GLM families (R's ``family`` objects; ``negative_binomial`` is ``MASS::negative.binomial``)."""

    GAUSSIAN = "gaussian"
    BINOMIAL = "binomial"
    POISSON = "poisson"
    GAMMA = "gamma"
    INVERSE_GAUSSIAN = "inverse_gaussian"
    NEGATIVE_BINOMIAL = "negative_binomial"


class Dispersion(str, enum.Enum):
    """Which dispersion :math:`\\phi` :func:`glm_dispersion` and :func:`glm_covariance` use."""

    AUTO = "auto"
    PEARSON = "pearson"
    ML = "ml"


class _LinkFns(NamedTuple):
    fun: Callable[[Any], Any]  # g(mu)
    inv: Callable[[Any], Any]  # g^-1(eta)
    mu_eta: Callable[[Any], Any]  # d mu / d eta


_LINKS: dict[Link, _LinkFns] = {
    Link.IDENTITY: _LinkFns(lambda m: m, lambda e: e, jnp.ones_like),
    Link.LOG: _LinkFns(jnp.log, jnp.exp, jnp.exp),
    Link.LOGIT: _LinkFns(
        lambda m: jnp.log(m) - jnp.log1p(-m),
        jax.nn.sigmoid,
        lambda e: jax.nn.sigmoid(e) * jax.nn.sigmoid(-e),
    ),
    Link.PROBIT: _LinkFns(ndtri, ndtr, lambda e: jnp.exp(-0.5 * e**2) / math.sqrt(2.0 * math.pi)),
    Link.CAUCHIT: _LinkFns(
        lambda m: jnp.tan(math.pi * (m - 0.5)),
        lambda e: 0.5 + jnp.arctan(e) / math.pi,
        lambda e: 1.0 / (math.pi * (1.0 + e**2)),
    ),
    Link.CLOGLOG: _LinkFns(
        lambda m: jnp.log(-jnp.log1p(-m)),
        lambda e: -jnp.expm1(-jnp.exp(e)),
        lambda e: jnp.exp(e - jnp.exp(e)),
    ),
    Link.INVERSE: _LinkFns(lambda m: 1.0 / m, lambda e: 1.0 / e, lambda e: -1.0 / e**2),
    Link.INVERSE_SQUARED: _LinkFns(
        lambda m: 1.0 / m**2, lambda e: 1.0 / jnp.sqrt(e), lambda e: -0.5 * e**-1.5
    ),
    Link.SQRT: _LinkFns(jnp.sqrt, jnp.square, lambda e: 2.0 * e),
}


# log(mu / (1 - mu)) of the binomial links, from log(mu) and log(1 - mu) computed without
# rounding mu to 0 or 1: the log-mass y*logits - n*softplus(logits) then stays finite (and its
# derivatives defined) far into the tails, where probs= would give log(0).
_BINOMIAL_LOGITS: dict[Link, Callable[[Any], Any]] = {
    Link.LOGIT: lambda e: e,
    Link.PROBIT: lambda e: log_ndtr(e) - log_ndtr(-e),
    # mu = atan2(1, -eta)/pi and 1 - mu = atan2(1, eta)/pi, both accurate in the tails
    Link.CAUCHIT: lambda e: jnp.log(jnp.arctan2(1.0, -e)) - jnp.log(jnp.arctan2(1.0, e)),
    # mu = 1 - exp(-e^eta): log(1 - mu) = -e^eta
    Link.CLOGLOG: lambda e: jnp.log(-jnp.expm1(-jnp.exp(e))) + jnp.exp(e),
}


class _FamilySpec(NamedTuple):
    links: tuple[Link, ...]  # R's accepted links, default first
    dispersion: str | None  # name of the extra parameter leaf
    r_summary_pearson: bool  # does R's summary estimate phi (True) or take it as 1?


_FAMILIES: dict[Family, _FamilySpec] = {
    Family.GAUSSIAN: _FamilySpec((Link.IDENTITY, Link.LOG, Link.INVERSE), "sigma", True),
    Family.BINOMIAL: _FamilySpec(
        (Link.LOGIT, Link.PROBIT, Link.CAUCHIT, Link.LOG, Link.CLOGLOG), None, False
    ),
    Family.POISSON: _FamilySpec((Link.LOG, Link.IDENTITY, Link.SQRT), None, False),
    Family.GAMMA: _FamilySpec((Link.INVERSE, Link.IDENTITY, Link.LOG), "shape", True),
    Family.INVERSE_GAUSSIAN: _FamilySpec(
        (Link.INVERSE_SQUARED, Link.INVERSE, Link.IDENTITY, Link.LOG), "shape", True
    ),
    Family.NEGATIVE_BINOMIAL: _FamilySpec((Link.LOG, Link.SQRT, Link.IDENTITY), "alpha", False),
}

# R's spellings, accepted as aliases (matched after lower-casing).
_FAMILY_ALIASES = {"inverse.gaussian": "inverse_gaussian", "negative.binomial": "negative_binomial"}
_LINK_ALIASES = {"1/mu^2": "inverse_squared"}


def _as_family(family: Any) -> Family:
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        key = family.strip().lower()
        try:
            return Family(_FAMILY_ALIASES.get(key, key))
        except ValueError:
            pass
    raise ModelError(f"unknown GLM family {family!r}; valid families: {[f.value for f in Family]}")


def _as_link(family: Family, link: Any) -> Link:
    allowed = _FAMILIES[family].links
    if link is None:
        return allowed[0]
    choice: Link | None = None
    if isinstance(link, Link):
        choice = link
    elif isinstance(link, str):
        key = link.strip().lower()
        try:
            choice = Link(_LINK_ALIASES.get(key, key))
        except ValueError:
            choice = None
    if choice is None:
        raise ModelError(f"unknown link {link!r}; valid links: {[lk.value for lk in Link]}")
    if choice not in allowed:
        raise ModelError(
            f"the {family.value} family does not take the {choice.value} link (as in R); "
            f"valid links for {family.value}: {[lk.value for lk in allowed]}"
        )
    return choice


# --------------------------------------------------------------------------- covariates


class _Design(NamedTuple):
    X: Any  # (..., p)
    trials: Any  # (...,) or None
    offset: Any  # (...,) or 0.0


_X_KEYS = frozenset({"X", "trials", "offset"})


def _design(x: Any, family: Family) -> _Design:
    """Split the covariates into design, trials and offset, checking their structure."""
    if x is None:
        raise ModelError("a GLM needs covariates: pass the design matrix X (N, p) as x")
    if isinstance(x, Mapping):
        unknown = sorted(set(map(str, x)) - _X_KEYS)
        if "X" not in x or unknown:
            raise ModelError(
                "GLM covariates are the design matrix (N, p) or a dict with keys 'X' (design), "
                f"'trials' (binomial) and 'offset'; got keys {sorted(map(str, x))}. A pandas "
                "DataFrame is read as a dict of columns: pass df.to_numpy() instead"
            )
        design, trials, offset = x["X"], x.get("trials"), x.get("offset", 0.0)
    else:
        design, trials, offset = x, None, 0.0
    if trials is not None and family is not Family.BINOMIAL:
        raise ModelError(f"'trials' is for the binomial family, not {family.value}")
    if jnp.ndim(design) < 2:
        raise ModelError(
            f"the GLM design matrix must be 2-D (N, p), got shape {jnp.shape(design)}: "
            "add a column axis (X[:, None]) and the intercept column of ones"
        )
    return _Design(design, trials, offset)


def _check_params(params: Any, p: int, family: Family, free: str | None) -> jax.Array:
    expected = {"beta"} | ({free} if free else set())
    if not isinstance(params, Mapping) or set(params) != expected:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ModelError(
            f"glm({family.value!r}) takes parameters {sorted(expected)} (beta of shape ({p},)), got {got}"
        )
    beta = params["beta"]
    if jnp.shape(beta) != (p,):
        raise ModelError(f"beta must have shape ({p},), one per design column; got {jnp.shape(beta)}")
    return jnp.asarray(beta)


# --------------------------------------------------------------------------- the model


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
        family = _as_family(family)
        self.family, self.link = family, _as_link(family, link)
        leaf = _FAMILIES[family].dispersion
        self.fixed: dict[str, float] = {}
        for name, value in (fixed or {}).items():
            if name != leaf:
                raise ModelError(
                    f"fixed={dict(fixed or {})!r}: the {family.value} family has "
                    + (f"only the extra parameter {leaf!r} to fix" if leaf else "no extra parameter to fix")
                )
            v = float(value)
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"fixed {name} must be a positive finite number, got {value!r}")
            self.fixed[name] = v
        self.dispersion_name: str | None = None if (leaf is None or leaf in self.fixed) else leaf
        self._leaf = leaf
        constraints = {self.dispersion_name: "positive"} if self.dispersion_name else None
        super().__init__(self._distribution, constraints=constraints)

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

    def _eta(self, params: Any, x: Any) -> tuple[jax.Array, _Design]:
        d = _design(x, self.family)
        beta = _check_params(params, jnp.shape(d.X)[-1], self.family, self.dispersion_name)
        return d.X @ beta + d.offset, d

    def _distribution(self, params: Any, x: Any) -> nd.Distribution:
        eta, d = self._eta(params, x)
        extra = self._extra(params)
        if self.family is Family.BINOMIAL:
            if self.link is Link.LOG:  # mu = e^eta must stay below 1: probs, so that mu > 1 is reported
                mu = _LINKS[self.link].inv(eta)
                return Bernoulli(probs=mu) if d.trials is None else Binomial(d.trials, probs=mu)
            logits = _BINOMIAL_LOGITS[self.link](eta)
            return Bernoulli(logits=logits) if d.trials is None else Binomial(d.trials, logits=logits)
        mu = _LINKS[self.link].inv(eta)
        if self.family is Family.GAUSSIAN:
            return nd.Normal(mu, extra)
        if self.family is Family.POISSON:
            return nd.Poisson(mu)
        if self.family is Family.GAMMA:
            return nd.Gamma(extra, extra / mu)
        if self.family is Family.INVERSE_GAUSSIAN:
            return InverseGaussian(mu, extra)
        return NegativeBinomial2(mu, 1.0 / extra)

    # ------------------------------------------------------------------ public helpers
    def mean(self, params: Any, x: Any) -> np.ndarray:
        r"""Fitted means :math:`\mu_i = g^{-1}(x_i^\top\beta + o_i)` of all rows, shape ``(N,)``.

        For a binomial model this is the success probability per trial (multiply
        by ``trials`` for the expected count).
        """
        data = prepare_data(None, x, require_y=False)
        eta, _ = self._eta(params, data.x)
        return np.asarray(_LINKS[self.link].inv(eta))

    def variance_function(self, mu: Any, params: Any = None) -> np.ndarray:
        r"""The variance function :math:`V(\mu)`; for the negative binomial :math:`\mu + \alpha\mu^2`.

        Args:
            mu: means, any shape.
            params: the fit's parameters (used for the negative binomial's α
                unless it is fixed).
        """
        alpha = None
        if self.family is Family.NEGATIVE_BINOMIAL:
            alpha = float(np.asarray(self._extra(params or {})))
        return _variance(self.family, np.asarray(mu, dtype=np.float64), alpha)

    def ml_dispersion(self, params: Any) -> float:
        r"""The dispersion :math:`\phi` the extra parameter implies.

        :math:`\sigma^2` (gaussian), :math:`1/\nu` (Gamma), :math:`1/\lambda` (inverse Gaussian), else 1.
        """
        if self.family is Family.GAUSSIAN:
            return float(np.asarray(self._extra(params))) ** 2
        if self.family in (Family.GAMMA, Family.INVERSE_GAUSSIAN):
            return 1.0 / float(np.asarray(self._extra(params)))
        return 1.0


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

    Returns:
        A :class:`GLM` (a :class:`~fisherlab.Model`).

    Raises:
        ModelError: unknown family or link, a link the family does not take
            (the message lists the valid ones), or a bad ``fixed``.

    Example:
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


def linear_regression() -> GLM:
    r"""Linear regression, :math:`y_i \sim N(x_i^\top\beta, \sigma^2)` with σ unknown: ``glm("gaussian")``.

    Parameters ``{"beta": (p,), "sigma": ()}``; ``x`` is the design matrix.
    The ML estimate of σ is :math:`\sqrt{\mathrm{RSS}/N}`; R's ``lm`` and
    :func:`glm_covariance` use :math:`\hat\sigma^2 = \mathrm{RSS}/(N-p)`.

    Example:
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


# --------------------------------------------------------------------------- starting values


def _variance(family: Family, mu: np.ndarray, alpha: float | None) -> np.ndarray:
    if family is Family.GAUSSIAN:
        return np.ones_like(mu)
    if family is Family.BINOMIAL:
        return mu * (1.0 - mu)
    if family in (Family.POISSON, Family.NEGATIVE_BINOMIAL):
        return mu if alpha is None else mu + alpha * mu**2
    if family is Family.GAMMA:
        return mu**2
    return mu**3


def _host_design(model: GLM, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design (N, p), trials (N,) (ones when absent) and offset (N,) as NumPy arrays."""
    d = _design(x, model.family)
    design = np.asarray(d.X, dtype=np.float64)
    n = design.shape[0]
    trials = np.ones(n) if d.trials is None else np.asarray(d.trials, dtype=np.float64)
    offset = np.broadcast_to(np.asarray(d.offset, dtype=np.float64), (n,))
    return design, trials, offset


# Links whose mean is defined only on one side of eta = 0 for the family: (family, link) -> side.
# "below": eta < 0 (binomial log link, mu = e^eta < 1); "above": eta > 0 (mu = eta or 1/eta
# or 1/sqrt(eta) positive).
_ETA_SIDE: dict[tuple[Family, Link], str] = {
    (Family.BINOMIAL, Link.LOG): "below",
    **{(f, Link.IDENTITY): "above" for f in (Family.POISSON, Family.NEGATIVE_BINOMIAL, Family.GAMMA)},
    (Family.INVERSE_GAUSSIAN, Link.IDENTITY): "above",
    (Family.GAMMA, Link.INVERSE): "above",
    (Family.INVERSE_GAUSSIAN, Link.INVERSE): "above",
    (Family.INVERSE_GAUSSIAN, Link.INVERSE_SQUARED): "above",
}


def _into_domain(
    model: GLM, beta: np.ndarray, design: np.ndarray, offset: np.ndarray, eta0: np.ndarray
) -> np.ndarray:
    """Move the intercept so that every row's eta is inside the link's domain (R would stop here).

    Only for links defined on one side of 0, when the design has a constant column: its
    coefficient is shifted until the most extreme row sits at 5% of the typical |eta| of the
    starting means inside the boundary. Otherwise ``beta`` is returned as it is.
    """
    side = _ETA_SIDE.get((model.family, model.link))
    if side is None:
        return beta
    eta = design @ beta + offset
    margin = 0.05 * float(np.mean(np.abs(eta0)))
    sign = 1.0 if side == "above" else -1.0
    worst = float(np.min(sign * eta))
    if worst >= margin or not np.isfinite(worst) or margin <= 0:
        return beta
    constant = np.flatnonzero(np.all(design == design[:1], axis=0) & (design[0] != 0))
    if constant.size == 0:
        return beta
    k = int(constant[0])
    beta = beta.copy()
    beta[k] += sign * (margin - worst) / design[0, k]
    return beta


def _check_model(model: Any, caller: str) -> GLM:
    if not isinstance(model, GLM):
        raise TypeError(f"{caller} needs a model from fisherlab.models.glm, got {type(model).__name__}")
    return model


def glm_start(model: GLM, y: Any, x: Any) -> dict[str, Any]:
    r"""Starting values for :func:`~fisherlab.fit`: R's ``mustart`` and one Fisher-scoring step.

    As R's ``glm.fit``: start from :math:`\mu^{(0)}` (binomial
    :math:`(n y/n + 1/2)/(n+1)` on the proportion scale, Poisson :math:`y + 0.1`,
    negative binomial :math:`y + [y=0]/6`, otherwise :math:`y`), take the working
    response :math:`z = \eta^{(0)} - o + (y-\mu^{(0)})/\mu'(\eta^{(0)})` and weights
    :math:`w = n\,\mu'(\eta^{(0)})^2/V(\mu^{(0)})`, and solve the weighted least
    squares problem for :math:`\beta`. For a link defined on one side of
    :math:`\eta = 0` only (binomial ``log``; ``identity`` for positive means;
    ``inverse``, ``inverse_squared``), a constant design column's coefficient
    is then shifted, if needed, so that every row starts inside the domain
    (where R would stop and ask for starting values). The extra parameter starts at its
    moment estimate from the resulting :math:`\mu` (σ from the mean squared
    residual; shape from the Pearson dispersion; α from the excess variance,
    at least 0.01).

    Args:
        model: a :class:`GLM` from :func:`glm`.
        y: observations ``(N,)``.
        x: the covariates as for :func:`glm`.

    Returns:
        ``{"beta": ndarray (p,), <extra>: float}``, the structure ``fit`` expects.

    Raises:
        InvalidDataError: NaN/inf in ``y`` or ``x`` (row named), or a ``y`` for
            which the link's starting value is undefined (e.g. ``y <= 0`` with
            a log link for the gaussian family).

    Example:
        >>> import numpy as np
        >>> from fisherlab.models import glm, glm_start
        >>> X = np.column_stack([np.ones(4), [1.0, 2.0, 3.0, 4.0]])
        >>> start = glm_start(glm("gamma", "log"), np.array([1.0, 2.0, 2.5, 4.0]), X)
        >>> sorted(start), start["beta"].round(3).tolist()
        (['beta', 'shape'], [-0.347, 0.438])
    """
    model = _check_model(model, "glm_start")
    data = prepare_data(y, x)
    yv = np.asarray(data.y, dtype=np.float64).reshape(-1)
    design, trials, offset = _host_design(model, data.x)
    fns = _LINKS[model.link]
    fam = model.family
    if fam is Family.BINOMIAL:
        mu0 = (yv + 0.5) / (trials + 1.0)
    elif fam is Family.POISSON:
        mu0 = yv + 0.1
    elif fam is Family.NEGATIVE_BINOMIAL:
        mu0 = yv + (yv == 0) / 6.0
    else:
        mu0 = yv
    with np.errstate(all="ignore"):
        eta0 = np.asarray(fns.fun(jnp.asarray(mu0)))
        deriv = np.asarray(fns.mu_eta(jnp.asarray(eta0)))
        # the negative binomial with alpha free starts from the Poisson weights, as MASS::glm.nb
        variance = _variance(fam, mu0, model.fixed.get("alpha"))
        z = eta0 - offset + (yv / trials - mu0) / deriv  # binomial: y on the proportion scale
        w = trials * deriv**2 / variance
    bad = ~(np.isfinite(z) & np.isfinite(w) & (w > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidDataError(
            f"y at row {row} = {yv[row]} has no starting value on the {model.link.value} link of the "
            f"{fam.value} family (R's glm would ask for starting values too); give init= yourself"
        )
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(design * sw[:, None], z * sw, rcond=None)[0]
    beta = _into_domain(model, beta, design, offset, eta0)
    start: dict[str, Any] = {"beta": beta}
    name = model.dispersion_name
    if name is None:
        return start
    mu = np.asarray(fns.inv(jnp.asarray(design @ beta + offset)))
    resid2 = (yv - mu) ** 2
    n, p = design.shape
    if fam is Family.GAUSSIAN:
        value = float(np.sqrt(np.mean(resid2)))
    elif fam is Family.NEGATIVE_BINOMIAL:
        value = float(np.sum(resid2 - mu) / np.sum(mu**2))
        value = max(value, 0.01) if np.isfinite(value) else 1.0
    else:
        phi = float(np.sum(resid2 / model.variance_function(mu)) / max(n - p, 1))
        value = 1.0 / phi
    start[name] = value if (np.isfinite(value) and value > 0) else 1.0
    return start


# --------------------------------------------------------------------------- R's dispersion and covariance


def _as_dispersion(value: Any) -> Dispersion | float:
    if isinstance(value, str):
        try:
            return Dispersion(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        if math.isfinite(v) and v > 0:
            return v
    raise ValueError(
        f"dispersion={value!r} is not one of {[d.value for d in Dispersion]} or a positive number"
    )


def _check_result(result: Any, caller: str) -> tuple[GLM, FitResult]:
    if not isinstance(result, FitResult):
        raise TypeError(f"{caller} needs the result of fl.fit, got {type(result).__name__}")
    return _check_model(result.model, caller), result


def _pearson(model: GLM, result: FitResult) -> float:
    y = np.asarray(result.data.y, dtype=np.float64).reshape(-1)
    design, trials, _ = _host_design(model, result.data.x)
    mu = model.mean(result.params, result.data.x)
    resid = y - trials * mu
    chi2 = float(np.sum(resid**2 / (trials * model.variance_function(mu, result.params))))
    n, p = design.shape
    if n <= p:
        raise ValueError(f"the Pearson dispersion needs more rows than coefficients (N = {n}, p = {p})")
    return chi2 / (n - p)


def glm_dispersion(result: FitResult, method: str = "auto") -> float:
    r"""The dispersion :math:`\hat\phi` of a fitted GLM, as R's ``summary.glm`` reports it.

    .. math:: \hat\phi_{\text{Pearson}} = \frac{1}{N-p}\sum_{i=1}^N
              \frac{w_i\,(y_i/w_i - \hat\mu_i)^2}{V(\hat\mu_i)}

    (:math:`w_i` the binomial trials, else 1; :math:`p` the number of
    coefficients; :math:`V` as in the module table, with :math:`\hat\alpha` for
    the negative binomial).

    Args:
        result: a fit of a :class:`GLM`.
        method: ``"auto"`` (R's ``summary.glm``: 1 for binomial and Poisson, and
            for the negative binomial as ``MASS::glm.nb`` reports it; Pearson for
            gaussian, Gamma, inverse Gaussian), ``"pearson"`` (always the Pearson
            estimate: R's quasi-families ``quasibinomial``/``quasipoisson``, or
            ``glm(family = negative.binomial(theta))``), or ``"ml"`` (the
            maximum-likelihood value implied by the fitted extra parameter:
            :math:`\hat\sigma^2`, :math:`1/\hat\nu`, :math:`1/\hat\lambda`; 1 for the others).

    Returns:
        :math:`\hat\phi` (float).

    Raises:
        TypeError: ``result`` is not a fit of a :class:`GLM`.
        ValueError: unknown ``method``; Pearson with :math:`N \le p`.

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab.models import glm, glm_dispersion, glm_start
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> y = np.array([1.0, 3.0, 4.0, 7.0])
        >>> m = glm("gaussian")
        >>> res = fl.fit(m, y, X, init=glm_start(m, y, X))
        >>> round(glm_dispersion(res), 6), round(glm_dispersion(res, "ml"), 6)   # RSS/(N-p), RSS/N
        (0.35, 0.175)
    """
    model, result = _check_result(result, "glm_dispersion")
    choice = _as_dispersion(method)
    if not isinstance(choice, Dispersion):
        raise ValueError(f"method must be one of {[d.value for d in Dispersion]}, got {method!r}")
    if choice is Dispersion.ML:
        return model.ml_dispersion(result.params)
    if choice is Dispersion.AUTO and not _FAMILIES[model.family].r_summary_pearson:
        return 1.0
    return _pearson(model, result)


def glm_covariance(result: FitResult, dispersion: str | float = "auto") -> Covariance:
    r"""Covariance of :math:`\hat\beta` as R's ``summary.glm`` gives it: :math:`\hat\phi\,(X^\top W X)^{-1}`.

    :math:`W = \operatorname{diag}\big(w_i\,\mu'(\eta_i)^2/V(\mu_i)\big)` are the
    Fisher-scoring (IRLS) weights at the estimate. Since the expected Fisher
    information of :math:`\beta` with the dispersion known is
    :math:`X^\top W X/\phi`, this is computed as
    :math:`\hat\phi\,\phi_{\text{fit}}^{-1}\,F_{\beta\beta}^{-1}`, with
    :math:`F_{\beta\beta}` the β-block of :func:`fisherlab.fisher` at the
    estimate and :math:`\phi_{\text{fit}}` the dispersion the fitted extra
    parameter implies.

    Which standard error is which:

    - ``glm_covariance(res)`` (``dispersion="auto"``): R's ``summary(glm(...))``
      and statsmodels' ``GLM(...).fit()``; for the negative binomial R's
      ``summary(MASS::glm.nb(...))`` (φ = 1, α treated as known).
    - ``glm_covariance(res, "pearson")``: the quasi-likelihood covariance
      (R's ``quasipoisson``/``quasibinomial``; ``glm(family = negative.binomial(theta))``).
    - ``glm_covariance(res, "ml")``: the ML dispersion, equal to the β-block of
      ``res.cov("expected")`` (mean and dispersion parameters are orthogonal).
    - ``res.se()`` / ``res.cov()``: inverse *observed* information with the
      dispersion fitted by ML. For a canonical link (and the gaussian with the
      identity link) its β-block equals ``"ml"`` here; it is smaller than R's by
      the factor :math:`\sqrt{\hat\phi_{ML}/\hat\phi_{\text{Pearson}}}`
      (:math:`\sqrt{(N-p)/N}` for the gaussian). Non-canonical links differ
      further, since observed and expected information differ there.

    Args:
        result: a maximum-likelihood fit of a :class:`GLM` (any prior is ignored).
        dispersion: ``"auto"``, ``"pearson"``, ``"ml"`` (see :func:`glm_dispersion`)
            or a positive number :math:`\phi`.

    Returns:
        :class:`~fisherlab.Covariance` over ``beta[0] .. beta[p-1]``.

    Raises:
        TypeError: ``result`` is not a fit of a :class:`GLM`.
        ValueError: a bad ``dispersion``.
        SingularInformationError: :math:`X^\top W X` is singular (collinear
            columns, named).

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab.models import glm, glm_covariance, glm_start
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> y = np.array([1.0, 3.0, 4.0, 7.0])
        >>> m = glm("gaussian")
        >>> res = fl.fit(m, y, X, init=glm_start(m, y, X))
        >>> glm_covariance(res).matrix.round(6).tolist()   # 0.35 (X^T X)^-1, as lm()
        [[0.245, -0.105], [-0.105, 0.07]]
        >>> round(glm_covariance(res).se()["beta[1]"] / res.se()["beta[1]"], 6)   # sqrt(N/(N-p))
        1.414214
    """
    model, result = _check_result(result, "glm_covariance")
    choice = _as_dispersion(dispersion)
    phi = choice if isinstance(choice, float) else glm_dispersion(result, choice.value)
    info = fisher(model, result.params, result.data.x)
    if model.dispersion_name is not None:
        info = info.fix([model.dispersion_name])
    scale = phi / model.ml_dispersion(result.params)
    cov = info.cov()
    label = choice if isinstance(choice, float) else choice.value
    return Covariance(cov.matrix * scale, cov.names, method=f"glm expected, dispersion {phi:.6g} ({label})")
