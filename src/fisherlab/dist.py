"""Distributions: NumPyro's, plus a registry of closed-form Fisher information.

``fl.dist.Normal`` *is* ``numpyro.distributions.Normal`` (and so on): any NumPyro
distribution returned by a model function is accepted. What fisherlab adds is
:func:`family_fisher`, the Fisher information of one observation in the
family's own parameters, extensible with :func:`register_fisher`.

Families with a closed-form entry (parameters in NumPyro's order):

==========================  ===========================================
Normal(loc, scale)          LogNormal(loc, scale), HalfNormal(scale)
Laplace(loc, scale)         Cauchy(loc, scale), Logistic(loc, scale)
Gumbel(loc, scale)          StudentT(df, loc, scale)
Exponential(rate)           Gamma(concentration, rate)
InverseGamma(conc., rate)   Weibull(scale, concentration)
Beta(conc.1, conc.0)        Dirichlet(concentration)
VonMises(loc, conc.)        MultivariateNormal(loc, covariance_matrix)
Poisson(rate)               Bernoulli(probs= | logits=)
Binomial(n, probs= |        Categorical(probs= | logits=)
logits=)
Geometric(probs= | logits=) NegativeBinomial2(mean, concentration)
==========================  ===========================================
"""

from numpyro.distributions import (
    Bernoulli as Bernoulli,
)
from numpyro.distributions import (
    Beta as Beta,
)
from numpyro.distributions import (
    Binomial as Binomial,
)
from numpyro.distributions import (
    Categorical as Categorical,
)
from numpyro.distributions import (
    Cauchy as Cauchy,
)
from numpyro.distributions import (
    Dirichlet as Dirichlet,
)
from numpyro.distributions import (
    Distribution as Distribution,
)
from numpyro.distributions import (
    Exponential as Exponential,
)
from numpyro.distributions import (
    Gamma as Gamma,
)
from numpyro.distributions import (
    Geometric as Geometric,
)
from numpyro.distributions import (
    Gumbel as Gumbel,
)
from numpyro.distributions import (
    HalfNormal as HalfNormal,
)
from numpyro.distributions import (
    InverseGamma as InverseGamma,
)
from numpyro.distributions import (
    Laplace as Laplace,
)
from numpyro.distributions import (
    Logistic as Logistic,
)
from numpyro.distributions import (
    LogNormal as LogNormal,
)
from numpyro.distributions import (
    MultivariateNormal as MultivariateNormal,
)
from numpyro.distributions import (
    NegativeBinomial2 as NegativeBinomial2,
)
from numpyro.distributions import (
    Normal as Normal,
)
from numpyro.distributions import (
    Poisson as Poisson,
)
from numpyro.distributions import (
    StudentT as StudentT,
)
from numpyro.distributions import (
    VonMises as VonMises,
)
from numpyro.distributions import (
    Weibull as Weibull,
)

from ._fisher_registry import (
    FamilyFisher as FamilyFisher,
)
from ._fisher_registry import (
    family_fisher as family_fisher,
)
from ._fisher_registry import (
    register_fisher as register_fisher,
)
from ._fisher_registry import (
    registered_families as registered_families,
)

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Dirichlet",
    "Distribution",
    "Exponential",
    "FamilyFisher",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfNormal",
    "InverseGamma",
    "Laplace",
    "LogNormal",
    "Logistic",
    "MultivariateNormal",
    "NegativeBinomial2",
    "Normal",
    "Poisson",
    "StudentT",
    "VonMises",
    "Weibull",
    "family_fisher",
    "register_fisher",
    "registered_families",
]
