"""Fitting for the ``fit``, ``check`` and ``demo`` commands: a GLM from a formula, or a Python model.

The options are validated before the data are read (an unknown family or link
fails at once); the GLM starts at :func:`fisherlab.models.glm_start` and its
coefficients are renamed to the design-matrix columns, in the result, in error
messages and in the identity check (:func:`check_fit`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

import fisherlab as fl
from fisherlab._options import IMTestVariant
from fisherlab.formula import Design, fit_design

from ._choices import FAMILY_NAMES
from ._errors import EXIT_BAD_INPUT, EXIT_NOT_CONVERGED, CliError
from ._fitted import Fitted, glm_fitted, relabel
from ._formula import build_design, describe
from ._io import check_columns, read_table
from ._streaming import should_stream, stream_glm
from ._timer import Timer
from ._user_model import fit_user_model

__all__ = ["attach_check", "check_fit", "fit_from_options", "fit_glm"]


def fit_glm(design: Design, family: str, link: str | None, timer: Timer, description: str) -> Fitted:
    """Fit ``glm(family, link)`` to ``design`` from R's start; coefficients named by the design columns.

    :func:`fisherlab.models.fit_glm` does the fit: a negative binomial whose data show no
    overdispersion ends on its boundary alpha = 0 (said in the notes); a fitted alpha gets
    the boundary LR test of alpha = 0 (:func:`fisherlab.models.overdispersion_test`) in the
    notes and in ``Fitted.tests``.

    Raises:
        CliError: the fit failed (exit 3 if it did not converge or the estimate is at
            infinity, else 2), with ``beta[i]`` replaced by the column names in the message
            (:func:`fisherlab.formula.fit_design`, shared with :func:`fisherlab.glm`).
    """
    model = fl.models.glm(family, link)
    tests: dict[str, Any] = {}
    boundary: dict[str, float] = {}
    with timer.phase("fit", f"fitting a {model.family.value} GLM to {len(design.y):,} rows"):
        try:
            res = fit_design(model, design)
            if model.family is fl.models.Family.NEGATIVE_BINOMIAL:
                test = fl.models.overdispersion_test(res)
                tests["overdispersion"] = dataclasses.asdict(test)
                if isinstance(res.model, fl.models.GLM) and res.model.poisson_limit:
                    boundary["alpha"] = 0.0
                else:
                    res.notes.append(f"{test} (alpha = 0: no overdispersion, the Poisson model)")
        except fl.FisherlabError as exc:  # fit_design named the design columns, not beta[i]
            code = EXIT_NOT_CONVERGED if isinstance(exc, fl.NotConvergedError) else EXIT_BAD_INPUT
            raise CliError(str(exc), code) from exc
    return glm_fitted(
        res, design.columns, design.y, design.x, description, design.dropped, tests=tests, boundary=boundary
    )


def fit_from_options(
    data: str,
    formula: str | None,
    family: str | None,
    link: str | None,
    trials: str | None,
    dropna: bool,
    model: str | None,
    init: str | None,
    y: str | None,
    x: str | None,
    positive: str | None,
    timer: Timer,
    before_fit: Callable[[], None] = lambda: None,
    *,
    allow_code: bool = False,
    keep: Mapping[str, str] | None = None,
    stream: bool | None = None,
    chunk_rows: int | None = None,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
) -> Fitted:
    """Validate the model options, read the data, fit. ``before_fit`` runs after validation.

    ``stream`` (``--stream``/``--no-stream``; ``None``: by the file's size) reads a Parquet or
    CSV file in chunks of ``chunk_rows`` rows for a formula fit (:mod:`._streaming`).

    ``trials``, ``weights``, ``offset`` and ``exposure`` (``--trials`` ... ``--exposure``) name
    columns of the data, passed to the formula GLM as :func:`fisherlab.glm` takes them by name
    (``weights="w"``: R's prior weights; ``exposure="t"``: ``log(t)`` added to the offset); a
    column that is not there is an error naming the option.

    ``allow_code`` (``--allow-code``) lets the formula's terms run arbitrary Python. ``keep``:
    other columns the command uses with the fit, by option (``{"--cluster": "firm"}``): they
    must exist (else a one-line error naming the option), their missing values count as the
    model's (``--dropna`` drops those rows too), and ``Fitted.kept`` holds them on the fitted
    rows, by column name.
    """
    options = dict(keep or {})
    columns = tuple(dict.fromkeys(options.values()))
    glm_columns = {"trials": trials, "weights": weights, "offset": offset, "exposure": exposure}
    named = {f"--{k}": v for k, v in glm_columns.items() if v is not None}

    def read() -> pd.DataFrame:
        df = read_table(data)
        check_columns({**named, **options}, df.columns, data)
        return df

    if (formula is None) == (model is None):
        raise CliError("give either --formula (with --family) or --model FILE.py:FUNCTION (with --init)")
    if formula is not None:
        if family is None:
            raise CliError(f"--formula needs --family ({', '.join(FAMILY_NAMES[:4])}, ...)")
        glm = fl.models.glm(family, link)  # unknown family / link: ModelError listing the valid ones
        if trials is not None and weights is not None:
            raise CliError(
                "--trials and --weights both give the binomial trials: pass --trials COLUMN with the "
                "successes as the response, or --weights COLUMN with the proportion of successes"
            )
        if should_stream(data, stream):
            before_fit()
            return stream_glm(
                data,
                formula,
                glm.family.value,
                glm.link.value,
                trials=trials,
                weights=weights,
                offset=offset,
                exposure=exposure,
                dropna=dropna,
                allow_code=allow_code,
                chunk_rows=chunk_rows,
                keep=columns,
                timer=timer,
                options={**named, **options},
            )
        before_fit()
        with timer.phase("read", f"reading {data}"):
            df = read()
        with timer.phase("design", "building the design matrix"):
            design = build_design(
                df,
                formula,
                family=glm.family,
                trials=trials,
                weights=weights,
                offset=offset,
                exposure=exposure,
                dropna=dropna,
                allow_code=allow_code,
                keep=columns,
            )
        desc = describe(formula, glm.family.value, glm.link.value, **glm_columns)
        fitted = fit_glm(design, glm.family.value, glm.link.value, timer, desc)
        fitted.kept = {c: df[c].to_numpy()[design.rows] for c in columns}
        return fitted
    if init is None:
        raise CliError(
            '--model needs --init with starting values as JSON, e.g. --init \'{"mu": 0, "sigma": 1}\''
        )
    formula_only = [o for o, v in (("--family", family), *named.items()) if v is not None]
    if formula_only:
        raise CliError(
            f"{'/'.join(formula_only)} {'goes' if len(formula_only) == 1 else 'go'} with --formula, not "
            "with --model"
        )
    if stream or chunk_rows is not None:
        raise CliError("--stream/--chunk-rows go with --formula: a --model fit reads its data in memory")
    if allow_code:
        raise CliError("--allow-code goes with --formula; a --model file is Python already")
    before_fit()
    with timer.phase("read", f"reading {data}"):
        df = read()
    assert model is not None
    return fit_user_model(df, model, init, y or "y", x, positive, dropna, timer, columns)


def check_fit(f: Fitted, variant: str) -> Any:
    """``fl.check`` at the estimate, with the design-column names in its names, pairs and verdict."""
    chk = fl.check(f.model, f.res.params, f.y, f.x, variant=variant)
    if not f.original_names:
        return chk
    rename = dict(zip(f.original_names, f.res.names, strict=True))
    return dataclasses.replace(
        chk,
        names=list(f.res.names),
        im_test_indicators=[(rename[a], rename[b]) for a, b in chk.im_test_indicators],
        im_test_dropped=[(rename[a], rename[b]) for a, b in chk.im_test_dropped],
        verdict=relabel(chk.verdict, f),
    )


def attach_check(f: Fitted, timer: Timer, variant: str = IMTestVariant.WHITE.value) -> None:
    """:func:`check_fit` into ``f.check``, or its error (one line, relabelled) into ``f.check_error``."""
    with timer.phase("check", "checking the information identities"):
        try:
            f.check = check_fit(f, variant)
        except (fl.FisherlabError, ValueError) as exc:
            f.check_error = relabel(" ".join(str(exc).split()), f)
