r"""From a data table and a Wilkinson formula to the response and design matrix of a GLM.

The formula is parsed and materialised by formulaic, so categorical terms
(``C(g)``, string columns), interactions (``a:b``, ``a*b``), transforms
(``np.log(x)``, ``I(x**2)``) and the intercept (``- 1`` drops it) work as
formulaic documents. Before formulaic evaluates anything, the Python inside the
terms is checked against an allow-list (:mod:`._guard`; ``allow_code`` skips it)
and the columns the formula uses as numbers are checked for typos (:mod:`._columns`).
The response is checked against the support in the family's record
(:data:`fisherlab.models.FAMILIES`) before any fitting: 0/1 for a binomial without
trials, counts for Poisson and the negative binomial, positive values for Gamma and
the inverse Gaussian. Design entries too large for the fit's float64 arithmetic are
refused (:data:`MAX_SUM_OF_SQUARES`). The offset :math:`o_i` of
:math:`\eta_i = x_i^\top\beta + o_i` is the sum of the ``offset`` column and
:math:`\log` of the ``exposure`` column (which must be positive).

Both faces build their designs here, so ``fisherlab.glm`` and ``fisherlab fit -f`` refuse
the same data with the same message; only the option a message suggests is spelled
for each face (:class:`~fisherlab.formula._spelling.Spelling`).
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FormulaError, InvalidDataError, MethodUnavailableError, UnsafeFormulaError
from ..models import FAMILIES, Family, takes_weights
from ._columns import check_numeric_columns, non_numeric, non_numeric_rows
from ._guard import check_formula, formula_factors
from ._spelling import PYTHON, Spelling

__all__ = [
    "MAX_SUM_OF_SQUARES",
    "Design",
    "allow_code_hint",
    "build_design",
    "missing_report",
    "new_rows",
    "parse_formula",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

MAX_SUM_OF_SQUARES = 1e300
"""Largest sum of squares of a design column (or the response): the fit forms X'WX and y'y in
float64 (largest 1.8e308), and the margin of 1e8 leaves room for the weights and the sums over
columns. Entries of 1e150 in a few rows, or 1e308 in one, are refused before fitting."""


def allow_code_hint(spelling: Spelling) -> str:
    """What a formula may use, and how to lift the allow-list, in ``spelling``'s option names."""
    return (
        "formulas may use column names, numbers, arithmetic, comparisons, elementwise np.<function> "
        "(np.log, np.exp, np.sqrt, ...) and formulaic's C, I, Q, center, scale, standardize, poly, bs, "
        f"cr, cs, cc, lag, hashed (see {spelling.help}); pass {spelling.allow_code} to run the formula "
        "as Python code (only for formulas you trust)"
    )


@dataclasses.dataclass(frozen=True)
class Design:
    """The response, design matrix, trials and offset, ready for ``fl.models.glm``.

    Attributes:
        y: response, float64 ``(N,)`` (binomial with trials: the number of successes).
        X: design matrix, float64 ``(N, p)``.
        columns: the design-matrix column names (``"Intercept"``, ``"x1"``, ``"C(g)[T.b]"``, ...).
        trials: binomial trials ``(N,)`` or ``None``.
        response: the response's text in the formula.
        dropped: number of rows dropped for missing values.
        offset: the offset ``(N,)`` added to the linear predictor, or ``None``.
        weights: R's prior weights ``(N,)`` (row i has dispersion phi/w_i in a gaussian, Gamma
            or inverse Gaussian model; its log-likelihood counts w_i times in a Poisson or
            negative binomial one), or ``None``.
        spec: formulaic's model spec of the right-hand side (its terms, factor levels and
            transform states), which builds the same columns for new rows (:func:`new_rows`).
        offset_columns: the columns the offset was read from: ``(offset, exposure)``, each a
            name or ``None``.
        rows: the positions (0-based) in the table of the rows fitted, in order: every row, or
            those left after dropping missing values.
    """

    y: np.ndarray
    X: np.ndarray
    columns: list[str]
    trials: np.ndarray | None
    response: str
    dropped: int
    offset: np.ndarray | None = None
    weights: np.ndarray | None = None
    spec: Any = None
    offset_columns: tuple[str | None, str | None] = (None, None)
    rows: np.ndarray | None = None

    @property
    def x(self) -> object:
        """The covariates as ``fl.models.glm`` takes them: ``X``, or a dict with trials and offset."""
        if self.trials is None and self.offset is None and self.weights is None:
            return self.X
        out: dict[str, np.ndarray] = {"X": self.X}
        if self.trials is not None:
            out["trials"] = self.trials
        if self.offset is not None:
            out["offset"] = self.offset
        if self.weights is not None:
            out["weights"] = self.weights
        return out


