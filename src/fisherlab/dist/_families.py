"""Distributions fisherlab adds to NumPyro's or whose log-density it replaces.

- ``InverseGaussian(mean, concentration)``: not in NumPyro (needed by GLMs).
- ``NegativeBinomial2(mean, concentration)``: NumPyro's log-mass goes through
  JAX's ``betaln``, which is off by ~2e-7 relative at moderate arguments (e.g.
  ``betaln(0.7734, 11.0)``); fisherlab's subclass uses ``gammaln`` differences,
  accurate to float64 round-off, so maximum-likelihood estimates match R's.
- ``BetaBinomial``: NumPyro's goes through ``betaln`` too (its pmf then sums to
  1 + 3e-7 at total_count 8, which the exact-summation Fisher rightly refuses);
  fisherlab's uses ``gammaln``.
- Smooth logit parametrisations, below.

NumPyro computes the Bernoulli and Binomial log-mass in logits with
``clip(logits, 0)`` and ``|logits|``, which are not differentiable at 0:
autodiff there returns the one-sided derivative, so the score of a logistic
regression at ``beta = 0`` (the usual starting point) comes out as ``y x``
instead of ``(y - 1/2) x``. fisherlab's ``Bernoulli(logits=)`` and
``Binomial(logits=)`` are subclasses with the algebraically identical, smooth form

    log p(y) = y * logits - n * softplus(logits) + log C(n, y),

``softplus(t) = log(1 + e^t)`` computed stably (``jax.nn.softplus``). Being
subclasses, they keep NumPyro's sampling, supports and the Fisher registry
entries. (A raw ``numpyro.distributions.Bernoulli(logits=...)`` returned by a
model still has NumPyro's kink at exactly 0.)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.scipy.special import gammaln, log_ndtr, ndtr, xlogy
from numpyro.distributions import constraints as nc
from numpyro.distributions.util import promote_shapes, validate_sample

__all__ = [
    "Bernoulli",
    "BernoulliLogits",
    "BetaBinomial",
    "Binomial",
    "BinomialLogits",
    "InverseGaussian",
    "NegativeBinomial2",
]


class BernoulliLogits(nd.BernoulliLogits):
    """NumPyro's ``BernoulliLogits`` with a log-mass that is smooth in ``logits``."""

    def log_prob(self, value: Any) -> jax.Array:
        if self._validate_args:
            self._validate_sample(value)
        return value * self.logits - jax.nn.softplus(self.logits)


class BinomialLogits(nd.BinomialLogits):
    """NumPyro's ``BinomialLogits`` with a log-mass that is smooth in ``logits``."""

    def log_prob(self, value: Any) -> jax.Array:
        if self._validate_args:
            self._validate_sample(value)
        n = jnp.asarray(self.total_count, dtype=jnp.result_type(float))
        log_choose = gammaln(n + 1) - gammaln(value + 1) - gammaln(n - value + 1)
        return log_choose + value * self.logits - n * jax.nn.softplus(self.logits)


def Bernoulli(probs: Any = None, logits: Any = None, *, validate_args: bool | None = None) -> nd.Distribution:
    """Bernoulli distribution on {0, 1}, by ``probs`` or by ``logits`` (smooth at 0)."""
    if (probs is None) == (logits is None):
        raise ValueError("Bernoulli takes exactly one of probs= or logits=")
    if probs is not None:
        return nd.BernoulliProbs(probs, validate_args=validate_args)
    return BernoulliLogits(logits, validate_args=validate_args)


def Binomial(
    total_count: Any = 1, probs: Any = None, logits: Any = None, *, validate_args: bool | None = None
) -> nd.Distribution:
    """Binomial distribution of ``total_count`` trials, by ``probs`` or by ``logits`` (smooth at 0)."""
    if (probs is None) == (logits is None):
        raise ValueError("Binomial takes exactly one of probs= or logits=")
    if probs is not None:
        return nd.BinomialProbs(probs, total_count, validate_args=validate_args)
    return BinomialLogits(logits, total_count, validate_args=validate_args)


