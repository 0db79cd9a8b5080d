"""Distributions: NumPyro's, plus a registry of closed-form Fisher information.

``fl.dist.Normal`` *is* ``numpyro.distributions.Normal`` (and so on): any NumPyro
distribution returned by a model function is accepted. ``Bernoulli(logits=)``
and ``Binomial(logits=)`` are NumPyro subclasses with a log-mass that is smooth
at ``logits = 0`` (NumPyro's own has a kink there that breaks autodiff). What fisherlab adds is
:func:`family_fisher`, the Fisher information of one observation in the
family's own parameters, extensible with :func:`register_fisher`.

Families with a closed-form entry (parameters in NumPyro's order): Normal(loc,
scale), LogNormal(loc, scale), HalfNormal(scale), Laplace(loc, scale),
Cauchy(loc, scale), Logistic(loc, scale), Gumbel(loc, scale), StudentT(df, loc,
scale), Exponential(rate), Gamma(concentration, rate), InverseGamma(concentration,
rate), Weibull(scale, concentration), Beta(concentration1, concentration0),
Dirichlet(concentration), VonMises(loc, concentration),
MultivariateNormal(loc, covariance_matrix), Poisson(rate), Bernoulli(probs= |
logits=), Binomial(total_count, probs= | logits=), Geometric(probs= | logits=),
Categorical(probs= | logits=), NegativeBinomial2(mean, concentration),
InverseGaussian(mean, concentration).

:class:`Weighted` multiplies a distribution's log-density by a known weight per row
(likelihood weights, as NumPyro's ``handlers.scale``): R's prior weights of a Poisson or
negative-binomial GLM. Its Fisher is the weight times the base family's.
"""

from numpyro.distributions import (
    Beta as Beta,
    Categorical as Categorical,
    Cauchy as Cauchy,
    Dirichlet as Dirichlet,
    Distribution as Distribution,
    Exponential as Exponential,
    Gamma as Gamma,
    Geometric as Geometric,
    Gumbel as Gumbel,
    HalfCauchy as HalfCauchy,
    HalfNormal as HalfNormal,
    InverseGamma as InverseGamma,
    Laplace as Laplace,
    Logistic as Logistic,
    LogNormal as LogNormal,
    MultivariateNormal as MultivariateNormal,
    Normal as Normal,
    Poisson as Poisson,
    StudentT as StudentT,
    Uniform as Uniform,
    VonMises as VonMises,
    Weibull as Weibull,
)

from ._families import (
    Bernoulli as Bernoulli,
    BernoulliLogits as BernoulliLogits,
    BetaBinomial as BetaBinomial,
    Binomial as Binomial,
    BinomialLogits as BinomialLogits,
    InverseGaussian as InverseGaussian,
    NegativeBinomial2 as NegativeBinomial2,
)
from ._registry import (
    FamilyFisher as FamilyFisher,
    family_fisher as family_fisher,
    register_fisher as register_fisher,
    registered_families as registered_families,
)
from ._weighted import Weighted as Weighted

__all__ = [
    "Bernoulli",
    "BernoulliLogits",
    "Beta",
    "BetaBinomial",
    "Binomial",
    "BinomialLogits",
    "Categorical",
    "Cauchy",
    "Dirichlet",
    "Distribution",
    "Exponential",
    "FamilyFisher",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "InverseGamma",
    "InverseGaussian",
    "Laplace",
    "LogNormal",
    "Logistic",
    "MultivariateNormal",
    "NegativeBinomial2",
    "Normal",
    "Poisson",
    "StudentT",
    "Uniform",
    "VonMises",
    "Weibull",
    "Weighted",
    "family_fisher",
    "register_fisher",
    "registered_families",
]
