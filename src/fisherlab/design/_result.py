"""The result of :func:`~fisherlab.design.optimal`: a design, its information and its certificate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError
from .._format import format_number
from .._options import DesignCriterion, count
from .._precision import float64_methods
from ..information._matrix import Covariance, InfoMatrix
from ._criteria import E_POWER, Spec

__all__ = ["Design", "efficiency_bound"]


def efficiency_bound(spec: Spec, gap: float, objective: float) -> float:
    r"""A lower bound on the design's efficiency from the equivalence theorem's gap.

    By concavity :math:`\psi^* - \psi \le \text{gap}`: D gives :math:`e^{-\text{gap}/P}` (Ds:
    :math:`/s`), A and c :math:`1 - \text{gap}/|\psi|`, E :math:`e^{-\text{gap} - \log(P)/p}`.
    """
    gap = max(gap, 0.0)
    if spec.kind in (DesignCriterion.D, DesignCriterion.DS):
        return math.exp(-gap / spec.size)
    if spec.kind is DesignCriterion.E:
        return math.exp(-gap - math.log(len(spec.names)) / E_POWER)
    return max(0.0, 1.0 - gap / abs(objective)) if objective else 0.0


@float64_methods
class Design:
    r"""An experimental design: where to run and how often, with its information and optimality check.

    Attributes:
        points: the support points: rows of the candidates (an array ``(m,)`` or ``(m, d)``, or
            the candidates' pytree of rows), or points moved within ``bounds=``.
        weights: ``(m,)``, the fraction of runs at each point (sums to 1).
        counts: ``(m,)`` integers summing to ``n`` for an exact design, else ``None``.
        n: the number of runs of an exact design, else ``None``.
        criterion: the criterion, e.g. ``"D"``, ``"Ds(b)"``, ``"c = (0, 1)"``.
        value: the criterion of :attr:`info` (:func:`~fisherlab.design.criterion`'s units), or
            its expectation over the prior for a Bayesian design.
        value_error: the error of that expectation (quadrature or Monte-Carlo), else ``None``.
        info: the information of ONE run, :math:`M = \sum_j w_j I(x_j)` at ``params``
            (an :class:`~fisherlab.InfoMatrix` with its ``center``).
        sensitivity: ``(N,)``, :math:`d(x_i)` of every candidate.
        max_sensitivity: the largest sensitivity found (on the candidates and, with ``bounds=``,
            over the box).
        bound: the equivalence theorem's bound: ``P`` for D, ``s`` for Ds,
            :math:`\operatorname{tr} M^{-1}` for A, :math:`c^\top M^{-1}c` for c, 1 for E.
            An approximate design is optimal iff ``max_sensitivity <= bound`` (equality on the support).
        efficiency_bound: a lower bound on the efficiency relative to the optimal approximate
            design, from ``max_sensitivity - bound``.
        prior_nodes: the number of prior nodes (1 for a locally optimal design).
    """

    def __init__(
        self,
        *,
        points: Any,
        weights: np.ndarray,
        counts: np.ndarray | None,
        spec: Spec,
        value: float,
        value_error: float | None,
        info: InfoMatrix,
        sensitivity: np.ndarray,
        max_sensitivity: float,
        bound: float,
        efficiency_bound: float,
        prior_nodes: int,
        coordinates: np.ndarray | None,
    ) -> None:
        self.points = points
        self.weights = np.asarray(weights, dtype=np.float64)
        self.counts = None if counts is None else np.asarray(counts, dtype=int)
        self.n = None if counts is None else int(np.sum(counts))
        self.criterion = spec.label()
        self.value, self.value_error = float(value), value_error
        self.info = info
        self.sensitivity = np.asarray(sensitivity, dtype=np.float64)
        self.max_sensitivity, self.bound = float(max_sensitivity), float(bound)
        self.efficiency_bound = float(efficiency_bound)
        self.prior_nodes = prior_nodes
        self._coordinates = coordinates

    def cov(self, n: int | None = None) -> Covariance:
        r"""The Cramér–Rao covariance of ``n`` runs (default: the design's ``n``), :math:`(nM)^{-1}`.

        Raises:
            FisherlabArgumentError / InvalidOptionError: ``n`` missing for an approximate design,
                or not an integer >= 1.
            SingularInformationError: the design does not identify every parameter.
        """
        runs = self.n if n is None else n
        if runs is None:
            raise FisherlabArgumentError("an approximate design has no number of runs: give cov(n=...)")
        return (count(runs, "n", 1, "the number of runs") * self.info).cov()

    def se(self, n: int | None = None) -> dict[str, float]:
        """Standard errors (Cramér–Rao bounds) of ``n`` runs, name -> float."""
        return self.cov(n).se()

    def to_pandas(self) -> pd.DataFrame:
        """One row per support point: its coordinates (``x`` or ``x0, x1, ...``), weight and count."""
        table: dict[str, Any] = {}
        if self._coordinates is not None:
            coords = self._coordinates
            if coords.shape[1] == 1:
                table["x"] = coords[:, 0]
            else:
                for k in range(coords.shape[1]):
                    table[f"x{k}"] = coords[:, k]
        elif isinstance(self.points, Mapping) and all(np.ndim(v) == 1 for v in self.points.values()):
            table.update({str(k): np.asarray(v) for k, v in self.points.items()})  # named covariates
        else:
            table["point"] = [str(p) for p in _rows(self.points, self.weights.size)]
        table["weight"] = self.weights
        if self.counts is not None:
            table["count"] = self.counts
        return pd.DataFrame(table)

    def summary(self) -> str:
        """A plain-text summary: the support, the criterion and the equivalence-theorem check."""
        kind = f"exact, n = {self.n}" if self.n is not None else "approximate"
        lines = [
            f"{self.criterion}-optimal design ({kind}; {self.weights.size} support points"
            + (f"; {self.prior_nodes} prior nodes)" if self.prior_nodes > 1 else ")"),
            self.to_pandas().to_string(index=False, float_format=lambda v: format_number(v)),
            f"criterion value: {format_number(self.value)}"
            + (f" +- {format_number(self.value_error)}" if self.value_error is not None else ""),
            f"equivalence theorem: max sensitivity {format_number(self.max_sensitivity)} "
            f"vs bound {format_number(self.bound)}; efficiency >= {self.efficiency_bound:.6f}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _rows(points: Any, m: int) -> list[Any]:
    import jax

    leaves, tree = jax.tree_util.tree_flatten(points)
    return [jax.tree_util.tree_unflatten(tree, [np.asarray(v)[i].tolist() for v in leaves]) for i in range(m)]