class NegativeBinomial2(nd.NegativeBinomial2):
    r"""NumPyro's ``NegativeBinomial2(mean, concentration)`` with an accurate log-mass.

    .. math:: \log p(y) = D(y, r) - \log\Gamma(y+1) - (r + y)\log(1 + \mu/r) + y \log\mu,
              \qquad D(y, r) = \log\Gamma(y+r) - \log\Gamma(r) - y\log r,

    :math:`\operatorname{Var}[y] = \mu + \mu^2/r`. Written this way the mass stays accurate
    as :math:`r \to \infty` (the Poisson limit, which a model approaches when the data show no
    overdispersion): :math:`D` is computed from Stirling's series for :math:`r \ge 100`,
    :math:`D = (r + y - \tfrac12)\log(1 + y/r) - y + S(r + y) - S(r)` with
    :math:`S(x) = \tfrac{1}{12x} - \tfrac{1}{360x^3} + \tfrac{1}{1260x^5}` (truncation error
    below :math:`10^{-17}`), where the plain difference of ``gammaln`` values would lose
    :math:`\log\Gamma(r)\,\epsilon` to cancellation (O(1) at :math:`r = 10^{14}`); and
    :math:`r = \infty` gives the Poisson mass exactly.

    Examples:
        >>> import fisherlab as fl
        >>> lp = lambda r: float(fl.dist.NegativeBinomial2(3.0, r).log_prob(2.0))
        >>> round(lp(1e15) - float(fl.dist.Poisson(3.0).log_prob(2.0)), 12)
        -0.0
    """

    def log_prob(self, value: Any) -> jax.Array:
        if self._validate_args:
            self._validate_sample(value)
        r = jnp.asarray(self.concentration, dtype=jnp.result_type(float))
        finite = jnp.isfinite(r)
        r_ok = jnp.where(finite, r, 1.0)
        mu = jnp.where(finite, r_ok / jnp.where(finite, self.rate, 1.0), self.mean)
        y = jnp.asarray(value, dtype=r.dtype)
        big = r_ok >= 100.0
        r_small = jnp.where(big, 1.0, r_ok)
        r_big = jnp.where(big, r_ok, 100.0)
        direct = gammaln(y + r_small) - gammaln(r_small) - xlogy(y, r_small)

        def series(x: jax.Array) -> jax.Array:
            inv = 1.0 / x
            return inv * (1.0 / 12.0 - inv**2 * (1.0 / 360.0 - inv**2 / 1260.0))

        stirling = (r_big + y - 0.5) * jnp.log1p(y / r_big) - y + series(r_big + y) - series(r_big)
        d = jnp.where(big, stirling, direct)
        nb = d - gammaln(y + 1.0) - (r_ok + y) * jnp.log1p(mu / r_ok) + xlogy(y, mu)
        poisson = xlogy(y, mu) - mu - gammaln(y + 1.0)
        return jnp.where(finite, nb, poisson)


