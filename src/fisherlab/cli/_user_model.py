"""A Python model for the command line: ``--model FILE.py:NAME`` with ``--init``, ``--y`` and ``--x``.

``NAME`` is a function ``fn(params, x)`` returning a distribution for each row (as
:class:`fisherlab.Model` takes it), or an ``fl.Model`` built in the file (its
derivatives, executor and constraints chosen there). The file is run as Python
code: only trusted files. A file (or function) that raises, or calls
``sys.exit``, is bad input (exit 2, the file named), never the command's own exit.
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
from fisherlab.formula import missing_report, non_numeric, non_numeric_rows

from ._errors import CliError
from ._fitted import Fitted
from ._timer import Timer

__all__ = ["fit_user_model", "load_model", "parse_init"]


def _raised(exc: BaseException) -> str:
    """What a user's code raised, in words: ``ValueError: ...`` (the name alone if no message)."""
    text = " ".join(str(exc).split())
    return type(exc).__name__ + (f": {text}" if text else "")


def load_model(spec: str) -> Callable[..., Any]:
    """The function (or ``fl.Model``) ``NAME`` of ``FILE.py:NAME``, running the file as a module.

    Args:
        spec: ``FILE.py:NAME``.

    Returns:
        The function or ``fl.Model`` named ``NAME`` in the file.

    Raises:
        CliError: a malformed spec, a missing file, a file that raises or exits while it
            runs (``SystemExit`` included: named, exit 2), no callable ``NAME`` in it.
        KeyboardInterrupt: Ctrl-C or SIGTERM while the file runs (never caught here).
    """
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
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:  # the file must not end the command (exit 7, nothing said)
        raise CliError(
            f"running {path_text} called sys.exit({exc.code!r}) at import; a model file should define "
            f"{name!r}, not exit"
        ) from exc
    except BaseException as exc:
        raise CliError(f"running {path_text} failed at import: {_raised(exc)}") from exc
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
    keep: tuple[str, ...] = (),
) -> Fitted:
    """Fit the model ``spec`` to the columns ``y_col`` and ``x_cols`` of ``df`` from ``--init``.

    Args:
        df: the data.
        spec: ``FILE.py:NAME`` (:func:`load_model`).
        init_text: ``--init`` (:func:`parse_init`).
        y_col: the response column.
        x_cols: comma-separated covariate columns, or ``None``.
        positive: comma-separated parameters constrained positive, or ``None``.
        dropna: drop rows with missing values in the columns used.
        timer: the command's phase timer.
        keep: other columns the command uses (``--cluster``): checked and dropped with the
            model's, kept on the fitted rows in ``Fitted.kept``.

    Returns:
        The fit, as the command line renders it.

    Raises:
        CliError: bad options or data (columns, rows and tokens named), or the model
            function raised or called ``sys.exit`` (exit 2).
        fisherlab.FisherlabError: the fit itself failed (not converged: exit 3).
    """
    fn = load_model(spec)
    init = parse_init(init_text)
    xs = [c.strip() for c in x_cols.split(",") if c.strip()] if x_cols else []
    missing = [c for c in dict.fromkeys([y_col, *xs, *keep]) if c not in df.columns]
    if missing:
        raise CliError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; columns are: {', '.join(df.columns)}"
            + ("" if y_col in df.columns else " (choose the response with --y COLUMN)")
        )
    bad, report = missing_report(df, list(dict.fromkeys([y_col, *xs, *keep])))
    dropped = 0
    if report:
        if not dropna:
            raise CliError(f"{report}; pass --dropna to drop them")
        df, dropped = df.loc[~bad], int(bad.sum())
    for c in [y_col, *xs]:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            text = non_numeric_rows(df[c])
            where = non_numeric(df, c, text) if text.any() else f"dtype {df[c].dtype}"
            raise CliError(
                f"column {c!r} is not numeric ({where}); the --y and --x columns of --model must hold "
                "numbers: fix those values"
            )
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
    except (fl.FisherlabError, CliError, KeyboardInterrupt):
        raise
    except SystemExit as exc:  # sys.exit inside the user's function: bad input, not our exit status
        raise CliError(
            f"the model {spec} called sys.exit({exc.code!r}) during the fit; the function should return "
            "a distribution, not exit"
        ) from exc
    except BaseException as exc:  # an error inside the user's function is bad input, said in one line
        raise CliError(f"the model {spec} failed: {_raised(exc)}") from exc
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
        kept={c: df[c].to_numpy() for c in keep},
    )
