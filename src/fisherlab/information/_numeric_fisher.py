r"""Expected Fisher information of a black-box model (``derivatives="numeric"``).

**Chain rule** (``method="exact"``, and ``"auto"`` when the family has a closed form in
:mod:`fisherlab.dist`): the model function is evaluated at perturbed parameters and the
distribution's own parameters :math:`\eta_i(\theta)` of every row are read off it; their
Jacobian :math:`J_i = \partial\eta_i/\partial\theta` comes from the finite-difference engine
(:func:`fisherlab._numeric.jacobian`, Richardson-extrapolated central differences,
:math:`1 + 2LP` calls of the model function for all rows at once), and

.. math:: F(\theta) = \sum_i J_i^\top I(\eta_i)\, J_i

with :math:`I` the closed form of the family. For Gaussian errors,
:math:`y_i \sim \mathcal N(\mu_i(\theta), \sigma_i(\theta))`, this is the Gauss–Newton
Fisher :math:`\sum_i \nabla\mu_i \nabla\mu_i^\top / \sigma_i^2` plus the covariance term
:math:`\sum_i 2\,\nabla\sigma_i \nabla\sigma_i^\top / \sigma_i^2` (zero when
:math:`\sigma` does not depend on :math:`\theta`). With :math:`|\hat J - J| \le E` entrywise
(the engine's error estimates), the error of every entry is bounded by

.. math:: |\delta F| \le \sum_i \big(|J_i|^\top |I_i|\, E_i + E_i^\top |I_i|\, |J_i|
          + E_i^\top |I_i|\, E_i\big),

which is what ``.error`` reports.

**Monte-Carlo** (``method="mc"``, and ``"auto"`` otherwise): :math:`S` data sets are drawn
at :math:`\theta` (from the distribution, or from the ``sampler`` of a
:meth:`~fisherlab.Model.from_loglik` model) and held fixed; the scores of all
:math:`S \cdot N` rows are the numeric Jacobian of their log-likelihoods (the model function
is called once per perturbed :math:`\theta`; the draws are scored in blocks), and
:math:`F \approx \frac1S \sum_s \sum_i s_{si} s_{si}^\top`, with ``.error`` its Monte-Carlo
standard error per entry.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .. import numeric as _numeric
from .._errors import FisherlabError, MethodUnavailableError, ModelError
from ..backends._evaluate import check_finite, raise_invalid
from ..backends._numeric import Problem
from ..dist._registry import family_fisher, has_closed_form
from ..model._model import Model
from ._matrix import InfoMatrix

__all__ = ["numeric_fisher"]

#: Floats held by the score tables of one Monte-Carlo block (rows x parameters x stencil).
_MC_BLOCK_FLOATS = 2**24


def _at_theta(problem: Problem) -> Any:
    """The distribution at the point itself, with the user's errors chained and supports checked."""
    assert problem.model is not None
    try:
        d = problem.distribution(problem.flat)
    except FisherlabError:
        raise
    except Exception as exc:
        raise ModelError(
            f"the model function raised {type(exc).__name__} at {problem.describe(problem.flat)}: {exc}"
        ) from exc
    raise_invalid(
        problem.model,
        problem.params(problem.flat),
        problem.flags(d),
        problem.x,
        has_rows=problem.x is not None,
    )
    return d


