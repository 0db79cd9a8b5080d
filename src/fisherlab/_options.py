"""Option strings, defined once: every option of fisherlab is a ``str`` enum here.

Functions accept the plain strings (``method="exact"``) or the enum members
(``fl.FisherMethod.EXACT``); :func:`choose` validates either in one place and raises
:class:`~fisherlab.InvalidOptionError` naming the argument, the value given and the
valid values. The command line builds its choices and help text from the same enums.

Example:
    >>> import fisherlab as fl
    >>> [k.value for k in fl.CovKind]
    ['observed', 'expected', 'empirical', 'sandwich']
    >>> fl.fisher(fl.Model(lambda th, x: fl.dist.Poisson(th["rate"])), {"rate": 1.0}, method="bogus")
    Traceback (most recent call last):
    ...
    fisherlab._errors.InvalidOptionError: method='bogus' is not one of ['auto', 'exact', 'mc']
"""

from __future__ import annotations

import enum
from typing import TypeVar

from ._errors import InvalidOptionError

__all__ = [
    "CovKind",
    "CovScale",
    "Derivatives",
    "ExecutorKind",
    "FisherMethod",
    "GradientMethod",
    "HessianMethod",
    "IMTestVariant",
    "IntervalMethod",
    "OptimMethod",
    "Reduction",
    "choose",
    "values",
]

E = TypeVar("E", bound=enum.Enum)


def values(options: type[enum.Enum]) -> list[str]:
    """The option strings of an enum, in declaration order (for messages, CLI choices and help)."""
    return [str(o.value) for o in options]


def choose(options: type[E], value: object, name: str, error: type[Exception] = InvalidOptionError) -> E:
    """``options(value)``, or ``error`` saying ``"name='value' is not one of [...]"``.

    ``error`` defaults to :class:`~fisherlab.InvalidOptionError` (a ``FisherlabError`` and a
    ``ValueError``); a caller may name a more specific ``FisherlabError`` subclass.
    """
    try:
        return options(value)
    except ValueError:
        raise error(f"{name}={value!r} is not one of {values(options)}") from None


class GradientMethod(str, enum.Enum):
    """``method`` of :func:`fisherlab.numeric.gradient`."""

    CENTRAL = "central"
    COMPLEX = "complex"


class ExecutorKind(str, enum.Enum):
    """``executor`` strings: a pool of ``workers`` threads or (spawned) processes made for one call."""

    THREADS = "threads"
    PROCESSES = "processes"


class Reduction(str, enum.Enum):
    """How per-observation contributions are combined: ``"sum"`` (total) or ``"mean"`` (1/N)."""

    SUM = "sum"
    MEAN = "mean"


class Derivatives(str, enum.Enum):
    """How derivatives of a model are taken."""

    AUTODIFF = "autodiff"
    NUMERIC = "numeric"
    AUTO = "auto"


class FisherMethod(str, enum.Enum):
    """``method`` of :func:`fisher`."""

    AUTO = "auto"
    EXACT = "exact"
    MC = "mc"


class HessianMethod(str, enum.Enum):
    """``method`` of :func:`hessian`."""

    AUTODIFF = "autodiff"
    NUMERIC = "numeric"


class CovKind(str, enum.Enum):
    """``kind`` of :meth:`FitResult.cov`."""

    OBSERVED = "observed"
    EXPECTED = "expected"
    EMPIRICAL = "empirical"
    SANDWICH = "sandwich"


class IntervalMethod(str, enum.Enum):
    """``method`` of :meth:`FitResult.conf_int`."""

    WALD = "wald"
    PROFILE = "profile"


class OptimMethod(str, enum.Enum):
    """``method`` of :func:`fit`."""

    AUTO = "auto"
    NEWTON = "newton"
    LBFGS = "lbfgs"


class IMTestVariant(str, enum.Enum):
    """``variant`` of the information-matrix test in :func:`check`."""

    WHITE = "white"
    OPG = "opg"


class CovScale(str, enum.Enum):
    """``scale`` of :meth:`fisherlab.FitResult.cov`: the user's parameters or the fitting scale."""

    USER = "user"
    UNCONSTRAINED = "unconstrained"
