r"""Closed-form Fisher information of the registry, and the other routes of ``fl.fisher``.

Every registry entry is checked against an independent computation of
:math:`I(\eta) = \mathbb{E}[s s^\top]`, :math:`s = \nabla_\eta \log p(y \mid \eta)`:

* the log-density of each oracle is written here with ``jax.numpy`` /
  ``jax.scipy.special`` (never NumPyro's ``log_prob``), checked pointwise
  against ``scipy.stats``, and differentiated with JAX;
* continuous families: ``scipy.integrate.quad`` (``epsrel=1e-13``; ``epsabs=0``
  for the positive integrands, a floor of 1e-13 sqrt(I_aa I_bb) for the
  sign-changing ones) over pieces split at quantiles, of :math:`p`, :math:`p s`
  and :math:`p s_a s_b` (so the oracle also proves its own normalisation and
  :math:`\mathbb{E}[s] = 0`);
* discrete families: exact summation over the support (infinite supports
  truncated where ``scipy.stats`` puts a tail mass below 1e-20; the summed mass
  is asserted to be 1 within 1e-11);
* numerically delicate limits (large df, kappa, logits): the closed forms at
  50 digits with mpmath;
* multivariate normal: Gauss–Hermite cubature, exact for the degree-4
  polynomial :math:`s s^\top`, and the trace formula;
* Dirichlet: the polygamma closed form written with SciPy, a Beta quadrature
  for two categories and a seeded Monte-Carlo bound.

Positive and unit-interval families are integrated in :math:`t = \log y` or
:math:`t = \operatorname{logit} y`: the oracle is then the density of the
parameter-free transform :math:`T`, whose score in :math:`\eta` is the same as
that of :math:`Y` (the Jacobian does not depend on :math:`\eta`), while the
integrable power singularities at the ends of the support become exponentially
decaying tails that ``quad`` resolves to full precision. StudentT and Cauchy
are integrated in :math:`y = m + s \sinh t` with :math:`(m, s)` held fixed, for
the same reason (algebraic tails become exponential ones).

Also here: the summation, quadrature and Monte-Carlo routes of ``fl.fisher``,
the chain rule and reparametrisation invariance, StudentT with fixed vs free
df, user registration, batch shapes and (``-m slow``) Hypothesis properties.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import numpyro.distributions as nd
import pytest
from hypothesis import given, settings, strategies as st
from jax.flatten_util import ravel_pytree
from jax.scipy.special import gammaln
from numpyro.distributions import constraints
from scipy import integrate, special, stats

import fisherlab as fl

# Agreement of the registry with quadrature / exact-summation oracles, per entry, relative to
# sqrt(I_aa I_bb) (the Cauchy-Schwarz scale of an entry, invariant to the units of each
# parameter). The oracles are accurate to ~1e-13 (quad epsrel) and the closed forms to a few
# ulps of their special functions (trigamma, i1e/i0e); 1e-9 leaves room for the cancellation in
# closed forms such as psi'(nu/2) - psi'((nu+1)/2) at large nu without hiding a wrong formula,
# which would be off at the 1e-3 level or worse.
RTOL = 1e-9
# quad settings demanded of every oracle integral (an IntegrationWarning is an error here).
QUAD_EPSREL = 1e-13
QUAD_LIMIT = 500
# The oracle's own checks: total probability 1 and E[s] = 0 (relative to sd(s)). Quadrature at
# epsrel 1e-13 over a handful of pieces reaches ~1e-14; summation of up to a few thousand terms
# the same.
ORACLE_SELF_TOL = 1e-11
# The oracle log-density against scipy.stats at a few points: both are float64 evaluations of
# the same formula through different special-function code.
LOGPDF_RTOL = 1e-11
# Infinite supports are truncated where the remaining mass is below this.
TAIL_MASS = 1e-20
# Monte-Carlo checks: |estimate - exact| below this many standard errors (a two-sided normal
# tail of 6e-7 per entry; the seeds are fixed, so the check is deterministic).
MC_SE = 5.0
# Gauss-Hermite cubature and closed forms by different float64 routes (numpy vs jax, inverse
# vs Cholesky solves of a well conditioned 3x3 covariance): a few hundred ulps.
DENSE_RTOL = 1e-12
# The same formula evaluated twice (eagerly and under jit, batched and scalar): XLA may fuse and
# reorder the float64 operations, a few ulps.
SAME_FORMULA_RTOL = 1e-14
# Lower bound of the eigenvalues of an information matrix, relative to the largest, allowed
# by rounding (a PSD matrix computed in float64).
PSD_SLACK = 1e-12


def _rel_err(f: Any, ref: Any) -> float:
    """Largest |F_ab - R_ab| / sqrt(R_aa R_bb) (entrywise, Cauchy-Schwarz scale)."""
    f, ref = np.asarray(f, dtype=float), np.asarray(ref, dtype=float)
    d = np.sqrt(np.abs(np.diag(ref)))
    return float(np.max(np.abs(f - ref) / np.outer(d, d)))


# =========================================================================== oracle machinery


@dataclasses.dataclass(frozen=True)
class Case:
    """One registry family with its independent oracle.

    ``logp(t, eta, const)`` is the log-density (or pmf) with ``eta`` the family's parameters
    in the registry's order and ``const`` fixed non-parameters (Binomial's n). ``variable``
    says what ``t`` is: ``y`` itself ("y", "discrete"), ``log y`` ("log") or ``logit y``
    ("logit"), ``logp`` then being the density of that ``t``; or ("sinh") ``logp`` is the
    density of ``y`` and the harness integrates over ``t`` with ``y = m + s sinh t``, ``(m, s)
    = anchor(eta)`` held constant (outside the derivative), which turns the algebraic tails of
    StudentT and Cauchy into exponential ones. ``ref(eta, const)`` is the ``scipy.stats``
    law of ``y`` that validates ``logp``.
    """

    family: type
    names: Callable[[int], tuple[str, ...]]
    build: Callable[[tuple, tuple], nd.Distribution]
    logp: Callable[..., jax.Array]
    ref: Callable[[tuple, tuple], Any]
    points: tuple[tuple[tuple, tuple], ...]
    variable: str = "y"  # "y", "log", "logit", "sinh" (continuous) or "discrete"
    span: Callable[[tuple, tuple], tuple[float, float]] | None = None
    kinks: Callable[[tuple, tuple], list[float]] | None = None  # where the score jumps
    centred: bool = True  # E[s] = 0 (not for probs on the simplex treated as free)
    anchor: Callable[[Any], tuple[Any, Any]] | None = None  # (m, s) of the "sinh" variable

    @property
    def discrete(self) -> bool:
        return self.variable == "discrete"


def _to_y(case: Case, eta: tuple, t: np.ndarray) -> np.ndarray:
    if case.variable == "sinh":
        assert case.anchor is not None
        m, s = case.anchor(eta)
        return m + s * np.sinh(t)
    return {"y": lambda t: t, "log": np.exp, "logit": special.expit}[case.variable](t)


def _from_y(case: Case, eta: tuple, y: np.ndarray) -> np.ndarray:
    if case.variable == "sinh":
        assert case.anchor is not None
        m, s = case.anchor(eta)
        return np.arcsinh((y - m) / s)
    return {"y": lambda y: y, "log": np.log, "logit": special.logit}[case.variable](y)


def _log_jacobian(case: Case, eta: tuple, t: np.ndarray) -> np.ndarray:
    """log |dy/dt|, so that log p_T(t) = log p_Y(y(t)) + log |dy/dt|."""
    if case.variable == "sinh":
        assert case.anchor is not None
        return np.log(case.anchor(eta)[1] * np.cosh(t))
    if case.variable == "log":
        return t
    if case.variable == "logit":
        return -np.logaddexp(0.0, -t) - np.logaddexp(0.0, t)
    return np.zeros_like(t)


def _logp_t(case: Case) -> Callable[..., jax.Array]:
    """The log-density of the integration variable t (see :class:`Case`)."""
    if case.variable != "sinh":
        return case.logp
    assert case.anchor is not None
    anchor = case.anchor

    def logp(t: jax.Array, eta: jax.Array, const: jax.Array) -> jax.Array:
        m, s = jax.lax.stop_gradient(anchor(eta))  # a fixed change of variables
        log_cosh = jnp.abs(t) + jnp.log1p(jnp.exp(-2.0 * jnp.abs(t))) - math.log(2.0)
        return case.logp(m + s * jnp.sinh(t), eta, const) + jnp.log(s) + log_cosh

    return logp


@functools.cache
def _integrand(case: Case) -> Callable[..., jax.Array]:
    """jit(t, eta, const) -> [p, p s_a..., p s_a s_b (a <= b)...] at one point t.

    Where the density underflows to 0 the integrand is 0: there the score may overflow
    (Gumbel's exp(-z)) but the product's true value is below the smallest double, since
    every density here decays faster than its score grows.
    """
    logp = _logp_t(case)

    def f(t: jax.Array, eta: jax.Array, const: jax.Array) -> jax.Array:
        lp, g = jax.value_and_grad(logp, argnums=1)(t, eta, const)
        p = jnp.exp(lp)
        iu = np.triu_indices(eta.shape[0])
        values = jnp.concatenate([p[None], p * g, p * jnp.outer(g, g)[iu]])
        return jnp.where(p > 0.0, values, 0.0)

    return jax.jit(f)


@functools.cache
def _summand(case: Case) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """jit(ys, eta, const) -> (log p(ys), scores (M, k)) over the whole (ordered) support.

    The discrete log-pmfs are written elementwise in ``y`` (NB2's rising factorial as a
    cumulative sum over the support), so one forward-mode Jacobian gives every score.
    """

    def value_and_scores(ys: jax.Array, eta: jax.Array, const: jax.Array) -> tuple[jax.Array, ...]:
        return case.logp(ys, eta, const), jax.jacfwd(case.logp, argnums=1)(ys, eta, const)

    return jax.jit(value_and_scores)


@dataclasses.dataclass
class Oracle:
    mass: float
    mean_score: np.ndarray
    matrix: np.ndarray


def _unpack(k: int, values: np.ndarray) -> Oracle:
    iu = np.triu_indices(k)
    m = np.zeros((k, k))
    m[iu] = values[1 + k :]
    m = m + np.triu(m, 1).T
    return Oracle(float(values[0]), np.asarray(values[1 : 1 + k]), m)


def _breaks(case: Case, eta: tuple, const: tuple) -> list[float]:
    """Integration pieces in t: the span, split at quantiles of the law (no effect on the value,
    only on how fast quad resolves the bulk and the tails)."""
    ref = case.ref(eta, const)
    if case.span is not None:
        lo, hi = case.span(eta, const)
    elif case.variable == "y":
        lo, hi = ref.support()
    else:
        lo, hi = -np.inf, np.inf
    qs = np.array([0.02, 0.5, 0.98])
    inner = list(_from_y(case, eta, ref.ppf(qs)))
    if case.kinks is not None:
        inner += case.kinks(eta, const)
    inner = [float(v) for v in np.unique(inner) if np.isfinite(v) and lo < v < hi]
    return [float(lo), *inner, float(hi)]


def quadrature_oracle(case: Case, eta: tuple, const: tuple = ()) -> Oracle:
    """E[s s^T] (and the mass and E[s]) by scipy.integrate.quad, entry by entry.

    The mass and the diagonal entries have positive integrands: quad runs with
    ``epsabs=0, epsrel=QUAD_EPSREL``. Off-diagonal entries and E[s] have integrands that
    change sign within a piece, so a relative tolerance on the piece's (small) value can be
    unattainable in float64; they get ``epsabs = QUAD_EPSREL * sqrt(I_aa I_bb)`` per piece,
    the same scale the comparison measures errors in.
    """
    f = _integrand(case)
    eta_j, const_j = jnp.asarray(eta, dtype=jnp.float64), jnp.asarray(const, dtype=jnp.float64)
    cache: dict[float, np.ndarray] = {}

    def values(t: float) -> np.ndarray:
        v = cache.get(t)
        if v is None:
            v = np.asarray(f(t, eta_j, const_j))
            cache[t] = v
        return v

    edges = _breaks(case, eta, const)

    def integral(i: int, epsabs: float) -> float:
        return sum(
            integrate.quad(
                lambda t: values(t)[i],
                lo,
                hi,
                epsabs=epsabs,
                epsrel=QUAD_EPSREL,
                limit=QUAD_LIMIT,
            )[0]
            for lo, hi in itertools.pairwise(edges)
        )

    k = len(eta)
    rows, cols = np.triu_indices(k)
    total = np.zeros(1 + k + len(rows))
    total[0] = integral(0, 0.0)
    diag = {}
    for idx, (a, b) in enumerate(zip(rows, cols, strict=True)):
        if a == b:
            total[1 + k + idx] = diag[a] = integral(1 + k + idx, 0.0)
    for idx, (a, b) in enumerate(zip(rows, cols, strict=True)):
        if a != b:
            total[1 + k + idx] = integral(1 + k + idx, QUAD_EPSREL * math.sqrt(diag[a] * diag[b]))
    for a in range(k):
        total[1 + a] = integral(1 + a, QUAD_EPSREL * math.sqrt(diag[a]))
    return _unpack(k, total)


def discrete_support(case: Case, eta: tuple, const: tuple) -> np.ndarray:
    ref = case.ref(eta, const)
    lo, hi = ref.support()
    if not np.isfinite(hi):
        hi = int(ref.ppf(0.5)) + 10
        while ref.sf(hi) >= TAIL_MASS:
            hi = int(1.25 * hi) + 10
    return np.arange(int(lo), int(hi) + 1, dtype=float)


def summation_oracle(case: Case, eta: tuple, const: tuple = ()) -> Oracle:
    """E[s s^T] by exact summation over the (truncated) support."""
    ys = discrete_support(case, eta, const)
    eta_j, const_j = jnp.asarray(eta, dtype=jnp.float64), jnp.asarray(const, dtype=jnp.float64)
    lp, g = _summand(case)(jnp.asarray(ys), eta_j, const_j)
    p, g = np.exp(np.asarray(lp)), np.asarray(g)
    m = g.T @ (p[:, None] * g)
    return Oracle(float(p.sum()), p @ g, m)


def oracle(case: Case, eta: tuple, const: tuple = ()) -> Oracle:
    if case.discrete:
        return summation_oracle(case, eta, const)
    return quadrature_oracle(case, eta, const)


# =========================================================================== oracle densities
# Each written from the textbook density, in the registry's parameter order; scipy.stats gives
# the same law for the pointwise check.

_LOG_2PI = math.log(2.0 * math.pi)


def _log_sigmoid(t: jax.Array) -> jax.Array:
    return -jnp.logaddexp(0.0, -t)


def _lp_normal(y, e, c):
    m, s = e[0], e[1]
    return -0.5 * _LOG_2PI - jnp.log(s) - 0.5 * ((y - m) / s) ** 2


def _lp_lognormal(y, e, c):
    m, s = e[0], e[1]
    return -jnp.log(y) - 0.5 * _LOG_2PI - jnp.log(s) - 0.5 * ((jnp.log(y) - m) / s) ** 2


def _lp_halfnormal(y, e, c):
    s = e[0]
    return 0.5 * math.log(2.0 / math.pi) - jnp.log(s) - 0.5 * (y / s) ** 2


def _lp_laplace(y, e, c):
    m, b = e[0], e[1]
    return -jnp.log(2.0 * b) - jnp.abs(y - m) / b


def _lp_cauchy(y, e, c):
    m, g = e[0], e[1]
    return -math.log(math.pi) - jnp.log(g) - jnp.log1p(((y - m) / g) ** 2)


def _lp_logistic(y, e, c):
    m, s = e[0], e[1]
    z = (y - m) / s
    return -z - jnp.log(s) - 2.0 * jnp.logaddexp(0.0, -z)


def _lp_gumbel(y, e, c):
    m, b = e[0], e[1]
    z = (y - m) / b
    return -jnp.log(b) - z - jnp.exp(-z)


def _lp_student_t(y, e, c):
    nu, m, s = e[0], e[1], e[2]
    z = (y - m) / s
    return (
        gammaln((nu + 1.0) / 2.0)
        - gammaln(nu / 2.0)
        - 0.5 * jnp.log(nu * jnp.pi)
        - jnp.log(s)
        - (nu + 1.0) / 2.0 * jnp.log1p(z * z / nu)
    )


def _lp_von_mises(y, e, c):
    m, k = e[0], e[1]
    # log(2 pi I0(k)) = log(2 pi) + log(i0e(k)) + k
    return k * jnp.cos(y - m) - _LOG_2PI - jnp.log(jax.scipy.special.i0e(k)) - k


# ---- in t = log y: log p_T(t) = log p_Y(e^t) + t


def _lpt_exponential(t, e, c):
    r = e[0]
    return jnp.log(r) + t - r * jnp.exp(t)


def _lpt_gamma(t, e, c):
    a, b = e[0], e[1]
    return a * jnp.log(b) - gammaln(a) + a * t - b * jnp.exp(t)


def _lpt_inverse_gamma(t, e, c):
    a, b = e[0], e[1]
    return a * jnp.log(b) - gammaln(a) - a * t - b * jnp.exp(-t)


def _lpt_weibull(t, e, c):
    lam, k = e[0], e[1]
    u = k * (t - jnp.log(lam))  # log((y/lam)^k)
    return jnp.log(k) + u - jnp.exp(u)


def _lpt_inverse_gaussian(t, e, c):
    # log p_Y(y) = (log lam - log 2 pi - 3 log y)/2 - lam (y - mu)^2 / (2 mu^2 y), y = e^t
    mu, lam = e[0], e[1]
    y = jnp.exp(t)
    return 0.5 * (jnp.log(lam) - _LOG_2PI - 3.0 * t) - lam * (y - mu) ** 2 / (2.0 * mu**2 * y) + t


# ---- in t = logit y: log p_T(t) = log p_Y(expit t) + log y + log(1-y)


def _lpt_beta(t, e, c):
    a, b = e[0], e[1]
    log_beta = gammaln(a) + gammaln(b) - gammaln(a + b)
    return a * _log_sigmoid(t) + b * _log_sigmoid(-t) - log_beta


# ---- discrete (y is a float array element; const holds fixed counts)


def _lp_poisson(y, e, c):
    lam = e[0]
    return y * jnp.log(lam) - lam - gammaln(y + 1.0)


def _lp_bernoulli_probs(y, e, c):
    p = e[0]
    return y * jnp.log(p) + (1.0 - y) * jnp.log1p(-p)


def _lp_bernoulli_logits(y, e, c):
    l = e[0]
    return y * _log_sigmoid(l) + (1.0 - y) * _log_sigmoid(-l)


def _log_choose(n, y):
    return gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)


def _lp_binomial_probs(y, e, c):
    p, n = e[0], c[0]
    return _log_choose(n, y) + y * jnp.log(p) + (n - y) * jnp.log1p(-p)


def _lp_binomial_logits(y, e, c):
    l, n = e[0], c[0]
    return _log_choose(n, y) + y * _log_sigmoid(l) + (n - y) * _log_sigmoid(-l)


def _lp_geometric_probs(y, e, c):
    p = e[0]  # failures before the first success
    return y * jnp.log1p(-p) + jnp.log(p)


def _lp_geometric_logits(y, e, c):
    l = e[0]
    return y * _log_sigmoid(-l) + _log_sigmoid(l)


def _lp_categorical_probs(y, e, c):
    return jnp.log(e[y.astype(jnp.int32)])


def _lp_categorical_logits(y, e, c):
    return e[y.astype(jnp.int32)] - jax.scipy.special.logsumexp(e)


def _log_rising(r: jax.Array, ys: jax.Array) -> jax.Array:
    """log Gamma(y + r) / Gamma(r) = sum_{j<y} log(r + j) for the whole support ys = 0, 1, ..., N
    at once (a cumulative sum: the summation oracle passes the support in order)."""
    return jnp.concatenate([jnp.zeros(1), jnp.cumsum(jnp.log(r + ys[:-1]))])


def _lp_nb2(y, e, c):
    # Written so that the r-score, which cancels to ~mu/r^2 when r >> mu, keeps its digits
    # (checked against mpmath at mu = 0.0156, r = 287): the rising factorial as a sum of logs
    # (derivative sum 1/(r+j), not digamma(y+r) - digamma(r)) and r log(r/(r+mu)) as
    # -r log1p(mu/r). Evaluated on the whole support at once (see _summand).
    mu, r = e[0], e[1]
    return _log_rising(r, y) - gammaln(y + 1.0) - r * jnp.log1p(mu / r) + y * (jnp.log(mu) - jnp.log(r + mu))


def _two(a: str, b: str) -> Callable[[int], tuple[str, ...]]:
    return lambda k: (a, b)


def _one(a: str) -> Callable[[int], tuple[str, ...]]:
    return lambda k: (a,)


def _vector(a: str) -> Callable[[int], tuple[str, ...]]:
    return lambda k: tuple(f"{a}[{j}]" for j in range(k))


def _categorical_ref(p: np.ndarray) -> Any:
    return stats.rv_discrete(values=(np.arange(len(p)), p))


CASES: dict[str, Case] = {
    "Normal": Case(
        nd.Normal,
        _two("loc", "scale"),
        lambda e, c: fl.dist.Normal(*e),
        _lp_normal,
        lambda e, c: stats.norm(e[0], e[1]),
        (((0.3, 1.7), ()), ((-5.0, 0.05), ()), ((1e3, 40.0), ())),
    ),
    "LogNormal": Case(
        nd.LogNormal,
        _two("loc", "scale"),
        lambda e, c: fl.dist.LogNormal(*e),
        _lp_lognormal,
        lambda e, c: stats.lognorm(e[1], scale=math.exp(e[0])),
        (((0.2, 0.5), ()), ((-1.0, 2.0), ())),
    ),
    "HalfNormal": Case(
        nd.HalfNormal,
        _one("scale"),
        lambda e, c: fl.dist.HalfNormal(*e),
        _lp_halfnormal,
        lambda e, c: stats.halfnorm(scale=e[0]),
        (((0.7,), ()), ((30.0,), ())),
    ),
    "Laplace": Case(
        nd.Laplace,
        _two("loc", "scale"),
        lambda e, c: fl.dist.Laplace(*e),
        _lp_laplace,
        lambda e, c: stats.laplace(e[0], e[1]),
        (((0.5, 2.0), ()), ((-3.0, 0.01), ())),
    ),
    "Cauchy": Case(
        nd.Cauchy,
        _two("loc", "scale"),
        lambda e, c: fl.dist.Cauchy(*e),
        _lp_cauchy,
        lambda e, c: stats.cauchy(e[0], e[1]),
        (((0.0, 1.0), ()), ((2.0, 0.3), ())),
        variable="sinh",
        anchor=lambda e: (e[0], e[1]),
    ),
    "Logistic": Case(
        nd.Logistic,
        _two("loc", "scale"),
        lambda e, c: fl.dist.Logistic(*e),
        _lp_logistic,
        lambda e, c: stats.logistic(e[0], e[1]),
        (((1.0, 0.5), ()), ((-2.0, 4.0), ())),
    ),
    "Gumbel": Case(
        nd.Gumbel,
        _two("loc", "scale"),
        lambda e, c: fl.dist.Gumbel(*e),
        _lp_gumbel,
        lambda e, c: stats.gumbel_r(e[0], e[1]),
        (((0.3, 1.2), ()), ((5.0, 0.1), ())),
    ),
    "StudentT": Case(
        nd.StudentT,
        lambda k: ("df", "loc", "scale"),
        lambda e, c: fl.dist.StudentT(*e),
        _lp_student_t,
        lambda e, c: stats.t(e[0], e[1], e[2]),
        (((1.5, 0.5, 2.0), ()), ((30.0, -1.0, 0.3), ()), ((4.0, 0.0, 1.0), ()), ((0.5, 0.0, 21.0), ())),
        variable="sinh",
        anchor=lambda e: (e[1], e[2]),
    ),
    "VonMises": Case(
        nd.VonMises,
        _two("loc", "concentration"),
        lambda e, c: fl.dist.VonMises(*e),
        _lp_von_mises,
        lambda e, c: stats.vonmises(e[1], loc=e[0]),
        (((0.3, 0.05), ()), ((-1.0, 2.0), ()), ((2.0, 60.0), ())),
        # one full period centred on the mode (the density is 2 pi-periodic)
        span=lambda e, c: (e[0] - math.pi, e[0] + math.pi),
    ),
    "Exponential": Case(
        nd.Exponential,
        _one("rate"),
        lambda e, c: fl.dist.Exponential(*e),
        _lpt_exponential,
        lambda e, c: stats.expon(scale=1.0 / e[0]),
        (((0.2,), ()), ((15.0,), ())),
        variable="log",
    ),
    "Gamma": Case(
        nd.Gamma,
        _two("concentration", "rate"),
        lambda e, c: fl.dist.Gamma(*e),
        _lpt_gamma,
        lambda e, c: stats.gamma(e[0], scale=1.0 / e[1]),
        (((0.3, 2.0), ()), ((25.0, 0.5), ()), ((2.0, 1.0), ())),
        variable="log",
    ),
    "InverseGamma": Case(
        nd.InverseGamma,
        _two("concentration", "rate"),
        lambda e, c: fl.dist.InverseGamma(*e),
        _lpt_inverse_gamma,
        lambda e, c: stats.invgamma(e[0], scale=e[1]),
        (((0.5, 1.0), ()), ((12.0, 3.0), ())),
        variable="log",
    ),
    "Weibull": Case(
        nd.Weibull,
        _two("scale", "concentration"),
        lambda e, c: fl.dist.Weibull(*e),
        _lpt_weibull,
        lambda e, c: stats.weibull_min(e[1], scale=e[0]),
        (((1.5, 0.4), ()), ((2.0, 8.0), ())),
        variable="log",
    ),
    "InverseGaussian": Case(
        fl.dist.InverseGaussian,
        _two("mean", "concentration"),
        lambda e, c: fl.dist.InverseGaussian(*e),
        _lpt_inverse_gaussian,
        # scipy's invgauss(m, scale=s) has mean m s and shape s
        lambda e, c: stats.invgauss(e[0] / e[1], scale=e[1]),
        (((2.0, 3.0), ()), ((0.5, 20.0), ()), ((5.0, 0.2), ())),
        variable="log",
    ),
    "Beta": Case(
        nd.Beta,
        _two("concentration1", "concentration0"),
        lambda e, c: fl.dist.Beta(*e),
        _lpt_beta,
        lambda e, c: stats.beta(e[0], e[1]),
        (((0.3, 0.5), ()), ((20.0, 3.0), ()), ((1.0, 1.0), ())),
        variable="logit",
    ),
    "Poisson": Case(
        nd.Poisson,
        _one("rate"),
        lambda e, c: fl.dist.Poisson(*e),
        _lp_poisson,
        lambda e, c: stats.poisson(e[0]),
        (((0.01,), ()), ((3.5,), ()), ((250.0,), ())),
        variable="discrete",
    ),
    "BernoulliProbs": Case(
        nd.BernoulliProbs,
        _one("probs"),
        lambda e, c: fl.dist.Bernoulli(probs=e[0]),
        _lp_bernoulli_probs,
        lambda e, c: stats.bernoulli(e[0]),
        (((0.3,), ()), ((0.999,), ())),
        variable="discrete",
    ),
    "BernoulliLogits": Case(
        nd.BernoulliLogits,
        _one("logits"),
        lambda e, c: fl.dist.Bernoulli(logits=e[0]),
        _lp_bernoulli_logits,
        lambda e, c: stats.bernoulli(special.expit(e[0])),
        (((-2.0,), ()), ((8.0,), ())),
        variable="discrete",
    ),
    "BinomialProbs": Case(
        nd.BinomialProbs,
        _one("probs"),
        lambda e, c: fl.dist.Binomial(c[0], probs=e[0]),
        _lp_binomial_probs,
        lambda e, c: stats.binom(c[0], e[0]),
        (((0.3,), (10,)), ((0.97,), (50,))),
        variable="discrete",
    ),
    "BinomialLogits": Case(
        nd.BinomialLogits,
        _one("logits"),
        lambda e, c: fl.dist.Binomial(c[0], logits=e[0]),
        _lp_binomial_logits,
        lambda e, c: stats.binom(c[0], special.expit(e[0])),
        (((0.4,), (10,)), ((-3.0,), (7,))),
        variable="discrete",
    ),
    "GeometricProbs": Case(
        nd.GeometricProbs,
        _one("probs"),
        lambda e, c: fl.dist.Geometric(probs=e[0]),
        _lp_geometric_probs,
        lambda e, c: stats.nbinom(1, e[0]),
        (((0.03,), ()), ((0.8,), ())),
        variable="discrete",
    ),
    "GeometricLogits": Case(
        nd.GeometricLogits,
        _one("logits"),
        lambda e, c: fl.dist.Geometric(logits=e[0]),
        _lp_geometric_logits,
        lambda e, c: stats.nbinom(1, special.expit(e[0])),
        (((-3.0,), ()), ((2.0,), ())),
        variable="discrete",
    ),
    "CategoricalProbs": Case(
        nd.CategoricalProbs,
        _vector("probs"),
        lambda e, c: fl.dist.Categorical(probs=jnp.asarray(e)),
        _lp_categorical_probs,
        lambda e, c: _categorical_ref(np.asarray(e)),
        (((0.2, 0.5, 0.3), ()), ((0.001, 0.989, 0.01), ())),
        variable="discrete",
        centred=False,  # E[s] = E[e_y / p_y] = 1: the simplex constraint is not in the score
    ),
    "CategoricalLogits": Case(
        nd.CategoricalLogits,
        _vector("logits"),
        lambda e, c: fl.dist.Categorical(logits=jnp.asarray(e)),
        _lp_categorical_logits,
        lambda e, c: _categorical_ref(special.softmax(np.asarray(e))),
        (((0.1, -1.0, 2.0), ()), ((5.0, 0.0, -5.0, 1.0), ())),
        variable="discrete",
    ),
    "NegativeBinomial2": Case(
        nd.NegativeBinomial2,
        _two("mean", "concentration"),
        lambda e, c: fl.dist.NegativeBinomial2(*e),
        _lp_nb2,
        lambda e, c: stats.nbinom(e[1], e[1] / (e[1] + e[0])),
        (((3.0, 2.0), ()), ((50.0, 0.5), ()), ((0.1, 20.0), ()), ((7.0, 300.0), ())),
        variable="discrete",
    ),
}

# Families whose oracle is not a 1-D quadrature / summation: tested further below.
SEPARATE = {nd.Dirichlet: "test_dirichlet_*", nd.MultivariateNormal: "test_mvn_*"}

POINTS = [
    pytest.param(name, eta, const, id=f"{name}-{','.join(f'{v:g}' for v in eta + const)}")
    for name, case in CASES.items()
    for eta, const in case.points
]


def test_every_registered_family_has_an_oracle() -> None:
    """A family added to the registry without an oracle here fails this test."""
    covered = tuple({c.family for c in CASES.values()} | set(SEPARATE))
    shipped = [  # entries of the library itself, not ones that tests register
        cls for cls in fl.dist.registered_families() if cls.__module__.startswith(("numpyro.", "fisherlab."))
    ]
    missing = [cls.__name__ for cls in shipped if not issubclass(cls, covered)]
    assert not missing, f"registry families without an oracle in this file: {missing}"
    assert all(cls in shipped for cls in covered)


@pytest.mark.parametrize(("name", "eta", "const"), POINTS)
def test_oracle_density_matches_scipy(name: str, eta: tuple, const: tuple) -> None:
    """The oracle's own log-density agrees with scipy.stats (it is the right law)."""
    case = CASES[name]
    ref = case.ref(eta, const)
    eta_j, const_j = jnp.asarray(eta, dtype=jnp.float64), jnp.asarray(const, dtype=jnp.float64)
    if case.discrete:
        ys = discrete_support(case, eta, const)  # the summation's shape: one compile
        ours = np.asarray(_summand(case)(jnp.asarray(ys), eta_j, const_j)[0])
        theirs = ref.logpmf(ys)
    else:
        ys = ref.ppf(np.array([0.01, 0.2, 0.5, 0.8, 0.99]))
        if case.span is not None:  # scipy's von Mises ppf may leave the period we integrate
            lo, hi = case.span(eta, const)
            ys = lo + np.mod(ys - lo, hi - lo)
        ts = _from_y(case, eta, ys)
        f = _integrand(case)  # compiled once per family, shared with the quadrature
        ours = np.log([float(f(t, eta_j, const_j)[0]) for t in ts])
        theirs = ref.logpdf(_to_y(case, eta, ts)) + _log_jacobian(case, eta, ts)
    keep = theirs > -300.0  # far-tail masses where either side underflows carry no information
    assert keep.sum() >= min(3, len(ys))
    np.testing.assert_allclose(ours[keep], theirs[keep], rtol=LOGPDF_RTOL, atol=LOGPDF_RTOL)


@pytest.mark.parametrize(("name", "eta", "const"), POINTS)
def test_registry_matches_oracle(name: str, eta: tuple, const: tuple) -> None:
    case = CASES[name]
    d = case.build(eta, const)
    assert isinstance(d, case.family)
    ff = fl.dist.family_fisher(d)
    k = len(eta)
    assert ff.names == case.names(k)
    np.testing.assert_allclose(np.asarray(ff.params), np.asarray(eta), rtol=SAME_FORMULA_RTOL)

    o = oracle(case, eta, const)
    # The oracle is a probability law (mass 1) whose score is centred (E[s] = 0).
    assert abs(o.mass - 1.0) < ORACLE_SELF_TOL
    sd = np.sqrt(np.diag(o.matrix))
    mean_score = o.mean_score if case.centred else o.mean_score - 1.0
    assert np.all(np.abs(mean_score) < ORACLE_SELF_TOL * np.maximum(sd, 1.0))

    err = _rel_err(ff.matrix, o.matrix)
    assert err < RTOL, f"{name}{eta}: rel err {err:.3e}\nregistry\n{ff.matrix}\noracle\n{o.matrix}"


# =========================================================================== batch shapes


def test_registry_values_over_batch() -> None:
    """A batched distribution gives, element by element, the matrices of the scalar ones."""
    locs = np.array([[0.0, 1.0, -2.0], [3.0, 0.5, 0.0]])
    scales = np.array([[2.0, 0.5, 1.0], [1.0, 3.0, 0.2]])
    dfs = np.array([1.5, 4.0, 30.0])  # broadcast against (2, 3)
    ff = fl.dist.family_fisher(fl.dist.StudentT(dfs, locs, scales))
    assert ff.params.shape == (2, 3, 3)
    single = jax.jit(lambda *a: fl.dist.family_fisher(fl.dist.StudentT(*a)).matrix)
    for i in range(2):
        for j in range(3):
            one = single(dfs[j], locs[i, j], scales[i, j])
            # psi'(nu/2) - psi'((nu+1)/2) at df=30 cancels ~3 digits, so eager vs jit differ at
            # 1e-12: compare at RTOL (a wrong element would be off at O(1))
            assert _rel_err(ff.matrix[i, j], one) < RTOL

    conc = np.array([[0.3, 1.0], [2.0, 40.0], [1.0, 1.0]])
    ff = fl.dist.family_fisher(fl.dist.Gamma(conc, np.array([1.0, 0.5])))
    assert ff.matrix.shape == (3, 2, 2, 2)
    np.testing.assert_allclose(
        ff.matrix[1, 1], fl.dist.family_fisher(fl.dist.Gamma(40.0, 0.5)).matrix, rtol=SAME_FORMULA_RTOL
    )

    nb = fl.dist.family_fisher(fl.dist.NegativeBinomial2(np.array([3.0, 50.0]), 2.0))
    for i, mu in enumerate([3.0, 50.0]):
        single = fl.dist.family_fisher(fl.dist.NegativeBinomial2(mu, 2.0)).matrix
        np.testing.assert_allclose(nb.matrix[i], single, rtol=SAME_FORMULA_RTOL)


def test_registry_matrix_has_the_distribution_batch_shape() -> None:
    """FamilyFisher.matrix has shape batch_shape + (k, k) whatever the parameters depend on."""
    dfs = np.array([1.5, 4.0, 30.0])
    d = fl.dist.StudentT(dfs, np.zeros((2, 3)), 2.0)
    assert fl.dist.family_fisher(d).matrix.shape == (*d.batch_shape, 3, 3)


def test_fisher_of_a_two_axis_batch_where_the_information_ignores_one_axis() -> None:
    """Six StudentT observations per draw, loc shared, df varying along the last axis."""
    dfs = jnp.array([1.5, 4.0, 30.0])
    model = fl.Model(lambda th, x: fl.dist.StudentT(dfs, th["mu"] + jnp.zeros((2, 3)), th["s"]))
    F = fl.fisher(model, {"mu": 0.5, "s": 2.0})
    expected = sum(
        2.0 * np.asarray(fl.dist.family_fisher(fl.dist.StudentT(float(v), 0.5, 2.0)).matrix)[1:, 1:]
        for v in dfs
    )
    assert _rel_err(F.matrix, expected) < DENSE_RTOL


def test_fisher_of_a_batch_where_the_information_ignores_the_batch() -> None:
    """Normal(loc[3], scalar scale): the matrix has no batch axis, the chain rule still sums."""
    model = fl.Model(lambda th, x: fl.dist.Normal(th["mu"] + jnp.arange(3.0), th["sigma"]))
    F = fl.fisher(model, {"mu": 0.5, "sigma": 2.0})
    assert _rel_err(F.matrix, np.diag([3.0 / 4.0, 3.0 * 2.0 / 4.0])) < DENSE_RTOL


# =========================================================================== limits (mpmath)
# The quadrature oracles above pin the formulas; here the closed forms are evaluated at 50
# digits with mpmath where the float64 evaluation of the registry cancels.


def _mp_student_t_df(nu: float) -> float:
    n = mpmath.mpf(nu)
    return float(
        (mpmath.psi(1, n / 2) - mpmath.psi(1, (n + 1) / 2)) / 4 - (n + 5) / (2 * n * (n + 1) * (n + 3))
    )


def _mp_von_mises_kappa(kappa: float) -> float:
    k = mpmath.mpf(kappa)
    a = mpmath.besseli(1, k) / mpmath.besseli(0, k)
    return float(1 - a / k - a * a)


def _mp_sigmoid(logit: float) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-mpmath.mpf(logit)))


