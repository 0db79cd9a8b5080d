"""Option strings: each option is a ``str`` enum, validated in one place."""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = ["ExecutorKind", "GradientMethod", "choose"]

E = TypeVar("E", bound=enum.Enum)


def choose(options: type[E], value: object, name: str, error: type[Exception] = ValueError) -> E:
    """``options(value)``, or ``error`` saying ``"name='value' is not one of [...]"``."""
    try:
        return options(value)
    except ValueError:
        valid = [o.value for o in options]
        raise error(f"{name}={value!r} is not one of {valid}") from None


class GradientMethod(str, enum.Enum):
    """``method`` of :func:`fisherlab.numeric.gradient`."""

    CENTRAL = "central"
    COMPLEX = "complex"


class ExecutorKind(str, enum.Enum):
    """``executor`` strings: a pool of ``workers`` threads or (spawned) processes made for one call."""

    THREADS = "threads"
    PROCESSES = "processes"
