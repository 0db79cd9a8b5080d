"""Design for networks: the information gain of one more label under a network Laplace posterior.

Oracle: the dense D-criterion increment ½[log det(Σ⁻¹ + I(x)) − log det Σ⁻¹] with Σ the
structure's own posterior covariance (``posterior_covariance``) and I(x) the expected Fisher of
one observation at x from ``fl.design.point_information`` (an independent route: the registry's
closed form through autodiff Jacobians of the whole network).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl
from mlp_support import mlp_net, small_mlp

# Both sides are float64 linear algebra on P = 31 parameters (log det of well-conditioned
# matrices: condition < 1e4 with the prior precision 1): agreement to 1e-9 relative.
GAIN_RTOL = 1e-9


def dense_gain(la: fl.NetworkLaplace, model: fl.Model, x: np.ndarray) -> np.ndarray:
    cov = la.posterior_covariance.matrix
    precision = np.linalg.inv(cov)
    mats = fl.design.point_information(model, la.mean, x).matrices()
    base = np.linalg.slogdet(precision)[1]
    return np.array([0.5 * (np.linalg.slogdet(precision + m)[1] - base) for m in mats])


@pytest.mark.parametrize("structure", ["full", "diagonal", "kfac"])
def test_categorical_gain_is_the_dense_d_increment(structure: str) -> None:
    model, params, x, y = small_mlp(60, 3, 4, 3, seed=3)
    la = fl.laplace(model, params, y, x, structure=structure, prior_precision=1.0)
    x_new = np.random.default_rng(4).normal(size=(9, 3)) * 1.5
    gain = la.information_gain(x_new)
    np.testing.assert_allclose(gain, dense_gain(la, model, x_new), rtol=GAIN_RTOL)
    assert np.all(gain > 0)


def test_normal_and_bernoulli_heads() -> None:
    _, params, x, _ = small_mlp(50, 2, 3, 1, seed=5)
    rng = np.random.default_rng(6)
    y = rng.normal(size=50)
    normal = fl.Model(lambda th, xx: fl.dist.Normal(mlp_net(th, xx)[..., 0], 0.3))
    la = fl.laplace(normal, params, y, x, structure="full", prior_precision=2.0)
    x_new = rng.normal(size=(5, 2))
    np.testing.assert_allclose(la.information_gain(x_new), dense_gain(la, normal, x_new), rtol=GAIN_RTOL)
    labels = (rng.random(50) < 0.5).astype(np.int32)
    bern = fl.Model(lambda th, xx: fl.dist.Bernoulli(logits=mlp_net(th, xx)[..., 0]))
    lb = fl.laplace(bern, params, labels, x, structure="full", prior_precision=2.0)
    np.testing.assert_allclose(lb.information_gain(x_new), dense_gain(lb, bern, x_new), rtol=GAIN_RTOL)


def test_other_heads_are_refused() -> None:
    _, params, x, _ = small_mlp(30, 2, 3, 1, seed=7)
    counts = np.random.default_rng(8).poisson(2.0, size=30)
    pois = fl.Model(lambda th, xx: fl.dist.Poisson(jnp.exp(mlp_net(th, xx)[..., 0])))
    la = fl.laplace(pois, params, counts, x, structure="full")
    with pytest.raises(fl.MethodUnavailableError, match="head"):
        la.information_gain(x[:3])
