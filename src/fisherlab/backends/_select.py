"""Choosing a model's derivative backend, once: ``derivatives="autodiff" | "numeric" | "auto"``.

``"auto"`` traces the first row's log-likelihood (or distribution) once with
:func:`jax.eval_shape`; if the function cannot be traced (a tracer converted with ``float()``
/ ``np.asarray()``, a SciPy call) the model falls back to numeric derivatives with one
:class:`UserWarning`. The backend is kept in ``model.state.backend``: every later call, of
any computation, uses the same one. This is the only place that tells autodiff from numeric.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from .._errors import ModelError
from .._options import Derivatives
from ..data._prepare import Data, prepare_data
from ..model._model import Model, require_model
from ..params._pytree import as_params
from ._autodiff import AutodiffBackend
from ._base import Backend
from ._numeric import NumericBackend
from ._validity import row_slice

__all__ = ["backend_for"]

_BACKENDS: dict[Derivatives, type[Backend]] = {
    Derivatives.AUTODIFF: AutodiffBackend,
    Derivatives.NUMERIC: NumericBackend,
}


def _untraceable(exc: BaseException) -> bool:
    """Whether an exception says that the function cannot be traced by JAX.

    A failure inside the user's function arrives as a :class:`~fisherlab.ModelError` whose
    ``__cause__`` is JAX's own exception (:func:`~fisherlab.model.call_user`): that is read.
    """
    if isinstance(exc, ModelError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)):
        return True
    if isinstance(exc, (jax.errors.TracerIntegerConversionError, jax.errors.TracerBoolConversionError)):
        return True
    return isinstance(exc, TypeError) and "Tracer" in str(exc)


def _probe(model: Model, params: Any, data: Data) -> Derivatives:
    """Trace the first row's log-likelihood (or distribution) once; decide autodiff or numeric."""
    if model.kind == "distribution":
        x_row = row_slice(data.x, 0)

        def first_row(p: Any) -> Any:
            model.distribution(p, x_row)  # tracing the user's function is the test
            return jnp.zeros(())

    else:
        y_row, x_row = row_slice(data.y, 0), row_slice(data.x, 0)

        def first_row(p: Any) -> Any:
            return model.row_loglik(p, y_row, x_row)[0]

    try:
        jax.eval_shape(first_row, params)
    except Exception as exc:  # anything else is reported by the autodiff path
        if not _untraceable(exc):
            return Derivatives.AUTODIFF
        cause = exc.__cause__ if isinstance(exc, ModelError) and exc.__cause__ is not None else exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        warnings.warn(
            f"fisherlab: the model function cannot be traced by JAX ({type(cause).__name__}: {first}); "
            "using numeric derivatives (finite differences with error estimates) instead. "
            'Pass derivatives="numeric" to fl.Model / fl.Model.from_loglik to silence this warning, '
            "or write the function with jax.numpy for exact derivatives.",
            UserWarning,
            stacklevel=4,
        )
        return Derivatives.NUMERIC
    return Derivatives.AUTODIFF


def _decide(model: Model, params: Any, y: Any, x: Any) -> Derivatives:
    """Probe ``"auto"``: on the first row of data, or of a draw of the sampler (``y`` None)."""
    data = prepare_data(y, x, require_y=y is not None)
    if data.y is None and model.kind == "loglik":
        if model.sampler is None:
            return Derivatives.AUTO  # nothing to try the function on: undecided
        try:
            draw = model.sampler(as_params(params), data.x, jax.random.PRNGKey(0))
        except Exception:  # an untraceable sampler is reported by the path taken
            return Derivatives.AUTO
        data = prepare_data(draw, data.x)
    return _probe(model, as_params(params), data)


def backend_for(model: Any, params: Any, y: Any = None, x: Any = None) -> Backend:
    """The derivative backend of ``model``, decided on its first use and kept on the model.

    Args:
        model: a :class:`~fisherlab.Model`.
        params, y, x: the call's arguments, used only when ``derivatives="auto"`` has to be
            probed (``y`` may be ``None``: the expected Fisher).

    Raises:
        FisherlabArgumentError: ``model`` is not a :class:`~fisherlab.Model` (a ``TypeError``).
        InvalidDataError: bad data met while probing, as the computation itself would raise.
    """
    model = require_model(model, "backend_for")
    state = model.state
    if state.backend is not None:
        return state.backend  # type: ignore[no-any-return]
    choice = model.derivatives
    if choice is Derivatives.AUTO:
        choice = _decide(model, params, y, x)
        if choice is Derivatives.AUTO:  # undecided (no data to probe): autodiff for this call only
            return AutodiffBackend(model)
    state.backend = _BACKENDS[choice](model)
    return state.backend
