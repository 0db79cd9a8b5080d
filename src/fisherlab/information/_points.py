r"""The information of one observation at each of N points: what experiment design weighs.

An experiment that takes a fraction :math:`w_i` of its runs at point :math:`x_i` has, per run,
the information

.. math:: M(w) = \sum_i w_i\, I(x_i;\theta),\qquad
          I(x;\theta) = \mathbb{E}_{y\sim p(\cdot\mid x,\theta)}\big[s(y)\,s(y)^\top\big],

so a design algorithm needs every :math:`I(x_i)` separately, not only their total
(:func:`~fisherlab.fisher`). :func:`point_information` computes them by the routes of
:func:`~fisherlab.fisher`, row by row:

- ``"exact"`` (a closed form in the registry): :math:`I(x_i) = \sum_b J_{ib}^\top W_{ib} J_{ib}`,
  with the Jacobian of the family's parameters by autodiff or finite differences (black-box
  models), and :math:`W` the family's Fisher information;
- ``"summation"`` / ``"quadrature"``: :math:`\sum_y p(y)\,s\,s^\top` over a finite support, or by
  tanh-sinh quadrature over a 1-D continuous one.

A Monte-Carlo information per point would make a design depend on the draws, so a model with
only that route (a ``from_loglik`` model, a family without a closed form, support sum or inverse
CDF) is refused: register a closed form with :func:`fisherlab.dist.register_fisher`.

Every :math:`I(x_i)` is kept factored, :math:`I(x_i) = L_i L_i^\top` with :math:`L_i` of shape
``(P, R)`` (:math:`R = BK`, the distribution's parameters in a row, for the chain rule; ``P``
otherwise), so a design's information and sensitivities cost :math:`O(N P^2 R)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import FisherlabArgumentError, MethodUnavailableError, ModelError
from .._options import FisherMethod, choose
from .._precision import float64, float64_methods
from ..backends import backend_for
from ..data._prepare import prepare_data
from ..model._model import Model, require_model
from ..params._pytree import as_params, named_values, param_names
from ._fisher import _route, family_parts
from ._matrix import InfoMatrix

__all__ = ["PointInformation", "point_information", "psd_factor"]

# Negative eigenvalues of a point's information (or a family's W) down to this fraction of the
# largest are rounding (a sum of outer products is positive semidefinite) and are set to 0;
# a more negative one means a broken closed form and is an error.
_ROUNDING = 1e-10


def psd_factor(mats: np.ndarray, what: str) -> np.ndarray:
    r"""``L`` with ``L Lᵀ = A`` for a stack of symmetric PSD matrices ``(..., K, K)``, by eigh.

    Raises:
        ModelError: an eigenvalue below :math:`-10^{-10}` of the largest (not a rounding).
    """
    values, vectors = np.linalg.eigh(0.5 * (mats + np.swapaxes(mats, -1, -2)))
    scale = np.max(np.abs(values), axis=-1, keepdims=True)
    bad = values < -_ROUNDING * np.maximum(scale, np.finfo(np.float64).tiny)
    if np.any(bad):
        where = np.unravel_index(int(np.flatnonzero(bad.any(axis=-1))[0]), bad.shape[:-1])
        raise ModelError(
            f"{what} at point {where[0]} is not positive semidefinite (eigenvalue "
            f"{values[where].min():.3g}); check the closed form registered for this family"
        )
    return vectors * np.sqrt(np.maximum(values, 0.0))[..., None, :]


@float64_methods
class PointInformation:
    r"""The information of one observation at each of N points, :math:`I(x_i) = L_i L_i^\top`.

    Attributes:
        factors: ``(N, P, R)`` array of the :math:`L_i`.
        names: parameter names, length ``P``.
        route: how each :math:`I(x_i)` was computed (``"exact"``, ``"summation"``, ``"quadrature"``).
        center: the parameter values (name -> float) at which it was computed.
        evaluations: calls of the model function (numeric derivatives), or ``None``.
    """

    __slots__ = ("center", "evaluations", "factors", "names", "route")

    def __init__(
        self,
        factors: np.ndarray,
        names: list[str],
        route: str,
        center: Mapping[str, float],
        evaluations: int | None = None,
    ) -> None:
        self.factors = np.asarray(factors, dtype=np.float64)
        self.names, self.route, self.center = list(names), route, dict(center)
        self.evaluations = evaluations

    def __len__(self) -> int:
        return int(self.factors.shape[0])

    def matrices(self) -> np.ndarray:
        r"""Every :math:`I(x_i)`, ``(N, P, P)`` (dense: :math:`O(NP^2)` memory)."""
        return np.einsum("npr,nqr->npq", self.factors, self.factors)

    def info(self, weights: Any = None) -> InfoMatrix:
        r""":math:`\sum_i w_i I(x_i)` as an :class:`~fisherlab.InfoMatrix` (``weights=None``: all ones).

        Raises:
            FisherlabArgumentError: ``weights`` not a finite, non-negative vector of length N.
        """
        n = len(self)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise FisherlabArgumentError(
                f"weights must be {n} finite non-negative numbers (one per point), got shape {w.shape}"
            )
        m = np.einsum("n,npr,nqr->pq", w, self.factors, self.factors)
        return InfoMatrix(m, self.names, method=self.route)


@float64
def point_information(model: Model, params: Any, x: Any, *, method: str = "auto") -> PointInformation:
    r"""The expected information of ONE observation at each row of ``x``, :math:`I(x_i;\theta)`.

    The rows' informations add to :func:`~fisherlab.fisher` of the same ``x``.

    Args:
        model: a :class:`~fisherlab.Model` returning a distribution.
        params: parameter pytree :math:`\theta` (the design's local guess).
        x: the points (candidates), leading axis N.
        method: ``"auto"`` or ``"exact"`` (Monte-Carlo per point is refused, see the module).

    Returns:
        :class:`PointInformation`, factored.

    Raises:
        FisherlabArgumentError: no ``x``, or ``model`` not an ``fl.Model``.
        MethodUnavailableError: the model has only a Monte-Carlo Fisher, or ``method="mc"``.
        InvalidParameterError / InvalidDataError: as :func:`~fisherlab.fisher`.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, 1.0))
        >>> pts = point_information(m, {"a": 0.0, "b": 0.0}, np.array([-1.0, 0.0, 1.0]))
        >>> pts.matrices()[0].tolist()          # (1, x)(1, x)^T at x = -1
        [[1.0, -1.0], [-1.0, 1.0]]
        >>> pts.info().matrix.tolist()          # = fl.fisher of the three points
        [[3.0, 0.0], [0.0, 2.0]]
    """
    require_model(model, "point_information")
    choice = choose(FisherMethod, method, "method")
    if x is None:
        raise FisherlabArgumentError(
            "point_information needs the points x (candidates, leading axis N); a model without "
            "covariates has one information, fl.fisher(model, params)"
        )
    backend = backend_for(model, params, None, x)
    params = as_params(params)
    x = prepare_data(None, x, require_y=False).x
    names = param_names(params)
    route = "mc" if choice is FisherMethod.MC else _route(backend, params, x, choice)
    center = named_values(params)
    evaluations = None
    if route == "exact":
        parts = backend.eta_rows(params, x, family_parts)
        n, b, k, p = parts.jac.shape
        root = psd_factor(parts.weights, "the family's Fisher information")
        factors = np.einsum("nbkp,nbkr->npbr", parts.jac, root).reshape(n, p, b * k)
        evaluations = parts.evaluations
    elif route in ("summation", "quadrature"):
        factors = psd_factor(backend.rows_fisher(params, x, route).value, "the information")
    else:
        raise MethodUnavailableError(
            "experiment design needs the exact information of each point: this model has only a "
            "Monte-Carlo Fisher (a from_loglik model, or a family without a registered closed form, "
            "finite support or inverse CDF); register a closed form with fl.dist.register_fisher"
        )
    if not np.all(np.isfinite(factors)):
        bad = int(np.flatnonzero(~np.isfinite(factors).all(axis=(1, 2)))[0])
        raise ModelError(f"the information at point {bad} is not finite; check the model there")
    return PointInformation(factors, names, route, center, evaluations)
