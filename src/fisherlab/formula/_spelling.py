"""How a face spells the options that error messages about formulas point to.

The checks of :mod:`fisherlab.formula` are shared by the Python API (:func:`fisherlab.glm`)
and the command line (``fisherlab fit -f``), and say the same thing to both; only the
name of the option that fixes the problem differs (``missing="drop"`` or ``--dropna``).
"""

from __future__ import annotations

import dataclasses

__all__ = ["PYTHON", "Spelling"]


@dataclasses.dataclass(frozen=True)
class Spelling:
    """The names of the options an error message suggests.

    Attributes:
        drop_missing: the option that drops rows with missing values.
        allow_code: the option that lifts the formula allow-list.
        trials: the option that names the binomial trials.
        help: where the allowed formula syntax is documented.
    """

    drop_missing: str
    allow_code: str
    trials: str
    help: str


PYTHON = Spelling(
    drop_missing="missing='drop'",
    allow_code="allow_code=True",
    trials="weights= (trials, with y the proportion of successes)",
    help="help(fisherlab.glm)",
)
"""The Python API's spelling (:func:`fisherlab.glm`)."""