def _formula_error(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).replace("⧛", "").replace("⧚", "")
    return " ".join(text.split())


def _row(df: pd.DataFrame, mask: np.ndarray) -> object:
    return df.index[int(np.flatnonzero(mask)[0])]


def missing_report(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
    """Rows with a missing value in ``columns``, and a one-line description ("" if none).

    Args:
        df: the table; rows are named by its index.
        columns: the columns the model reads.

    Returns:
        The mask of rows with a missing value, and ``"2 of 60 rows have missing values (in x (2);
        first at row 3)"`` (or ``""``).
    """
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
        bad = non_numeric_rows(col)
        example = f": {non_numeric(df, name, bad)}" if bad.any() else f" (dtype {col.dtype})"
        raise InvalidDataError(f"the {what} {name!r} is not numeric{example}; it must hold numbers")
    return col.to_numpy(dtype=np.float64)


def _check_magnitude(df: pd.DataFrame, values: np.ndarray, names: list[str], what: str) -> None:
    """Refuse a column of ``values`` (N, k) whose sum of squares exceeds :data:`MAX_SUM_OF_SQUARES`.

    Computed as ``max|v|² · Σ (v / max|v|)²`` in logarithms, so the check itself cannot overflow.
    """
    amax = np.max(np.abs(values), axis=0)
    scale = np.where(amax > 0, amax, 1.0)
    log_ss = 2 * np.log10(scale) + np.log10(np.maximum(np.sum((values / scale) ** 2, axis=0), 1e-300))
    big = np.flatnonzero(log_ss > np.log10(MAX_SUM_OF_SQUARES))
    if big.size:
        j = int(big[0])
        i = int(np.argmax(np.abs(values[:, j])))
        name = names[j]
        example = f" or I({name} / 1e{int(np.log10(amax[j]))}) in the formula" if name.isidentifier() else ""
        raise InvalidDataError(
            f"the {what} {name!r} is {values[i, j]:.6g} at row {df.index[i]}: too large for the fit's "
            f"float64 arithmetic (the sum of squares of a column must stay below "
            f"{MAX_SUM_OF_SQUARES:.0e}); fix the value if it is an error in the data, or rescale the "
            f"column (other units{example})"
        )


def _check_support(
    df: pd.DataFrame, y: np.ndarray, family: Family, trials: np.ndarray | None, name: str, spelling: Spelling
) -> None:
    """Finite ``y`` and trials, then the family record's support of ``y`` (row named, rows counted)."""

    def fail(mask: np.ndarray, need: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise InvalidDataError(
                f"response {name!r} at row {df.index[i]} is {y[i]:g}: the {family.value} family needs {need} "
                f"({int(mask.sum())} rows violate it)"
            )

    record = FAMILIES[family]
    fail(~np.isfinite(y), "finite values")
    if trials is not None:
        _check_trials(df, trials, family)
    bad, need = record.support(y, trials if record.trials is not None else None)
    if record.trials is not None and trials is None:
        need += f" (or successes with {spelling.trials})"
    fail(bad, need)


def _check_trials(df: pd.DataFrame, trials: np.ndarray, family: Family, what: str = "trials") -> None:
    """The family record's check of the binomial trials (row named); ``what`` names them."""
    check = FAMILIES[family].trials
    if check is None:
        return
    bad_t, need_t = check(trials)
    if bad_t.any():
        i = int(np.flatnonzero(bad_t)[0])
        raise InvalidDataError(f"{what} at row {df.index[i]} is {trials[i]:g}: trials must be {need_t}")


def _successes(df: pd.DataFrame, y: np.ndarray, weights: np.ndarray, name: str) -> np.ndarray:
    """R's binomial with prior weights: ``y`` proportions in [0, 1], successes ``y·w`` whole numbers."""
    outside = ~np.isfinite(y) | (y < 0) | (y > 1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidDataError(
            f"response {name!r} at row {df.index[i]} is {y[i]:g}: with weights (the trials), the binomial "
            f"response is the proportion of successes, between 0 and 1 ({int(outside.sum())} rows violate it)"
        )
    successes = y * weights
    whole = np.round(successes)
    off = np.abs(successes - whole) > 1e-8 * np.maximum(1.0, np.abs(weights))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise InvalidDataError(
            f"response {name!r} at row {df.index[i]} is {y[i]:g} with weight {weights[i]:g}: "
            f"{successes[i]:g} successes; the proportion times the weight (the trials) must be a whole "
            f"number ({int(off.sum())} rows violate it)"
        )
    return whole


def _prior_weights(df: pd.DataFrame, column: str, family: Family) -> np.ndarray:
    """R's prior weights (the binomial's are its trials, read elsewhere): finite and positive (row named).

    They divide the dispersion of a gaussian, Gamma or inverse Gaussian row and multiply the
    log-likelihood of a Poisson or negative-binomial row (``fisherlab.models.glm``).
    """
    if not takes_weights(family):
        raise MethodUnavailableError(f"weights for the {family.value} family are not supported")
    return _positive(
        df, column, "weights column", "the weight", "prior weights", "", "; drop rows of weight 0"
    )


def _positive(
    df: pd.DataFrame, column: str, what: str, label: str, rule: str, why: str, hint: str
) -> np.ndarray:
    """The numeric ``column``, positive and finite; else the first bad row named, the rows counted."""
    values = _numeric(df, column, what)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidDataError(
            f"{label} {column!r} at row {df.index[i]} is {values[i]:g}: {rule} must be positive and "
            f"finite{why} ({int(bad.sum())} rows violate it){hint}"
        )
    return values


def _offset(df: pd.DataFrame, offset: str | None, exposure: str | None) -> np.ndarray | None:
    """``offset + log(exposure)`` from their columns (finite; exposure positive), or ``None``."""
    total: np.ndarray | None = None
    if offset is not None:
        total = _numeric(df, offset, "offset")
        bad = ~np.isfinite(total)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidDataError(
                f"the offset {offset!r} at row {df.index[i]} is {total[i]}: it must be finite"
            )
    if exposure is not None:
        e = _positive(
            df, exposure, "exposure", "the exposure", "exposures", " (the offset is log(exposure))", ""
        )
        total = np.log(e) if total is None else total + np.log(e)
    return total


def parse_formula(
    formula: str, *, allow_code: bool = False, spelling: Spelling = PYTHON
) -> tuple[Any, list[tuple[str, str]], list[str]]:
    """Parse a two-sided ``formula`` and pass its terms through the allow-list, reading no data.

    Args:
        formula: ``"y ~ x1 + x2"``.
        allow_code: skip the allow-list (:func:`~fisherlab.formula.check_formula`).
        spelling: how the face calling spells the options its messages suggest.

    Returns:
        formulaic's parsed ``Formula`` (``.lhs``, ``.rhs``), its factors
        (:func:`~fisherlab.formula.formula_factors`) and the sorted names of the columns it reads.

    Raises:
        FormulaError: a formula that cannot be parsed, or has no response.
        UnsafeFormulaError: a term outside the allowed Python.
    """
    import formulaic

    try:
        parsed = formulaic.Formula(formula)
    except Exception as exc:  # formulaic's syntax errors (multi-line, coloured): one line
        raise FormulaError(f"cannot parse the formula {formula!r}: {_formula_error(exc)}") from exc
    if not (hasattr(parsed, "lhs") and hasattr(parsed, "rhs")):
        raise FormulaError(f"the formula {formula!r} needs a response: write it as 'y ~ x1 + x2'")
    factors, needed = guarded_terms(parsed, allow_code, spelling)
    return parsed, factors, needed


def guarded_terms(
    terms: Any, allow_code: bool, spelling: Spelling
) -> tuple[list[tuple[str, str]], list[str]]:
    """The factors of parsed ``terms`` (a formula or one side), through the allow-list unless
    ``allow_code``, and the sorted names of the columns they read.

    Raises:
        UnsafeFormulaError: a term outside the allowed Python (the option that lifts it is named).
    """
    factors = formula_factors(terms)
    if not allow_code:  # first: a refused term is named as such, whatever else is wrong
        try:
            # Names are left to the column check of the caller: every name a term reads is one of
            # the formula's required variables, so it must be a column (eval, open: refused there).
            check_formula(factors)
        except UnsafeFormulaError as exc:
            raise UnsafeFormulaError(
                f"{exc}; {allow_code_hint(spelling)}", term=exc.term, token=exc.token
            ) from exc
    # With allow_code a term may call Python's builtins (abs, round, ...): not columns.
    needed = sorted(str(v) for v in terms.required_variables if not (allow_code and str(v) in vars(builtins)))
    return factors, needed


def build_design(
    df: pd.DataFrame,
    formula: str,
    *,
    family: str | Family,
    trials: str | None = None,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    dropna: bool = False,
    allow_code: bool = False,
    spelling: Spelling = PYTHON,
    keep: tuple[str, ...] = (),
    spec: Any = None,
) -> Design:
    """Parse ``formula`` on ``df`` into a :class:`Design`, checking columns, missing values and support.

    Args:
        df: the data table.
        formula: a two-sided formula, ``"y ~ x1 + x2"``.
        family: the GLM family (a :class:`~fisherlab.models.Family` or its value), for the response
            checks of its record.
        trials: the column of binomial trials (``y`` is then the number of successes).
        weights: the column of R's prior weights: for the binomial the trials, with ``y`` the
            proportion of successes (R's ``glm(y ~ ., binomial, weights = n)``); for gaussian,
            Gamma and inverse Gaussian positive weights that divide the dispersion of their
            row (R's ``glm(..., weights = w)``, statsmodels' ``var_weights``); refused for
            the Poisson and negative binomial families.
        offset: the column of a known term added to the linear predictor.
        exposure: a column of positive exposures; ``log(exposure)`` is added to the offset.
        dropna: drop rows with a missing value in a column the model uses, instead of failing.
        allow_code: run the formula's terms as arbitrary Python (formulaic's own
            behaviour); by default they must pass :func:`~fisherlab.formula.check_formula`.
        spelling: how the face calling spells the options its messages suggest.
        keep: other columns the analysis uses with the model (the cluster labels of a
            cluster-robust covariance): they must exist, and their missing values count as the
            model's (an error, or the row dropped with ``dropna``), so that they stay aligned
            with the fitted rows (:attr:`Design.rows`).
        spec: formulaic's ``ModelSpec`` of the right-hand side to build the design with (its
            factor levels and transform states fixed, as for a chunk of a table read in chunks,
            :mod:`fisherlab.formula._streamed`); ``None`` learns them from ``df``.

    Returns:
        The :class:`Design`.

    Raises:
        FormulaError: a bad formula, no response, a term that cannot be evaluated.
        UnsafeFormulaError: a term outside the allowed Python (token named, with the hint
            how to allow code).
        InvalidDataError: a column that does not exist (named), missing values without
            ``dropna`` (count and columns), a numeric column with typos (column, rows and
            tokens named), a non-numeric response, a response outside the family's support
            (row named), non-finite design entries or entries too large for float64
            (:data:`MAX_SUM_OF_SQUARES`; column and row named), a bad offset or exposure.
    """
    family = Family(family)
    if trials is not None and weights is not None:
        raise InvalidDataError(
            "give the binomial trials once: as trials (y successes) or as weights (y proportions)"
        )
    binomial_weights = weights is not None and FAMILIES[family].trials is not None
    prior_weights = weights if weights is not None and not binomial_weights else None
    counts = trials if trials is not None else (weights if binomial_weights else None)
    parsed, factors, needed = parse_formula(formula, allow_code=allow_code, spelling=spelling)
    lhs, rhs = parsed.lhs, parsed.rhs
    extra = [c for c in (counts, prior_weights, offset, exposure, *keep) if c is not None]
    missing = [v for v in [*needed, *extra] if v not in df.columns]
    if missing:
        raise InvalidDataError(
            f"the model names column(s) {', '.join(map(repr, missing))} not in the data; "
            f"columns are: {', '.join(map(str, df.columns))}"
        )
    used = needed + [c for c in dict.fromkeys(extra) if c not in needed]
    duplicated = sorted({str(c) for c in used if int(np.sum(df.columns == c)) > 1})
    if duplicated:
        raise InvalidDataError(
            f"the data have several columns named {', '.join(map(repr, duplicated))}; rename them so "
            "that each name is one column"
        )
    bad, report = missing_report(df, used)
    dropped = 0
    rows = np.arange(df.shape[0])
    if report:
        if not dropna:
            raise InvalidDataError(f"{report}; pass {spelling.drop_missing} to drop them")
        df, rows = df.loc[~bad], np.flatnonzero(~bad)
        dropped = int(bad.sum())
        if df.shape[0] == 0:
            raise InvalidDataError(f"{report}: none left after {spelling.drop_missing}")

    import formulaic

    response = str(lhs).strip()
    check_numeric_columns(df, factors, used, responses={str(v) for v in lhs.required_variables})
    if response in df.columns:
        y = _numeric(df, response, "response")
    else:
        try:
            with np.errstate(all="ignore"):  # overflow / log(0) are reported below, once, by row
                lhs_mm = formulaic.model_matrix(lhs, df, na_action="ignore", context={})
        except Exception as exc:
            raise FormulaError(f"cannot evaluate the response {response!r}: {_formula_error(exc)}") from exc
        if lhs_mm.shape[1] != 1:
            raise InvalidDataError(
                f"the response {response!r} is not numeric: it expands to columns {list(lhs_mm.columns)}"
            )
        y = np.asarray(lhs_mm, dtype=np.float64).reshape(-1)
    n_trials = None
    if counts is not None:
        n_trials = _numeric(df, counts, "trials column" if trials is not None else "weights column")
    w = None
    if prior_weights is not None:
        w = _prior_weights(df, prior_weights, family)
    elif weights is not None:
        assert n_trials is not None
        _check_trials(df, n_trials, family, f"the weight {weights!r} (the trials)")
        y = _successes(df, y, n_trials, response)
    _check_support(df, y, family, n_trials, response, spelling)
    _check_magnitude(df, y[:, None], [response], "response")
    total_offset = _offset(df, offset, exposure)

    try:
        with np.errstate(all="ignore"):  # overflow / log(0) are reported below, once, by row
            if spec is None:
                mm = formulaic.model_matrix(rhs, df, na_action="ignore", context={})
            else:
                mm = spec.get_model_matrix(df, na_action="ignore")
    except Exception as exc:
        raise FormulaError(f"cannot build the design matrix of {formula!r}: {_formula_error(exc)}") from exc
    columns = [str(c) for c in mm.columns]
    if not columns:
        raise FormulaError(f"the formula {formula!r} has no terms on the right-hand side")
    X = np.asarray(mm, dtype=np.float64)
    finite = np.isfinite(X)
    if not finite.all():
        i, j = (int(v[0]) for v in np.nonzero(~finite))
        why = (
            "a transform overflowed or left its domain?"
            if np.isinf(X[i, j])
            else "a transform outside its domain?"
        )
        raise InvalidDataError(
            f"the design column {columns[j]!r} is {X[i, j]} at row {df.index[i]} ({why}); fix the data or "
            "the formula"
        )
    _check_magnitude(df, X, columns, "design column")
    return Design(
        y=y,
        X=X,
        columns=columns,
        trials=n_trials,
        response=response,
        dropped=dropped,
        offset=total_offset,
        weights=w,
        spec=mm.model_spec,
        offset_columns=(offset, exposure),
        rows=rows,
    )


def new_rows(design: Design, newdata: pd.DataFrame) -> dict[str, np.ndarray]:
    """The covariates of new rows as the fitted GLM takes them, built as ``design`` was built.

    formulaic's model spec replays the fit's terms on ``newdata``: the same factor levels and
    reference levels, the same transforms (``np.log(x)``, ``C(g)``), so that the design columns
    match the coefficients. The offset and exposure are read from the columns they came from.

    Raises:
        InvalidDataError: a column the formula (or the offset / exposure) needs is missing, a
            factor level not seen in the fit, a value that cannot be evaluated.
    """
    if not isinstance(newdata, pd.DataFrame):
        raise InvalidDataError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
    needed = sorted(str(v) for v in design.spec.required_variables)
    names = [c for c in design.offset_columns if c is not None]
    missing = [c for c in [*needed, *names] if c not in newdata.columns]
    if missing:
        raise InvalidDataError(
            f"predict: newdata lacks the column(s) {', '.join(map(repr, missing))} that the model uses; "
            f"it needs {', '.join(map(repr, [*needed, *names]))}"
        )
    try:
        with np.errstate(all="ignore"):  # non-finite design entries are named by predict, by row
            mm = design.spec.get_model_matrix(newdata, na_action="ignore")
    except Exception as exc:
        raise InvalidDataError(f"predict: cannot build the design of newdata: {_formula_error(exc)}") from exc
    X = np.asarray(mm, dtype=np.float64)
    if [str(c) for c in mm.columns] != design.columns:
        raise InvalidDataError(
            f"predict: newdata gives the design columns {[str(c) for c in mm.columns]}, the fit has "
            f"{design.columns}"
        )
    offset = np.zeros(X.shape[0]) if design.offset is None else _offset(newdata, *design.offset_columns)
    assert offset is not None
    return {"X": X, "offset": offset}
