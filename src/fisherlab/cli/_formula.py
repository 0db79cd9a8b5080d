"""From a data table and a Wilkinson formula to the response and design matrix of a GLM.

The formula is parsed and materialised by formulaic, so categorical terms
(``C(g)``, string columns), interactions (``a:b``, ``a*b``), transforms
(``np.log(x)``, ``I(x**2)``) and the intercept (``- 1`` drops it) work as
formulaic documents. The response is checked against the support in the
family's record (:data:`fisherlab.models.FAMILIES`) before any fitting: 0/1 for a
binomial without trials, counts for Poisson and the negative binomial, positive
values for Gamma and the inverse Gaussian.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from fisherlab.models import FAMILIES, Family

from ._errors import CliError

__all__ = ["Design", "build_design", "missing_report"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclasses.dataclass(frozen=True)
class Design:
    """The response, design matrix and (binomial) trials, ready for ``fl.models.glm``.

    Attributes:
        y: response, float64 ``(N,)``.
        X: design matrix, float64 ``(N, p)``.
        columns: the design-matrix column names (``"Intercept"``, ``"x1"``, ``"C(g)[T.b]"``, ...).
        trials: binomial trials ``(N,)`` or ``None``.
        response: the response's text in the formula.
        dropped: number of rows dropped for missing values (``--dropna``).
    """

    y: np.ndarray
    X: np.ndarray
    columns: list[str]
    trials: np.ndarray | None
    response: str
    dropped: int

    @property
    def x(self) -> object:
        """The covariates as ``fl.models.glm`` takes them: ``X`` or ``{"X": X, "trials": trials}``."""
        return self.X if self.trials is None else {"X": self.X, "trials": self.trials}


def _formula_error(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).replace("⧛", "").replace("⧚", "")
    return " ".join(text.split())


def _row(df: pd.DataFrame, mask: np.ndarray) -> object:
    return df.index[int(np.flatnonzero(mask)[0])]


def missing_report(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
    """Rows with a missing value in ``columns``, and a one-line description ("" if none)."""
    na = df[columns].isna()
    bad = na.to_numpy().any(axis=1)
    if not bad.any():
        return bad, ""
    per_col = na.sum()
    where = ", ".join(f"{c} ({int(k)})" for c, k in per_col.items() if k)
    return (
        bad,
        f"{int(bad.sum())} of {len(df)} rows have missing values (in {where}; first at row {_row(df, bad)})",
    )


def _numeric(df: pd.DataFrame, name: str, what: str) -> np.ndarray:
    col = df[name]
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    if not pd.api.types.is_numeric_dtype(col):
        bad = ~pd.to_numeric(col, errors="coerce").notna().to_numpy()
        example = f"; row {_row(df, bad)} is {col.iloc[int(np.flatnonzero(bad)[0])]!r}" if bad.any() else ""
        raise CliError(f"the {what} {name!r} is not numeric (dtype {col.dtype}{example})")
    return col.to_numpy(dtype=np.float64)


def _check_support(
    df: pd.DataFrame, y: np.ndarray, family: Family, trials: np.ndarray | None, name: str
) -> None:
    """Finite ``y`` and trials, then the family record's support of ``y`` (row named, rows counted)."""

    def fail(mask: np.ndarray, need: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise CliError(
                f"response {name!r} at row {df.index[i]} is {y[i]:g}: the {family.value} family needs {need} "
                f"({int(mask.sum())} rows violate it)"
            )

    record = FAMILIES[family]
    fail(~np.isfinite(y), "finite values")
    if record.trials is not None and trials is not None:
        bad_t, need_t = record.trials(trials)
        if bad_t.any():
            i = int(np.flatnonzero(bad_t)[0])
            raise CliError(f"trials at row {df.index[i]} is {trials[i]:g}: trials must be {need_t}")
    bad, need = record.support(y, trials if record.trials is not None else None)
    if record.trials is not None and trials is None:
        need += " (or successes with --trials COLUMN)"
    fail(bad, need)


def build_design(
    df: pd.DataFrame, formula: str, *, family: str | Family, trials: str | None = None, dropna: bool = False
) -> Design:
    """Parse ``formula`` on ``df`` into a :class:`Design`, checking columns, missing values and support.

    Args:
        df: the data table.
        formula: a two-sided formula, ``"y ~ x1 + x2"``.
        family: the GLM family (a :class:`~fisherlab.models.Family` or its value), for the response
            checks of its record.
        trials: the column of binomial trials (``y`` is then the number of successes).
        dropna: drop rows with a missing value in a column the model uses,
            instead of failing.

    Raises:
        CliError: a bad formula, a column that does not exist (named), missing
            values without ``dropna`` (count and columns), a non-numeric response,
            a response outside the family's support (row named), non-finite
            design entries.
    """
    import formulaic

    try:
        parsed = formulaic.Formula(formula)
    except Exception as exc:  # formulaic's syntax errors (multi-line, coloured): one line
        raise CliError(f"cannot parse the formula {formula!r}: {_formula_error(exc)}") from exc
    if not (hasattr(parsed, "lhs") and hasattr(parsed, "rhs")):
        raise CliError(f"the formula {formula!r} needs a response: write it as 'y ~ x1 + x2'")
    lhs, rhs = parsed.lhs, parsed.rhs
    needed = sorted(str(v) for v in parsed.required_variables)
    missing = [v for v in needed if v not in df.columns]
    if trials is not None and trials not in df.columns:
        missing.append(trials)
    if missing:
        raise CliError(
            f"the model names column(s) {', '.join(map(repr, missing))} not in the data; "
            f"columns are: {', '.join(map(str, df.columns))}"
        )
    used = needed + ([trials] if trials is not None and trials not in needed else [])
    bad, report = missing_report(df, used)
    dropped = 0
    if report:
        if not dropna:
            raise CliError(f"{report}; pass --dropna to drop them")
        df = df.loc[~bad]
        dropped = int(bad.sum())
        if df.shape[0] == 0:
            raise CliError(f"{report}: none left after --dropna")

    response = str(lhs).strip()
    if response in df.columns:
        y = _numeric(df, response, "response")
    else:
        try:
            lhs_mm = formulaic.model_matrix(lhs, df, na_action="ignore")
        except Exception as exc:
            raise CliError(f"cannot evaluate the response {response!r}: {_formula_error(exc)}") from exc
        if lhs_mm.shape[1] != 1:
            raise CliError(
                f"the response {response!r} is not numeric: it expands to columns {list(lhs_mm.columns)}"
            )
        y = np.asarray(lhs_mm, dtype=np.float64).reshape(-1)
    n_trials = _numeric(df, trials, "trials column") if trials is not None else None
    _check_support(df, y, Family(family), n_trials, response)

    try:
        mm = formulaic.model_matrix(rhs, df, na_action="ignore")
    except Exception as exc:
        raise CliError(f"cannot build the design matrix of {formula!r}: {_formula_error(exc)}") from exc
    columns = [str(c) for c in mm.columns]
    if not columns:
        raise CliError(f"the formula {formula!r} has no terms on the right-hand side")
    X = np.asarray(mm, dtype=np.float64)
    finite = np.isfinite(X)
    if not finite.all():
        i, j = (int(v[0]) for v in np.nonzero(~finite))
        raise CliError(
            f"the design column {columns[j]!r} is {X[i, j]} at row {df.index[i]} (a transform outside "
            "its domain?); fix the data or the formula"
        )
    return Design(y=y, X=X, columns=columns, trials=n_trials, response=response, dropped=dropped)
