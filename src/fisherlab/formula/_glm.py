r"""``fisherlab.glm``: a generalized linear model from a formula and a table, fitted by maximum likelihood.

The table is a pandas DataFrame (or a dict of columns) in memory, or a table read in chunks (a
:class:`~fisherlab.data.TableSource`: ``fl.data.from_parquet(path)``, ``fl.data.from_csv(path)``,
``fl.data.frames(factory)``, or a dask DataFrame read one partition at a time), whose design is
fixed by a first pass and whose fit streams (:mod:`fisherlab.formula._streamed`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError, InvalidDataError
from .._options import GLMDispersion, Missing, choose
from .._precision import float64
from ..data import Chunks, TableSource
from ..data._tables import DaskTable, is_dask_frame
from ..models import GLMFit, glm as glm_model
from ._design import build_design, new_rows
from ._fit import design_names, fit_design
from ._streamed import glm_table

__all__ = ["GLMDispersion", "Missing", "glm"]


_ArrayOrColumn: TypeAlias = "str | np.ndarray | pd.Series | list[float] | None"


def _frame(data: Any) -> pd.DataFrame:
    """``data`` as a DataFrame: a DataFrame as given, a dict of equally long columns."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        lengths = {str(k): int(np.size(v)) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidDataError(f"the columns of data have different lengths: {lengths}")
        return pd.DataFrame(dict(data))
    if isinstance(data, Chunks):
        raise FisherlabArgumentError(
            "glm(data=...) needs named columns, and a source of (y, x) chunks has none: pass a table "
            "source (fl.data.from_parquet(path) without y=, fl.data.from_csv(path), "
            "fl.data.frames(factory)), or fit the design source with fisherlab.models.fit_glm"
        )
    raise FisherlabArgumentError(
        "glm(data=...) takes a pandas DataFrame or a dict of columns, a table source (fl.data.from_parquet, "
        f"fl.data.from_csv, fl.data.frames) or a dask DataFrame, got {type(data).__name__}"
    )


def _column(df: pd.DataFrame, value: _ArrayOrColumn, what: str) -> tuple[pd.DataFrame, str | None]:
    """``value`` as a column of ``df``: its name, or an array added under the name ``what``."""
    if value is None:
        return df, None
    if isinstance(value, str):
        return df, value
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != df.shape[0]:
        raise InvalidDataError(
            f"{what}= must be a column name or an array of one value per row of data ({df.shape[0]}), "
            f"got shape {arr.shape}"
        )
    name = what
    while name in df.columns:
        name = f"({name})"
    out = df.copy(deep=False)
    out[name] = arr
    return out, name