class _Eta:
    """The family's parameters of every row at a flat point (picklable for a process pool)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def __call__(self, v: np.ndarray) -> np.ndarray:
        d = self.problem.distribution(v)
        return np.asarray(family_fisher(d).params, dtype=np.float64).ravel()


class _DrawRows:
    """Per-row log-likelihoods of fixed draws ``ys`` at a flat point (picklable).

    ``at_point`` shares the model's distribution at a point between the blocks of draws
    (one call of the model function per point, in this process).
    """

    def __init__(self, problem: Problem, ys: np.ndarray, at_point: dict[bytes, Any]) -> None:
        self.problem, self.ys, self.at_point = problem, ys, at_point

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "at_point": {}}

    def __call__(self, v: np.ndarray) -> np.ndarray:
        key = v.tobytes()
        d = self.at_point.get(key)
        if d is None:
            d = self.at_point[key] = self.problem.distribution(v)
        lp = np.asarray(d.log_prob(self.ys), dtype=np.float64)
        return lp.reshape(self.ys.shape[0], self.problem.n, -1).sum(axis=2).ravel()


class _StackedRows:
    """The log-likelihood function of draws stacked as ``size * N`` rows (x repeated), picklable."""

    def __init__(self, problem: Problem, ys: np.ndarray) -> None:
        size = ys.shape[0]
        self.problem = problem
        self.x = (
            None
            if problem.x is None
            else jax.tree_util.tree_map(lambda a: np.concatenate([a] * size), problem.x)
        )
        self.y = ys.reshape(size * problem.n, *ys.shape[2:]) if problem.x is not None else ys

    def __call__(self, v: np.ndarray) -> np.ndarray:
        self.problem._count()
        out = self.problem.fn(self.problem.params(v), self.y, self.x)
        return np.asarray(out, dtype=np.float64).ravel()


def _chain_rule(problem: Problem, d0: Any) -> tuple[np.ndarray, np.ndarray, int]:
    mark = problem.calls
    fam = family_fisher(d0)
    k = int(np.shape(fam.params)[-1])
    info = np.asarray(fam.matrix, dtype=np.float64).reshape(-1, k, k)

    res = _numeric.jacobian(_Eta(problem), problem.flat, **problem.options, **problem.engine_cache("eta"))
    p = problem.flat.size
    jac = res.jacobian.reshape(-1, k, p)
    err = res.error.reshape(-1, k, p)
    f = np.einsum("mkp,mkl,mlq->pq", jac, info, jac)
    a_i, a_j = np.abs(info), np.abs(jac)
    bound = np.einsum("mkp,mkl,mlq->pq", a_j, a_i, err)
    bound = bound + bound.T + np.einsum("mkp,mkl,mlq->pq", err, a_i, err)
    return f, bound, problem.spent(mark, res.evaluations)


def _draws(problem: Problem, model: Model, d0: Any, num_samples: int, seed: int) -> np.ndarray:
    """``num_samples`` data sets at theta, stacked on a leading axis."""
    key = jax.random.PRNGKey(seed)
    if model.kind == "distribution":
        return np.asarray(d0.sample(key, (num_samples,)), dtype=np.float64)
    assert model.sampler is not None
    params = problem.params(problem.flat)
    keys = jax.random.split(key, num_samples)
    return np.stack([np.asarray(model.sampler(params, problem.x, k), dtype=np.float64) for k in keys])


def _monte_carlo(
    problem: Problem, model: Model, d0: Any, num_samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    mark = problem.calls
    draws = _draws(problem, model, d0, num_samples, seed)
    rows = problem.n
    p = problem.flat.size
    block = int(max(1, min(num_samples, _MC_BLOCK_FLOATS // max(1, rows * p * 2 * (_numeric.LEVELS + 1)))))
    at_point: dict[bytes, Any] = {}  # one model call per perturbed theta, shared by all blocks
    engine_calls = 0
    total = np.zeros((p, p))
    total_sq = np.zeros((p, p))
    for start in range(0, num_samples, block):
        ys = draws[start : start + block]
        size = ys.shape[0]
        rows_ll: Any = (
            _DrawRows(problem, ys, at_point) if model.kind == "distribution" else _StackedRows(problem, ys)
        )
        res = _numeric.jacobian(rows_ll, problem.flat, **problem.options)
        engine_calls += res.evaluations
        s = res.jacobian.reshape(size, rows, p)
        per_draw = np.einsum("sip,siq->spq", s, s)
        total += per_draw.sum(axis=0)
        total_sq += (per_draw**2).sum(axis=0)
    mean = total / num_samples
    var = np.maximum(total_sq / num_samples - mean**2, 0.0) * num_samples / (num_samples - 1)
    return mean, np.sqrt(var / num_samples), problem.spent(mark, engine_calls)


def numeric_fisher(
    model: Model, params: Any, x: Any, *, n: int, method: str, num_samples: int, seed: int
) -> InfoMatrix:
    """:func:`~fisherlab.fisher` of a numeric model (``method``: ``"auto"``, ``"exact"`` or ``"mc"``)."""
    problem = Problem(model, params, None, x, require_y=False)
    if model.kind == "loglik":
        from ._fisher import require_sampler  # _fisher imports this module lazily

        require_sampler(model, exact=method == "exact")
        d0 = None
        route = "mc"
    else:
        d0 = _at_theta(problem)
        if method != "mc" and has_closed_form(type(d0)):
            route = "exact"
        elif method == "exact":
            raise MethodUnavailableError(
                f"no exact Fisher for {type(d0).__name__} with numeric derivatives: no closed form is "
                "registered; use method='mc' or register one with fl.dist.register_fisher"
            )
        else:
            route = "mc"
    if route == "exact":
        f, error, calls = _chain_rule(problem, d0)
    else:
        f, error, calls = _monte_carlo(problem, model, d0, num_samples, seed)
    check_finite("Fisher information", f[None])
    return InfoMatrix(f * n, problem.names, error=error * n, method=route, evaluations=calls)
