"""GLM families by name, with the facts of each that need no arithmetic: plain Python, no JAX.

:class:`Family` and :data:`FAMILY_TRAITS` (the extra parameter's name, R's dispersion
convention) are the part of a family's record that the command line's option choices
and help text read, so ``fisherlab --help`` runs without importing JAX. The full
records (:data:`fisherlab.models.FAMILIES`, in ``_families.py``) take these facts from
here: each is written once.

Examples:
    >>> from fisherlab.models import FAMILY_TRAITS, Family
    >>> FAMILY_TRAITS[Family.GAMMA]
    FamilyTraits(extra='shape', pearson=True)
    >>> [f.value for f, t in FAMILY_TRAITS.items() if t.extra is None]
    ['binomial', 'poisson']
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["FAMILY_TRAITS", "Family", "FamilyTraits"]


class Family(str, enum.Enum):
    """GLM families (R's ``family`` objects; ``negative_binomial`` is ``MASS::negative.binomial``)."""

    GAUSSIAN = "gaussian"
    BINOMIAL = "binomial"
    POISSON = "poisson"
    GAMMA = "gamma"
    INVERSE_GAUSSIAN = "inverse_gaussian"
    NEGATIVE_BINOMIAL = "negative_binomial"


@dataclasses.dataclass(frozen=True)
class FamilyTraits:
    r"""What a family is called and how R summarises it, known without computing anything.

    Attributes:
        extra: the name of the family's extra (positive) parameter besides :math:`\beta`
            (``"sigma"``, ``"shape"``, ``"alpha"``), or ``None`` (binomial, Poisson).
        pearson: R's ``summary.glm`` estimates the dispersion :math:`\phi` by Pearson's
            statistic (and reports t tests), rather than taking :math:`\phi = 1`.
    """

    extra: str | None
    pearson: bool


#: The facts of each :class:`Family` that need no JAX, in declaration order (read-only).
FAMILY_TRAITS: Mapping[Family, FamilyTraits] = MappingProxyType(
    {
        Family.GAUSSIAN: FamilyTraits(extra="sigma", pearson=True),
        Family.BINOMIAL: FamilyTraits(extra=None, pearson=False),
        Family.POISSON: FamilyTraits(extra=None, pearson=False),
        Family.GAMMA: FamilyTraits(extra="shape", pearson=True),
        Family.INVERSE_GAUSSIAN: FamilyTraits(extra="shape", pearson=True),
        Family.NEGATIVE_BINOMIAL: FamilyTraits(extra="alpha", pearson=False),
    }
)
