"""A Python model for the command line: ``--model FILE.py:NAME`` with ``--init``, ``--y`` and ``--x``.

``NAME`` is a function ``fn(params, x)`` returning a distribution for each row (as
:class:`fisherlab.Model` takes it), or an ``fl.Model`` built in the file (its
derivatives, executor and constraints chosen there).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fisherlab as fl

from ._errors import CliError
from ._fitted import Fitted
from ._formula import missing_report
from ._timer import Timer

__all__ = ["fit_user_model", "load_model", "parse_init"]


def load_model(spec: str) -> Callable[..., Any]:
    """The function (or ``fl.Model``) ``NAME`` of ``FILE.py:NAME``, running the file as a module."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise CliError(f"--model must be FILE.py:FUNCTION, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"no such model file: {path_text}")
    module_spec = importlib.util.spec_from_file_location(f"_fisherlab_user_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise CliError(f"cannot load {path_text} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise CliError(f"running {path_text} failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, name, None)
    if isinstance(fn, fl.Model):  # a ready fl.Model: derivatives=, executor=, constraints= chosen in Python
        return fn  # type: ignore[return-value]
    if not callable(fn):
        found = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise CliError(
            f"{path_text} defines no function {name!r}; functions there: {', '.join(found) or 'none'}"
        )
    return fn  # type: ignore[no-any-return]


def parse_init(text: str) -> Any:
    """``--init``: a JSON object of parameters (numbers, lists, nested objects), or ``@file.json``."""
    source = text
    if text.startswith("@") or (text.endswith(".json") and Path(text).is_file()):
        path = Path(text.removeprefix("@"))
        try:
            source = path.read_text()
        except OSError as exc:
            raise CliError(f"cannot read --init file {path}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"--init is not valid JSON ({exc.msg} at position {exc.pos}): {text!r}") from exc

    def leaf(v: Any, where: str) -> Any:
        if isinstance(v, dict):
            if not v:
                raise CliError(f"--init: {where or 'the top level'} is an empty object")
            return {str(k): leaf(u, f"{where}.{k}" if where else str(k)) for k, u in v.items()}
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise CliError(f"--init: {where} must be a number or a list of numbers, got {v!r}") from None
        return float(arr) if arr.ndim == 0 else arr

    if not isinstance(value, dict):
        raise CliError(
            f'--init must be a JSON object of parameters, e.g. \'{{"mu": 0, "sigma": 1}}\'; got {text!r}'
        )
    return leaf(value, "")


def fit_user_model(
    df: pd.DataFrame,
    spec: str,
    init_text: str,
    y_col: str,
    x_cols: str | None,
    positive: str | None,
    dropna: bool,
    timer: Timer,
) -> Fitted:
    """Fit the model ``spec`` to the columns ``y_col`` and ``x_cols`` of ``df`` from ``--init``."""
    fn = load_model(spec)
    init = parse_init(init_text)
    xs = [c.strip() for c in x_cols.split(",") if c.strip()] if x_cols else []
    missing = [c for c in [y_col, *xs] if c not in df.columns]
    if missing:
        raise CliError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; columns are: {', '.join(df.columns)}"
            + ("" if y_col in df.columns else " (choose the response with --y COLUMN)")
        )
    bad, report = missing_report(df, [y_col, *xs])
    dropped = 0
    if report:
        if not dropna:
            raise CliError(f"{report}; pass --dropna to drop them")
        df, dropped = df.loc[~bad], int(bad.sum())
    for c in [y_col, *xs]:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            raise CliError(f"column {c!r} is not numeric (dtype {df[c].dtype})")
    y = df[y_col].to_numpy(dtype=np.float64)
    x = {c: df[c].to_numpy(dtype=np.float64) for c in xs} if xs else None
    constraints = {p.strip(): "positive" for p in positive.split(",") if p.strip()} if positive else None
    if isinstance(fn, fl.Model) and constraints:
        raise CliError(
            f"{spec} is an fl.Model: declare its constraints there (constraints=...), not with --positive"
        )
    try:
        model = fn if isinstance(fn, fl.Model) else fl.Model(fn, constraints=constraints)
        with timer.phase("fit", f"fitting {spec} to {len(y):,} rows"):
            res = fl.fit(model, y, x, init=init)
    except (fl.FisherlabError, CliError):
        raise
    except Exception as exc:  # an error inside the user's function is bad input, said in one line
        raise CliError(f"the model {spec} failed: {type(exc).__name__}: {exc}") from exc
    return Fitted(
        res=res,
        model=model,
        y=y,
        x=x,
        family=None,
        link=None,
        description=f"{spec}, y = {y_col}" + (f", x = {', '.join(xs)}" if xs else ""),
        beta_index=[],
        dropped=dropped,
    )