def _limit_cases() -> list[Any]:
    cases = [
        pytest.param("StudentT", 200.0, id="StudentT-df200"),
        pytest.param("StudentT", 1e3, id="StudentT-df1e3"),
        pytest.param("StudentT", 1e4, id="StudentT-df1e4"),
        pytest.param("VonMises", 500.0, id="VonMises-500"),
        pytest.param("VonMises", 1e4, id="VonMises-1e4"),
    ]
    for family in ("BernoulliLogits", "BinomialLogits", "GeometricLogits", "CategoricalLogits"):
        cases.append(pytest.param(family, 10.0, id=f"{family}-10"))
        for value in (20.0, 30.0, 40.0):
            cases.append(pytest.param(family, value, id=f"{family}-{value:g}"))
    return cases


@pytest.mark.parametrize(("family", "value"), _limit_cases())
def test_registry_precision_in_limits(family: str, value: float) -> None:
    with mpmath.workdps(50):
        _check_precision_in_limits(family, value)


def _check_precision_in_limits(family: str, value: float) -> None:
    if family == "StudentT":
        got = fl.dist.family_fisher(fl.dist.StudentT(value, 0.0, 1.0)).matrix[0, 0]
        ref = np.array(_mp_student_t_df(value))
    elif family == "VonMises":
        got = fl.dist.family_fisher(fl.dist.VonMises(0.0, value)).matrix[1, 1]
        ref = np.array(_mp_von_mises_kappa(value))
    elif family == "CategoricalLogits":
        logits = [0.0, value, -1.0]
        got = fl.dist.family_fisher(fl.dist.Categorical(logits=jnp.asarray(logits))).matrix
        z = sum(mpmath.exp(v) for v in logits)
        p = [mpmath.exp(v) / z for v in logits]
        ref = np.array([[float((p[i] if i == j else 0) - p[i] * p[j]) for j in range(3)] for i in range(3)])
    else:
        pq = _mp_sigmoid(value) * _mp_sigmoid(-value)  # p (1 - p), each factor exact
        d, ref = {
            "BernoulliLogits": (fl.dist.Bernoulli(logits=value), float(pq)),
            "BinomialLogits": (fl.dist.Binomial(7, logits=value), float(7 * pq)),
            "GeometricLogits": (fl.dist.Geometric(logits=value), float(_mp_sigmoid(-value))),
        }[family]
        got, ref = fl.dist.family_fisher(d).matrix, np.array(ref)
    got, ref = np.atleast_2d(np.asarray(got)), np.atleast_2d(ref)
    assert _rel_err(got, ref) < RTOL, _rel_err(got, ref)


