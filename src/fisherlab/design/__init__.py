r"""Experiment design and Fisher forecasting: which experiment pins the parameters down best.

Before data exist, the Fisher information of a planned experiment bounds how well it will
determine the parameters (Cramér–Rao), says which design is best, and how experiments combine.

- :func:`criterion` and :func:`efficiency`: the D, A, E, Ds and c criteria of an information
  matrix, and the efficiency of one design relative to another;
- :func:`optimal`: optimal approximate designs on candidate points (multiplicative updates,
  Newton on the support, column generation, with the equivalence theorem as certificate), moved
  off the grid within ``bounds=``, exact designs of ``n`` runs, and Bayesian designs averaged
  over a prior; a :class:`Design` holds the result;
- :func:`point_information`: the information of one observation at each candidate point.

The information algebra of forecasts (fix, marginalise, priors, combination, reparametrisation,
figures of merit, information gain) are methods of :class:`~fisherlab.InfoMatrix`; triangle
plots are :func:`fisherlab.plot.triangle`.
"""

from ..information._points import PointInformation as PointInformation, point_information as point_information
from ._criteria import criterion as criterion, efficiency as efficiency
from ._optimal import optimal as optimal
from ._result import Design as Design

__all__ = ["Design", "PointInformation", "criterion", "efficiency", "optimal", "point_information"]
