r"""The result of a fit: estimates and every flavour of uncertainty around them, one concept a module.

- :mod:`._fitresult`: :class:`FitResult`, the object users hold (estimates, names, the fit's
  state) and its methods, each a thin call into the modules below;
- :mod:`._covariance`: the information matrices and covariance kinds (observed, expected,
  empirical, sandwich HC0–HC3, cluster), on the fitting scale and mapped to the user's;
- :mod:`._wald`: Wald intervals, the z/t table and the summary;
- :mod:`._delta`: the delta method (:class:`Derived`);
- :mod:`._summary`: :class:`Summary` (its number and p-value format: :mod:`fisherlab._format`).
"""

from ..._format import (
    format_number as format_number,
    format_pvalue as format_pvalue,
    rich_tables as rich_tables,
)
from ..._options import CovKind as CovKind
from ._delta import Derived as Derived
from ._fitresult import FitResult as FitResult
from ._summary import Summary as Summary
from ._wald import quantile as wald_quantile

__all__ = [
    "CovKind",
    "Derived",
    "FitResult",
    "Summary",
    "format_number",
    "format_pvalue",
    "rich_tables",
    "wald_quantile",
]