# =========================================================================== Dirichlet


def _dirichlet_closed_form(alpha: np.ndarray) -> np.ndarray:
    # I = diag(psi'(alpha)) - psi'(alpha_0) 1 1^T, alpha_0 = sum alpha (log-partition Hessian).
    return np.diag(special.polygamma(1, alpha)) - special.polygamma(1, alpha.sum())


@pytest.mark.parametrize(
    "alpha", [(0.7, 2.0, 5.0), (0.05, 0.3, 0.2, 1.0), (50.0, 80.0)], ids=["mid", "small", "large"]
)
def test_dirichlet_closed_form(alpha: tuple) -> None:
    a = np.asarray(alpha)
    ff = fl.dist.family_fisher(fl.dist.Dirichlet(a))
    assert ff.names == tuple(f"concentration[{j}]" for j in range(len(a)))
    err = _rel_err(ff.matrix, _dirichlet_closed_form(a))
    assert err < RTOL


@pytest.mark.parametrize("eta", [(0.3, 0.5), (20.0, 3.0)])
def test_dirichlet_two_categories_is_beta_quadrature(eta: tuple) -> None:
    """Dirichlet(a, b) is Beta(a, b) for the first coordinate: same Fisher, by quadrature."""
    ff = fl.dist.family_fisher(fl.dist.Dirichlet(np.asarray(eta)))
    o = quadrature_oracle(CASES["Beta"], eta)
    err = _rel_err(ff.matrix, o.matrix)
    assert err < RTOL


