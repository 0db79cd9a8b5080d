"""The public surface promised by ../shared/API.md exists (import smoke test)."""

import fisherlab as fl

PUBLIC = [
    "Model",
    "InfoMatrix",
    "loglik",
    "score",
    "fisher",
    "empirical_fisher",
    "observed_information",
    "hessian",
    "param_names",
    "FisherlabError",
    "SingularInformationError",
    "InvalidDataError",
    "NotConvergedError",
    "dist",
]
DISTRIBUTIONS = [
    "Normal",
    "Gamma",
    "Poisson",
    "Bernoulli",
    "Binomial",
    "Exponential",
    "Beta",
    "Laplace",
    "Cauchy",
    "LogNormal",
    "StudentT",
    "Logistic",
    "VonMises",
    "Weibull",
    "Categorical",
    "MultivariateNormal",
    "NegativeBinomial2",
    "Geometric",
    "InverseGamma",
    "Gumbel",
    "HalfNormal",
    "Dirichlet",
]


def test_public_names() -> None:
    for name in PUBLIC:
        assert hasattr(fl, name), name
        assert name in fl.__all__, name
    for name in DISTRIBUTIONS:
        assert hasattr(fl.dist, name), name
    assert set(fl.__all__) <= set(dir(fl))


def test_float64_enabled() -> None:
    import jax.numpy as jnp

    assert jnp.zeros(1).dtype == jnp.float64
