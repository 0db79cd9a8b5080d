"""Validity of a model on data: invalid rows named, tracing failures explained.

Every backend computation returns, beside its result, per-row validity flags (each
distribution parameter inside its support, each ``y`` inside the distribution's support:
:func:`fisherlab.model._model.validity`); :func:`raise_invalid` turns the first failing row
into an error that names it. Under autodiff the flags are data the jit-compiled kernel
returns, so the checks cannot vanish under ``jit``. :func:`check_finite` names the first
row whose value is not finite. A failure inside the user's function is already a
:class:`~fisherlab.ModelError` that says how to write it (:func:`~fisherlab.model.call_user`);
:func:`run` turns any other failure of a compiled computation (a distribution that cannot
evaluate the data as given) into a :class:`~fisherlab.ModelError` that does not blame the
function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from numpyro.distributions.distribution import validation_enabled

from .._errors import FisherlabError, InvalidDataError, InvalidParameterError, ModelError
from ..model._model import Model

__all__ = ["check_finite", "eager_distribution", "raise_invalid", "row_slice", "run"]


def row_slice(tree: Any, i: int) -> Any:
    """Row ``i`` of every leaf (``None`` stays ``None``)."""
    return None if tree is None else jax.tree_util.tree_map(lambda a: a[i], tree)


def _describe(args: tuple[Any, ...]) -> str:
    """Dtypes and shapes of a kernel's array arguments (parameters, y, x), for a message."""
    parts = []
    for leaf in jax.tree_util.tree_leaves(args):
        if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
            parts.append(f"{leaf.dtype}{list(leaf.shape)}")
    return ", ".join(parts[:8]) + (", ..." if len(parts) > 8 else "")


def run(kernel: Callable[..., Any], *args: Any) -> Any:
    """Call a compiled kernel; a failure that is not fisherlab's own becomes a :class:`ModelError`.

    The user's function reports its own failures (:func:`~fisherlab.model.call_user`); what
    reaches here was raised after it returned: the distribution could not evaluate the
    data as given (a dtype or shape it does not accept), so the message says that.
    """
    try:
        return kernel(*args)
    except FisherlabError:
        raise
    except (TypeError, IndexError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(
            f"the computation failed after the model function returned ({type(exc).__name__}: "
            f"{first_line}): the distribution it returned could not evaluate the data as given "
            f"(arguments: {_describe(args)}); check the dtype and shape of y against the family "
            "(one row of y is one draw; class labels are integers 0..K-1)"
        ) from exc


def eager_distribution(model: Model, params: Any, x_row: Any) -> Any:
    """The distribution of one row, evaluated eagerly with NumPyro's own validation off.

    fisherlab reports invalid parameters itself, naming the row; NumPyro's eager
    validation would raise a less specific error first.
    """
    with validation_enabled(False):
        return model.distribution(params, x_row)


def raise_invalid(
    model: Model, params: Any, flags: dict[str, Any], x: Any, has_rows: bool, y: Any = None
) -> None:
    """Raise for the first row whose distribution parameters or ``y`` leave their support."""
    if not flags:
        return
    host = {k: np.asarray(v) for k, v in flags.items()}
    bad_rows = [
        np.flatnonzero(~v.reshape(v.shape[0] if v.ndim else 1, -1).all(axis=1)) for v in host.values()
    ]
    firsts = [int(b[0]) for b in bad_rows if b.size]
    if not firsts:
        return
    row = min(firsts)
    where = f"row {row}: " if has_rows else ""
    x_row = row_slice(x, row)
    d = eager_distribution(model, params, x_row)
    family = type(d).__name__
    for name, ok in host.items():
        ok_row = ok.reshape(ok.shape[0] if ok.ndim else 1, -1)[row if ok.ndim else 0]
        if ok_row.all():
            continue
        if name == "y":
            value = np.asarray(row_slice(y, row)) if y is not None else "?"
            raise InvalidDataError(
                f"y at row {row} = {value} is outside the support of {family} ({d.support}); "
                "fix the data or choose a family whose support covers it"
            )
        value = np.asarray(getattr(d, name)).squeeze()
        raise InvalidParameterError(
            f"{where}{family} parameter '{name}' = {np.array2string(value, precision=6)} is outside "
            f"its support ({d.arg_constraints[name]}); choose parameters (or a link) that keep it there"
        )


def check_finite(what: str, values: Any, has_rows: bool = True) -> None:
    """Raise :class:`InvalidParameterError` naming the first row where ``values`` is not finite."""
    arr = np.asarray(values)
    if arr.size == 0:
        return
    finite = (
        np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        if (has_rows and arr.ndim)
        else np.array([np.isfinite(arr).all()])
    )
    if finite.all():
        return
    row = int(np.flatnonzero(~finite)[0])
    where = f" at row {row}" if has_rows and arr.ndim else ""
    raise InvalidParameterError(
        f"the {what} is not finite{where}: the parameters make this observation impossible "
        "or sit on the boundary of the support; move the parameters inside it"
    )