def test_dirichlet_monte_carlo() -> None:
    """E[s s^T] by 200k seeded numpy draws, s = psi(alpha_0) - psi(alpha) + log y."""
    alpha = np.array([0.7, 2.0, 5.0])
    rng = np.random.default_rng(11)
    y = rng.dirichlet(alpha, size=200_000)
    s = special.digamma(alpha.sum()) - special.digamma(alpha) + np.log(y)
    outer = s[:, :, None] * s[:, None, :]
    mc = outer.mean(0)
    se = outer.std(0, ddof=1) / math.sqrt(len(y))
    f = np.asarray(fl.dist.family_fisher(fl.dist.Dirichlet(alpha)).matrix)
    assert np.all(np.abs(mc - f) < MC_SE * se), (mc - f) / se
    # the check can fail: a 10% error in the closed form would be caught
    assert np.any(np.abs(mc - 1.1 * f) > MC_SE * se)


# =========================================================================== multivariate normal


def _lp_mvn(y: jax.Array, mu: jax.Array, cov: jax.Array) -> jax.Array:
    """Multivariate normal log-density, written with a Cholesky factor."""
    chol = jnp.linalg.cholesky(cov)
    z = jax.scipy.linalg.solve_triangular(chol, y - mu, lower=True)
    return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * y.shape[0] * _LOG_2PI


