"""Distributions whose NumPyro log-density fisherlab replaces: smooth logit parametrisations.

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

from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.scipy.special import gammaln

__all__ = ["Bernoulli", "BernoulliLogits", "Binomial", "BinomialLogits"]


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
