r"""GLM families, one record each: everything fisherlab (and its command line) knows about a family.

Families, their parameters in fisherlab (the extra parameter is fitted on the
log scale by :func:`~fisherlab.fit`, so it stays positive), the variance
function, the dispersion :math:`\phi` in :math:`\operatorname{Var}[y_i] = \phi V(\mu_i)/w_i`,
R's default link and the links R accepts:

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
(:class:`~fisherlab.dist.InverseGaussian`, registered with its closed-form Fisher information).

Each :class:`FamilyRecord` also holds R's starting mean :math:`\mu^{(0)}` (``mustart``:
binomial :math:`(n y/n + 1/2)/(n+1)` on the proportion scale, Poisson :math:`y + 0.1`,
negative binomial :math:`y + [y=0]/6`, otherwise :math:`y`), the moment start of
the extra parameter, the links whose mean exists on one side of :math:`\eta = 0`
only, the support of :math:`y` (0/1 or successes out of trials, whole counts,
positive values) and whether R's ``summary.glm`` estimates :math:`\phi` by
Pearson's statistic (gaussian, Gamma, inverse Gaussian) or takes it as 1.

Examples:
    >>> from fisherlab.models import FAMILIES, Family
    >>> rec = FAMILIES[Family.GAMMA]
    >>> rec.default_link.value, rec.extra.name, rec.pearson
    ('inverse', 'shape', True)
    >>> [f.value for f, r in FAMILIES.items() if r.pearson]
    ['gaussian', 'gamma', 'inverse_gaussian']

References:
    P. McCullagh and J. A. Nelder (1989), *Generalized Linear Models*, 2nd ed.,
    Chapman & Hall. R Core Team, ``?family``, ``?glm.fit``, ``?summary.glm``;
    W. N. Venables and B. D. Ripley (2002), *Modern Applied Statistics with S*,
    4th ed., Springer (``MASS::glm.nb``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy.special import xlogy

from .._errors import ModelError
from ..dist import (
    Bernoulli,
    Binomial,
    Distribution,
    Gamma,
    InverseGaussian,
    NegativeBinomial2,
    Normal,
    Poisson,
)
from ._aliases import names_of, resolve
from ._links import Link, LinkRecord, as_link
from ._traits import FAMILY_TRAITS, Family

__all__ = ["FAMILIES", "EtaSide", "ExtraParameter", "Family", "FamilyRecord", "as_family"]


class EtaSide(str, enum.Enum):
    r"""The side of :math:`\eta = 0` on which a (family, link) pair's mean is defined."""

    ABOVE = "above"  # eta > 0: mu = eta, 1/eta or 1/sqrt(eta) positive
    BELOW = "below"  # eta < 0: the binomial's log link, mu = e^eta < 1

    @property
    def sign(self) -> float:
        """+1 above, -1 below: :math:`\\text{sign}\\cdot\\eta > 0` inside the domain."""
        return 1.0 if self is EtaSide.ABOVE else -1.0