def _gauss_hermite(mu: np.ndarray, cov: np.ndarray, order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Product Gauss-Hermite nodes/weights for N(mu, cov): exact for polynomials of degree
    <= 2*order - 1 in each coordinate (the MVN score outer product has degree 4)."""
    z1, w1 = np.polynomial.hermite_e.hermegauss(order)
    w1 = w1 / w1.sum()
    dim = len(mu)
    grids = np.meshgrid(*([z1] * dim), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=1)
    w = np.prod(np.stack(np.meshgrid(*([w1] * dim), indexing="ij")).reshape(dim, -1), axis=0)
    return mu + z @ np.linalg.cholesky(cov).T, w


def _spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T + dim * np.eye(dim)


def test_mvn_registry_vech_formula(rng: np.random.Generator) -> None:
    """(loc, vech S) block: S^-1 and D^T (S^-1 (x) S^-1) D / 2, D built from the names."""
    dim = 3
    mu, cov = rng.normal(size=dim), _spd(rng, dim)
    ff = fl.dist.family_fisher(fl.dist.MultivariateNormal(mu, covariance_matrix=cov))
    prec = np.linalg.inv(cov)
    pairs = [tuple(int(i) for i in n[len("covariance_matrix[") : -1].split(",")) for n in ff.names[dim:]]
    assert ff.names[:dim] == tuple(f"loc[{i}]" for i in range(dim))
    assert sorted(pairs) == sorted((i, j) for i in range(dim) for j in range(i + 1))
    dup = np.zeros((dim * dim, len(pairs)))  # vec(S) = D vech(S)
    for col, (i, j) in enumerate(pairs):
        dup[i + dim * j, col] = 1.0
        dup[j + dim * i, col] = 1.0
    expected = np.zeros((dim + len(pairs),) * 2)
    expected[:dim, :dim] = prec
    expected[dim:, dim:] = 0.5 * dup.T @ np.kron(prec, prec) @ dup
    np.testing.assert_allclose(np.asarray(ff.params[:dim]), mu, rtol=SAME_FORMULA_RTOL)
    np.testing.assert_allclose(np.asarray(ff.params[dim:]), [cov[i, j] for i, j in pairs], rtol=1e-14)
    err = _rel_err(ff.matrix, expected)
    assert err < DENSE_RTOL


def test_mvn_registry_gauss_hermite(rng: np.random.Generator) -> None:
    """E[s s^T] of the (loc, vech S) score of an independently written MVN log-density,
    by Gauss-Hermite cubature (exact for the degree-4 integrand)."""
    dim = 3
    mu, cov = rng.normal(size=dim), _spd(rng, dim)
    ff = fl.dist.family_fisher(fl.dist.MultivariateNormal(mu, covariance_matrix=cov))
    pairs = [tuple(int(i) for i in n[len("covariance_matrix[") : -1].split(",")) for n in ff.names[dim:]]
    rows, cols = np.array(pairs).T

    def lp(eta: jax.Array, y: jax.Array) -> jax.Array:
        s = jnp.zeros((dim, dim)).at[rows, cols].set(eta[dim:]).at[cols, rows].set(eta[dim:])
        return _lp_mvn(y, eta[:dim], s)

    eta = jnp.concatenate([jnp.asarray(mu), jnp.asarray([cov[i, j] for i, j in pairs])])
    ys, w = _gauss_hermite(mu, cov)
    g = np.asarray(jax.jit(jax.vmap(jax.grad(lp), in_axes=(None, 0)))(eta, jnp.asarray(ys)))
    np.testing.assert_allclose(w @ g, 0.0, atol=1e-13)  # centred score: the oracle is right
    err = _rel_err(ff.matrix, g.T @ (w[:, None] * g))
    assert err < DENSE_RTOL


def _mvn_mean(th: Any) -> jax.Array:
    m = th["m"]
    return jnp.stack([m[0] + m[1] ** 2, jnp.sin(m[1]), m[0] * m[1]])


def _mvn_cov(th: Any) -> jax.Array:
    c = th["c"]
    chol = jnp.array(
        [
            [jnp.exp(c[0]), 0.0, 0.0],
            [c[1], jnp.exp(c[2]), 0.0],
            [c[3], c[4], jnp.exp(c[5])],
        ]
    )
    return chol @ chol.T + th["m"][0] ** 2 * jnp.eye(3)


def test_mvn_model_chain_rule() -> None:
    """F_ab = mu_a^T S^-1 mu_b + tr(S^-1 S_a S^-1 S_b)/2 through a nonlinear model, against
    the formula with jax.jacobian and numpy, and Gauss-Hermite E[s s^T] of the model's score."""
    params = {"m": jnp.array([0.7, -1.2]), "c": jnp.array([0.1, 0.5, -0.3, -0.4, 0.8, 0.2])}
    model = fl.Model(lambda th, x: fl.dist.MultivariateNormal(_mvn_mean(th), covariance_matrix=_mvn_cov(th)))
    F = fl.fisher(model, params)
    assert F.method == "exact"
    assert F.names == [f"c[{i}]" for i in range(6)] + ["m[0]", "m[1]"]

    flat, unravel = ravel_pytree(params)  # same order as the names above
    mu = np.asarray(_mvn_mean(params))
    cov = np.asarray(_mvn_cov(params))
    dmu = np.asarray(jax.jit(jax.jacobian(lambda f: _mvn_mean(unravel(f))))(flat))  # (3, P)
    dcov = np.asarray(jax.jit(jax.jacobian(lambda f: _mvn_cov(unravel(f))))(flat))  # (3, 3, P)
    prec = np.linalg.inv(cov)
    p = flat.shape[0]
    expected = np.empty((p, p))
    for a in range(p):
        for b in range(p):
            expected[a, b] = dmu[:, a] @ prec @ dmu[:, b] + 0.5 * np.trace(
                prec @ dcov[:, :, a] @ prec @ dcov[:, :, b]
            )
    assert _rel_err(F.matrix, expected) < DENSE_RTOL

    ys, w = _gauss_hermite(mu, cov)

    def lp(f: jax.Array, y: jax.Array) -> jax.Array:
        th = unravel(f)
        return _lp_mvn(y, _mvn_mean(th), _mvn_cov(th))

    g = np.asarray(jax.jit(jax.vmap(jax.grad(lp), in_axes=(None, 0)))(flat, jnp.asarray(ys)))
    assert _rel_err(F.matrix, g.T @ (w[:, None] * g)) < DENSE_RTOL


# =========================================================================== non-registry routes


def _lp_beta_binomial(y, e, c):
    a, b, n = e[0], e[1], c[0]

    def log_beta(p, q):  # through gammaln: jax.scipy.special.betaln is not used (see below)
        return gammaln(p) + gammaln(q) - gammaln(p + q)

    return _log_choose(n, y) + log_beta(y + a, n - y + b) - log_beta(a, b)


class GammalnBetaBinomial(nd.BetaBinomial):
    """NumPyro's BetaBinomial with its log-pmf written through gammaln.

    NumPyro's own log_prob calls jax.scipy.special.betaln, which (jax 0.10) is off by ~1e-6
    (absolute) once an argument reaches 8, so with total_count=8 its pmf sums to 1 + 3e-7 and
    fisherlab's summation route rightly refuses it (test below). Not registered: still the
    summation route.
    """

    def log_prob(self, value: jax.Array) -> jax.Array:
        eta = jnp.stack(jnp.broadcast_arrays(self.concentration1, self.concentration0))
        return _lp_beta_binomial(value, eta, jnp.atleast_1d(self.total_count))


def _beta_binomial_oracle(c1: float, c0: float, n: int) -> np.ndarray:
    """sum_y p(y) s s^T in (c0, c1) order, score by jax.grad of the gammaln log-pmf."""
    ys = np.arange(n + 1.0)
    eta = jnp.array([c1, c0])
    vg = jax.vmap(jax.value_and_grad(_lp_beta_binomial, argnums=1), in_axes=(0, None, None))
    lp, g = (np.asarray(v) for v in vg(jnp.asarray(ys), eta, jnp.array([float(n)])))
    p = np.exp(lp)
    assert abs(p.sum() - 1.0) < ORACLE_SELF_TOL
    np.testing.assert_allclose(p, stats.betabinom(n, c1, c0).pmf(ys), rtol=1e-12)
    g = g[:, ::-1]  # (c1, c0) -> names order (c0, c1)
    return g.T @ (p[:, None] * g)


def test_summation_route_beta_binomial() -> None:
    params = {"c0": 0.6, "c1": 1.7}
    model = fl.Model(lambda th, x: GammalnBetaBinomial(th["c1"], th["c0"], total_count=8))
    F = fl.fisher(model, params)
    assert F.method == "summation"
    assert F.names == ["c0", "c1"]
    assert _rel_err(F.matrix, _beta_binomial_oracle(params["c1"], params["c0"], 8)) < RTOL


def test_summation_route_numpyro_beta_binomial() -> None:
    """NumPyro's own BetaBinomial(total_count=8): exact if its pmf sums to 1, else refused."""
    params = {"c0": 0.6, "c1": 1.7}
    d = nd.BetaBinomial(params["c1"], params["c0"], total_count=8)
    mass = float(jnp.exp(d.log_prob(d.enumerate_support())).sum())
    model = fl.Model(lambda th, x: nd.BetaBinomial(th["c1"], th["c0"], total_count=8))
    if abs(mass - 1.0) > 1e-8:  # jax 0.10's betaln: 1 + 3e-7 here
        with pytest.raises(fl.NotConvergedError, match="sum to probability 1"):
            fl.fisher(model, params)
    else:  # a JAX with an accurate betaln
        F = fl.fisher(model, params)
        assert F.method == "summation"
        assert _rel_err(F.matrix, _beta_binomial_oracle(params["c1"], params["c0"], 8)) < RTOL


def test_summation_route_with_covariates() -> None:
    """Per-row summation and the chain rule: c1 = exp(a + b x) row by row, NumPyro's own
    BetaBinomial with total_count=5 (all betaln arguments below 8, where jax's is exact)."""
    x = np.array([-1.0, 0.0, 0.5, 2.0])
    params = {"a": 0.2, "b": -0.4, "c0": 1.3}
    model = fl.Model(lambda th, x: nd.BetaBinomial(jnp.exp(th["a"] + th["b"] * x), th["c0"], total_count=5))
    F = fl.fisher(model, params, x)
    assert F.method == "summation"
    ys = jnp.arange(6.0)

    def lp(f: jax.Array, y: jax.Array, xi: float) -> jax.Array:
        eta = jnp.stack([jnp.exp(f[0] + f[1] * xi), f[2]])
        return _lp_beta_binomial(y, eta, jnp.array([5.0]))

    expected = np.zeros((3, 3))
    flat = jnp.array([params["a"], params["b"], params["c0"]])
    for xi in x:
        lps, g = jax.vmap(jax.value_and_grad(lp), in_axes=(None, 0, None))(flat, ys, xi)
        p, g = np.exp(np.asarray(lps)), np.asarray(g)
        expected += g.T @ (p[:, None] * g)
    assert _rel_err(F.matrix, expected) < RTOL


# Rounding slack when checking that the quadrature error estimate bounds the true error: the
# matrix is a weighted sum over ~500 tanh-sinh nodes, each an icdf and a score in float64.
QUADRATURE_ROUNDING = 64 * np.finfo(float).eps


def _lp_soft_laplace(y, e, c):
    # density 1/(pi s cosh z), z = (y - m)/s
    m, s = e[0], e[1]
    z = (y - m) / s
    return -math.log(math.pi) - jnp.log(s) - jnp.logaddexp(z, -z) + math.log(2.0)


def _lp_asymmetric_laplace(y, e, c):
    # Kotz, Kozubowski & Podgorski (2001): scale s, asymmetry k; left scale s k, right s / k
    m, s, k = e[0], e[1], e[2]
    z = y - m
    rate = jnp.where(z < 0, 1.0 / (s * k), k / s)
    return jnp.log(k / (s * (1.0 + k * k))) - jnp.abs(z) * rate


SOFT_LAPLACE = Case(
    nd.SoftLaplace,
    _two("loc", "scale"),
    lambda e, c: nd.SoftLaplace(*e),
    _lp_soft_laplace,
    lambda e, c: stats.hypsecant(e[0], e[1]),
    (((0.4, 1.5), ()),),
)

ASYMMETRIC_LAPLACE = Case(
    nd.AsymmetricLaplace,
    lambda k: ("loc", "scale", "asymmetry"),
    lambda e, c: nd.AsymmetricLaplace(*e),
    _lp_asymmetric_laplace,
    # scipy's laplace_asymmetric(kappa, loc, scale) is the same parametrisation
    lambda e, c: stats.laplace_asymmetric(e[2], e[0], e[1]),
    (((0.4, 1.5, 0.6), ()),),
    kinks=lambda e, c: [e[0]],
)


@pytest.mark.parametrize("case", [SOFT_LAPLACE, ASYMMETRIC_LAPLACE], ids=lambda c: c.family.__name__)
def test_non_registry_oracle_density(case: Case) -> None:
    """The oracle densities are scipy's hyperbolic secant and asymmetric Laplace laws."""
    ((eta, const),) = case.points
    ys = np.array([-3.0, 0.0, 0.39, 0.41, 2.5, 9.0])
    ours = [float(case.logp(jnp.asarray(y), jnp.asarray(eta), ())) for y in ys]
    np.testing.assert_allclose(ours, case.ref(eta, const).logpdf(ys), rtol=LOGPDF_RTOL)


def _half_cauchy(scale: float) -> tuple[fl.InfoMatrix, np.ndarray]:
    F = fl.fisher(fl.Model(lambda th, x: nd.HalfCauchy(th["s"])), {"s": scale})
    # closed form: s_sigma = (y^2 - s^2)/(s (y^2 + s^2)), E[s_sigma^2] = 1/(2 s^2)
    return F, np.array([[0.5 / scale**2]])


def _soft_laplace() -> tuple[fl.InfoMatrix, np.ndarray]:
    ((eta, const),) = SOFT_LAPLACE.points
    model = fl.Model(lambda th, x: nd.SoftLaplace(th["loc"], th["scale"]))
    F = fl.fisher(model, {"loc": eta[0], "scale": eta[1]})
    o = quadrature_oracle(SOFT_LAPLACE, eta, const)
    assert abs(o.mass - 1.0) < ORACLE_SELF_TOL
    assert np.all(np.abs(o.mean_score) < ORACLE_SELF_TOL)
    return F, o.matrix


QUADRATURE_CASES = [
    pytest.param(lambda: _half_cauchy(0.3), id="HalfCauchy-0.3"),
    pytest.param(lambda: _half_cauchy(2.0), id="HalfCauchy-2"),
    pytest.param(lambda: _half_cauchy(50.0), id="HalfCauchy-50"),
    pytest.param(_soft_laplace, id="SoftLaplace"),
]


@pytest.mark.parametrize("make", QUADRATURE_CASES)
def test_quadrature_route(make: Callable[[], tuple[fl.InfoMatrix, np.ndarray]]) -> None:
    F, exact = make()
    assert F.method == "quadrature"
    assert F.error is not None and np.shape(F.error) == F.matrix.shape
    assert _rel_err(F.matrix, exact) < RTOL


@pytest.mark.parametrize(
    "make",
    [
        *QUADRATURE_CASES[:3],
        pytest.param(_soft_laplace, id="SoftLaplace"),
    ],
)
def test_quadrature_error_estimate_bounds_true_error(
    make: Callable[[], tuple[fl.InfoMatrix, np.ndarray]],
) -> None:
    F, exact = make()
    true_err = np.abs(F.matrix - exact)
    slack = QUADRATURE_ROUNDING * np.max(np.abs(exact))
    assert np.all(true_err <= F.error + slack), (true_err, F.error)


def test_quadrature_route_refuses_a_kink_it_cannot_resolve() -> None:
    """AsymmetricLaplace: the score jumps at loc, which tanh-sinh over u = F(y) does not split
    at; the error estimate exceeds QUADRATURE_RTOL and fisherlab says so rather than return
    three wrong digits. Monte-Carlo then agrees with the quad oracle (split at loc)."""
    ((eta, const),) = ASYMMETRIC_LAPLACE.points
    o = quadrature_oracle(ASYMMETRIC_LAPLACE, eta, const)
    assert abs(o.mass - 1.0) < ORACLE_SELF_TOL
    model = fl.Model(lambda th, x: nd.AsymmetricLaplace(th["loc"], th["scale"], th["asymmetry"]))
    params = {"asymmetry": eta[2], "loc": eta[0], "scale": eta[1]}
    with pytest.raises(fl.NotConvergedError, match="quadrature"):
        fl.fisher(model, params, method="exact")
    # "auto" falls back to Monte-Carlo when the quadrature misses its tolerance
    auto = fl.fisher(model, params, num_samples=20_000, seed=2)
    assert auto.method == "mc"
    mc = fl.fisher(model, params, method="mc", num_samples=20_000, seed=2)
    np.testing.assert_array_equal(auto.matrix, mc.matrix)
    order = [2, 0, 1]  # (loc, scale, asymmetry) -> names (asymmetry, loc, scale)
    exact = o.matrix[np.ix_(order, order)]
    assert np.all(np.abs(mc.matrix - exact) <= MC_SE * mc.error), (mc.matrix - exact) / mc.error


def _gamma_fisher(a: float, b: float) -> np.ndarray:
    return np.array([[special.polygamma(1, a), -1.0 / b], [-1.0 / b, a / b**2]])


# Seeds over which the Monte-Carlo standard errors are averaged: one seed's error estimate at
# S = 400 varies by ~25% for this Gamma (the fourth moments of s s^T are large; a single
# seed's 400-vs-1600 ratio ranged over 0.8-3.0 in 200 seeds), ten seeds bring that to ~8%.
MC_SEEDS = range(10)


def test_mc_route_gamma_converges() -> None:
    """Seeded Monte-Carlo: within MC_SE standard errors, and the error shrinks as 1/sqrt(S)."""
    a, b = 2.5, 1.5
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]))
    exact = _gamma_fisher(a, b)
    mean_error = {}
    for s in (400, 1600):
        errors = []
        for seed in MC_SEEDS:
            F = fl.fisher(model, {"a": a, "b": b}, method="mc", num_samples=s, seed=seed)
            assert F.method == "mc"
            assert F.error is not None
            z = (F.matrix - exact) / F.error
            assert np.all(np.abs(z) <= MC_SE), z
            errors.append(F.error)
        mean_error[s] = np.mean(errors, axis=0)
    ratio = mean_error[400] / mean_error[1600]
    # 1/sqrt(S) gives 2; over 20 groups of 10 seeds the ratio's sd was 0.06-0.14 per entry
    assert np.all(np.abs(ratio - 2.0) < 0.5), ratio


