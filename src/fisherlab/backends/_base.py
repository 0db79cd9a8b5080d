r"""The derivative-backend interface: everything above this layer asks a backend, never a model.

For a model :math:`p(y \mid x, \theta)` with rows :math:`i = 1..N`, per-row log-likelihood
:math:`\ell_i(\theta)`, and the family's own parameters of each row :math:`\eta_i(\theta)`
(the numbers inside its distribution: logits; rate; loc and scale) with Jacobian
:math:`J_i = \partial\eta_i/\partial\theta`, a :class:`Backend` provides

============================  =========================================================
:meth:`~Backend.loglik`       :math:`\ell_i(\theta)`, shape ``(N,)``
:meth:`~Backend.scores`       :math:`s_i = \nabla_\theta \ell_i`, ``(N, P)``
:meth:`~Backend.score_gram`   :math:`\sum_i s_i s_i^\top` (the empirical Fisher, a total)
:meth:`~Backend.negative_hessian`  :math:`-\sum_i \nabla^2_\theta \ell_i` (observed information)
:meth:`~Backend.negative_hessian_mv`  its product with a vector
:meth:`~Backend.row_curvature`  :math:`\ell_i`, :math:`s_i` and :math:`\nabla^2 \ell_i` per row
:meth:`~Backend.third_derivatives`  :math:`\sum_i \partial^3 \ell_i`, ``(P, P, P)`` (White's test)
:meth:`~Backend.eta_jvp` / :meth:`~Backend.eta_vjp`  :math:`J v` and :math:`\sum_i J_i^\top w_i`
:meth:`~Backend.eta_gram`     :math:`\sum_i J_i^\top W(\eta_i) J_i` (the chain rule, with
                              :math:`W = I`, the family's Fisher, from :mod:`fisherlab.dist`)
:meth:`~Backend.mc_score_outer`  Monte-Carlo moments of :math:`\sum_i s_i s_i^\top` over
                              draws :math:`y \sim p(\cdot \mid x, \theta)`
:meth:`~Backend.log_posterior`  :math:`f(u) = -[\sum_i \ell_i(T(u)) + \log p(T(u))]` with
                              gradient and Hessian, for fits and profiles
============================  =========================================================

and the validity checks (a distribution parameter outside its support, ``y`` outside the
family's support, a non-finite value) on every call, raising errors that name the row.
Results are totals over rows (``"sum"``); the information layer applies ``reduction``.

Every matrix comes back as a :class:`Derivative`: the value, an entrywise error bound
(``None`` where the derivatives are exact to rounding, as with autodiff) and the number of
model-function calls it took (``None`` where that is not counted).

Two implementations: :class:`~fisherlab.backends.AutodiffBackend` (JAX: jit-compiled,
vectorised over rows) and :class:`~fisherlab.backends.NumericBackend` (finite differences
with Richardson extrapolation and error bounds, :mod:`fisherlab.numeric`, for functions JAX
cannot trace). :func:`~fisherlab.backends.backend_for` picks one once per model
(``derivatives=``). A structured backend for networks (layer-wise Kronecker factors,
diagonals, matrix-free products) plugs in by subclassing :class:`Backend`: the callers do
not change.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpyro.distributions as nd

from .._errors import MethodUnavailableError

if TYPE_CHECKING:
    from ..data._prepare import Data
    from ..model._model import Model
    from ..params._constraints import Reparam
    from ..params._prior import Prior

__all__ = ["Backend", "Derivative", "LogPosterior", "MonteCarloMoments", "RowCurvature", "RowJacobian"]


@dataclasses.dataclass(frozen=True)
class Derivative:
    """A derivative quantity: ``value``, its entrywise ``error`` bound and the model calls it took.

    Attributes:
        value: the array.
        error: same shape, a bound on ``|value - exact|`` entrywise, or ``None`` when the
            value is exact to rounding (autodiff).
        evaluations: calls of the model function (numeric derivatives), or ``None``.
    """

    value: np.ndarray
    error: np.ndarray | None = None
    evaluations: int | None = None


@dataclasses.dataclass(frozen=True)
class RowCurvature:
    """Per-row log-likelihood ``(N,)``, scores ``(N, P)`` and Hessians ``(N, P, P)``.

    ``exact``: derivatives exact to rounding (autodiff), or approximations (finite
    differences, ~1e-9 relative), which decides the rank tolerances of White's test.
    """

    loglik: np.ndarray
    scores: np.ndarray
    hessians: np.ndarray
    exact: bool = True


@dataclasses.dataclass(frozen=True)
class RowJacobian:
    r"""The chain rule's parts row by row: :math:`J_i = \partial\eta_i/\partial\theta` and :math:`W_i`.

    The information of row i alone is :math:`J_i^\top W_i J_i` (experiment design weighs rows).

    Attributes:
        jac: ``(N, B, K, P)``, ``B`` the distribution's batch elements in one row.
        weights: ``(N, B, K, K)``, the family's Fisher information of each element.
        error: ``(N, B, K, P)`` bound on ``|jac - exact|`` (numeric derivatives), or ``None``.
        evaluations: calls of the model function (numeric derivatives), or ``None``.
    """

    jac: np.ndarray
    weights: np.ndarray
    error: np.ndarray | None = None
    evaluations: int | None = None


@dataclasses.dataclass(frozen=True)
class MonteCarloMoments:
    r"""Blocks of Monte-Carlo draws of :math:`T = \sum_i s_i s_i^\top`: per-block mean and sum of squares.

    Attributes:
        counts: draws per block, ``(B,)``.
        means: per-block mean of :math:`T`, ``(B, P, P)``.
        squares: per-block :math:`\sum (T - \bar T_b)^2` (entrywise), ``(B, P, P)``.
        evaluations: calls of the model function, or ``None``.
    """

    counts: np.ndarray
    means: np.ndarray
    squares: np.ndarray
    evaluations: int | None = None

    def combine(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Mean of all draws and its standard error per entry (Chan, Golub & LeVeque 1979).

        .. math:: \bar T = \frac{\sum_b n_b \bar T_b}{S},\qquad
                  M_2 = \sum_b \Big[M_{2,b} + n_b (\bar T_b - \bar T)^2\Big],\qquad
                  \mathrm{se} = \sqrt{M_2 / (S - 1) / S}.
        """
        counts = np.asarray(self.counts, dtype=np.float64)
        total = float(counts.sum())
        weights = counts[:, None, None]
        mean = (weights * self.means).sum(axis=0) / total
        m2 = (self.squares + weights * (self.means - mean) ** 2).sum(axis=0)
        return mean, np.sqrt(np.maximum(m2, 0.0) / (total - 1.0) / total)