# (eta, link, value of the extra parameter or None, trials or None) -> distribution of y
DistributionBuilder = Callable[[Any, LinkRecord, Any, Any], Distribution]
# (mu, value of the extra parameter when it enters V, else None) -> V(mu)
VarianceFunction = Callable[[np.ndarray, float | None], np.ndarray]
# (y, trials: ones when absent) -> mu^(0)
MeanStart = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (y, trials or None) -> (rows outside the support, what the family needs)
SupportCheck = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, str]]
# trials -> (bad rows, what trials must be)
TrialsCheck = Callable[[np.ndarray], tuple[np.ndarray, str]]
# (y, mu, trials: ones when absent, value of the extra parameter or None) -> d(y_i, mu_i) per row
UnitDeviance = Callable[[np.ndarray, np.ndarray, np.ndarray, float | None], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ExtraParameter:
    r"""A family's extra (positive) parameter besides :math:`\beta`.

    Attributes:
        name: the parameter leaf (``"sigma"``, ``"shape"``, ``"alpha"``).
        ml_dispersion: :math:`\phi` as a function of the parameter's value, the
            maximum-likelihood dispersion (:math:`\sigma^2`, :math:`1/\nu`,
            :math:`1/\lambda`); ``None`` when :math:`\phi = 1` whatever the value
            (the negative binomial's α enters :math:`V` instead).
        in_variance: whether the value enters the variance function (α of
            :math:`\mu + \alpha\mu^2`).
        start: the moment estimate ``start(y, mu, df_resid)`` from the means of the
            first Fisher-scoring step, ``df_resid`` :math:`= \max(N-p, 1)`.
        per_weight: R's prior weights :math:`w_i` of a family whose dispersion is estimated:
            row :math:`i` has dispersion :math:`\phi/w_i`, so its parameter is
            ``per_weight(value, w)`` (:math:`\sigma/\sqrt{w_i}`; a shape :math:`\nu w_i`,
            :math:`\lambda w_i`); ``None`` where prior weights are not a distribution's
            parameter (the negative binomial's α).
    """

    name: str
    ml_dispersion: Callable[[float], float] | None
    in_variance: bool
    start: Callable[[np.ndarray, np.ndarray, int], float]
    per_weight: Callable[[Any, Any], Any] | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class FamilyRecord:
    r"""Everything fisherlab knows about one GLM family; :data:`FAMILIES` holds one per :class:`Family`.

    Attributes:
        family: the :class:`Family`.
        links: the links R accepts for the family, R's default (canonical) first.
        distribution: ``distribution(eta, link, extra, trials)``, the distribution of
            :math:`y` given the linear predictor (``link`` a :class:`LinkRecord`,
            ``extra`` the extra parameter's value or ``None``, ``trials`` the binomial
            trials or ``None``).
        variance: :math:`V(\mu)`, ``variance(mu, extra)`` (``extra`` only for
            an :attr:`ExtraParameter.in_variance` family; ``None`` gives the Poisson
            variance for the negative binomial, as ``MASS::glm.nb`` starts).
        start: R's starting mean :math:`\mu^{(0)}` (``mustart``), ``start(y, trials)``.
        support: ``support(y, trials)``: the mask of rows whose ``y`` is outside the
            family's support and a phrase of what the family needs (finiteness is
            checked separately).
        extra: the :class:`ExtraParameter`, or ``None`` (binomial, Poisson).
        trials: ``None`` when the covariates may not carry trials; else the check of
            the trials themselves (``(bad rows, what trials must be)``).
        eta_side: the links whose mean is defined on one side of :math:`\eta = 0` only.
        deviance: the unit deviance ``deviance(y, mu, trials, extra)``, per row, R's
            ``family()$dev.resids`` with prior weights the trials:
            :math:`d_i = 2\{\ell(y_i; y_i) - \ell(y_i; \mu_i)\}` at dispersion 1 (the saturated
            model against the fit); for the negative binomial at the value ``extra`` of
            :math:`\alpha` (``None`` or 0: the Poisson limit).
        aliases: R's other spellings of the family (matched after lower-casing).
    """

    family: Family
    links: tuple[Link, ...]
    distribution: DistributionBuilder
    variance: VarianceFunction
    start: MeanStart
    support: SupportCheck
    extra: ExtraParameter | None = None
    trials: TrialsCheck | None = None
    eta_side: Mapping[Link, EtaSide] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    aliases: tuple[str, ...] = ()
    deviance: UnitDeviance | None = None

    @property
    def pearson(self) -> bool:
        """R's ``summary.glm`` estimates :math:`\\phi` by Pearson's statistic (and reports t tests),
        rather than taking :math:`\\phi = 1` (from :data:`~fisherlab.models.FAMILY_TRAITS`)."""
        return FAMILY_TRAITS[self.family].pearson

    @property
    def default_link(self) -> Link:
        """R's default link of the family (its canonical link, except the inverse Gaussian's 1/μ²)."""
        return self.links[0]

    def choose_link(self, link: object) -> Link:
        """``link`` (``None`` for :attr:`default_link`) as a :class:`Link` the family takes.

        Raises:
            ModelError: an unknown link, or one R does not allow for the family (the valid ones named).
        """
        if link is None:
            return self.default_link
        choice = as_link(link)
        if choice not in self.links:
            name = self.family.value
            raise ModelError(
                f"the {name} family does not take the {choice.value} link (as in R); "
                f"valid links for {name}: {[lk.value for lk in self.links]}"
            )
        return choice


# --------------------------------------------------------------------------- the families' pieces


def _of_mean(build: Callable[[Any, Any], Distribution]) -> DistributionBuilder:
    """A builder from ``build(mu, extra)``, with :math:`\\mu = g^{-1}(\\eta)`."""

    def distribution(eta: Any, link: LinkRecord, extra: Any, trials: Any) -> Distribution:
        return build(link.inv(eta), extra)

    return distribution


def _binomial(eta: Any, link: LinkRecord, extra: Any, trials: Any) -> Distribution:
    if link.logit is None:  # log link: mu = e^eta must stay below 1: probs, so that mu > 1 is reported
        mu = link.inv(eta)
        return Bernoulli(probs=mu) if trials is None else Binomial(trials, probs=mu)
    logits = link.logit(eta)
    return Bernoulli(logits=logits) if trials is None else Binomial(trials, logits=logits)


def _negative_binomial_variance(mu: np.ndarray, alpha: float | None) -> np.ndarray:
    return mu if alpha is None else mu + alpha * mu**2


def _sigma_start(y: np.ndarray, mu: np.ndarray, df_resid: int) -> float:
    """σ from the mean squared residual (the ML estimate given μ)."""
    return float(np.sqrt(np.mean((y - mu) ** 2)))


def _pearson_shape_start(variance: VarianceFunction) -> Callable[[np.ndarray, np.ndarray, int], float]:
    """Shape :math:`1/\\hat\\phi` with :math:`\\hat\\phi = \\sum (y-\\mu)^2/V(\\mu) / (N-p)`."""

    def start(y: np.ndarray, mu: np.ndarray, df_resid: int) -> float:
        phi = float(np.sum((y - mu) ** 2 / variance(mu, None)) / df_resid)
        return 1.0 / phi

    return start


def _extra_name(family: Family) -> str:
    """The name of ``family``'s extra parameter (:data:`~fisherlab.models.FAMILY_TRAITS`)."""
    name = FAMILY_TRAITS[family].extra
    if name is None:
        raise ValueError(f"the {family.value} family has no extra parameter")
    return name


def _shape_parameter(family: Family, variance: VarianceFunction) -> ExtraParameter:
    """The shape of a Gamma or inverse Gaussian GLM: dispersion 1/shape, started from Pearson's estimate."""
    start = _pearson_shape_start(variance)
    return ExtraParameter(
        _extra_name(family),
        ml_dispersion=lambda shape: 1.0 / shape,
        in_variance=False,
        start=start,
        per_weight=lambda shape, w: shape * w,
    )


def _alpha_start(y: np.ndarray, mu: np.ndarray, df_resid: int) -> float:
    """α from the excess variance :math:`\\sum\\{(y-\\mu)^2-\\mu\\}/\\sum\\mu^2`, at least 0.01."""
    value = float(np.sum((y - mu) ** 2 - mu) / np.sum(mu**2))
    return max(value, 0.01) if np.isfinite(value) else 1.0


def _whole_counts(y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str]:
    return (y < 0) | (y != np.round(y)), "non-negative whole counts"


def _positive(y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str]:
    return y <= 0, "positive values"


def _binomial_support(y: np.ndarray, trials: np.ndarray | None) -> tuple[np.ndarray, str]:
    if trials is None:
        return (y != 0) & (y != 1), "a 0/1 outcome"
    return (y < 0) | (y > trials) | (y != np.round(y)), "whole numbers of successes between 0 and trials"


def _trials_support(trials: np.ndarray) -> tuple[np.ndarray, str]:
    return ~np.isfinite(trials) | (trials <= 0) | (trials != np.round(trials)), "positive integers"


def _gamma_variance(mu: np.ndarray, extra: float | None) -> np.ndarray:
    return mu**2


def _inverse_gaussian_variance(mu: np.ndarray, extra: float | None) -> np.ndarray:
    return mu**3


def _gaussian_deviance(y: np.ndarray, mu: np.ndarray, trials: np.ndarray, extra: float | None) -> np.ndarray:
    return (y - mu) ** 2


def _binomial_deviance(y: np.ndarray, mu: np.ndarray, trials: np.ndarray, extra: float | None) -> np.ndarray:
    r""":math:`2\{y\log(y/n\mu) + (n-y)\log((n-y)/(n(1-\mu)))\}`, :math:`0\log 0 = 0`; ``y`` successes."""
    n = trials
    return 2.0 * (xlogy(y, y / (n * mu)) + xlogy(n - y, (n - y) / (n * (1.0 - mu))))


def _poisson_deviance(y: np.ndarray, mu: np.ndarray, trials: np.ndarray, extra: float | None) -> np.ndarray:
    return 2.0 * (xlogy(y, y / mu) - (y - mu))


def _gamma_deviance(y: np.ndarray, mu: np.ndarray, trials: np.ndarray, extra: float | None) -> np.ndarray:
    return -2.0 * (np.log(y / mu) - (y - mu) / mu)


def _inverse_gaussian_deviance(
    y: np.ndarray, mu: np.ndarray, trials: np.ndarray, extra: float | None
) -> np.ndarray:
    return (y - mu) ** 2 / (mu**2 * y)


def _negative_binomial_deviance(
    y: np.ndarray, mu: np.ndarray, trials: np.ndarray, alpha: float | None
) -> np.ndarray:
    r"""R's ``negative.binomial(theta)``.

    :math:`2\{y\log\frac{y}{\mu} - (y+\theta)\log\frac{y+\theta}{\mu+\theta}\}`, :math:`\theta = 1/\alpha`.
    """
    if alpha is None or alpha == 0.0:
        return _poisson_deviance(y, mu, trials, None)
    theta = 1.0 / alpha
    return 2.0 * (xlogy(y, y / mu) - (y + theta) * np.log((y + theta) / (mu + theta)))


def _above(*links: Link) -> Mapping[Link, EtaSide]:
    return MappingProxyType(dict.fromkeys(links, EtaSide.ABOVE))


_RECORDS = (
    FamilyRecord(
        Family.GAUSSIAN,
        (Link.IDENTITY, Link.LOG, Link.INVERSE),
        distribution=_of_mean(lambda mu, sigma: Normal(mu, sigma)),
        variance=lambda mu, extra: np.ones_like(mu),
        start=lambda y, trials: y,
        support=lambda y, trials: (np.zeros(np.shape(y), dtype=bool), "real values"),
        extra=ExtraParameter(
            _extra_name(Family.GAUSSIAN),
            ml_dispersion=lambda sigma: sigma**2,
            in_variance=False,
            start=_sigma_start,
            per_weight=lambda sigma, w: sigma / jnp.sqrt(w),
        ),
        deviance=_gaussian_deviance,
    ),
    FamilyRecord(
        Family.BINOMIAL,
        (Link.LOGIT, Link.PROBIT, Link.CAUCHIT, Link.LOG, Link.CLOGLOG),
        distribution=_binomial,
        variance=lambda mu, extra: mu * (1.0 - mu),
        start=lambda y, trials: (y + 0.5) / (trials + 1.0),  # y: successes; mu on the proportion scale
        support=_binomial_support,
        trials=_trials_support,
        eta_side=MappingProxyType({Link.LOG: EtaSide.BELOW}),
        deviance=_binomial_deviance,
    ),
    FamilyRecord(
        Family.POISSON,
        (Link.LOG, Link.IDENTITY, Link.SQRT),
        distribution=_of_mean(lambda mu, extra: Poisson(mu)),
        variance=lambda mu, extra: mu,
        start=lambda y, trials: y + 0.1,
        support=_whole_counts,
        eta_side=_above(Link.IDENTITY),
        deviance=_poisson_deviance,
    ),
    FamilyRecord(
        Family.GAMMA,
        (Link.INVERSE, Link.IDENTITY, Link.LOG),
        distribution=_of_mean(lambda mu, shape: Gamma(shape, shape / mu)),
        variance=_gamma_variance,
        start=lambda y, trials: y,
        support=_positive,
        extra=_shape_parameter(Family.GAMMA, _gamma_variance),
        eta_side=_above(Link.IDENTITY, Link.INVERSE),
        deviance=_gamma_deviance,
    ),
    FamilyRecord(
        Family.INVERSE_GAUSSIAN,
        (Link.INVERSE_SQUARED, Link.INVERSE, Link.IDENTITY, Link.LOG),
        distribution=_of_mean(lambda mu, shape: InverseGaussian(mu, shape)),
        variance=_inverse_gaussian_variance,
        start=lambda y, trials: y,
        support=_positive,
        extra=_shape_parameter(Family.INVERSE_GAUSSIAN, _inverse_gaussian_variance),
        eta_side=_above(Link.IDENTITY, Link.INVERSE, Link.INVERSE_SQUARED),
        aliases=("inverse.gaussian",),
        deviance=_inverse_gaussian_deviance,
    ),
    FamilyRecord(
        Family.NEGATIVE_BINOMIAL,
        (Link.LOG, Link.SQRT, Link.IDENTITY),
        distribution=_of_mean(lambda mu, alpha: NegativeBinomial2(mu, 1.0 / alpha)),
        variance=_negative_binomial_variance,
        start=lambda y, trials: y + (y == 0) / 6.0,
        support=_whole_counts,
        extra=ExtraParameter(
            _extra_name(Family.NEGATIVE_BINOMIAL), ml_dispersion=None, in_variance=True, start=_alpha_start
        ),
        eta_side=_above(Link.IDENTITY),
        aliases=("negative.binomial",),
        deviance=_negative_binomial_deviance,
    ),
)

#: The family records, one per :class:`Family` (read-only).
FAMILIES: Mapping[Family, FamilyRecord] = MappingProxyType({r.family: r for r in _RECORDS})

_BY_NAME = names_of(_RECORDS, "family")


def as_family(family: object) -> Family:
    """``family`` (a :class:`Family`, its value or R's spelling, any case) as a :class:`Family`.

    Raises:
        ModelError: not a family, naming the valid ones.
    """
    return resolve(Family, _BY_NAME, family, "GLM family", "families")
