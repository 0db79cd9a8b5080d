r"""Closed-form Fisher information of one observation, per distribution family.

For a family :math:`p(y \mid \eta)` with parameters :math:`\eta` (the family's
own, as NumPyro names them) the registry returns

.. math::  I(\eta) = \mathbb{E}_{y \sim p(\cdot\mid\eta)}\big[\nabla_\eta \log p(y\mid\eta)\,
           \nabla_\eta \log p(y\mid\eta)^\top\big]

for ONE observation (per batch element of the distribution). The model-level
Fisher is then the chain rule :math:`F(\theta) = \sum_i J_i^\top I(\eta_i) J_i`
with :math:`J_i = \partial \eta_i / \partial \theta` (see :mod:`fisherlab.backends._chain_rule`).

Every entry is a function registered with :func:`register_fisher` (a
:func:`functools.singledispatch` on the NumPyro distribution class) that
returns a :class:`FamilyFisher`: the parameter names, the parameter values
stacked along the last axis (shape ``batch_shape + (k,)``) and the matrix
(``batch_shape + (k, k)``). Users extend the registry the same way::

    @fl.dist.register_fisher(MyDistribution)
    def _(d):
        return fl.dist.FamilyFisher(("a", "b"), params, matrix)

A parameter that does not depend on the model parameters (StudentT ``df``
held fixed, say) contributes nothing through the chain rule, since its column
of :math:`J` is zero; so one entry serves "fixed" and "free" variants.

References for the formulas are given per entry; each is tested against an
independent computation of :math:`\mathbb{E}[s s^\top]` (quadrature or exact
summation) in ``tests/test_registry.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.scipy.special import gammaln, i0e, i1e, polygamma

from .._errors import FisherlabArgumentError, MethodUnavailableError
from ._families import InverseGaussian

__all__ = [
    "FamilyFisher",
    "family_fisher",
    "has_closed_form",
    "register_fisher",
    "registered_families",
]

_EULER_GAMMA = 0.57721566490153286061
_PI2_6 = math.pi**2 / 6.0


class FamilyFisher(NamedTuple):
    """Fisher information of one observation in a family's own parameters.

    Attributes:
        names: the family's parameter names, one per scalar entry (``"loc"``,
            ``"probs[2]"``, ``"covariance_matrix[1,0]"``).
        params: the parameter values, shape ``batch_shape + (k,)``.
        matrix: the Fisher information, shape ``batch_shape + (k, k)``.
    """

    names: tuple[str, ...]
    params: jax.Array
    matrix: jax.Array


def _trigamma(a: jax.Array) -> jax.Array:
    return polygamma(1, a)


def _floating(v: Any) -> jax.Array:
    """``v`` as a floating array of its own precision (float32 parameters give float32 entries)."""
    return jnp.asarray(v, dtype=jnp.result_type(float, v))


def _stack(*values: jax.Array) -> jax.Array:
    arrays = jnp.broadcast_arrays(*[_floating(v) for v in values])
    return jnp.stack(arrays, axis=-1)


def _matrix(rows: list[list[jax.Array | float]]) -> jax.Array:
    """Build a ``(..., k, k)`` matrix from a nested list of broadcastable entries."""
    flat = [_floating(v) for row in rows for v in row]
    flat = list(jnp.broadcast_arrays(*flat))
    k = len(rows)
    return jnp.stack(flat, axis=-1).reshape((*flat[0].shape, k, k))


def _diag(*entries: jax.Array) -> jax.Array:
    k = len(entries)
    return _matrix([[entries[i] if i == j else 0.0 for j in range(k)] for i in range(k)])


@functools.singledispatch
def _entry(d: nd.Distribution) -> FamilyFisher:
    """The registered closed form for ``type(d)`` (see :func:`family_fisher`)."""
    raise MethodUnavailableError(
        f"no closed-form Fisher information is registered for {type(d).__name__}; register one with "
        "fl.dist.register_fisher, or let fl.fisher use summation, quadrature or Monte-Carlo"
    )


def register_fisher(
    cls: type,
) -> Callable[[Callable[..., FamilyFisher]], Callable[..., FamilyFisher]]:
    """Decorator registering the closed-form Fisher of a distribution class.

    The decorated function takes a distribution instance and returns a
    :class:`FamilyFisher`. Subclasses inherit the entry unless they register
    their own.

    Raises:
        FisherlabArgumentError: ``cls`` is not a class.
    """
    if not isinstance(cls, type):
        raise FisherlabArgumentError(
            f"register_fisher needs a distribution class (e.g. numpyro.distributions.Normal), got "
            f"{type(cls).__name__} {cls!r:.40}"
        )
    return _entry.register(cls)


def family_fisher(d: nd.Distribution) -> FamilyFisher:
    """Closed-form Fisher information of one observation of distribution ``d``.

    Args:
        d: a NumPyro distribution (any batch shape).

    Returns:
        A :class:`FamilyFisher` with the family's parameter names, values and
        the information matrix per batch element.

    Raises:
        MethodUnavailableError: no closed form is registered for ``type(d)`` (a
            ``NotImplementedError``); :func:`fisherlab.fisher` then falls back to exact
            summation, quadrature or Monte-Carlo.

    Examples:
        >>> import fisherlab as fl
        >>> f = fl.dist.family_fisher(fl.dist.Normal(0.0, 2.0))
        >>> f.names, f.matrix.tolist()
        (('loc', 'scale'), [[0.25, 0.0], [0.0, 0.5]])
    """
    entry = _entry(d)
    k = entry.params.shape[-1]
    shape = (*d.batch_shape, k)
    params = jnp.broadcast_to(entry.params, shape)
    matrix = jnp.broadcast_to(entry.matrix, (*d.batch_shape, k, k))
    return FamilyFisher(entry.names, params, matrix)


def has_closed_form(cls: type) -> bool:
    """True when a closed form is registered for ``cls`` (or a base class)."""
    return _entry.dispatch(cls) is not _entry.dispatch(object)


#: Registered classes that are not families but wrap one (:class:`~fisherlab.dist.Weighted`).
WRAPPERS: set[type] = set()


def registered_families() -> list[type]:
    """The distribution families with a closed-form entry (besides ``object``).

    Wrappers whose entry is their base family's (:class:`~fisherlab.dist.Weighted`) are not listed.
    """
    return [cls for cls in _entry.registry if cls is not object and cls not in WRAPPERS]


# --------------------------------------------------------------------------- location-scale


@register_fisher(nd.Normal)
@register_fisher(nd.LogNormal)
def _normal(d: nd.Normal) -> FamilyFisher:
    # Normal(loc, scale): I = diag(1/s^2, 2/s^2) (Lehmann & Casella 1998, Ex. 2.6.3).
    # LogNormal: the same, since log y is Normal(loc, scale) and Fisher is invariant
    # under a parameter-free transformation of the data.
    s2 = jnp.asarray(d.scale) ** 2
    return FamilyFisher(("loc", "scale"), _stack(d.loc, d.scale), _diag(1.0 / s2, 2.0 / s2))


@register_fisher(nd.HalfNormal)
def _half_normal(d: nd.HalfNormal) -> FamilyFisher:
    # |N(0, s^2)|: score (y^2/s^2 - 1)/s, I = 2/s^2.
    s = jnp.asarray(d.scale)
    return FamilyFisher(("scale",), _stack(s), _diag(2.0 / s**2))


@register_fisher(nd.Laplace)
def _laplace(d: nd.Laplace) -> FamilyFisher:
    # I = diag(1/b^2, 1/b^2) (Kotz, Kozubowski & Podgorski 2001, Sec. 2.6). Note that the
    # Hessian in loc is 0 almost everywhere: only E[s s^T] gives the right answer.
    b2 = jnp.asarray(d.scale) ** 2
    return FamilyFisher(("loc", "scale"), _stack(d.loc, d.scale), _diag(1.0 / b2, 1.0 / b2))


@register_fisher(nd.Cauchy)
def _cauchy(d: nd.Cauchy) -> FamilyFisher:
    # I = diag(1/(2 g^2), 1/(2 g^2)) (Johnson, Kotz & Balakrishnan, Vol. 1, Ch. 16).
    g2 = jnp.asarray(d.scale) ** 2
    return FamilyFisher(("loc", "scale"), _stack(d.loc, d.scale), _diag(0.5 / g2, 0.5 / g2))


@register_fisher(nd.Logistic)
def _logistic(d: nd.Logistic) -> FamilyFisher:
    # I = diag(1/(3 s^2), (pi^2 + 3)/(9 s^2)) (Johnson, Kotz & Balakrishnan, Vol. 2, Ch. 23).
    s2 = jnp.asarray(d.scale) ** 2
    return FamilyFisher(
        ("loc", "scale"),
        _stack(d.loc, d.scale),
        _diag(1.0 / (3.0 * s2), (math.pi**2 + 3.0) / (9.0 * s2)),
    )


@register_fisher(nd.Gumbel)
def _gumbel(d: nd.Gumbel) -> FamilyFisher:
    # z = (y - mu)/beta, exp(-z) ~ Exp(1): I_mumu = 1/beta^2,
    # I_mubeta = -(1 - gamma)/beta^2, I_betabeta = ((1 - gamma)^2 + pi^2/6)/beta^2
    # (Johnson, Kotz & Balakrishnan, Vol. 2, Ch. 22).
    b2 = jnp.asarray(d.scale) ** 2
    c = 1.0 - _EULER_GAMMA
    return FamilyFisher(
        ("loc", "scale"),
        _stack(d.loc, d.scale),
        _matrix([[1.0 / b2, -c / b2], [-c / b2, (c**2 + _PI2_6) / b2]]),
    )


# Above this df the closed form of I_nunu cancels (1e-10 relative at df = 200, 2e-5 at 1e4): use
# its expansion in 1/df, checked against mpmath (relative error 2e-13 at df = 200, less beyond).
_T_SERIES_DF = 150.0
_T_SERIES = (3.5, -13.0, 39.5, -119.0, 363.5, -1101.0, 3279.5)


def _student_t_df_info(nu: jax.Array) -> jax.Array:
    return 0.25 * (_trigamma(nu / 2.0) - _trigamma((nu + 1.0) / 2.0)) - (nu + 5.0) / (
        2.0 * nu * (nu + 1.0) * (nu + 3.0)
    )


def _student_t_df_series(nu: jax.Array) -> jax.Array:
    inv = 1.0 / jnp.maximum(nu, _T_SERIES_DF)
    total = jnp.zeros_like(inv)
    for c in reversed(_T_SERIES):
        total = total * inv + c
    return total * inv**4


@register_fisher(nd.StudentT)
def _student_t(d: nd.StudentT) -> FamilyFisher:
    # Lange, Little & Taylor (1989), JASA 84, 881-896, eq. (A.3), with nu = df:
    #   I_locloc = (nu+1)/((nu+3) s^2), I_ss = 2 nu/((nu+3) s^2),
    #   I_nu,s = -2/(s (nu+1)(nu+3)),
    #   I_nunu = [psi'(nu/2) - psi'((nu+1)/2)]/4 - (nu+5)/(2 nu (nu+1)(nu+3)).
    nu, s = jnp.asarray(d.df), jnp.asarray(d.scale)
    i_ll = (nu + 1.0) / ((nu + 3.0) * s**2)
    i_ss = 2.0 * nu / ((nu + 3.0) * s**2)
    i_ns = -2.0 / (s * (nu + 1.0) * (nu + 3.0))
    direct = _student_t_df_info(jnp.minimum(nu, _T_SERIES_DF))
    i_nn = jnp.where(nu < _T_SERIES_DF, direct, _student_t_df_series(nu))
    return FamilyFisher(
        ("df", "loc", "scale"),
        _stack(nu, d.loc, s),
        _matrix([[i_nn, 0.0, i_ns], [0.0, i_ll, 0.0], [i_ns, 0.0, i_ss]]),
    )


# --------------------------------------------------------------------------- positive / unit


@register_fisher(nd.Exponential)
def _exponential(d: nd.Exponential) -> FamilyFisher:
    # score 1/lambda - y: I = 1/lambda^2.
    r = jnp.asarray(d.rate)
    return FamilyFisher(("rate",), _stack(r), _diag(1.0 / r**2))


@register_fisher(nd.Gamma)
@register_fisher(nd.InverseGamma)
def _gamma(d: nd.Gamma) -> FamilyFisher:
    # Gamma(concentration a, rate b): I = [[psi'(a), -1/b], [-1/b, a/b^2]]
    # (Johnson, Kotz & Balakrishnan, Vol. 1, Ch. 17). InverseGamma(a, b) is the law of
    # 1/Y for Y ~ Gamma(a, b): the same information (invariance under a data transform).
    a, b = jnp.asarray(d.concentration), jnp.asarray(d.rate)
    return FamilyFisher(
        ("concentration", "rate"),
        _stack(a, b),
        _matrix([[_trigamma(a), -1.0 / b], [-1.0 / b, a / b**2]]),
    )


@register_fisher(nd.Weibull)
def _weibull(d: nd.Weibull) -> FamilyFisher:
    # Weibull(scale lambda, concentration k), z = (y/lambda)^k ~ Exp(1):
    #   I_ll = k^2/lambda^2, I_lk = -(1 - gamma)/lambda, I_kk = ((1 - gamma)^2 + pi^2/6)/k^2
    # (Cohen 1965, Technometrics 7, 579-588).
    lam, k = jnp.asarray(d.scale), jnp.asarray(d.concentration)
    c = 1.0 - _EULER_GAMMA
    return FamilyFisher(
        ("scale", "concentration"),
        _stack(lam, k),
        _matrix([[k**2 / lam**2, -c / lam], [-c / lam, (c**2 + _PI2_6) / k**2]]),
    )


@register_fisher(nd.Beta)
def _beta(d: nd.Beta) -> FamilyFisher:
    # Beta(concentration1 a, concentration0 b):
    #   I = [[psi'(a) - psi'(a+b), -psi'(a+b)], [-psi'(a+b), psi'(b) - psi'(a+b)]]
    # (Johnson, Kotz & Balakrishnan, Vol. 2, Ch. 25).
    a, b = jnp.asarray(d.concentration1), jnp.asarray(d.concentration0)
    tab = _trigamma(a + b)
    return FamilyFisher(
        ("concentration1", "concentration0"),
        _stack(a, b),
        _matrix([[_trigamma(a) - tab, -tab], [-tab, _trigamma(b) - tab]]),
    )


@register_fisher(nd.Dirichlet)
def _dirichlet(d: nd.Dirichlet) -> FamilyFisher:
    # I = diag(psi'(alpha)) - psi'(sum alpha) 1 1^T (Kotz, Balakrishnan & Johnson 2000, Ch. 49).
    a = _floating(d.concentration)
    k = a.shape[-1]
    m = jnp.eye(k) * _trigamma(a)[..., None, :] - _trigamma(a.sum(-1))[..., None, None]
    return FamilyFisher(tuple(f"concentration[{j}]" for j in range(k)), a, m)


@register_fisher(nd.VonMises)
def _von_mises(d: nd.VonMises) -> FamilyFisher:
    # A(kappa) = I1(kappa)/I0(kappa): I = diag(kappa A, 1 - A/kappa - A^2)
    # (Mardia & Jupp 2000, Sec. 5.3).
    # For kappa >= 500, 1 - A/kappa - A^2 cancels; its expansion 1/(2k^2) + 1/(4k^3) + 3/(8k^4)
    # + 25/(32k^5) + 65/(32k^6) (checked against mpmath: 4e-13 relative at kappa = 500) does not.
    kappa = jnp.asarray(d.concentration)
    a = i1e(kappa) / i0e(kappa)
    inv = 1.0 / jnp.maximum(kappa, 500.0)
    series = inv**2 * (0.5 + inv * (0.25 + inv * (0.375 + inv * (25.0 / 32.0 + inv * 65.0 / 32.0))))
    direct = 1.0 - a / kappa - a**2
    return FamilyFisher(
        ("loc", "concentration"),
        _stack(d.loc, kappa),
        _diag(kappa * a, jnp.where(kappa < 500.0, direct, series)),
    )


# --------------------------------------------------------------------------- discrete


@register_fisher(nd.Poisson)
def _poisson(d: nd.Poisson) -> FamilyFisher:
    # score y/lambda - 1: I = 1/lambda.
    r = jnp.asarray(d.rate)
    return FamilyFisher(("rate",), _stack(r), _diag(1.0 / r))


@register_fisher(nd.BernoulliProbs)
def _bernoulli_probs(d: nd.BernoulliProbs) -> FamilyFisher:
    p = jnp.asarray(d.probs)
    return FamilyFisher(("probs",), _stack(p), _diag(1.0 / (p * (1.0 - p))))


@register_fisher(nd.BernoulliLogits)
def _bernoulli_logits(d: nd.BernoulliLogits) -> FamilyFisher:
    logits = jnp.asarray(d.logits)
    # p (1 - p) with 1 - p = sigmoid(-logits): no cancellation at large |logits|
    return FamilyFisher(("logits",), _stack(logits), _diag(jax.nn.sigmoid(logits) * jax.nn.sigmoid(-logits)))


@register_fisher(nd.BinomialProbs)
def _binomial_probs(d: nd.BinomialProbs) -> FamilyFisher:
    # total_count is an integer, not a differentiable parameter: only probs carries information.
    p, n = jnp.asarray(d.probs), _floating(d.total_count)
    return FamilyFisher(("probs",), _stack(p), _diag(n / (p * (1.0 - p))))


@register_fisher(nd.BinomialLogits)
def _binomial_logits(d: nd.BinomialLogits) -> FamilyFisher:
    logits, n = jnp.asarray(d.logits), _floating(d.total_count)
    pq = jax.nn.sigmoid(logits) * jax.nn.sigmoid(-logits)
    return FamilyFisher(("logits",), _stack(logits), _diag(n * pq))


@register_fisher(nd.GeometricProbs)
def _geometric_probs(d: nd.GeometricProbs) -> FamilyFisher:
    # failures before the first success, P(y) = (1-p)^y p: I = 1/(p^2 (1-p)).
    p = jnp.asarray(d.probs)
    return FamilyFisher(("probs",), _stack(p), _diag(1.0 / (p**2 * (1.0 - p))))


@register_fisher(nd.GeometricLogits)
def _geometric_logits(d: nd.GeometricLogits) -> FamilyFisher:
    # dp/dlogit = p(1-p): I = p^2 (1-p)^2 / (p^2 (1-p)) = 1 - p.
    logits = jnp.asarray(d.logits)
    return FamilyFisher(("logits",), _stack(logits), _diag(jax.nn.sigmoid(-logits)))


@register_fisher(nd.CategoricalProbs)
def _categorical_probs(d: nd.CategoricalProbs) -> FamilyFisher:
    # s_k = 1{y=k}/p_k: E[s s^T] = diag(1/p). Through the chain rule with p(theta) on the
    # simplex this gives sum_k dp_k dp_k^T / p_k, the Fisher of any parametrisation.
    p = _floating(d.probs)
    k = p.shape[-1]
    return FamilyFisher(tuple(f"probs[{j}]" for j in range(k)), p, jnp.eye(k) / p[..., None, :])


def softmax_complement(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""``(p, 1 - p)`` of ``p = softmax(logits)`` over the last axis, ``1 - p_k`` as
    :math:`\sum_{j \ne k} p_j` summed in log space, so a class with :math:`p_k \to 1` keeps its
    digits (the softmax Fisher's diagonal and its square root, ``fisherlab.operators._head``)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    k = log_p.shape[-1]
    others = jnp.where(jnp.eye(k, dtype=bool), -jnp.inf, log_p[..., None, :])
    return jnp.exp(log_p), jnp.exp(jax.scipy.special.logsumexp(others, axis=-1))


@register_fisher(nd.CategoricalLogits)
def _categorical_logits(d: nd.CategoricalLogits) -> FamilyFisher:
    # p = softmax(logits): I = diag(p) - p p^T (singular along 1: logits are defined up to a shift).
    logits = _floating(d.logits)
    p, complement = softmax_complement(logits)
    k = p.shape[-1]
    diag = p * complement  # p_k (1 - p_k), without cancellation
    m = jnp.where(jnp.eye(k, dtype=bool), diag[..., None, :], -p[..., :, None] * p[..., None, :])
    return FamilyFisher(tuple(f"logits[{j}]" for j in range(k)), logits, m)


def _nb2_concentration_info(mu: jax.Array, r: jax.Array) -> jax.Array:
    r"""E[s_r^2] for NegativeBinomial2(mean mu, concentration r), by exact summation.

    s_r(y) = sum_{j<y} 1/(r+j) - log1p(mu/r) + (mu - y)/(r + mu). The series over y runs
    until the remaining probability mass, bounded by the geometric ratio of successive
    probabilities, times (1 + s^2) is below 1e-18 of the running sum. Non-convergence
    within 2**22 terms returns NaN, which the caller reports.
    """
    q = mu / (mu + r)
    log_norm = r * jnp.log(r / (r + mu))
    c = -jnp.log1p(mu / r)

    def term(y: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        logp = gammaln(y + r) - gammaln(r) - gammaln(y + 1.0) + log_norm + y * jnp.log(q)
        s = h + c + (mu - y) / (r + mu)
        return jnp.exp(logp), s

    State = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

    def cond(state: State) -> jax.Array:
        y, _h, acc, tail = state
        return (y < 2.0**22) & ((y <= mu + 1.0) | (tail > 1e-18 * acc))

    def body(state: State) -> State:
        y, h, acc, _ = state
        p, s = term(y, h)
        ratio = (y + r) / (y + 1.0) * q
        tail = jnp.where(ratio < 1.0, p * ratio / (1.0 - ratio) * (1.0 + s**2), jnp.inf)
        return y + 1.0, h + 1.0 / (r + y), acc + p * s**2, tail

    zero = jnp.zeros(())
    y, _, acc, _ = jax.lax.while_loop(cond, body, (zero, zero, zero, jnp.asarray(jnp.inf)))
    return jnp.where(y < 2.0**22, acc, jnp.nan)


@register_fisher(nd.NegativeBinomial2)
def _negative_binomial2(d: nd.NegativeBinomial2) -> FamilyFisher:
    # NegativeBinomial2(mean mu, concentration r), Var = mu + mu^2/r:
    #   I_mumu = r/(mu (mu + r)), I_mur = 0 (mean and shape are orthogonal, Lawless 1987,
    #   Can. J. Stat. 15, 209-225), I_rr = E[s_r^2] by exact summation over the support.
    r = _floating(d.concentration)
    mu = r / _floating(d.rate)
    mu, r = jnp.broadcast_arrays(mu, r)
    i_rr = jax.vmap(_nb2_concentration_info)(mu.ravel(), r.ravel()).reshape(mu.shape)
    return FamilyFisher(
        ("mean", "concentration"),
        _stack(mu, r),
        _diag(r / (mu * (mu + r)), i_rr),
    )


# --------------------------------------------------------------------------- multivariate normal


@functools.lru_cache(maxsize=32)
def _duplication(dim: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Duplication matrix D with vec(S) = D vech(S) (row-major vec, lower-triangle vech)."""
    pairs = [(i, j) for i in range(dim) for j in range(i + 1)]
    dup = np.zeros((dim * dim, len(pairs)))
    for col, (i, j) in enumerate(pairs):
        dup[i * dim + j, col] = 1.0
        dup[j * dim + i, col] = 1.0
    return dup, pairs