def test_mc_route_standard_error_is_calibrated() -> None:
    """The reported error is sd(s_a s_b)/sqrt(S), sd from quadrature of E[(s_a s_b)^2]."""
    a, b = 2.5, 1.5
    s_count = 1600
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]))
    reported = np.mean(
        [
            fl.fisher(model, {"a": a, "b": b}, method="mc", num_samples=s_count, seed=seed).error
            for seed in MC_SEEDS
        ],
        axis=0,
    )
    eta = jnp.array([a, b])

    @jax.jit
    def products(t: jax.Array) -> jax.Array:  # p (s_a s_b)^2 in t = log y, as in CASES
        lp, g = jax.value_and_grad(_lpt_gamma, argnums=1)(t, eta, jnp.zeros(0))
        p = jnp.exp(lp)
        return jnp.where(p > 0.0, p * jnp.outer(g, g) ** 2, 0.0)  # see _integrand

    def fourth(t: float, i: int, j: int) -> float:
        return float(products(t)[i, j])

    edges = _breaks(CASES["Gamma"], (a, b), ())
    exact = _gamma_fisher(a, b)
    sd = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            m4 = sum(
                integrate.quad(fourth, lo, hi, args=(i, j), epsabs=0.0, epsrel=1e-10)[0]
                for lo, hi in itertools.pairwise(edges)
            )
            sd[i, j] = math.sqrt(m4 - exact[i, j] ** 2)
    ratio = reported / (sd / math.sqrt(s_count))
    # one seed's sample sd varies by ~12% at S = 1600; the ten-seed mean by ~4% (200 seeds)
    assert np.all(np.abs(ratio - 1.0) < 0.15), ratio


