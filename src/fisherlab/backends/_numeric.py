r"""The numeric backend: derivatives of a black-box model by finite differences (``derivatives="numeric"``).

The model function is evaluated for all rows at once (:class:`~._problem.Problem`), and the
finite-difference engine (:mod:`fisherlab.numeric`: central differences, Richardson 1911,
Ridders 1982 error estimates) differentiates :math:`\theta \mapsto \ell(\theta) \in \mathbb R^N`:

- scores :math:`s_{ia} = \partial_a \ell_i`: the Jacobian (:math:`1 + 2LP` calls) with a bound
  :math:`e_{ia}` per entry;
- observed information :math:`-\nabla^2 \sum_i \ell_i`: the numeric Hessian of the total;
- per-row Hessians: one set of stencils for all rows (:math:`1 + L(P^2 + P)` calls);
- :math:`\sum_i s_i s_i^\top` from the numeric scores, and the chain rule
  :math:`\sum_i J_i^\top W_i J_i` from the numeric Jacobian of the family's parameters
  :math:`\eta(\theta)` (read off the distribution the function returns). With
  :math:`|\hat J - J| \le E` entrywise, every entry's error is bounded by
  (:func:`~._chain_rule.gram_error_bound`)

  .. math:: |\delta F| \le \sum_i \big(|J_i|^\top |W_i|\, E_i + E_i^\top |W_i|\, |J_i|
            + E_i^\top |W_i|\, E_i\big),

  which with :math:`W = 1` is the empirical Fisher's bound; for Gaussian errors the chain
  rule is the Gauss–Newton Fisher plus the covariance term when :math:`\sigma` depends on θ;
- Monte-Carlo: data sets drawn at θ (from the distribution, or the ``sampler`` of a
  ``from_loglik`` model) held fixed, their scores the numeric Jacobian, in blocks;
- third derivatives of the total (White's test): the fixed-step numeric Hessian differentiated
  once more, :math:`(1 + 8P)(1 + 4(P^2 + P))` calls.

Parameters with a declared ``constraints=`` bound are never stepped across it.

References:
    L. F. Richardson (1911), Phil. Trans. R. Soc. A 210, 307-357.
    C. J. F. Ridders (1982), Adv. Eng. Software 4(2), 75-76.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import numpyro.distributions as nd

from .. import numeric as engine
from .._errors import FisherlabError, ModelError, NumericAccuracyWarning
from .._precision import float64
from ..data._prepare import Data, as_observations
from ..model._model import call_user, observation_for
from ._base import Backend, Derivative, LogPosterior, MonteCarloMoments, RowCurvature, RowJacobian
from ._chain_rule import gram_error_bound, weighted_gram
from ._numeric_objective import NumericLogPosterior
from ._problem import Problem
from ._validity import check_finite, raise_invalid

if TYPE_CHECKING:
    from ..params._constraints import Reparam
    from ..params._prior import Prior

__all__ = ["NumericBackend"]

#: Floats held by the score tables of one Monte-Carlo block (rows x parameters x stencil).
_MC_BLOCK_FLOATS = 2**24


def _x_only(x: Any) -> Data:
    rows = 1 if x is None else int(jax.tree_util.tree_leaves(x)[0].shape[0])
    return Data(None, x, rows)


class _Eta:
    """The family's parameters of every row at a flat point (picklable for a process pool).

    ``eta(d)`` gives them; with ``part`` set, ``eta(d)[part]`` (a function returning several).
    """

    def __init__(self, problem: Problem, eta: Callable[[Any], Any], part: int | None = None) -> None:
        self.problem, self.eta, self.part = problem, eta, part

    @float64  # also in a worker thread or process of the executor
    def __call__(self, v: np.ndarray) -> np.ndarray:
        out = self.eta(self.problem.distribution(v))
        return np.asarray(out if self.part is None else out[self.part], dtype=np.float64).ravel()


class _DrawRows:
    """Per-row log-likelihoods of fixed draws ``ys`` at a flat point (picklable).

    ``at_point`` shares the model's distribution at a point between the blocks of draws
    (one call of the model function per point, in this process).
    """

    def __init__(self, problem: Problem, ys: np.ndarray, at_point: dict[bytes, Any]) -> None:
        self.problem, self.ys, self.at_point = problem, ys, at_point

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "at_point": {}}

    @float64  # also in a worker thread or process of the executor
    def __call__(self, v: np.ndarray) -> np.ndarray:
        key = v.tobytes()
        d = self.at_point.get(key)
        if d is None:
            d = self.at_point[key] = self.problem.distribution(v)
        lp = np.asarray(d.log_prob(observation_for(d, self.ys)), dtype=np.float64)
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

    @float64  # also in a worker thread or process of the executor
    def __call__(self, v: np.ndarray) -> np.ndarray:
        self.problem._count()
        out = self.problem.fn(self.problem.params(v), self.y, self.x)
        return np.asarray(out, dtype=np.float64).ravel()


class _FixedStepHessian:
    """The numeric Hessian of the total with the steps of the point itself, flattened (picklable).

    It runs serially inside a worker: only the outer differences are spread over the pool.
    """

    def __init__(self, problem: Problem, options: dict[str, Any]) -> None:
        self.problem = problem
        self.step = engine.RELATIVE_STEP * np.maximum(np.abs(problem.flat), 1.0)
        self.options = {k: v for k, v in options.items() if k not in ("executor", "workers")}

    @float64  # also in a worker thread or process of the executor
    def __call__(self, v: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # the inner estimate's accuracy enters the outer error estimate through `noise`
            warnings.simplefilter("ignore", NumericAccuracyWarning)
            res = engine.hessian(self.problem.total, v, step=self.step, **self.options)
        return res.hessian.ravel()


class NumericBackend(Backend):
    """Derivatives by finite differences with error bounds (``derivatives="numeric"``); see the module."""

    name = "numeric"

    # ------------------------------------------------------------------ rows of data
    def loglik(self, params: Any, data: Data) -> np.ndarray:
        return Problem(self.model, params, data).checked().copy()

    def _scores(self, problem: Problem) -> tuple[engine.JacobianResult, int]:
        mark = problem.calls
        problem.checked()
        res = engine.jacobian(problem.vector, problem.flat, **problem.options, **problem.engine_cache("rows"))
        check_finite("score", res.jacobian)
        return res, problem.spent(mark, res.evaluations)

    def scores(self, params: Any, data: Data) -> Derivative:
        res, calls = self._scores(Problem(self.model, params, data))
        return Derivative(res.jacobian, res.error, calls)

    def score_gram(self, params: Any, data: Data) -> Derivative:
        res, calls = self._scores(Problem(self.model, params, data))
        s, e = res.jacobian[:, None, :], res.error[:, None, :]
        ones = np.ones((s.shape[0], 1, 1))
        return Derivative(res.jacobian.T @ res.jacobian, gram_error_bound(s, e, ones), calls)

    def negative_hessian(self, params: Any, data: Data) -> Derivative:
        problem = Problem(self.model, params, data)
        mark = problem.calls
        problem.checked()
        res = engine.hessian(problem.total, problem.flat, **problem.options, **problem.engine_cache("total"))
        check_finite("observed information", (-res.hessian)[None])
        return Derivative(-res.hessian, res.hessian_error, problem.spent(mark, res.evaluations))

    def row_curvature(self, params: Any, data: Data) -> RowCurvature:
        problem = Problem(self.model, params, data)
        ll = problem.checked()
        res = engine.vector_hessian(
            problem.vector, problem.flat, **problem.options, **problem.engine_cache("rows")
        )
        check_finite("score", res.jacobian)
        check_finite("Hessian of the log-likelihood", res.hessian)
        return RowCurvature(ll, res.jacobian, res.hessian, exact=False)

    def third_derivatives(self, params: Any, data: Data) -> np.ndarray:
        problem = Problem(self.model, params, data)
        problem.checked()
        options = problem.options
        inner = _FixedStepHessian(problem, options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericAccuracyWarning)
            at = engine.hessian(problem.total, problem.flat, step=inner.step, **options)
        p = problem.flat.size
        res = engine.jacobian(inner, problem.flat, noise=float(np.max(at.hessian_error)), **options)
        return res.jacobian.reshape(p, p, p)

    # ------------------------------------------------------------------ family parameters
    def _at_theta(self, problem: Problem) -> nd.Distribution:
        """The distribution at the point itself, with the user's errors chained and supports checked."""
        try:
            d = problem.distribution(problem.flat)
        except FisherlabError:
            raise
        except Exception as exc:
            raise ModelError(
                f"the model function raised {type(exc).__name__} at {problem.describe(problem.flat)}: {exc}"
            ) from exc
        raise_invalid(
            self.model,
            problem.params(problem.flat),
            problem.flags(d),
            problem.x,
            has_rows=problem.x is not None,
        )
        return d

    def first_distribution(self, params: Any, x: Any) -> nd.Distribution:
        return self._at_theta(Problem(self.model, params, _x_only(x)))

    def rows_distribution(self, params: Any, x: Any) -> nd.Distribution:
        return self.first_distribution(params, x)

    def _eta_jacobian(self, params: Any, x: Any, eta: Callable[[Any], Any]) -> tuple[Problem, Any, int]:
        problem = Problem(self.model, params, _x_only(x))
        self._at_theta(problem)
        mark = problem.calls
        res = engine.jacobian(
            _Eta(problem, eta), problem.flat, **problem.options, **problem.engine_cache("eta")
        )
        return problem, res, problem.spent(mark, res.evaluations)

    def eta_jvp(self, params: Any, x: Any, v: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        problem, res, _ = self._eta_jacobian(params, x, eta)
        return (res.jacobian @ np.asarray(v, dtype=np.float64)).reshape(problem.n, -1)

    def eta_vjp(self, params: Any, x: Any, w: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        _, res, _ = self._eta_jacobian(params, x, eta)
        return np.asarray(res.jacobian.T @ np.ravel(np.asarray(w, dtype=np.float64)))

    def eta_rows(self, params: Any, x: Any, family: Callable[[Any], tuple[Any, Any]]) -> RowJacobian:
        problem = Problem(self.model, params, _x_only(x))
        d0 = self._at_theta(problem)
        eta0, w0 = family(d0)
        k = int(np.shape(eta0)[-1])
        n, p = problem.n, problem.flat.size
        weights = np.asarray(w0, dtype=np.float64).reshape(n, -1, k, k)
        mark = problem.calls
        res = engine.jacobian(
            _Eta(problem, family, part=0), problem.flat, **problem.options, **problem.engine_cache("eta")
        )
        jac, err = res.jacobian.reshape(n, -1, k, p), res.error.reshape(n, -1, k, p)
        return RowJacobian(jac, weights, err, problem.spent(mark, res.evaluations))

    def eta_gram(self, params: Any, x: Any, family: Callable[[Any], tuple[Any, Any]]) -> Derivative:
        parts = self.eta_rows(params, x, family)
        k, p = parts.jac.shape[-2:]
        jac, weights = parts.jac.reshape(-1, k, p), parts.weights.reshape(-1, k, k)
        assert parts.error is not None
        err = parts.error.reshape(-1, k, p)
        f = np.asarray(weighted_gram(jac, weights))
        return Derivative(f, gram_error_bound(jac, err, weights), parts.evaluations)

    def _draws(self, problem: Problem, d0: Any, num_samples: int, seed: int) -> np.ndarray:
        """``num_samples`` data sets at theta, stacked on a leading axis."""
        key = jax.random.PRNGKey(seed)
        if self.model.kind == "distribution":
            return np.asarray(as_observations(d0.sample(key, (num_samples,))))
        sampler = self.model.sampler
        assert sampler is not None
        params = problem.params(problem.flat)
        keys = jax.random.split(key, num_samples)
        return np.stack(
            [
                np.asarray(as_observations(call_user(sampler, "the sampler", params, problem.x, k)))
                for k in keys
            ]
        )

    def mc_score_outer(self, params: Any, x: Any, num_samples: int, seed: int) -> MonteCarloMoments:
        problem = Problem(self.model, params, _x_only(x))
        d0 = self._at_theta(problem) if self.model.kind == "distribution" else None
        mark = problem.calls
        draws = self._draws(problem, d0, num_samples, seed)
        rows, p = problem.n, problem.flat.size
        block = int(max(1, min(num_samples, _MC_BLOCK_FLOATS // max(1, rows * p * 2 * (engine.LEVELS + 1)))))
        at_point: dict[bytes, Any] = {}  # one model call per perturbed theta, shared by all blocks
        engine_calls = 0
        counts, means, squares = [], [], []
        for start in range(0, num_samples, block):
            ys = draws[start : start + block]
            size = ys.shape[0]
            rows_ll: Any = (
                _DrawRows(problem, ys, at_point)
                if self.model.kind == "distribution"
                else _StackedRows(problem, ys)
            )
            res = engine.jacobian(rows_ll, problem.flat, **problem.options)
            engine_calls += res.evaluations
            s = res.jacobian.reshape(size, rows, p)
            per_draw = np.einsum("sip,siq->spq", s, s)
            mean = per_draw.mean(axis=0)
            counts.append(size)
            means.append(mean)
            squares.append(((per_draw - mean) ** 2).sum(axis=0))
        return MonteCarloMoments(
            np.array(counts), np.stack(means), np.stack(squares), problem.spent(mark, engine_calls)
        )

    # ------------------------------------------------------------------ fitting
    def log_posterior(self, reparam: Reparam, prior: Prior | None, data: Data, params0: Any) -> LogPosterior:
        return NumericLogPosterior(self.model, reparam, prior, data, params0)