@register_fisher(nd.MultivariateNormal)
def _multivariate_normal(d: nd.MultivariateNormal) -> FamilyFisher:
    # Parameters (loc, vech(covariance_matrix)), vech = lower triangle row by row:
    #   I_loc = S^-1,  I_vech = D^T (S^-1 (x) S^-1) D / 2,  no cross term,
    # so that through the chain rule F_ab = mu_a^T S^-1 mu_b + tr(S^-1 S_a S^-1 S_b)/2
    # (Mardia, Kent & Bibby 1979, Sec. 4.2; Klein & Neudecker 2000 for the vech form).
    loc = _floating(d.loc)
    dim = d.event_shape[-1]
    loc = jnp.broadcast_to(loc, (*d.batch_shape, dim))
    tril = _floating(d.scale_tril)
    cov = tril @ jnp.swapaxes(tril, -1, -2)
    cov = jnp.broadcast_to(cov, (*d.batch_shape, dim, dim))
    tril_inv = jax.scipy.linalg.solve_triangular(tril, jnp.broadcast_to(jnp.eye(dim), tril.shape), lower=True)
    prec = jnp.broadcast_to(jnp.swapaxes(tril_inv, -1, -2) @ tril_inv, cov.shape)
    dup_np, pairs = _duplication(dim)
    dup = jnp.asarray(dup_np)
    kron = (prec[..., :, None, :, None] * prec[..., None, :, None, :]).reshape(
        (*prec.shape[:-2], dim * dim, dim * dim)
    )
    i_cov = 0.5 * dup.T @ kron @ dup
    rows, cols = zip(*pairs, strict=True)
    vech = cov[..., np.array(rows), np.array(cols)]
    m = len(pairs)
    top = jnp.concatenate([prec, jnp.zeros((*prec.shape[:-2], dim, m))], axis=-1)
    bottom = jnp.concatenate([jnp.zeros((*prec.shape[:-2], m, dim)), i_cov], axis=-1)
    names = tuple(f"loc[{i}]" for i in range(dim)) + tuple(f"covariance_matrix[{i},{j}]" for i, j in pairs)
    return FamilyFisher(names, jnp.concatenate([loc, vech], axis=-1), jnp.concatenate([top, bottom], axis=-2))


@register_fisher(InverseGaussian)
def _inverse_gaussian_fisher(d: InverseGaussian) -> FamilyFisher:
    # score_mu = lam (y - mu) / mu^3, score_lam = 1/(2 lam) - (y - mu)^2 / (2 mu^2 y);
    # E[(y-mu)^2] = mu^3/lam gives I_mumu = lam/mu^3; (y-mu)^2/(mu^2 y) ~ chi^2_1 / lam gives
    # I_lamlam = 1/(2 lam^2); E[(y-mu)^3/y] = mu E[(y-mu)^2]/... vanishes against the centred
    # chi^2 term, so I_mulam = 0 (mean and shape are orthogonal).
    mu = _floating(d.loc)
    lam = _floating(d.concentration)
    mu, lam = jnp.broadcast_arrays(mu, lam)
    zero = jnp.zeros_like(mu)
    values = jnp.stack([mu, lam], axis=-1)
    matrix = jnp.stack([jnp.stack([lam / mu**3, zero], -1), jnp.stack([zero, 0.5 / lam**2], -1)], -2)
    return FamilyFisher(("mean", "concentration"), values, matrix)