# =========================================================================== chain rule


def test_reparameterisation_normal_log_sigma() -> None:
    """F_eta = J^T F_theta J for (mu, log sigma) -> (mu, sigma)."""
    mu, sigma = 0.7, 2.3
    m_sigma = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]))
    m_log = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], jnp.exp(th["log_sigma"])))
    f_sigma = fl.fisher(m_sigma, {"mu": mu, "sigma": sigma})
    f_log = fl.fisher(m_log, {"mu": mu, "log_sigma": math.log(sigma)})
    assert f_log.names == ["log_sigma", "mu"] and f_sigma.names == ["mu", "sigma"]

    def to_theta(eta: jax.Array) -> jax.Array:  # (log_sigma, mu) -> (mu, sigma)
        return jnp.stack([eta[1], jnp.exp(eta[0])])

    jac = np.asarray(jax.jacobian(to_theta)(jnp.array([math.log(sigma), mu])))
    expected = jac.T @ f_sigma.matrix @ jac
    assert _rel_err(f_log.matrix, expected) < DENSE_RTOL
    # and the closed form: diag(2, 1/sigma^2) in (log_sigma, mu)
    assert _rel_err(f_log.matrix, np.diag([2.0, 1.0 / sigma**2])) < DENSE_RTOL


def test_chain_rule_poisson_glm(rng: np.random.Generator) -> None:
    """Log link: F = X^T diag(lambda) X."""
    n = 40
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    beta = np.array([0.5, -0.3, 0.8])
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
    F = fl.fisher(model, {"beta": beta}, X)
    assert F.method == "exact"
    lam = np.exp(X @ beta)
    assert _rel_err(F.matrix, X.T @ (lam[:, None] * X)) < DENSE_RTOL
    F3 = fl.fisher(model, {"beta": beta}, X, n=3)
    np.testing.assert_allclose(F3.matrix, 3.0 * F.matrix, rtol=SAME_FORMULA_RTOL)


def test_chain_rule_heteroscedastic_normal_rows(rng: np.random.Generator) -> None:
    """Rows with their own (loc, scale): loc = a + b x, scale = exp(c + d x).

    Per row the Fisher in (loc, log scale) is diag(1/sigma^2, 2), so
    F = sum_i [1, x_i][1, x_i]^T / sigma_i^2 (+) 2 sum_i [1, x_i][1, x_i]^T.
    """
    x = rng.normal(size=25)
    params = {"a": 0.3, "b": -1.1, "c": -0.2, "d": 0.4}
    model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, jnp.exp(th["c"] + th["d"] * x)))
    F = fl.fisher(model, params, x)
    design = np.column_stack([np.ones_like(x), x])
    w = np.exp(-2.0 * (params["c"] + params["d"] * x))
    expected = np.zeros((4, 4))
    expected[:2, :2] = design.T @ (w[:, None] * design)
    expected[2:, 2:] = 2.0 * design.T @ design
    assert _rel_err(F.matrix, expected) < DENSE_RTOL


