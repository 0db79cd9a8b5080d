"""Names of GLM families and links, R's spellings included: one resolver for both registries."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, TypeVar

from .._errors import ModelError

__all__ = ["names_of", "resolve"]

E = TypeVar("E", bound=enum.Enum)


def names_of(records: Iterable[Any], key: str) -> dict[str, Any]:
    """``{value or alias: member}`` for records with the enum member in ``key`` and ``aliases``."""
    out: dict[str, Any] = {}
    for r in records:
        member = getattr(r, key)
        out[member.value] = member
        out.update({alias: member for alias in r.aliases})
    return out


def resolve(options: type[E], by_name: dict[str, E], value: object, what: str, plural: str) -> E:
    """``value`` (a member, its value or an alias, any case) as a member of ``options``.

    Raises:
        ModelError: not a known name, naming the valid ones.
    """
    if isinstance(value, options):
        return value
    if isinstance(value, str):
        found = by_name.get(value.strip().lower())
        if found is not None:
            return found
    raise ModelError(f"unknown {what} {value!r}; valid {plural}: {[o.value for o in options]}")