class LogPosterior(abc.ABC):
    r"""The negative log-posterior on the unconstrained scale and its derivatives.

    .. math:: f(u) = -\Big[\sum_i \ell_i(T(u)) + \log p(T(u))\Big]

    (the prior term only with a prior), :math:`f = +\infty` outside the support. Made by
    :meth:`Backend.log_posterior`; the fit's objective, the profiles and the report's
    contours use only these methods.
    """

    #: Above this many parameters a fit with ``method="auto"`` uses L-BFGS.
    newton_max_params: int = 400

    @abc.abstractmethod
    def value(self, u: np.ndarray) -> float:
        """:math:`f(u)`, ``+inf`` outside the support."""

    @abc.abstractmethod
    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """:math:`f(u)` and :math:`\\nabla f(u)` (the gradient is 0 outside the support)."""

    @abc.abstractmethod
    def hessian(self, u: np.ndarray) -> np.ndarray:
        """:math:`\\nabla^2 f(u)`."""

    def gradient_error(self, u: np.ndarray) -> np.ndarray | None:
        """An entrywise bound on the gradient's error at ``u``; ``None`` where it is exact."""
        return None

    @property
    def evaluations(self) -> int | None:
        """Calls of the model function so far, where counted (numeric derivatives)."""
        return None

    def batch_value_and_grad(self, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`value_and_grad` at every row of ``us`` ``(M, P)``."""
        out = [self.value_and_grad(u) for u in us]
        return np.array([v for v, _ in out]), np.stack([g for _, g in out])

    def batch_hessian(self, us: np.ndarray) -> np.ndarray:
        """:meth:`hessian` at every row of ``us``, ``(M, P, P)``."""
        return np.stack([self.hessian(u) for u in us])

    @property
    def batched(self) -> bool:
        """Whether the batch methods evaluate many points in one vectorised pass."""
        return False


class Backend(abc.ABC):
    """A source of derivatives for one model (see the module docstring for the operations).

    Args:
        model: the :class:`~fisherlab.Model`.
    """

    #: The name ``derivatives=`` uses for this backend.
    name: str = ""

    def __init__(self, model: Model) -> None:
        self.model = model

    # ------------------------------------------------------------------ rows of data
    @abc.abstractmethod
    def loglik(self, params: Any, data: Data) -> np.ndarray:
        """Per-row log-likelihood ``(N,)`` (``-inf`` for an impossible row; never NaN)."""

    @abc.abstractmethod
    def scores(self, params: Any, data: Data) -> Derivative:
        """Per-row scores ``(N, P)``, columns in :func:`~fisherlab.param_names` order."""

    @abc.abstractmethod
    def score_gram(self, params: Any, data: Data) -> Derivative:
        r""":math:`\sum_i s_i s_i^\top`, ``(P, P)``."""

    @abc.abstractmethod
    def negative_hessian(self, params: Any, data: Data) -> Derivative:
        r""":math:`-\sum_i \nabla^2 \ell_i`, ``(P, P)``."""

    def negative_hessian_mv(self, params: Any, data: Data, v: np.ndarray) -> np.ndarray:
        r""":math:`-\sum_i \nabla^2 \ell_i \, v` (dense by default; a structured backend has its own)."""
        return self.negative_hessian(params, data).value @ np.asarray(v, dtype=np.float64)

    @abc.abstractmethod
    def row_curvature(self, params: Any, data: Data) -> RowCurvature:
        """Per-row log-likelihood, scores and Hessians."""

    @abc.abstractmethod
    def third_derivatives(self, params: Any, data: Data) -> np.ndarray:
        r""":math:`T_{jkl} = \partial_j\partial_k\partial_l \sum_i \ell_i`, ``(P, P, P)``."""

    # ------------------------------------------------------------------ family parameters
    @abc.abstractmethod
    def first_distribution(self, params: Any, x: Any) -> nd.Distribution:
        """The distribution of the first row (of all rows for a backend that evaluates them together).

        Evaluated eagerly, with the user's exceptions chained into a ``ModelError``; used to
        choose a route (which family is this?).
        """

    @abc.abstractmethod
    def rows_distribution(self, params: Any, x: Any) -> nd.Distribution:
        """A distribution whose leaves carry a leading axis over the rows (to read ``.probs`` etc.)."""

    @abc.abstractmethod
    def eta_jvp(self, params: Any, x: Any, v: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        """:math:`J_i v` for every row, ``(N, K)`` (``v`` a flat ``(P,)`` vector).

        ``eta(d)`` gives a distribution's parameters as a ``(..., K)`` array (for the chain
        rule, :func:`~fisherlab.dist.family_fisher`'s ``params``). It must be a module-level
        function (kernels are cached by it; a process pool pickles it).
        """

    @abc.abstractmethod
    def eta_vjp(self, params: Any, x: Any, w: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        r""":math:`\sum_i J_i^\top w_i`, ``(P,)`` (``w`` of shape ``(N, K)``)."""

    @abc.abstractmethod
    def eta_gram(self, params: Any, x: Any, family: Callable[[nd.Distribution], Any]) -> Derivative:
        r""":math:`\sum_i J_i^\top W_i J_i` over the rows of ``x``.

        ``family(d)`` returns ``(eta, W)``: the distribution's parameters ``(..., K)`` and the
        weight ``(..., K, K)`` per batch element (the registry's
        :func:`~fisherlab.dist.family_fisher` gives both): the chain rule
        :math:`F = \sum_i J_i^\top I(\eta_i) J_i`, contracted by
        :func:`~._chain_rule.weighted_gram` in every backend. A module-level function.
        """

    @abc.abstractmethod
    def eta_rows(self, params: Any, x: Any, family: Callable[[nd.Distribution], Any]) -> RowJacobian:
        r"""The parts of :meth:`eta_gram` for every row, not summed: :math:`J_i` and :math:`W_i`."""

    def rows_fisher(self, params: Any, x: Any, route: str) -> Derivative:
        r"""Every row's own information ``(N, P, P)`` by the ``"summation"`` or ``"quadrature"`` route."""
        raise MethodUnavailableError(
            f"{self.name} derivatives have no {route} route per row; use method='mc'"
        )

    @abc.abstractmethod
    def mc_score_outer(self, params: Any, x: Any, num_samples: int, seed: int) -> MonteCarloMoments:
        r"""Monte-Carlo moments of :math:`\sum_i s_i s_i^\top` over ``num_samples`` data sets drawn at θ."""

    def enumerated_fisher(self, params: Any, x: Any) -> Derivative:
        r""":math:`\sum_i \sum_y p(y) s_i(y) s_i(y)^\top` over a finite support."""
        raise MethodUnavailableError(
            f"{self.name} derivatives have no exact summation over the support; use method='mc'"
        )

    def quadrature_fisher(self, params: Any, x: Any) -> Derivative:
        r""":math:`\sum_i \int s_i(y) s_i(y)^\top dP(y)` by quadrature (``error``: its estimate)."""
        raise MethodUnavailableError(f"{self.name} derivatives have no quadrature route; use method='mc'")

    @property
    def integrates(self) -> bool:
        """Whether :meth:`enumerated_fisher` and :meth:`quadrature_fisher` exist for this backend."""
        return False

    # ------------------------------------------------------------------ fitting
    @abc.abstractmethod
    def log_posterior(self, reparam: Reparam, prior: Prior | None, data: Data, params0: Any) -> LogPosterior:
        """The fit's objective :math:`f(u)` (see :class:`LogPosterior`) on ``data``."""