def test_chain_rule_gamma_log_parameters() -> None:
    """Gamma(exp(la), exp(lb)): F = [[a^2 psi'(a), -a], [-a, a]]."""
    a, b = 0.8, 3.0
    model = fl.Model(lambda th, x: fl.dist.Gamma(jnp.exp(th["la"]), jnp.exp(th["lb"])))
    F = fl.fisher(model, {"la": math.log(a), "lb": math.log(b)})
    assert F.method == "exact"
    expected = np.array([[a * a * special.polygamma(1, a), -a], [-a, a]])
    assert _rel_err(F.matrix, expected) < DENSE_RTOL
    # the same via J^T I J with the quadrature oracle of the registry's own parameters
    o = quadrature_oracle(CASES["Gamma"], (a, b))
    jac = np.diag([a, b])
    assert _rel_err(F.matrix, jac.T @ o.matrix @ jac) < RTOL


# =========================================================================== StudentT df


@pytest.mark.parametrize("df", [1.5, 4.0, 30.0])
def test_student_t_fixed_df_is_free_df_subblock(df: float) -> None:
    loc, scale = 0.4, 1.7
    fixed = fl.Model(lambda th, x: fl.dist.StudentT(df, th["loc"], th["scale"]))
    free = fl.Model(lambda th, x: fl.dist.StudentT(th["df"], th["loc"], th["scale"]))
    f_fixed = fl.fisher(fixed, {"loc": loc, "scale": scale})
    f_free = fl.fisher(free, {"df": df, "loc": loc, "scale": scale})
    assert f_fixed.names == ["loc", "scale"]
    assert f_free.names == ["df", "loc", "scale"]
    np.testing.assert_allclose(f_fixed.matrix, f_free.matrix[1:, 1:], rtol=SAME_FORMULA_RTOL, atol=0)
    # the df-scale coupling is really there: fixing df is not marginalising it
    assert abs(f_free.matrix[0, 2]) > 1e-4 * math.sqrt(f_free.matrix[0, 0] * f_free.matrix[2, 2])
    o = quadrature_oracle(CASES["StudentT"], (df, loc, scale))
    assert _rel_err(f_free.matrix, o.matrix) < RTOL


# =========================================================================== user extension


class Rayleigh(nd.Distribution):
    """p(y | s) = y / s^2 exp(-y^2 / (2 s^2)), y > 0: a family the registry does not know."""

    arg_constraints: ClassVar[dict[str, Any]] = {"scale": constraints.positive}
    support = constraints.positive
    reparametrized_params: ClassVar[list[str]] = ["scale"]

    def __init__(self, scale: Any, *, validate_args: bool | None = None) -> None:
        self.scale = scale
        super().__init__(batch_shape=jnp.shape(scale), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple = ()) -> jax.Array:
        u = jax.random.uniform(key, sample_shape + self.batch_shape, minval=1e-300)
        return self.scale * jnp.sqrt(-2.0 * jnp.log(u))

    def log_prob(self, value: jax.Array) -> jax.Array:
        return jnp.log(value) - 2.0 * jnp.log(self.scale) - 0.5 * (value / self.scale) ** 2

    def icdf(self, q: jax.Array) -> jax.Array:
        return self.scale * jnp.sqrt(-2.0 * jnp.log1p(-q))


class RayleighRegistered(Rayleigh):
    """A subclass with its own closed-form entry (registered inside the test)."""


def test_register_fisher_user_family() -> None:
    # before registration: no closed form, so the quadrature route
    model = fl.Model(lambda th, x: RayleighRegistered(jnp.exp(th["log_s"])))
    params = {"log_s": 0.3}
    with pytest.raises(NotImplementedError):
        fl.dist.family_fisher(RayleighRegistered(1.0))
    before = fl.fisher(model, params)
    assert before.method == "quadrature"

    calls = []

    @fl.dist.register_fisher(RayleighRegistered)
    def _(d: RayleighRegistered) -> fl.dist.FamilyFisher:
        # s_scale = -2/s + y^2/s^3, E[y^2] = 2 s^2: I = 4/s^2
        calls.append(type(d))
        s = jnp.asarray(d.scale, dtype=jnp.float64)
        return fl.dist.FamilyFisher(("scale",), s[..., None], (4.0 / s**2)[..., None, None])

    assert RayleighRegistered in fl.dist.registered_families()
    after = fl.fisher(fl.Model(lambda th, x: RayleighRegistered(jnp.exp(th["log_s"]))), params)
    assert after.method == "exact"
    assert calls, "fl.fisher did not call the registered closed form"
    # chain rule through log s: 4/s^2 * s^2 = 4, whatever s
    np.testing.assert_allclose(after.matrix, [[4.0]], rtol=1e-14)
    assert _rel_err(before.matrix, after.matrix) < RTOL
    # the parent class stays unregistered (singledispatch goes down, not up, the hierarchy)
    assert fl.fisher(fl.Model(lambda th, x: Rayleigh(th["s"])), {"s": 2.0}).method == "quadrature"


def test_registry_subclass_inherits_entry() -> None:
    class ShiftedNormal(nd.Normal):
        pass

    ff = fl.dist.family_fisher(ShiftedNormal(0.0, 2.0))
    np.testing.assert_allclose(ff.matrix, np.diag([0.25, 0.5]), rtol=SAME_FORMULA_RTOL)


# =========================================================================== property tests

_POSITIVE = st.floats(min_value=0.05, max_value=50.0, allow_nan=False, allow_infinity=False)
_LOC = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False, allow_infinity=False)
_PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, database=None)


def _check_properties(name: str, eta: tuple, const: tuple = ()) -> None:
    case = CASES[name]
    m = np.asarray(fl.dist.family_fisher(case.build(eta, const)).matrix)
    np.testing.assert_array_equal(m, m.T)
    eig = np.linalg.eigvalsh(m)
    assert eig.min() >= -PSD_SLACK * eig.max()
    o = oracle(case, eta, const)
    assert abs(o.mass - 1.0) < ORACLE_SELF_TOL
    err = _rel_err(m, o.matrix)
    assert err < RTOL, (name, eta, err)


@pytest.mark.slow
@_PROPERTY_SETTINGS
@given(loc=_LOC, scale=_POSITIVE)
def test_property_location_scale(loc: float, scale: float) -> None:
    for name in ("Normal", "Logistic", "Gumbel", "Cauchy", "Laplace"):
        _check_properties(name, (loc, scale))


@pytest.mark.slow
@_PROPERTY_SETTINGS
# df up to 100: beyond, the I_df,df cancellation is tested against mpmath (limits)
@given(df=st.floats(min_value=0.5, max_value=100.0), loc=_LOC, scale=_POSITIVE)
def test_property_student_t(df: float, loc: float, scale: float) -> None:
    _check_properties("StudentT", (df, loc, scale))


@pytest.mark.slow
@_PROPERTY_SETTINGS
@given(a=_POSITIVE, b=_POSITIVE)
def test_property_shape_families(a: float, b: float) -> None:
    _check_properties("Gamma", (a, b))
    _check_properties("InverseGamma", (a, b))
    _check_properties("Weibull", (b, min(a, 20.0)))
    _check_properties("Beta", (a, b))


@pytest.mark.slow
@_PROPERTY_SETTINGS
@given(loc=st.floats(min_value=-3.0, max_value=3.0), kappa=st.floats(min_value=1e-3, max_value=500.0))
def test_property_von_mises(loc: float, kappa: float) -> None:
    _check_properties("VonMises", (loc, kappa))


@pytest.mark.slow
@_PROPERTY_SETTINGS
@given(
    mean=st.floats(min_value=0.01, max_value=200.0),
    conc=st.floats(min_value=0.05, max_value=500.0),
    rate=st.floats(min_value=0.01, max_value=300.0),
    p=st.floats(min_value=0.001, max_value=0.999),
    n=st.integers(min_value=1, max_value=60),
)
def test_property_discrete(mean: float, conc: float, rate: float, p: float, n: int) -> None:
    _check_properties("NegativeBinomial2", (mean, conc))
    _check_properties("Poisson", (rate,))
    _check_properties("BinomialProbs", (p,), (n,))
    _check_properties("GeometricProbs", (p,))
    _check_properties("BinomialLogits", (float(special.logit(p)),), (n,))


@pytest.mark.slow
@_PROPERTY_SETTINGS
@given(alpha=st.lists(st.floats(min_value=0.02, max_value=100.0), min_size=2, max_size=6))
def test_property_dirichlet(alpha: list[float]) -> None:
    a = np.asarray(alpha)
    m = np.asarray(fl.dist.family_fisher(fl.dist.Dirichlet(a)).matrix)
    np.testing.assert_array_equal(m, m.T)
    eig = np.linalg.eigvalsh(m)
    assert eig.min() >= -PSD_SLACK * eig.max()
    assert _rel_err(m, _dirichlet_closed_form(a)) < RTOL


def test_fl_betabinomial_is_accurate_where_numpyro_is_not() -> None:
    """fl.dist.BetaBinomial's log-mass (gammaln) matches SciPy; exact summation then works."""
    k = np.arange(9)
    d = fl.dist.BetaBinomial(1.7, 2.3, 8)
    np.testing.assert_allclose(
        np.asarray(d.log_prob(jnp.asarray(k, dtype=float))),
        stats.betabinom.logpmf(k, 8, 1.7, 2.3),
        rtol=1e-13,
    )
    model = fl.Model(lambda th, x: fl.dist.BetaBinomial(th["a"], th["b"], 8))
    assert fl.fisher(model, {"a": 1.7, "b": 2.3}).method == "summation"
