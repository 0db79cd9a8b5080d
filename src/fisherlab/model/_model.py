r"""Models: a function of parameters (and covariates) giving a distribution per row.

A :class:`Model` describes :math:`p(y_i \mid x_i, \theta)` for rows
:math:`i = 1..N`. fisherlab evaluates it ONE ROW AT A TIME under
:func:`jax.vmap`: the function receives the row's covariates with a leading
axis of length 1 (so code written for a whole batch, ``X @ beta`` or
``x[:, 0]``, works unchanged) and must return a distribution whose batch shape
is ``()`` or starts with 1. Per-row evaluation is what makes the score an
``(N, P)`` array from one vectorised pass and the Fisher a sum of per-row
chain rules :math:`J_i^\top I(\eta_i) J_i`.

Errors raised inside the user's function are reported as :class:`~fisherlab.ModelError`
that say so (with the original exception chained); errors after it returned (a
distribution that cannot evaluate the data as given) never blame the function.
Observations keep their dtype; where a bounded discrete family indexes with ``y``
(``Categorical``), integral floating labels are cast to integers after the support check
(:func:`observation_for`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from numpyro.distributions import constraints as nc
from numpyro.distributions.util import lazy_property

from .._errors import FisherlabArgumentError, FisherlabError, MethodUnavailableError, ModelError
from .._options import Derivatives, choose
from .._precision import float64_methods
from ..dist._weighted import Weighted
from ..params._constraints import resolve_constraints
from ._state import ModelState, unpickled_state

__all__ = [
    "Derivatives",
    "Model",
    "call_user",
    "observation_for",
    "require_model",
    "trace_shape",
    "user_function_error",
    "validity",
]


def user_function_error(exc: BaseException, what: str = "the model function") -> ModelError:
    """The :class:`ModelError` for an exception raised inside a user's function (``what``).

    A tracing failure gets the advice to write the function with ``jax.numpy`` (fisherlab
    calls it once per row under ``jax.vmap`` and ``jax.grad``); a ``KeyError`` names the
    missing key; anything else is passed on with its type and first line.
    """
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # JAX's tracing errors (a tracer turned into a float or a NumPy array) are TypeErrors
    if isinstance(exc, (TypeError, IndexError)):
        return ModelError(
            f"{what} failed on one row of data ({type(exc).__name__}: {first_line}). fisherlab "
            "calls it once per row, with that row's x given a leading axis of length 1, under "
            "jax.vmap and jax.grad: write it with jax.numpy (no float()/np.asarray() on parameters)"
        )
    if isinstance(exc, KeyError):
        return ModelError(
            f"{what} raised KeyError {first_line}: it looks up a parameter or covariate that was not "
            "passed; check the names in params (fl.param_names(params)) and in x"
        )
    return ModelError(f"{what} raised {type(exc).__name__}: {first_line}")


def call_user(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    """``fn(*args)`` for a user's function: its own failures become :func:`user_function_error`.

    fisherlab's errors raised inside it pass unchanged; the original exception is chained
    (``__cause__``), so callers that probe traceability (``derivatives="auto"``) can read it.
    """
    try:
        return fn(*args)
    except FisherlabError:
        raise
    except Exception as exc:
        raise user_function_error(exc, what) from exc


def trace_shape(fn: Callable[..., Any], *args: Any, what: str, advice: str) -> Any:
    """``jax.eval_shape(fn, *args)`` for a user's function ``what``, e.g. ``"hessian: f"``.

    A failure while tracing becomes a :class:`~fisherlab.FisherlabArgumentError` naming
    ``what`` and the exception's first line, followed by ``advice`` (how to write the function);
    fisherlab's own errors pass unchanged.
    """
    try:
        return jax.eval_shape(fn, *args)
    except FisherlabError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise FisherlabArgumentError(
            f"{what} failed when traced by JAX ({type(exc).__name__}: {first}); {advice}"
        ) from exc


def require_model(model: Any, where: str) -> Model:
    """``model`` if it is an :class:`Model`, else :class:`~fisherlab.FisherlabArgumentError`.

    The one check of the first argument of every public computation (``where`` names it:
    ``"fisher"``, ``"fit"``, ...).

    Raises:
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; the message names the
            function, what was given and how to make a model.

    Examples:
        >>> import fisherlab as fl
        >>> fl.fisher(lambda th, x: fl.dist.Poisson(th["rate"]), {"rate": 1.0})
        Traceback (most recent call last):
        ...
        fisherlab._errors.FisherlabArgumentError: fisher: model must be an fl.Model, got function ...
    """
    if isinstance(model, Model):
        return model
    given = getattr(model, "__qualname__", None) or repr(model)
    given = given if len(given) <= 60 else given[:57] + "..."
    hint = (
        "; wrap the function: fl.Model(fn) for fn(params, x) -> distribution, or "
        "fl.Model.from_loglik(fn) for fn(params, y, x) -> per-row log-likelihood"
        if callable(model)
        else "; build one with fl.Model(fn) or fl.Model.from_loglik(fn)"
    )
    raise FisherlabArgumentError(
        f"{where}: model must be an fl.Model, got {type(model).__name__} {given}{hint}"
    )


def _integer_dtype() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def observation_for(d: nd.Distribution, y: Any) -> Any:
    """``y`` as ``d.log_prob`` needs it: floating or boolean labels of a bounded discrete family as ints.

    NumPyro's ``Categorical`` indexes with ``y`` and needs integers; the other bounded discrete
    families (``Bernoulli``, ``Binomial``, ``BetaBinomial``) accept either, so the cast changes
    no value there. Only bounded supports (an ``integer_interval`` or ``boolean``) are cast: a
    value that passed the support check (integral, within the bounds: :func:`validity` runs on
    the ``y`` given) converts exactly. Unbounded counts (``Poisson``) keep their dtype.
    """
    support = d.support
    if not getattr(support, "is_discrete", False):
        return y
    dtype = jnp.result_type(y)
    if jnp.issubdtype(dtype, jnp.integer) and dtype != jnp.bool_:
        return y
    while isinstance(support, nc.independent):  # Categorical(...).to_event(1)
        support = support.base_constraint
    if support is not nc.boolean and getattr(support, "upper_bound", None) is None:
        return y
    return jnp.asarray(y).astype(_integer_dtype())


def _batch1(tree: Any) -> Any:
    """Give every leaf of one row a leading axis of length 1."""
    return jax.tree_util.tree_map(lambda a: a[None], tree)


def _present_constraints(d: nd.Distribution) -> list[str]:
    """Names of ``d.arg_constraints`` that are set (not lazily derived) on this instance.

    A :class:`~fisherlab.dist.Weighted` distribution's are its base distribution's and ``weight``.
    """
    if isinstance(d, Weighted):
        return [*_present_constraints(d.base_dist), "weight"]
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

    The checked values pass through :func:`jax.lax.optimization_barrier`: the checks run on
    the values, and compiling them never constant-folds anything (without it XLA proves
    ``exp(u) >= 0``, so a NaN rate passed, and folded a reduction of the constant over rows
    times batched points: XLA's "Constant folding an instruction is taking > 1s" alarm and
    seconds of compilation for the report's 2-D profile).
    """
    values = {name: jnp.asarray(getattr(d, name)) for name in _present_constraints(d)}
    # XLA must not reason through the values: it would fold a check it can prove from how they
    # were computed (``exp(u) >= 0`` becomes ``true``, wrongly so for NaN) into a constant,
    # and then spend seconds constant-folding its reduction over rows and batched points.
    values, y = jax.lax.optimization_barrier((values, y))
    checks = {name: d.arg_constraints[name](value) for name, value in values.items()}
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

    Dtypes (autodiff): ``fn`` sees the parameters and covariates in the dtypes given
    (:func:`~fisherlab.params.as_params`, :func:`~fisherlab.data.prepare_data`): float32
    parameters and float32 data make every computation on the data run in float32 (for large
    networks); Python numbers and integer parameters become float64; integer covariates stay
    integers (to index parameters: ``th["u"][x]``), and so do integer observations (class
    labels, counts). Mixed float32/float64 inputs follow JAX's promotion (to float64).
    :func:`~fisherlab.fit` optimises in float64. With numeric derivatives ``fn`` receives
    float64 parameters.

    Pickling: a model pickles with cloudpickle (what Dask uses to ship it to a cluster's workers,
    :func:`fisherlab.data.from_dask`) without its compiled kernels and caches, which each process
    rebuilds; :mod:`pickle` itself needs ``fn`` defined at a module's top level.

    Raises:
        ModelError: ``fn`` is not callable, or an option is invalid (``derivatives``,
            ``constraints``, ``executor``, ``workers``).

    Examples:
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
            executor: as for :class:`Model`.
            workers: as for :class:`Model`.

        Examples:
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

    @classmethod
    def from_equinox(cls, module: Any, likelihood: Callable[[Any], nd.Distribution]) -> tuple[Model, Any]:
        r"""A model and its parameters from an Equinox module (:mod:`fisherlab.model._modules`).

        ``fn(params, x) = likelihood(jax.vmap(module)(x))``: the module maps one example, the
        likelihood maps all rows' outputs to a distribution. ``params`` are the module's
        floating-point arrays (an Equinox pytree; names ``layers[0].weight[3,4]``).

        Examples:
            >>> import equinox as eqx, jax, numpy as np, fisherlab as fl
            >>> net = eqx.nn.MLP(2, 3, 4, 1, key=jax.random.PRNGKey(0))
            >>> m, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
            >>> fl.param_names(params)[:2]
            ['layers[0].weight[0,0]', 'layers[0].weight[0,1]']
        """
        from ._modules import from_equinox

        fn, params = from_equinox(module, likelihood)
        return cls(fn), params

    @classmethod
    def from_flax(cls, module: Any, likelihood: Callable[[Any], nd.Distribution]) -> tuple[Model, Any]:
        r"""A model and its parameters from a Flax NNX module (:mod:`fisherlab.model._modules`).

        ``fn(params, x) = likelihood(module(x))`` with the module's ``nnx.Param`` state as
        ``params``, a nested dict (names ``l1.kernel[0,0]``).
        """
        from ._modules import from_flax

        fn, params = from_flax(module, likelihood)
        return cls(fn), params

    # ------------------------------------------------------------------ one row
    def distribution(self, params: Any, x_row: Any) -> nd.Distribution:
        """The distribution of one row (``x_row`` without its leading axis, or ``None``)."""
        if self.kind != "distribution":
            raise MethodUnavailableError(
                "this model was built with Model.from_loglik and has no distribution; "
                "use Model(fn) to get exact Fisher information"
            )
        d = call_user(self.fn, "the model function", params, None if x_row is None else _batch1(x_row))
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
            raw = call_user(
                self.fn,
                "the log-likelihood function",
                params,
                _batch1(y_row),
                None if x_row is None else _batch1(x_row),
            )
            try:
                out = jnp.asarray(raw)
            except (TypeError, ValueError) as exc:
                raise ModelError(
                    f"the log-likelihood function returned {type(raw).__name__}, not an array of "
                    "one log-likelihood per row"
                ) from exc
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
        return jnp.sum(d.log_prob(observation_for(d, y1))), validity(d, y1)

    # ------------------------------------------------------------------ pickling
    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the model without its state (:mod:`fisherlab.model._state`).

        Dask's workers receive a model with cloudpickle, which also pickles a lambda or a closure
        as ``fn`` (the standard :mod:`pickle` needs a module-level function). The compiled
        kernels, pools and caches stay in this process; the copy gets
        :func:`~fisherlab.model._state.unpickled_state` (empty where the model first arrives,
        shared by its later copies there). A derivative source that ``"auto"`` has decided
        travels as the model's ``derivatives``, so the copy never probes (nor warns) again. An
        executor object (a pool, a client's executor) belongs to this process: the copy
        evaluates without one (``executor=None``); ``"threads"``/``"processes"`` travel.
        """
        fields = {name: value for name, value in vars(self).items() if name != "state"}
        key = fields.get("_pickle_key")
        if key is None:
            key = fields["_pickle_key"] = self.__dict__["_pickle_key"] = uuid.uuid4().hex
        if not (self.executor is None or isinstance(self.executor, str)):
            fields["executor"] = None
        decided = getattr(self.state.backend, "name", None)
        if self.derivatives is Derivatives.AUTO and decided in (Derivatives.AUTODIFF, Derivatives.NUMERIC):
            fields["derivatives"] = Derivatives(decided)
        return (_unpickled_model, (type(self), key, self.state.token), fields)

    def __setstate__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def _unpickled_model(cls: type[Model], key: str, token: str | None) -> Model:
    """A model being unpickled: its fields come next (``__setstate__``), its state is the
    process's for the model ``key``."""
    model = cls.__new__(cls)
    model.state = unpickled_state(key, token)
    return model


# Every public method in float64, but not: from_equinox/from_flax, which only split a module into
# its arrays and the rest (no arithmetic; a float32 network's parameters must stay float32 for
# fl.curvature, which works in the parameters' precision); and the one-row building blocks
# that fisherlab's kernels trace (in fisherlab's float64 calls, and in fl.curvature's float32
# ones, where they must follow the dtype of what they are given, as distributions do).
float64_methods(
    Model, skip=("from_equinox", "from_flax", "distribution", "row_loglik", "distribution_loglik")
)


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