class InverseGaussian(nd.Distribution):
    r"""Inverse Gaussian (Wald) distribution with mean :math:`\mu` and shape :math:`\lambda`.

    .. math:: \log p(y) = \tfrac12\log\frac{\lambda}{2\pi y^3} - \frac{\lambda (y-\mu)^2}{2\mu^2 y},
              \qquad y > 0,

    :math:`\mathbb{E}[y] = \mu`, :math:`\operatorname{Var}[y] = \mu^3/\lambda`.
    Its Fisher information per observation, registered with
    :func:`fisherlab.dist.register_fisher`, is
    :math:`I = \operatorname{diag}(\lambda/\mu^3,\ 1/(2\lambda^2))` in
    :math:`(\mu, \lambda)` (Johnson, Kotz & Balakrishnan 1994, *Continuous
    Univariate Distributions* Vol. 1, Ch. 15). Sampling uses the transformation
    with multiple roots of Michael, Schucany & Haas (1976).

    Args:
        mean: :math:`\mu > 0` (stored as ``loc``).
        concentration: the shape :math:`\lambda > 0` (NumPyro's name for a shape
            parameter; ``shape`` is a method of every distribution).

    Examples:
        >>> import jax, fisherlab as fl
        >>> with jax.enable_x64(True):  # a distribution computes in the precision of the user's JAX
        ...     d = fl.dist.InverseGaussian(2.0, 3.0)
        ...     print(float(d.mean), float(d.variance))
        ...     print(fl.dist.family_fisher(d).matrix.tolist())   # [[3/8, 0], [0, 1/18]]
        2.0 2.6666666666666665
        [[0.375, 0.0], [0.0, 0.05555555555555555]]
    """

    arg_constraints: ClassVar[dict[str, Any]] = {"loc": nc.positive, "concentration": nc.positive}
    support = nc.positive
    pytree_data_fields = ("loc", "concentration")

    def __init__(self, mean: Any, concentration: Any, *, validate_args: bool | None = None) -> None:
        self.loc, self.concentration = promote_shapes(mean, concentration)
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(mean), jnp.shape(concentration))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    @validate_sample
    def log_prob(self, value: Any) -> jax.Array:
        mu, lam = self.loc, self.concentration
        return 0.5 * (jnp.log(lam) - math.log(2.0 * math.pi) - 3.0 * jnp.log(value)) - lam * (
            value - mu
        ) ** 2 / (2.0 * mu**2 * value)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        # Michael, Schucany & Haas (1976): with z ~ chi^2_1 and c = mu z / (2 lambda), the smaller
        # root of the quadratic is x = mu / (1 + c + sqrt(c (c + 2))) (written without the
        # cancellation of the textbook form); keep it with probability mu / (mu + x), else mu^2 / x.
        shape = sample_shape + self.batch_shape
        k_normal, k_uniform = jax.random.split(key)
        z = jax.random.normal(k_normal, shape) ** 2
        u = jax.random.uniform(k_uniform, shape)
        mu = jnp.broadcast_to(self.loc, shape)
        c = mu * z / (2.0 * jnp.broadcast_to(self.concentration, shape))
        x = mu / (1.0 + c + jnp.sqrt(c * (c + 2.0)))
        return jnp.where(u <= mu / (mu + x), x, mu**2 / x)

    def cdf(self, value: Any) -> jax.Array:
        r""":math:`\Phi(\sqrt{\lambda/y}(y/\mu-1)) + e^{2\lambda/\mu}\Phi(-\sqrt{\lambda/y}(y/\mu+1))`."""
        mu, lam = self.loc, self.concentration
        r = jnp.sqrt(lam / value)
        # the second term as exp(2 lam/mu + log Phi(.)) so that it cannot overflow
        tail = jnp.exp(2.0 * lam / mu + log_ndtr(-r * (value / mu + 1.0)))
        return ndtr(r * (value / mu - 1.0)) + tail

    @property
    def mean(self) -> jax.Array:
        return jnp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self) -> jax.Array:
        return jnp.broadcast_to(self.loc**3 / self.concentration, self.batch_shape)


def _log_beta(a: Any, b: Any) -> jax.Array:
    return gammaln(a) + gammaln(b) - gammaln(a + b)


class BetaBinomial(nd.BetaBinomial):
    r"""NumPyro's ``BetaBinomial(concentration1, concentration0, total_count)`` with an accurate log-mass.

    .. math:: \log p(k) = \log\binom{n}{k} + \log B(k + a, n - k + b) - \log B(a, b).
    """

    def log_prob(self, value: Any) -> jax.Array:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        n = jnp.asarray(self.total_count, dtype=jnp.result_type(float))
        log_choose = gammaln(n + 1) - gammaln(value + 1) - gammaln(n - value + 1)
        return log_choose + _log_beta(value + a, n - value + b) - _log_beta(a, b)