@float64
def glm(
    formula: str,
    data: Any,
    family: str,
    link: str | None = None,
    weights: _ArrayOrColumn = None,
    offset: _ArrayOrColumn = None,
    exposure: _ArrayOrColumn = None,
    dispersion: str = "ml",
    *,
    missing: str = "raise",
    allow_code: bool = False,
) -> GLMFit:
    r"""Fit a generalized linear model given by a Wilkinson formula, as R's ``glm(formula, family, data)``.

    .. math:: \eta_i = x_i^\top\beta + o_i,\qquad \mu_i = g^{-1}(\eta_i),\qquad
              \ell(\theta) = \sum_{i=1}^N \log p(y_i \mid \mu_i, \cdot)

    (the total log-likelihood, no 1/N), with :math:`x_i` the row of the design matrix that
    formulaic builds from ``formula`` on ``data`` (``C(g)`` and text columns are treatment
    coded, ``a:b`` interactions, ``np.log(x)`` and ``I(x**2)`` transforms, ``- 1`` drops the
    intercept), :math:`o_i` the offset plus :math:`\log` of the exposure, :math:`g` the link
    and the family's density as in :func:`fisherlab.models.glm`. The fit is
    :func:`fisherlab.models.fit_glm` from R's starting values: a negative binomial whose data
    show no overdispersion ends on its boundary :math:`\alpha = 0` (the Poisson fit, said in
    ``res.notes``).

    The result's :attr:`~fisherlab.FitResult.names` are the design-matrix columns in formula
    order (``"Intercept"``, ``"x1"``, ``"C(group)[T.b]"``) and the family's extra parameter
    (``sigma``, ``shape``, ``alpha``; see :func:`fisherlab.models.glm`). The parameters are the
    pytree ``{"beta": (p,), extra: ()}``, flattened in the sorted order of its keys: ``sigma``
    and ``shape`` come after the coefficients, the negative binomial's ``alpha`` before them.

    Before anything is evaluated, the formula's terms must pass an allow-list (column names,
    numbers, operators, elementwise ``np.<function>`` and formulaic's transforms), since
    formulaic runs them as Python: ``I(np.f2py.os.system('...'))`` is refused. The data are
    checked as the ``fisherlab fit`` command checks them, with the same messages: columns
    that do not exist, missing values, numeric columns with typos (text in a column used as
    a number), a response outside the family's support, design columns too large for
    float64 — each naming the column and the row.

    Args:
        formula: a two-sided formula, ``"y ~ x1 + np.log(x2) + C(group)"``.
        data: a pandas DataFrame or a dict of equally long columns (rows are named by the
            DataFrame's index in messages); or a table read in chunks, for data beyond memory: a
            :class:`~fisherlab.data.TableSource` (``fl.data.from_parquet(path)``,
            ``fl.data.from_csv(path)``, ``fl.data.frames(factory)``) or a dask DataFrame (read
            one partition at a time). Then ``weights``, ``offset`` and ``exposure`` are column
            names; a first pass reads only the columns the model uses, checks every chunk as a
            DataFrame is checked (errors name the chunk and the source's row) and fixes the
            design (all levels of every categorical column, the state of ``center``/``scale``;
            :mod:`fisherlab.formula._streamed`), and the fit, its covariances, deviances and
            dispersion stream over the table, equal to the in-memory results to rounding.
            The result's ``table`` and ``rows`` are ``None``.
        family: ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``,
            ``"inverse_gaussian"`` or ``"negative_binomial"`` (R's spellings work too).
        link: ``None`` for R's default link of the family, or one R allows for it.
        weights: R's prior weights, a column name or one value per row. For the binomial
            they are the numbers of trials and ``y`` is the proportion of successes (R's
            ``glm(y ~ x, binomial, weights = n)``; ``y`` times the weight must be a whole
            number). For gaussian, Gamma and inverse Gaussian they are positive and divide
            the dispersion of their row, :math:`\phi/w_i` (R's ``glm(..., weights = w)``,
            statsmodels' ``var_weights``): the coefficients are R's, the deviance and
            Pearson dispersion are weighted, and the log-likelihood is that of
            :math:`y_i \sim` family(:math:`\mu_i, \phi/w_i`), as R's ``logLik``. For the
            Poisson and negative binomial row :math:`i`'s log-likelihood counts :math:`w_i`
            times (R's ``glm(..., poisson, weights = w)`` and ``MASS::glm.nb``, statsmodels'
            ``var_weights``; integer weights are frequency weights; :class:`fisherlab.dist.Weighted`):
            R's estimates, standard errors, ``logLik``, AIC and deviances; the sandwich has
            the weighted scores :math:`w_i s_i`; :func:`~fisherlab.check` refuses such a fit
            (a weighted log-likelihood does not satisfy the information-matrix equality).
        offset: a known term added to the linear predictor: a column name or one value per row.
        exposure: positive exposures (a column name or one value per row); ``log(exposure)`` is
            added to the offset (statsmodels' ``exposure=``).
        dispersion: ``"ml"`` (every covariance kind of the maximum-likelihood fit, z tests) or
            ``"r"`` (R's ``summary.glm``: the same fit, with the coefficients' covariance
            :math:`\hat\phi(X^\top W X)^{-1}` in ``res.cov()``, Pearson :math:`\hat\phi` for
            gaussian, Gamma and inverse Gaussian, and t tests and t intervals on :math:`N-p`
            degrees of freedom for those families; :class:`~fisherlab.models.GLMFit`).
        missing: ``"raise"`` (rows with a missing value in a column the model uses are an
            error naming the columns) or ``"drop"`` (those rows are dropped; ``res.notes``
            says how many).
        allow_code: run the formula's terms as arbitrary Python (formulaic's own behaviour),
            without the allow-list; only for formulas you trust.

    Returns:
        A :class:`~fisherlab.models.GLMFit` (a :class:`~fisherlab.FitResult`), named by the
        design columns; ``res.predict(new_df)`` builds the design of new rows from the formula
        (same factor levels and transforms), ``res.df_resid``, ``res.null_deviance`` and
        ``res.dispersion_r`` are R's.

    Raises:
        ModelError: unknown family or link, or a link the family does not take.
        InvalidOptionError: a bad ``dispersion`` or ``missing``.
        FormulaError: a formula that cannot be parsed or evaluated, or has no response.
        UnsafeFormulaError: a term outside the allow-list (term and token named).
        InvalidDataError: a column not in the data, missing values, a numeric column with
            typos, a response outside the family's support, non-finite or too large design
            entries, a bad offset, exposure or weight (column and row named).
        FisherlabArgumentError: ``data`` of another type (a source of ``(y, x)`` chunks has no
            column names); arrays as ``weights``, ``offset`` or ``exposure`` of a table source.
        EstimateAtInfinityError, NotConvergedError, SingularInformationError: from the fit,
            naming the design columns.

    Examples:
        Poisson regression with a factor; R: ``glm(y ~ x + C(g), poisson, data)``.

        >>> import fisherlab as fl, numpy as np, pandas as pd
        >>> data = pd.DataFrame({"y": [1, 0, 3, 2, 5, 4, 7, 9], "x": np.arange(8.0),
        ...                      "g": ["a", "b"] * 4})
        >>> res = fl.glm("y ~ x + C(g)", data, family="poisson")
        >>> res.names
        ['Intercept', 'x', 'C(g)[T.b]']
        >>> res.params["beta"].round(4).tolist()
        [0.0012, 0.3605, -0.425]
        >>> fl.glm("y ~ I(np.f2py.os.system('ls'))", data, family="poisson")
        Traceback (most recent call last):
        ...
        fisherlab._errors.UnsafeFormulaError: the formula term ... calls 'np.f2py.os.system', ...
    """
    model = glm_model(family, link)  # unknown family / link: ModelError before the data are read
    choice = choose(GLMDispersion, dispersion, "dispersion")
    drop = choose(Missing, missing, "missing") is Missing.DROP
    if isinstance(data, TableSource) or is_dask_frame(data):
        table = data if isinstance(data, TableSource) else DaskTable(data)
        for what, value in (("weights", weights), ("offset", offset), ("exposure", exposure)):
            if value is not None and not isinstance(value, str):
                raise FisherlabArgumentError(
                    f"glm: with a table source as data, {what}= names a column of the table, got "
                    f"{type(value).__name__}"
                )
        return glm_table(
            model,
            table,
            formula,
            choice.value,
            weights=weights if isinstance(weights, str) else None,
            offset=offset if isinstance(offset, str) else None,
            exposure=exposure if isinstance(exposure, str) else None,
            dropna=drop,
            allow_code=allow_code,
        )
    df = _frame(data)
    df, weights_col = _column(df, weights, "weights")
    df, offset_col = _column(df, offset, "offset")
    df, exposure_col = _column(df, exposure, "exposure")
    design = build_design(
        df,
        formula,
        family=model.family,
        weights=weights_col,
        offset=offset_col,
        exposure=exposure_col,
        dropna=drop,
        allow_code=allow_code,
    )
    res = fit_design(model, design).with_dispersion(choice.value)
    if design.dropped:
        res.notes.append(
            f"{design.dropped} of {design.dropped + len(design.y)} rows with missing values dropped"
        )
    named = res.rename(design_names(res.names, design.columns))
    assert isinstance(named, GLMFit)
    named.newdata_design = functools.partial(new_rows, design)
    named.table, named.rows = df, design.rows
    return named
