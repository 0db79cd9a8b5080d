"""Inference: fits, their results, profiles, Laplace approximations and the identity check.

One objective (:class:`Objective`, the negative log-posterior with the backend's
derivatives) and one damped Newton routine (:func:`newton`, :func:`newton_batch`) serve the
fit, the 1-D profile intervals and the 2-D profile contours.
"""

from ._check import AUTO_MAX_SIZE as AUTO_MAX_SIZE, CheckResult as CheckResult, check as check
from ._comparison import LikelihoodRatioTest as LikelihoodRatioTest
from ._fit import fit as fit
from ._laplace import LaplaceApproximation as LaplaceApproximation
from ._newton import decrement as decrement, newton as newton, newton_batch as newton_batch
from ._objective import Objective as Objective
from ._profile2d import ProfileGrid as ProfileGrid, profile_grid as profile_grid
from ._result import (
    Derived as Derived,
    FitResult as FitResult,
    Summary as Summary,
    format_number as format_number,
    format_pvalue as format_pvalue,
    rich_tables as rich_tables,
    wald_quantile as wald_quantile,
)

__all__ = [
    "AUTO_MAX_SIZE",
    "CheckResult",
    "Derived",
    "FitResult",
    "LaplaceApproximation",
    "LikelihoodRatioTest",
    "Objective",
    "ProfileGrid",
    "Summary",
    "check",
    "decrement",
    "fit",
    "format_number",
    "format_pvalue",
    "newton",
    "newton_batch",
    "profile_grid",
    "rich_tables",
    "wald_quantile",
]
