r"""Candidate points of an experiment design, from a formula: the design-matrix rows of covariate values.

A design for a GLM given by a formula (``y ~ x + I(x**2)``) chooses among *covariate* values
(``x = -1, -0.99, ..., 1``), while the model's information is a function of the *design-matrix*
row :math:`(1, x, x^2)`. :func:`design_candidates` applies the formula's right-hand side to a
table of candidate covariate values, with the checks a user of a design needs: the columns the
formula reads must be there, once each, and hold finite values (a missing or infinite cell is
named by row and column), and the transforms must give finite entries. Rows whose design rows
repeat an earlier one are dropped (they are the same experiment). The columns are built

- as the fit built them, when a fit from :func:`fisherlab.glm` is given (the same factor levels,
  reference levels and transform states: the design is for that model's coefficients);
- else from the candidates themselves (formulaic's ``model_matrix`` on the right-hand side).

:meth:`Candidates.model` turns a GLM into a model whose rows are the candidates' *covariate*
coordinates, for designs whose points move continuously within bounds
(``fl.design.optimal(..., bounds=...)``): the formula, evaluated by formulaic on the host, sits
inside the model function as a JAX callback whose derivative in the covariates is taken by
central differences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError, FormulaError, InvalidDataError
from .._precision import float64
from ..model import Model
from ._columns import check_numeric_columns
from ._design import _formula_error, guarded_terms
from ._spelling import PYTHON, Spelling

if TYPE_CHECKING:
    from ..models import GLM, GLMFit

__all__ = ["Candidates", "design_candidates"]

# Relative step of the central differences of the design rows in the covariates (Candidates.model).
_STEP = 1e-6


@dataclasses.dataclass(frozen=True)
class Candidates:
    """Candidate points of a design: covariate rows and the design-matrix rows the formula makes of them.

    Attributes:
        table: the candidate rows kept (those whose design row is new), with their index in the
            table given (the row a message names).
        X: the design-matrix rows, float64 ``(N, p)``, one per row of :attr:`table`.
        columns: the design-matrix column names (``"Intercept"``, ``"x"``, ``"I(x ** 2)"``, ...).
        variables: the candidate columns the formula reads, sorted.
        dropped: rows of the table given whose design row repeats an earlier row's (not kept).
        build: the design-matrix rows of any table of :attr:`variables`, built as :attr:`X` was.
    """

    table: pd.DataFrame
    X: np.ndarray
    columns: list[str]
    variables: list[str]
    dropped: int
    build: Callable[[pd.DataFrame], np.ndarray]

    def model(self, glm: GLM, coordinates: Sequence[str], fixed: Mapping[str, Any] | None = None) -> Model:
        r"""The GLM ``glm`` as a model whose rows are covariate values, ``(N, len(coordinates))``.

        Row :math:`i` holds the values of ``coordinates`` (numeric candidate columns); the other
        variables are held at ``fixed``. The model function maps a row :math:`u` to its design row
        :math:`X(u)` (:attr:`build`, run on the host by formulaic through ``jax.pure_callback``) and
        returns ``glm``'s distribution at :math:`\eta = X(u)^\top\beta`: its derivatives in the
        parameters are JAX's (exact), and those in the covariates, which a design moving its points
        within bounds needs, use :math:`\partial X/\partial u` by central differences with steps
        :math:`10^{-6}\max(1, |u_k|)` (one-sided where a transform leaves its domain).

        Raises:
            FisherlabArgumentError: a coordinate or fixed name that is not one of :attr:`variables`,
                or a variable that is neither.
        """
        coords, held = [str(c) for c in coordinates], dict(fixed or {})
        unknown = [c for c in [*coords, *held] if c not in self.variables]
        left = [v for v in self.variables if v not in coords and v not in held]
        if unknown or left or not coords or len(set(coords)) != len(coords):
            raise FisherlabArgumentError(
                f"Candidates.model needs each of the variables {self.variables} once, as a coordinate or "
                f"held fixed; got coordinates {coords} and fixed {sorted(held)}"
            )
        rows_of = _design_rows(self.build, coords, held, len(self.columns))
        fn = glm.fn

        def covariate_rows(params: Any, x: Any) -> Any:
            return fn(params, rows_of(x))

        return Model(covariate_rows, derivatives="autodiff")


def _design_rows(
    build: Callable[[pd.DataFrame], np.ndarray], coords: list[str], held: dict[str, Any], p: int
) -> Callable[[Any], Any]:
    r""":math:`u \mapsto X(u)` as a JAX function (host callback) with a finite-difference VJP."""
    import jax
    import jax.numpy as jnp

    d = len(coords)

    def table(rows: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(rows, columns=coords)
        for name, value in held.items():
            out[name] = value
        return out

    def host(u: Any) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        return build(table(u.reshape(-1, d))).reshape((*u.shape[:-1], p))

    def host_jacobian(u: Any) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        rows = u.reshape(-1, d)
        at = build(table(rows))
        out = np.empty((rows.shape[0], p, d))
        for k in range(d):
            h = (_STEP * np.maximum(1.0, np.abs(rows[:, k])))[:, None]
            up, down = rows.copy(), rows.copy()
            up[:, k] += h[:, 0]
            down[:, k] -= h[:, 0]
            with np.errstate(all="ignore"):
                f_up, f_down = build(table(up)), build(table(down))
                central = (f_up - f_down) / (2 * h)
                forward, backward = (f_up - at) / h, (at - f_down) / h
            out[:, :, k] = np.where(
                np.isfinite(central), central, np.where(np.isfinite(forward), forward, backward)
            )
        return out.reshape((*u.shape[:-1], p, d))

    @jax.custom_vjp
    def rows_of(u: Any) -> Any:
        shape = jax.ShapeDtypeStruct((*jnp.shape(u)[:-1], p), jnp.float64)
        return jax.pure_callback(host, shape, u, vmap_method="expand_dims")

    def forward(u: Any) -> tuple[Any, Any]:
        return rows_of(u), u

    def backward(u: Any, g: Any) -> tuple[Any]:
        shape = jax.ShapeDtypeStruct((*jnp.shape(u)[:-1], p, d), jnp.float64)
        jac = jax.pure_callback(host_jacobian, shape, u, vmap_method="expand_dims")
        return (jnp.einsum("...p,...pd->...d", g, jac),)

    rows_of.defvjp(forward, backward)

    def design_rows(x: Any) -> Any:
        u = jnp.asarray(x, dtype=jnp.float64)
        return rows_of(u.reshape((-1, d)) if u.ndim < 2 else u)

    return design_rows


def _rhs(formula: str, allow_code: bool, spelling: Spelling) -> tuple[Any, list[tuple[str, str]], list[str]]:
    """The right-hand side of ``formula`` (one- or two-sided), its factors, and the columns it reads."""
    import formulaic

    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError(f"the formula must be a non-empty string such as 'y ~ x', got {formula!r:.60}")
    try:
        parsed = formulaic.Formula(formula)
    except Exception as exc:  # formulaic's syntax errors (multi-line, coloured): one line
        raise FormulaError(f"cannot parse the formula {formula!r}: {_formula_error(exc)}") from exc
    rhs = parsed.rhs if hasattr(parsed, "rhs") else parsed
    factors, needed = guarded_terms(rhs, allow_code, spelling)
    return rhs, factors, needed


def _check_cells(df: pd.DataFrame, variables: list[str]) -> None:
    """Every cell of ``variables`` present, and finite where numeric; else the first bad cell named."""
    for name in variables:
        col = df[name]
        missing = col.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InvalidDataError(
                f"candidate row {df.index[i]}, column {name!r} is missing (NaN): every candidate needs a "
                f"value in each column the formula reads ({int(missing.sum())} missing in {name!r})"
            )
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidDataError(
                    f"candidate row {df.index[i]}, column {name!r} is {values[i]}: candidates must be "
                    f"finite ({int(bad.sum())} non-finite in {name!r})"
                )


@float64
def design_candidates(
    formula: str,
    candidates: pd.DataFrame,
    *,
    fit: GLMFit | None = None,
    allow_code: bool = False,
    spelling: Spelling = PYTHON,
) -> Candidates:
    r"""The design-matrix rows that ``formula``'s right-hand side makes of candidate covariate rows.

    With ``fit`` (a :class:`~fisherlab.models.GLMFit` from :func:`fisherlab.glm` of the same
    formula) the columns are built as the fit built them (its ``newdata_design``), so the rows
    pair with its coefficients; without it, formulaic learns the factor levels and transform
    states from ``candidates``. The response, if the formula has one, is not read. Rows whose
    design row equals an earlier row's are dropped (:attr:`Candidates.dropped`).

    Args:
        formula: ``"y ~ x + I(x**2)"`` or ``"~ x + I(x**2)"``.
        candidates: a table with (at least) the columns the right-hand side reads.
        fit: a fit of ``formula`` whose design the candidates should follow, or ``None``.
        allow_code: run the formula's terms as arbitrary Python (no allow-list).
        spelling: how the face calling spells the options its messages suggest.

    Returns:
        :class:`Candidates`.

    Raises:
        FormulaError: a formula that cannot be parsed or evaluated on the candidates, or that has
            no terms.
        UnsafeFormulaError: a term outside the allow-list (with the hint how to allow code).
        InvalidDataError: a column the formula reads that the candidates lack (named, with the
            columns there), a name held by several columns, a missing (NaN) or infinite cell (row
            and column named), a numeric column with typos, a design entry that is not finite
            (row and design column named), or candidates that do not fit the ``fit``'s design (a
            level it did not see).
        FisherlabArgumentError: ``candidates`` not a DataFrame, or a ``fit`` without a formula design.

    Examples:
        >>> import pandas as pd
        >>> from fisherlab.formula import design_candidates
        >>> c = design_candidates("y ~ x + I(x**2)", pd.DataFrame({"x": [-1.0, 0.0, 1.0, 1.0]}))
        >>> c.columns, c.X.tolist(), c.dropped
        (['Intercept', 'x', 'I(x ** 2)'], [[1.0, -1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], 1)
    """
    if not isinstance(candidates, pd.DataFrame):
        raise FisherlabArgumentError(
            f"candidates must be a pandas DataFrame of covariate values, got {type(candidates).__name__}"
        )
    if fit is not None and getattr(fit, "newdata_design", None) is None:
        raise FisherlabArgumentError(
            "fit= must be a fit of the formula from fisherlab.glm on a table in memory (it builds the "
            "design of new rows)"
        )
    rhs, factors, variables = _rhs(formula, allow_code, spelling)
    names = [str(c) for c in candidates.columns]
    missing = [v for v in variables if v not in names]
    if missing:
        raise InvalidDataError(
            f"the candidates lack the column(s) {', '.join(map(repr, missing))} that the formula {formula!r} "
            f"reads; their columns are: {', '.join(names) or '(none)'}"
        )
    repeated = sorted({v for v in variables if names.count(v) > 1})
    if repeated:
        raise InvalidDataError(
            f"the candidates have several columns named {', '.join(map(repr, repeated))}; rename them so "
            "that each name is one column"
        )
    if candidates.shape[0] == 0:
        raise InvalidDataError("the candidates have no rows: a design needs at least one candidate point")
    _check_cells(candidates, variables)
    check_numeric_columns(candidates, factors, variables)

    import formulaic

    if fit is not None:
        newdata = fit.newdata_design
        assert newdata is not None

        def build(table: pd.DataFrame) -> np.ndarray:
            return np.asarray(newdata(table)["X"], dtype=np.float64)

        columns = [str(fit.names[int(i)]) for i in fit.beta_index]
    else:
        try:
            with np.errstate(all="ignore"):  # non-finite entries are named below, by row
                mm = formulaic.model_matrix(rhs, candidates, na_action="ignore", context={})
        except Exception as exc:
            raise FormulaError(
                f"cannot build the design matrix of {formula!r} on the candidates: {_formula_error(exc)}"
            ) from exc
        spec, columns = mm.model_spec, [str(c) for c in mm.columns]

        def build(table: pd.DataFrame) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.asarray(spec.get_model_matrix(table, na_action="ignore"), dtype=np.float64)

    try:
        X = build(candidates)
    except (FormulaError, InvalidDataError):
        raise
    except Exception as exc:
        raise FormulaError(
            f"cannot build the design matrix of {formula!r} on the candidates: {_formula_error(exc)}"
        ) from exc
    if X.ndim != 2 or X.shape[1] == 0:
        raise FormulaError(f"the formula {formula!r} has no terms on the right-hand side")
    finite = np.isfinite(X)
    if not finite.all():
        i, j = (int(v[0]) for v in np.nonzero(~finite))
        raise InvalidDataError(
            f"the design column {columns[j]!r} is {X[i, j]} at candidate row {candidates.index[i]} "
            "(a transform outside its domain?); drop the candidate or change the formula"
        )
    _, first = np.unique(X, axis=0, return_index=True)
    keep = np.sort(first)
    return Candidates(
        table=candidates.iloc[keep],
        X=X[keep],
        columns=columns,
        variables=variables,
        dropped=int(X.shape[0] - keep.size),
        build=build,
    )
