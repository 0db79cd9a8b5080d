"""The ``info`` command: the Fisher information of one observation (or ``--n``) of a distribution.

Any distribution of :mod:`fisherlab.dist` by its own (NumPyro) parameter names;
counts such as ``total_count`` are held fixed, the other parameters are the
information's coordinates.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

import fisherlab as fl
from fisherlab._options import FisherMethod

from ._choices import INFO_METHOD_HELP, INFO_METHODS, choice, described, or_list
from ._errors import CliError
from ._float64 import use_float64

__all__ = ["INFO_HELP", "info"]

# Distribution parameters that are counts, held fixed rather than differentiated.
FIXED_DIST_PARAMS = ("total_count",)

INFO_HELP = (
    "Fisher information of one observation of a distribution, in its own parameters.\n\n"
    "Example: fisherlab info --dist Gamma --param concentration=2 --param rate=3\n\n"
    "Parameters use the distribution's own names (fl.dist, NumPyro's); values are numbers or JSON "
    "lists. A count such as total_count is held fixed. --n gives the information of n iid "
    "observations; --method mc estimates it by Monte Carlo."
)


def _dist_names() -> dict[str, Any]:
    skip = {
        "Distribution",
        "FamilyFisher",
        "Weighted",
        "family_fisher",
        "register_fisher",
        "registered_families",
    }
    return {n: getattr(fl.dist, n) for n in fl.dist.__all__ if n not in skip}


def _parse_value(text: str, name: str) -> Any:
    import numpy as np

    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise CliError(
            f"--param {name}={text}: the value must be a number or a JSON list of numbers"
        ) from None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CliError(
            f"--param {name}={text}: the value must be a number or a JSON list of numbers"
        ) from None
    return float(arr) if arr.ndim == 0 else arr


def _missing(cls: Any, valid: list[str], values: dict[str, Any]) -> list[str]:
    """Parameters the user must give: those with a default value (``scale=1.0``: no silent default),
    those without one, and one of each ``None``-default alternative group (``probs`` | ``logits``),
    which the constructor itself checks."""
    signature = inspect.signature(cls).parameters
    return [
        p
        for p in valid
        if p not in values and signature[p].default is not None  # None: an alternative (probs|logits)
    ]


def info(
    dist: Annotated[
        str, typer.Option("--dist", help="Distribution name in fl.dist, e.g. Normal, Gamma, Poisson.")
    ],
    param: Annotated[list[str], typer.Option("--param", "-p", help="Parameter as NAME=VALUE; repeat.")],
    method: Annotated[
        str, typer.Option(help=f"{or_list(described(INFO_METHODS, INFO_METHOD_HELP))}.")
    ] = FisherMethod.EXACT.value,
    n: Annotated[int, typer.Option(help="Number of iid observations.")] = 1,
    num_samples: Annotated[int, typer.Option(help="Monte-Carlo samples (--method mc).")] = 100_000,
    seed: Annotated[int, typer.Option(help="Monte-Carlo seed.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """``fisherlab info``: the Fisher information of one observation (or ``--n``) of a distribution."""
    method = choice(method, INFO_METHODS, "--method")
    if n < 1:
        raise CliError(f"--n must be a positive number of observations, got {n}")
    use_float64()  # NumPy, pandas and JAX only after the checks of the options (--help: none)
    import numpy as np

    from ._render import dump_json, info_table, stdout_console

    out = stdout_console()
    dists = _dist_names()
    lookup = {k.lower(): k for k in dists}
    if dist.lower() not in lookup:
        raise CliError(f"unknown distribution {dist!r}; valid: {', '.join(sorted(dists))}")
    name = lookup[dist.lower()]
    cls = dists[name]
    valid = [p for p in inspect.signature(cls).parameters if p not in ("validate_args", "is_sparse")]
    values: dict[str, Any] = {}
    for item in param:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--param must be NAME=VALUE, got {item!r}")
        if key not in valid:
            raise CliError(f"{name} has no parameter {key!r}; valid: {', '.join(valid)}")
        values[key] = _parse_value(text.strip(), key)
    missing = _missing(cls, valid, values)
    if missing:
        raise CliError(
            f"{name} needs every one of its parameters, with no silent default: missing "
            f"{', '.join(missing)} (give --param {missing[0]}=VALUE); parameters: {', '.join(valid)}"
        )
    try:
        cls(**values, validate_args=True)
    except (ValueError, TypeError) as exc:
        raise CliError(
            f"{name}({', '.join(values)}): {' '.join(str(exc).split())}; parameters: {', '.join(valid)}"
        ) from exc
    fixed = {k: v for k, v in values.items() if k in FIXED_DIST_PARAMS}
    free = {k: v for k, v in values.items() if k not in FIXED_DIST_PARAMS}
    if not free:
        raise CliError(f"no free parameter to take the information of; {name} takes: {', '.join(valid)}")
    fl_model = fl.Model(lambda th, _x: cls(**th, **fixed))
    kwargs: dict[str, Any] = {"n": n, "method": method}
    if method == FisherMethod.MC.value:
        kwargs.update(num_samples=num_samples, seed=seed)
    with Console(stderr=True).status(f"Fisher information of {name}"):
        F = fl.fisher(fl_model, free, **kwargs)
    matrix, names = np.asarray(F.matrix), list(F.names)
    error = getattr(F, "error", None)
    try:
        crb: dict[str, float] | None = F.se()
    except fl.SingularInformationError:
        crb = None
    label = ", ".join(f"{k}={v}" for k, v in values.items())
    if json_out:
        doc = {
            "dist": name,
            "params": values,
            "names": names,
            "matrix": matrix.tolist(),
            "n": n,
            "method": F.method if hasattr(F, "method") else method,
            "cramer_rao_se": crb,
        }
        if error is not None:
            doc["error"] = np.asarray(error).tolist()
        sys.stdout.write(dump_json(doc) + "\n")
        return
    what = "one observation" if n == 1 else f"{n} iid observations"
    out.print(info_table(matrix, names, f"Fisher information of {what} of {name}({label}), method {method}"))
    if error is not None:
        out.print(info_table(np.asarray(error), names, "Monte-Carlo standard error"))
    if crb is not None:
        out.print(
            "Cramér–Rao bound (se): " + ", ".join(f"{k} {v:.6g}" for k, v in crb.items()),
            highlight=False,
            markup=False,
        )
    else:
        out.print("the information is singular: no Cramér–Rao bound", highlight=False, markup=False)
