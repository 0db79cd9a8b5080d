r""":func:`optimal`: the optimal design of an experiment for any fisherlab model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from .._errors import FisherlabArgumentError, SingularInformationError, with_message
from .._options import DesignCriterion, PriorExpectation, count, positive_number
from .._precision import float64
from ..data._prepare import prepare_data
from ..information._matrix import InfoMatrix
from ..information._points import point_information
from ..model._model import Model, require_model
from ..params._pytree import as_params, named_values
from ._criteria import Spec, _value, spec_for
from ._engine import DesignProblem, gradients, sensitivities, solve, state
from ._prior import prior_nodes
from ._refine import apportion, exchange, merge_points, move_points, refine
from ._result import Design, efficiency_bound
from ._space import PointSpace, as_bounds, check_inside

__all__ = ["optimal"]


@float64
def optimal(
    model: Model,
    params: Any,
    candidates: Any,
    criterion: str = "D",
    n: int | None = None,
    *,
    names: Iterable[str] | str | None = None,
    c: Any = None,
    bounds: Any = None,
    prior: Mapping[str, Any] | None = None,
    prior_method: str = "quadrature",
    prior_points: int | None = None,
    seed: int = 0,
    tol: float = 1e-9,
) -> Design:
    r"""The optimal design of an experiment: where to take observations, and how many at each point.

    Maximises a criterion (:func:`~fisherlab.design.criterion`) of the per-run information
    :math:`M(\xi) = \sum_j w_j I(x_j;\theta)` over designs :math:`\xi` on the candidate points
    (approximate designs, ``n=None``: weights :math:`w_j \ge 0` summing to 1), or over designs of
    ``n`` runs (exact designs: :math:`w_j = n_j/n`). :math:`I(x;\theta)` is the expected Fisher
    information of one observation at :math:`x` (:func:`~fisherlab.information.point_information`;
    any model with an exact Fisher: closed form, finite support or quadrature, with autodiff or
    numeric derivatives, so black-box simulators too). For a nonlinear model the optimum depends on
    :math:`\theta`: ``params`` is the local guess, or ``prior=`` gives a Bayesian design.

    Approximate designs come with their certificate, the equivalence theorem (Kiefer & Wolfowitz
    1960): ``max_sensitivity <= bound`` (for D: :math:`\max_x \operatorname{tr}(M^{-1}I(x)) = P`,
    attained at the support points). The algorithm (multiplicative updates, Newton on the support,
    column generation; :mod:`fisherlab.design._engine`) stops when it holds to ``tol``
    (relative). With ``bounds=`` the support points are then moved off the grid within the box
    and the theorem is checked over the whole box (:mod:`fisherlab.design._refine`).

    Args:
        model: a :class:`~fisherlab.Model` whose ``x`` rows are design points.
        params: the parameter pytree :math:`\theta` at which the design is optimal (the nominal
            values; with ``prior=``, the values of the parameters without a prior).
        candidates: the candidate points, leading axis N: an array ``(N,)`` or ``(N, d)``, or any
            pytree of rows the model accepts.
        criterion: ``"D"``, ``"A"``, ``"E"``, ``"Ds"`` (with ``names=``) or ``"c"`` (with ``c=``).
        n: ``None`` for an approximate design, or the number of runs of an exact design.
        names: the parameters of interest of ``"Ds"``.
        c: the combination of ``"c"``: a dict name -> coefficient, or one number per parameter.
        bounds: ``(lo, hi)`` (one coordinate), or one pair per coordinate: move the support points
            continuously within this box (array candidates only; all candidates must lie inside).
        prior: a dict parameter name -> scalar distribution (``fl.dist.LogNormal(0, 0.2)``): the
            criterion is averaged over it (Bayesian design; :mod:`fisherlab.design._prior`).
        prior_method: ``"quadrature"`` (Gauss–Hermite for Normal and LogNormal priors, else
            Gauss–Legendre in the prior's CDF) or ``"mc"``.
        prior_points: quadrature nodes per parameter (default 5) or Monte-Carlo draws (200).
        seed: the Monte-Carlo seed.
        tol: relative tolerance of the equivalence theorem, in (0, 0.1].

    Returns:
        A :class:`~fisherlab.design.Design` (``points``, ``weights``, ``value``,
        ``max_sensitivity``, ``bound``, ``efficiency_bound``, ``info``, ...).

    Raises:
        SingularInformationError: the candidates cannot identify the parameters (the direction
            is named), or ``n`` runs cannot.
        InvalidParameterError / FisherlabArgumentError / InvalidOptionError: a bad criterion,
            ``names``, ``c``, ``n``, ``bounds``, ``prior`` or ``tol``.
        InvalidDataError: NaN/inf candidates, or candidates outside ``bounds``.
        MethodUnavailableError: a model with only a Monte-Carlo Fisher.
        NotConvergedError: the equivalence theorem not reached (the gap is given).

    Examples:
        Quadratic regression on [-1, 1]: the D-optimal design puts 1/3 of the runs at -1, 0 and 1.

        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["b"][0] + th["b"][1] * x + th["b"][2] * x**2, 1.0))
        >>> d = fl.design.optimal(m, {"b": np.zeros(3)}, np.linspace(-1, 1, 201))
        >>> d.points.round(6).tolist(), d.weights.round(6).tolist()
        ([-1.0, 0.0, 1.0], [0.333333, 0.333333, 0.333333])
        >>> round(d.max_sensitivity, 6), d.bound
        (3.0, 3.0)
    """
    require_model(model, "fl.design.optimal")
    tol = positive_number(tol, "tol")
    if tol > 0.1:
        raise FisherlabArgumentError(
            f"tol={tol} is a relative tolerance of the equivalence theorem; give one <= 0.1"
        )
    runs = None if n is None else count(n, "n", 1, "the number of runs of an exact design")
    if candidates is None:
        raise FisherlabArgumentError("fl.design.optimal needs candidates: the points where runs can be made")
    x = prepare_data(None, candidates, require_y=False).x
    grid, scalar_rows = _coordinates(x)
    if bounds is not None:
        if grid is None:
            raise FisherlabArgumentError("bounds= needs candidates as a numeric array (N,) or (N, d)")
        lo, hi = as_bounds(bounds, grid.shape[1])
        check_inside(grid, lo, hi)
    nodes, pi = prior_nodes(params, prior, prior_method, prior_points, seed)
    space = PointSpace(model, nodes, pi, scalar_rows)
    factors = space.factors(x)
    spec = spec_for(criterion, space.names, of=names, c=c)
    problem = DesignProblem(factors, pi, spec)
    _identifiable(problem, space.names)
    sol = solve(problem, tol)
    support = np.flatnonzero(sol.weights > 0)
    coords: np.ndarray | None = None if grid is None else grid[support]
    weights = sol.weights[support]
    best = float(np.max(sol.sensitivity))
    counts = None
    if bounds is not None:
        assert coords is not None and grid is not None
        coords, weights, best, _ = refine(space, spec, coords, weights, grid, lo, hi, tol)
    if runs is not None:
        coords, weights, counts, support = _exact(
            space, problem, spec, runs, grid, coords, weights, support, bounds
        )
    if coords is not None:
        order = np.lexsort(coords.T[::-1])
        coords, weights = coords[order], weights[order]
        counts = None if counts is None else counts[order]
        support = support[order] if bounds is None else support
    expectation = _Expectation(as_params(params), prior, prior_method, prior_points, seed)
    box_best = (
        best if (bounds is not None and runs is None) else -np.inf
    )  # the box's check is the approximate's
    on_candidates = bounds is None  # the support is candidates: their informations are known
    return _design(space, problem, x, coords, weights, counts, support, on_candidates, box_best, expectation)


class _Expectation(NamedTuple):
    """The nominal parameters and how the prior is averaged (for the value and its error)."""

    params: Any
    prior: Mapping[str, Any] | None
    method: str
    points: int | None
    seed: int


def _coordinates(x: Any) -> tuple[np.ndarray | None, bool]:
    """Array candidates as ``(N, d)`` coordinates (and whether rows are scalars); else ``None``."""
    if isinstance(x, (np.ndarray, jax.Array)) and np.asarray(x).ndim in (1, 2):
        arr = np.asarray(x, dtype=np.float64)
        return (arr[:, None], True) if arr.ndim == 1 else (arr, False)
    return None, False


def _identifiable(problem: DesignProblem, names: list[str]) -> None:
    """The uniform design on all candidates must identify every parameter at every node."""
    w = np.full(problem.size, 1.0 / problem.size)
    for m in np.einsum("n,snpr,snqr->spq", w, problem.factors, problem.factors):
        try:
            InfoMatrix(m, names).cov()
        except SingularInformationError as exc:
            raise with_message(
                exc,
                f"the candidate points cannot identify the parameters: {exc}; add candidates or fix "
                "parameters",
            ) from None


def _exact(
    space: PointSpace,
    problem: DesignProblem,
    spec: Spec,
    runs: int,
    grid: np.ndarray | None,
    coords: np.ndarray | None,
    weights: np.ndarray,
    support: np.ndarray,
    bounds: Any,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """An exact design of ``runs`` runs from the approximate one (:mod:`._refine`)."""
    if bounds is None:
        counts = np.zeros(problem.size, dtype=int)
        counts[support] = apportion(weights, runs)
        counts = exchange(problem, counts, runs)
    else:  # the refined points join the candidates, then exchanges, then the runs move
        assert grid is not None and coords is not None
        pool = np.vstack([grid, coords])
        pool_problem = DesignProblem(space.factors(space.rows(pool)), space.pi, spec)
        counts = np.zeros(pool.shape[0], dtype=int)
        counts[grid.shape[0] :] = apportion(weights, runs)
        counts = exchange(pool_problem, counts, runs)
        each = np.repeat(pool, counts, axis=0)
        lo, hi = as_bounds(bounds, grid.shape[1])
        moved = move_points(space, each, np.full(runs, 1.0 / runs), spec, lo, hi)
        distinct, shares = merge_points(moved, np.full(runs, 1.0 / runs), hi - lo)
        out = np.rint(shares * runs).astype(int)  # runs that met at one point
        return distinct, out / runs, out, np.arange(out.size)
    support = np.flatnonzero(counts)
    value, _, _ = state(problem, counts / runs)
    if not np.isfinite(value):
        raise SingularInformationError(
            f"no design of {runs} runs on these candidates identifies the {len(space.names)} parameters "
            f"{space.names} for the {spec.label()} criterion; give more runs (n=)"
        )
    return None if grid is None else grid[support], counts[support] / runs, counts[support], support


def _design(
    space: PointSpace,
    candidates: DesignProblem,
    x: Any,
    coords: np.ndarray | None,
    weights: np.ndarray,
    counts: np.ndarray | None,
    support: np.ndarray,
    on_candidates: bool,
    box_best: float,
    expectation: Any,
) -> Design:
    """The :class:`Design`: information at the nominal parameters, value, sensitivities, certificate."""
    spec = candidates.spec
    rows = (
        space.rows(coords)
        if coords is not None
        else jax.tree_util.tree_map(lambda a: np.asarray(a)[support], x)
    )
    factors = candidates.factors[:, support] if on_candidates else space.factors(rows)
    problem = DesignProblem(factors, space.pi, spec)
    objective, d_support, bound = state(problem, weights)
    if spec.kind in (DesignCriterion.D, DesignCriterion.DS):
        bound = float(spec.size)  # the theorem's P (s for Ds): tr(∇ψ M) computes it to rounding
    grads, mats = gradients(problem, weights)
    cand = candidates.factors
    sens = sensitivities(candidates, grads)
    best = max(float(np.max(sens)), float(np.max(d_support)), box_best)
    efficiency = efficiency_bound(spec, best - bound, objective)
    if spec.kind is DesignCriterion.E and len(space.nodes) == 1:
        sens, best, bound, efficiency = _e_certificate(mats[0], cand[0], efficiency)
    if expectation.prior is None:  # the one node is the nominal point
        m = np.einsum("j,jpr,jqr->pq", weights, factors[0], factors[0])
        info = InfoMatrix(m, space.names, method="design", center=named_values(space.nodes[0]))
    else:
        nominal = point_information(space.model, expectation.params, rows)
        info = InfoMatrix(nominal.info(weights).matrix, nominal.names, method="design", center=nominal.center)
    value, error = _expected_value(space, spec, mats)
    if expectation.prior is not None and expectation.method == PriorExpectation.QUADRATURE.value:
        coarser, pi = prior_nodes(
            expectation.params,
            expectation.prior,
            expectation.method,
            ((expectation.points or 5) + 2) // 2,
            expectation.seed,
        )
        coarse_space = PointSpace(space.model, coarser, pi, space.scalar_rows)
        f = coarse_space.factors(rows)
        coarse_value, _ = _expected_value(coarse_space, spec, np.einsum("j,sjpr,sjqr->spq", weights, f, f))
        error = abs(coarse_value - value)
    return Design(
        points=(coords[:, 0] if space.scalar_rows else coords) if coords is not None else rows,
        weights=weights,
        counts=counts,
        spec=spec,
        value=value,
        value_error=error,
        info=info,
        sensitivity=sens,
        max_sensitivity=best,
        bound=bound,
        efficiency_bound=efficiency,
        prior_nodes=len(space.nodes),
        coordinates=coords,
    )


def _e_certificate(
    m: np.ndarray, cand: np.ndarray, psi_efficiency: float
) -> tuple[np.ndarray, float, float, float]:
    r"""E's exact certificate: with :math:`v` the eigenvector of :math:`\lambda_{\min}(M)`,
    :math:`\lambda^* \le v^\top M^* v \le \max_x v^\top I(x) v`, so the efficiency is at least
    :math:`\lambda_{\min} / \max_x v^\top I(x) v` (equality of the two at the optimum when
    :math:`\lambda_{\min}` is simple). Sensitivities :math:`v^\top I(x) v`, bound :math:`\lambda_{\min}`;
    the efficiency bound is the better of this and the smoothed criterion's."""
    values, vectors = np.linalg.eigh(m)
    v = vectors[:, 0]
    sens = np.einsum("p,npr->nr", v, cand)
    sens = np.sum(sens * sens, axis=1)
    best = float(np.max(sens))
    return sens, best, float(values[0]), max(psi_efficiency, float(values[0]) / best)


def _expected_value(space: PointSpace, spec: Spec, mats: np.ndarray) -> tuple[float, float | None]:
    """The criterion (reported units) averaged over the prior nodes, and its Monte-Carlo error."""
    values = np.array([_value(InfoMatrix(m, space.names), spec) for m in mats])
    value = float(space.pi @ values)
    if len(values) == 1:
        return value, None
    return value, float(np.sqrt(space.pi @ (values - value) ** 2 / len(values)))
