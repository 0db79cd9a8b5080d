r"""Models: a function of parameters (and covariates) giving a distribution per row.

A :class:`Model` describes :math:`p(y_i \mid x_i, \theta)` for rows
:math:`i = 1..N`. fisherlab evaluates it ONE ROW AT A TIME under
:func:`jax.vmap`: the function receives the row's covariates with a leading
axis of length 1 (so code written for a whole batch, ``X @ beta`` or
``x[:, 0]``, works unchanged) and must return a distribution whose batch shape
is ``()`` or starts with 1. Per-row evaluation is what makes the score an
``(N, P)`` array from one vectorised pass and the Fisher a sum of per-row
chain rules :math:`J_i^\top I(\eta_i) J_i`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from numpyro.distributions.util import lazy_property

from .._errors import MethodUnavailableError, ModelError
from .._options import Derivatives, choose
from ..params._constraints import resolve_constraints
from ._state import ModelState

__all__ = ["Derivatives", "Model"]


def _batch1(tree: Any) -> Any:
    """Give every leaf of one row a leading axis of length 1."""
    return jax.tree_util.tree_map(lambda a: a[None], tree)


def _present_constraints(d: nd.Distribution) -> list[str]:
    """Names of ``d.arg_constraints`` that are set (not lazily derived) on this instance."""
    names = []
    for name in d.arg_constraints:
        if name in vars(d):
            names.append(name)
        elif not isinstance(type(d).__dict__.get(name), lazy_property) and hasattr(type(d), name):
            names.append(name)
    return names


def validity(
    d: nd.Distribution, y: Any = None, rows: int | None = None, *, params_by_row: bool = True
) -> dict[str, jax.Array]:
    """Support checks of a distribution's parameters (and of ``y`` when given), in one place.

    Every derivative backend reports invalid rows through these flags. With ``rows=None``
    (one row, under ``vmap``) each check is reduced to one boolean; with ``rows=n`` (all
    rows at once, the numeric backend) to one boolean per row: a check whose leading axis is
    ``n`` is reduced over its other axes, any other (a parameter shared by all rows) is
    broadcast. ``params_by_row=False`` (a model without covariates: one distribution for all
    rows) broadcasts every parameter check, whatever its shape.
    """
    checks = {
        name: d.arg_constraints[name](jnp.asarray(getattr(d, name))) for name in _present_constraints(d)
    }
    if y is not None:
        checks["y"] = d.support(y)

    def reduce(ok: Any, by_row: bool) -> jax.Array:
        ok = jnp.asarray(ok, dtype=bool)
        if rows is None:
            return jnp.all(ok)
        if by_row and ok.ndim and ok.shape[0] == rows:
            return jnp.all(ok.reshape(rows, -1), axis=1)
        return jnp.full(rows, jnp.all(ok))

    return {name: reduce(ok, params_by_row or name == "y") for name, ok in checks.items()}


class Model:
    r"""A parametric model :math:`p(y \mid x, \theta)` of one observation per row.

    Args:
        fn: ``fn(params, x) -> distribution``. ``params`` is a pytree (dict of
            scalars/arrays), ``x`` the covariates of the row(s) (a pytree whose
            leaves have a leading axis, or ``None``). It returns an
            ``fl.dist``/NumPyro distribution over one observation per row.
        derivatives: ``"autodiff"`` (JAX), ``"numeric"`` (finite differences with
            Richardson extrapolation and error estimates, :mod:`fisherlab.backends._numeric`)
            or ``"auto"`` (the default: autodiff, falling back to numeric with one
            ``UserWarning`` when ``fn`` cannot be traced by JAX; the decision is made once
            per model). With numeric derivatives ``fn`` receives the parameters as NumPy
            float64 scalars/arrays and ALL rows of ``x`` at once, may call NumPy/SciPy,
            and returns a distribution with batch shape ``(N, ...)`` or ``()``. Every
            computation works (score, Fisher, empirical Fisher, observed information, fit,
            covariances, Laplace, check); matrices carry ``.error`` and ``.evaluations``.
        constraints: optional ``{name: constraint}`` for :func:`~fisherlab.fit`:
            ``"positive"``, ``"unit_interval"``, ``"simplex"``, ``"ordered"``,
            ``"real"``, ... or a NumPyro constraint. The fit runs in an
            unconstrained space (``exp``, ``sigmoid``, ...), so it never leaves
            the support; results are reported in your parameters.
        executor: numeric derivatives only: how the perturbed evaluations of ``fn`` run.
            ``None`` (one after another), ``"threads"`` (a thread pool: right for a
            simulator that releases the GIL, NumPy/LAPACK, or calls an external program),
            ``"processes"`` (a spawned process pool: ``fn`` must be picklable, i.e. a
            module-level function), or any ``concurrent.futures.Executor`` (a Dask
            ``Client.get_executor()`` included), which is used and never shut down.
        workers: size of the pool created for ``"threads"``/``"processes"``
            (default: the number of CPUs).

    Example:
        >>> import fisherlab as fl
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]))
        >>> m.kind
        'distribution'
    """

    def __init__(
        self,
        fn: Callable[[Any, Any], nd.Distribution],
        *,
        derivatives: str = "auto",
        constraints: Mapping[str, Any] | None = None,
        executor: Any = None,
        workers: int | None = None,
    ) -> None:
        if not callable(fn):
            raise ModelError(f"Model needs a callable fn(params, x) -> distribution, got {fn!r}")
        self.fn: Callable[..., Any] = fn
        self.kind = "distribution"
        self.sampler: Callable[..., Any] | None = None
        self.derivatives = _check_derivatives(derivatives)
        self.constraints = resolve_constraints(constraints)
        self.executor, self.workers = _check_executor(executor, workers)
        self.state = ModelState()

    @classmethod
    def from_loglik(
        cls,
        fn: Callable[[Any, Any, Any], jax.Array],
        *,
        sampler: Callable[[Any, Any, jax.Array], Any] | None = None,
        derivatives: str = "auto",
        constraints: Mapping[str, Any] | None = None,
        executor: Any = None,
        workers: int | None = None,
    ) -> Model:
        r"""A model given by its per-row log-likelihood.

        Args:
            fn: ``fn(params, y, x) -> array (N,)``, the log-likelihood of each
                row :math:`\log p(y_i \mid x_i, \theta)`.
            sampler: optional ``sampler(params, x, key) -> y``, one draw of the
                observations (one per row of ``x``; one observation when ``x`` is
                ``None``), written in JAX. Needed only for the expected Fisher,
                which is then estimated by Monte-Carlo.
            derivatives: as for :class:`Model`; with numeric derivatives ``fn`` receives
                NumPy parameters and all rows of ``y`` and ``x`` and returns a NumPy ``(N,)``.
            constraints: as for :class:`Model`.
            executor, workers: as for :class:`Model`.

        Example:
            >>> import fisherlab as fl, jax.numpy as jnp
            >>> m = fl.Model.from_loglik(lambda th, y, x: -0.5 * (y - th["mu"]) ** 2)
            >>> float(fl.loglik(m, {"mu": 0.0}, jnp.array([0.0, 1.0])).sum())
            -0.5
        """
        if not callable(fn):
            raise ModelError(f"from_loglik needs a callable fn(params, y, x), got {fn!r}")
        model = cls.__new__(cls)
        model.fn = fn
        model.kind = "loglik"
        model.sampler = sampler
        model.derivatives = _check_derivatives(derivatives)
        model.constraints = resolve_constraints(constraints)
        model.executor, model.workers = _check_executor(executor, workers)
        model.state = ModelState()
        return model

    # ------------------------------------------------------------------ one row
    def distribution(self, params: Any, x_row: Any) -> nd.Distribution:
        """The distribution of one row (``x_row`` without its leading axis, or ``None``)."""
        if self.kind != "distribution":
            raise MethodUnavailableError(
                "this model was built with Model.from_loglik and has no distribution; "
                "use Model(fn) to get exact Fisher information"
            )
        d = self.fn(params, None if x_row is None else _batch1(x_row))
        if not isinstance(d, nd.Distribution):
            raise ModelError(
                f"the model function returned {type(d).__name__}, not a distribution; "
                "return e.g. fl.dist.Normal(mean, scale)"
            )
        if x_row is not None and d.batch_shape and d.batch_shape[0] != 1:
            raise ModelError(
                f"for one row of x the model returned a distribution with batch shape "
                f"{d.batch_shape}; compute each row's parameters from x (a batch shape of "
                "() or starting with 1), not from data captured outside the function"
            )
        return d

    def row_loglik(self, params: Any, y_row: Any, x_row: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Log-likelihood of one row and its validity flags (parameter and data supports)."""
        if self.kind == "loglik":
            out = jnp.asarray(self.fn(params, _batch1(y_row), None if x_row is None else _batch1(x_row)))
            if out.shape not in ((1,), ()):
                raise ModelError(
                    f"the log-likelihood function returned shape {out.shape} for one row; "
                    "it must return one value per row, shape (N,)"
                )
            return out.reshape(()), {}
        return self.distribution_loglik(self.distribution(params, x_row), y_row, x_row)

    @staticmethod
    def distribution_loglik(
        d: nd.Distribution, y_row: Any, x_row: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Log-likelihood of one row under its distribution ``d``, and the validity flags."""
        y1 = y_row if x_row is None else _batch1(y_row)
        expected = d.batch_shape + d.event_shape
        if x_row is not None and not d.batch_shape:
            expected = (1, *expected)
        if jnp.shape(y1) != expected:
            raise ModelError(
                f"one row of y has shape {jnp.shape(y_row)} but the model's distribution "
                f"describes shape {tuple(expected[1:]) if x_row is not None else expected} "
                f"(batch {d.batch_shape}, event {d.event_shape}); one row of y is one draw"
            )
        return jnp.sum(d.log_prob(y1)), validity(d, y1)


def _check_derivatives(value: str) -> Derivatives:
    return choose(Derivatives, value, "derivatives", ModelError)


def _check_executor(executor: Any, workers: int | None) -> tuple[Any, int | None]:
    if (
        executor is not None
        and executor not in ("threads", "processes")
        and not callable(getattr(executor, "map", None))
    ):
        raise ModelError(
            f"executor must be None, 'threads', 'processes' or a concurrent.futures.Executor "
            f"(an object with .map), got {executor!r}"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ModelError(f"workers must be a positive integer or None, got {workers!r}")
    return executor, workers
