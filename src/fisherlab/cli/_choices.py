"""The command line's option choices and their help phrases, built from the enums that define them.

Covariance kinds come from :class:`fisherlab.CovKind`, the information-matrix test
from :class:`fisherlab.IMTestVariant`, the ``info`` method from
:class:`fisherlab.FisherMethod`, families from :mod:`fisherlab.models` and the
JAX-free part of its family records (:data:`fisherlab.models.FAMILY_TRAITS`, so that
``fisherlab --help`` imports no JAX); ``--dispersion`` is the command line's own
:class:`SummaryDispersion`. The command line shows some choices in its own order
(the model-based covariances before the robust ones): :func:`ordered` puts the
named members first and every other member after them, so a new enum member is
offered without an edit here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from fisherlab._options import CovKind, FisherMethod, HCType, IMTestVariant, values
from fisherlab.models import FAMILY_TRAITS, Family

from ._errors import CliError

__all__ = [
    "COV_KINDS",
    "FAMILY_NAMES",
    "HC_TYPES",
    "IM_VARIANTS",
    "INFO_METHODS",
    "PEARSON_FAMILIES",
    "SummaryDispersion",
    "and_list",
    "check_dispersion",
    "choice",
    "described",
    "or_list",
    "ordered",
]

E = TypeVar("E", bound=enum.Enum)


class SummaryDispersion(str, enum.Enum):
    """``--dispersion``: standard errors of GLM coefficients by maximum likelihood, or as R's summary.glm."""

    ML = "ml"
    R = "r"


def ordered(options: type[E], *first: E) -> list[str]:
    """The values of ``options``: ``first`` in that order, then the other members in declaration order."""
    rest = [o for o in options if o not in first]
    return [str(o.value) for o in (*first, *rest)]


def or_list(items: Sequence[str]) -> str:
    """``"a, b or c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def and_list(items: Sequence[str]) -> str:
    """``"a, b and c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def described(items: Iterable[str], descriptions: Mapping[str, str]) -> list[str]:
    """Each item, followed by its description in parentheses where it has one."""
    return [f"{v} ({descriptions[v]})" if v in descriptions else v for v in items]


def choice(value: str, allowed: Sequence[str], option: str) -> str:
    """``value`` (any case, surrounding blanks ignored) if it is one of ``allowed``, else ``CliError``."""
    v = value.strip().lower()
    if v not in allowed:
        raise CliError(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return v


# --cov: the model-based kinds, then the robust ones
COV_KINDS = ordered(CovKind, CovKind.OBSERVED, CovKind.EXPECTED, CovKind.SANDWICH)
# --hc: the sandwich's heteroskedasticity-consistent variants (--cov sandwich)
HC_TYPES = values(HCType)
DISPERSIONS = values(SummaryDispersion)
DISPERSION_HELP = {
    SummaryDispersion.ML.value: "maximum likelihood",
    SummaryDispersion.R.value: "R's summary.glm",
}
IM_VARIANTS = values(IMTestVariant)
# info --method: the exact computation first
INFO_METHODS = ordered(FisherMethod, FisherMethod.EXACT, FisherMethod.MC)
INFO_METHOD_HELP = {FisherMethod.EXACT.value: "closed form / summation / quadrature"}

FAMILY_NAMES = values(Family)
# Families whose R summary estimates the dispersion by Pearson's statistic (t tests in R).
PEARSON_FAMILIES = [f.value for f, r in FAMILY_TRAITS.items() if r.pearson]
UNIT_DISPERSION_FAMILIES = [f.value for f, r in FAMILY_TRAITS.items() if not r.pearson]


def extra_parameters() -> str:
    """``"sigma for gaussian, shape for gamma and inverse_gaussian, ..."`` from the family records."""
    by_name: dict[str, list[str]] = {}
    for family, traits in FAMILY_TRAITS.items():
        if traits.extra is not None:
            by_name.setdefault(traits.extra, []).append(family.value)
    return ", ".join(f"{name} for {and_list(families)}" for name, families in by_name.items())


def check_dispersion(kind: str, dispersion: str) -> None:
    """``--dispersion r`` replaces the model-based covariance of the coefficients by R's: it goes
    with ``--cov observed`` or ``expected`` (a robust or empirical covariance has no dispersion)."""
    if dispersion == SummaryDispersion.R.value and CovKind(kind) not in (CovKind.OBSERVED, CovKind.EXPECTED):
        raise CliError(
            f"--dispersion r (R's summary.glm covariance) goes with --cov observed or expected, not "
            f"--cov {kind}; drop --dispersion r for the {kind} covariance"
        )
