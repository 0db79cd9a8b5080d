r"""The result of a fit: estimates and every flavour of uncertainty around them.

Covariance kinds (all in the user's parameters :math:`\theta`; "sum" convention,
so covariances shrink like 1/N):

=============  =============================================================
``observed``   :math:`J^{-1}`, :math:`J = -\nabla^2[\sum_i \ell_i + \log p(\theta)]` at :math:`\hat\theta`
``expected``   :math:`(F + P)^{-1}`, :math:`F` the expected Fisher, :math:`P = -\nabla^2 \log p(\theta)`
``empirical``  :math:`K^{-1}`, :math:`K = \sum_i s_i s_i^\top` (outer product of gradients, OPG)
``sandwich``   :math:`J^{-1} K J^{-1}` (Huber 1967; White 1980/1982), robust to misspecification
=============  =============================================================

With constraints the algebra runs on the unconstrained scale,
:math:`\Sigma_u = (G^\top A G)^{-1}` with :math:`G = \partial\theta/\partial u`,
and is reported as :math:`\Sigma_\theta = G\Sigma_u G^\top` (delta method).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.stats
from jax.flatten_util import ravel_pytree

from .._errors import (
    FisherlabArgumentError,
    InvalidOptionError,
    InvalidParameterError,
    SingularInformationError,
)
from .._options import CovKind, CovScale, IntervalMethod, choose, probability
from ..data._prepare import Data
from ..information._data_terms import empirical_fisher, loglik, observed_information
from ..information._fisher import fisher
from ..information._matrix import Covariance, InfoMatrix
from ..model._model import Model, trace_shape
from ..params._constraints import Reparam
from ..params._prior import Prior

if TYPE_CHECKING:
    from ._laplace import LaplaceApproximation
    from ._objective import Objective

__all__ = ["CovKind", "Derived", "FitResult", "Summary"]


class Derived(NamedTuple):
    """A function of the parameters with its delta-method uncertainty.

    Attributes:
        estimate: :math:`g(\\hat\\theta)` (float or array).
        se: its standard error, same shape.
        cov: covariance :math:`\\nabla g\\, \\Sigma\\, \\nabla g^\\top` of the flattened output.
    """

    estimate: Any
    se: Any
    cov: np.ndarray


def _check_kind(kind: str, allowed: type[enum.Enum]) -> Any:
    return choose(allowed, kind, "kind")


def _check_level(level: float) -> float:
    return probability(level, "level (the coverage)")


def _estimate_text(names: list[str], flat: np.ndarray, limit: int = 8) -> str:
    """``{a=1.0, b=-2.0, ...}``: the estimate, for a message."""
    parts = [f"{n}={v:.6g}" for n, v in zip(names[:limit], flat[:limit].tolist(), strict=False)]
    return "{" + ", ".join(parts) + (", ..." if len(names) > limit else "") + "}"


def _function_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


class Summary:
    """A fit summary: estimate, se, z, p-value and confidence interval per parameter.

    ``str(summary)`` is a plain-text table; Rich renders it as a table
    (``rich.print(summary)``); ``summary.table`` is the DataFrame.
    """

    def __init__(self, table: pd.DataFrame, header: list[str], notes: list[str]) -> None:
        self.table = table
        self.header = header
        self.notes = notes

    def __str__(self) -> str:
        body = self.table.to_string(float_format=lambda v: f"{v:.6g}")
        return "\n".join([*self.header, "", body, *(["", *self.notes] if self.notes else [])])

    def __repr__(self) -> str:
        return str(self)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=" · ".join(self.header), title_justify="left")
        table.add_column("parameter", style="bold")
        for col in self.table.columns:
            table.add_column(str(col), justify="right")
        for name, row in self.table.iterrows():
            table.add_row(str(name), *(f"{v:.6g}" for v in row.to_numpy(dtype=float)))
        if self.notes:
            table.caption = "\n".join(self.notes)
        return table


class FitResult:
    """Estimates and uncertainty from :func:`~fisherlab.fit`.

    Attributes:
        params: the estimate :math:`\\hat\\theta`, a pytree like ``init``.
        names: flattened parameter names.
        loglik: total log-likelihood :math:`\\sum_i \\ell_i(\\hat\\theta)`.
        logprior: :math:`\\log p(\\hat\\theta)` (0.0 without a prior).
        converged: always True for a returned result (failure raises).
        n_iter: optimiser iterations (+ polishing Newton steps).
        decrement: final Newton decrement (distance to the optimum in standard errors).
        method: optimiser used (``"newton"`` or ``"lbfgs"``).
        notes: warnings about the fit (e.g. fitted probabilities of 0 or 1).
        nobs: number of observations N.
        u: the estimate on the unconstrained fitting scale, :math:`\\hat u` with
            :math:`\\hat\\theta = T(\\hat u)` (names ``reparam.names_u``).
        objective: the fit's objective :math:`f(u)`, the negative log-likelihood (or
            log-posterior) on that scale, with its gradient and Hessian
            (:class:`~fisherlab.inference._objective.Objective`); profiles re-optimise it.
    """

    def __init__(
        self,
        *,
        model: Model,
        data: Data,
        params: Any,
        names: list[str],
        reparam: Reparam,
        prior: Prior | None,
        u: np.ndarray,
        objective: Objective,
        converged: bool,
        n_iter: int,
        decrement: float,
        method: str,
        notes: list[str],
    ) -> None:
        self.model, self.data, self.params, self.names = model, data, params, names
        self.reparam, self.prior, self.u, self.objective = reparam, prior, u, objective
        self.converged, self.n_iter, self.decrement, self.method = converged, n_iter, decrement, method
        self.notes = notes
        self.nobs = data.n
        self.loglik = float(np.sum(loglik(model, params, data.y, data.x)))
        self.logprior = 0.0 if prior is None else float(prior.log_density(params))
        self._info: dict[str, InfoMatrix] = {}

    def rename(self, names: list[str]) -> FitResult:
        """A copy whose flattened parameters carry ``names`` (e.g. design-matrix column names).

        Every table, covariance and interval of the copy uses the new names;
        ``params`` keeps its structure.

        Raises:
            InvalidParameterError: wrong number of names, or duplicates.
            FisherlabArgumentError: ``names`` is a single string, not a list.
        """
        if isinstance(names, str):
            raise FisherlabArgumentError(
                f"rename needs a list of {len(self.names)} names, got the string {names!r}"
            )
        names = [str(n) for n in names]
        if len(names) != len(self.names) or len(set(names)) != len(names):
            raise InvalidParameterError(
                f"rename needs {len(self.names)} distinct names (one per parameter of {self.names}), "
                f"got {names}"
            )
        twin = copy.copy(self)
        twin.names = names
        twin._info = {
            k: InfoMatrix(v.matrix, names, method=v.method, error=v.error, evaluations=v.evaluations)
            for k, v in self._info.items()
        }
        return twin

    # ------------------------------------------------------------------ information
    @property
    def flat_params(self) -> np.ndarray:
        """:math:`\\hat\\theta` flattened in :attr:`names` order."""
        return np.asarray(ravel_pytree(self.params)[0])

    def _prior_curvature(self) -> np.ndarray:
        if self.prior is None:
            return np.zeros((len(self.names), len(self.names)))
        return self.prior.negative_hessian(self.params, names=self.names)

    def information(self, kind: str = "observed") -> InfoMatrix:
        """Information matrix at the estimate: ``"observed"``, ``"expected"`` or ``"empirical"``.

        ``observed`` and ``expected`` include the prior's curvature
        :math:`-\\nabla^2\\log p(\\theta)` when the fit had a prior (posterior
        precision); ``empirical`` is the data's outer product of scores only.

        Raises:
            InvalidOptionError: ``kind`` not one of ``"observed"``, ``"expected"``,
                ``"empirical"`` (``"sandwich"`` is a covariance: :meth:`cov`).
        """
        choice = _check_kind(kind, CovKind)
        if choice is CovKind.SANDWICH:
            raise InvalidOptionError(
                "kind='sandwich': the sandwich is a covariance, not an information: use "
                "cov('sandwich'); information kinds are ['observed', 'expected', 'empirical']"
            )
        if choice.value not in self._info:
            y, x, p = self.data.y, self.data.x, self.params
            if choice is CovKind.OBSERVED:
                info = observed_information(self.model, p, y, x)
                m = info.matrix + self._prior_curvature()
            elif choice is CovKind.EXPECTED:
                # an iid model (x is None) gives one observation's Fisher: N of them were seen
                n = self.nobs if x is None else 1
                info = fisher(self.model, p, x, n=n)
                m = info.matrix + self._prior_curvature()
            else:
                info = empirical_fisher(self.model, p, y, x)
                m = info.matrix
            # numeric derivatives (or Monte-Carlo) carry an error estimate: keep it
            self._info[choice.value] = InfoMatrix(
                m, self.names, method=choice.value, error=info.error, evaluations=info.evaluations
            )
        return self._info[choice.value]

    def _jacobian(self) -> np.ndarray:
        return self.reparam.jacobian(jnp.asarray(self.u))

    def cov(self, kind: str = "observed", *, scale: str = "user") -> Covariance:
        """Covariance of the estimate (see the module table for ``kind``).

        Args:
            kind: ``"observed"``, ``"expected"``, ``"empirical"`` or ``"sandwich"``.
            scale: ``"user"`` (your parameters) or ``"unconstrained"`` (the
                fitting scale :math:`u`, which differs only for constrained parameters).

        Raises:
            SingularInformationError: the information is singular or indefinite,
                naming the unidentified parameter combination.
            InvalidOptionError: ``kind`` or ``scale`` not one of their values.
        """
        choice = _check_kind(kind, CovKind)
        scale = choose(CovScale, scale, "scale").value
        g = self._jacobian()
        names_u = self.reparam.names_u

        def on_u(kind_: str) -> InfoMatrix:
            info = self.information(kind_)
            if self.reparam.identity:
                return info
            error = None if info.error is None else np.abs(g).T @ info.error @ np.abs(g)
            return InfoMatrix(g.T @ info.matrix @ g, names_u, method=f"{kind_} (unconstrained)", error=error)

        error_u = None
        if choice is CovKind.SANDWICH:
            bread = on_u("observed").cov().matrix
            meat = on_u("empirical").matrix
            cov_u = bread @ meat @ bread
        else:
            info_u = on_u(choice.value)
            cov_u = info_u.cov().matrix
            if info_u.error is not None:
                # first order: d(A^-1) = -A^-1 dA A^-1, so |d cov| <= |cov| |dA| |cov| entrywise
                error_u = np.abs(cov_u) @ info_u.error @ np.abs(cov_u)
        if scale == "unconstrained":
            return Covariance(cov_u, names_u, method=choice.value, error=error_u)
        cov = cov_u if self.reparam.identity else g @ cov_u @ g.T
        error = error_u
        if error_u is not None and not self.reparam.identity:
            error = np.abs(g) @ error_u @ np.abs(g).T
        return Covariance(cov, self.names, method=choice.value, error=error)

    def se(self, kind: str = "observed") -> dict[str, float]:
        """Standard errors, name -> float.

        Raises:
            InvalidOptionError: ``kind`` not one of its values.
            SingularInformationError: as :meth:`cov`.
        """
        return self.cov(kind).se()

    # ------------------------------------------------------------------ intervals
    def elementwise_transforms(self) -> list[tuple[Callable[[Any], Any] | None, int]]:
        """How each flattened parameter maps to one coordinate of the fitting scale, if they all do.

        For parameter :math:`i` (in :attr:`names` order) the pair ``(t, j)`` says
        :math:`\\theta_i = t(u_j)`, with ``t`` a scalar bijection applied elementwise
        (e.g. :math:`\\exp` for ``"positive"``) or ``None`` for the identity
        :math:`\\theta_i = u_j`. Profiles fix :math:`u_j` and re-optimise the rest, then map
        the result back with ``t``; Wald intervals on the unconstrained scale are mapped the same way.

        Returns:
            One ``(t, j)`` per parameter, or an empty list when some constraint mixes
            coordinates (a simplex or an ordered vector: no parameter is one coordinate of
            :math:`u`), so profile intervals and contours are unavailable.

        Example:
            >>> import fisherlab as fl, numpy as np
            >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]),
            ...              constraints={"sigma": "positive"})
            >>> res = fl.fit(m, np.array([1.0, 2.0, 4.0]), init={"mu": 0.0, "sigma": 1.0})
            >>> [(t is None, j) for t, j in res.elementwise_transforms()]
            [(True, 0), (False, 1)]
        """
        out: list[tuple[Callable[[Any], Any] | None, int]] = []
        offset = 0
        for leaf, t in zip(jax.tree_util.tree_leaves(self.params), self.reparam.transforms, strict=True):
            size = int(np.size(leaf))
            if t is not None and t.domain.event_dim != 0:
                return []
            out.extend((t, offset + k) for k in range(size))
            offset += size
        return out

    @property
    def vectorized(self) -> bool:
        """Whether the objective evaluates many points :math:`u` in one vectorised pass.

        True for autodiff models (the batch of points runs under ``jax.vmap`` in one compiled
        call); False for numeric black-box models, whose batch evaluation loops over the
        points, each costing finite-difference calls of the model function. A 2-D profile
        grid (:func:`fisherlab.inference.profile_grid`) re-optimises hundreds of points, so
        the report draws profile contours only for a vectorised objective.
        """
        return bool(self.objective.source.batched)

    def conf_int(self, level: float = 0.95, kind: str = "observed", *, method: str = "wald") -> pd.DataFrame:
        """Confidence intervals, a DataFrame with columns ``lower``, ``upper`` indexed by name.

        Args:
            level: coverage, e.g. 0.95.
            kind: covariance kind for Wald intervals.
            method: ``"wald"`` (:math:`\\hat\\theta \\pm z\\,se`; for a constrained
                parameter computed on the unconstrained scale and mapped back, so it
                never leaves the support) or ``"profile"`` (likelihood-ratio:
                :math:`\\{\\psi: 2[\\ell(\\hat\\theta) - \\ell_p(\\psi)] \\le \\chi^2_{1,\\text{level}}\\}`,
                re-optimising the other parameters; asymmetric where the likelihood is).

        Raises:
            InvalidOptionError: ``level`` outside (0, 1) or NaN; ``kind`` or ``method`` not one
                of their values.
            FisherlabArgumentError: ``level`` not a number (a string, a bool).
            SingularInformationError: as :meth:`cov`.
        """
        level = _check_level(level)
        _check_kind(kind, CovKind)
        choice = choose(IntervalMethod, method, "method")
        if choice is IntervalMethod.PROFILE:
            from ._profile import profile_intervals

            return profile_intervals(self, level)
        z = float(scipy.stats.norm.ppf(0.5 + level / 2))
        theta = self.flat_params
        se = np.sqrt(np.diag(self.cov(kind).matrix))
        lower, upper = theta - z * se, theta + z * se
        aligned = self.elementwise_transforms()
        if aligned and not self.reparam.identity:
            se_u = np.sqrt(np.diag(self.cov(kind, scale="unconstrained").matrix))
            for i, (t, j) in enumerate(aligned):
                if t is None:
                    continue
                lo, hi = (float(t(jnp.asarray(self.u[j] + s * z * se_u[j]))) for s in (-1.0, 1.0))
                lower[i], upper[i] = min(lo, hi), max(lo, hi)
        return pd.DataFrame({"lower": lower, "upper": upper}, index=self.names)

    # ------------------------------------------------------------------ tables
    def to_pandas(self, kind: str = "observed", level: float = 0.95) -> pd.DataFrame:
        """Estimate, se, z, p-value (two-sided Wald test of 0) and confidence interval per parameter.

        Raises:
            InvalidOptionError, FisherlabArgumentError: a bad ``kind`` or ``level`` (as :meth:`conf_int`).
        """
        _check_level(level)
        theta = self.flat_params
        se = np.sqrt(np.diag(self.cov(kind).matrix))
        z = theta / se
        p = 2 * scipy.stats.norm.sf(np.abs(z))
        ci = self.conf_int(level, kind)
        pct = f"{100 * level:g}%"
        return pd.DataFrame(
            {
                "estimate": theta,
                "se": se,
                "z": z,
                "p": p,
                f"lower {pct}": ci["lower"].to_numpy(),
                f"upper {pct}": ci["upper"].to_numpy(),
            },
            index=self.names,
        )

    def summary(self, kind: str = "observed", level: float = 0.95) -> Summary:
        """The summary table (:class:`Summary`: ``str()`` for text, Rich renders it as a table).

        Raises:
            InvalidOptionError, FisherlabArgumentError: a bad ``kind`` or ``level`` (as :meth:`conf_int`).
        """
        _check_level(level)
        _check_kind(kind, CovKind)
        header = [
            f"fisherlab fit: {'MAP' if self.prior is not None else 'maximum likelihood'}, N = {self.nobs}",
            f"log-likelihood {self.loglik:.6g}, converged in {self.n_iter} iterations "
            f"({self.method}, Newton decrement {self.decrement:.1e}), covariance: {kind}",
        ]
        return Summary(self.to_pandas(kind, level), header, self.notes)

    def __repr__(self) -> str:
        return str(self.summary())

    # ------------------------------------------------------------------ delta method, Laplace
    def derived(self, fn: Callable[[Any], Any], kind: str = "observed") -> Derived:
        """Delta method: estimate and standard error of ``fn(params)``.

        :math:`\\operatorname{Cov}[g(\\hat\\theta)] \\approx \\nabla g\\, \\Sigma\\, \\nabla g^\\top`
        with :math:`\\nabla g` by autodiff and :math:`\\Sigma` = :meth:`cov` (``kind``).

        Args:
            fn: ``fn(params) -> scalar or array``, written with ``jax.numpy`` (it is
                differentiated by JAX), defined and differentiable at the estimate.
            kind: the covariance kind of :meth:`cov`.

        Raises:
            InvalidParameterError: ``fn`` is not finite at the estimate (undefined there: the log
                of a negative parameter), or its gradient is not (not differentiable there:
                ``sqrt`` at 0); the function, the output and the estimate are named.
            FisherlabArgumentError: ``fn`` is not callable, cannot be traced by JAX, or returns
                a complex or non-numeric value.
            InvalidOptionError: ``kind`` not one of its values.
            SingularInformationError: as :meth:`cov`.

        Example:
            >>> import fisherlab as fl, numpy as np, jax.numpy as jnp
            >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
            >>> res = fl.fit(m, np.array([2.0, 4.0, 3.0, 5.0]), init={"rate": 1.0})
            >>> d = res.derived(lambda th: jnp.log(th["rate"]))   # se = se(rate) / rate
            >>> round(d.estimate, 6), round(d.se, 6), round(res.se()["rate"] / 3.5, 6)
            (1.252763, 0.267261, 0.267261)
            >>> res.derived(lambda th: jnp.log(-th["rate"]))
            Traceback (most recent call last):
            ...
            fisherlab._errors.InvalidParameterError: derived: fn (...) is nan at the estimate {rate=3.5}: ...
        """
        if not callable(fn):
            raise FisherlabArgumentError(
                "derived: fn must be a function fn(params) -> number or array, got "
                f"{type(fn).__name__} {fn!r:.40}"
            )
        cov_kind = _check_kind(kind, CovKind)
        label = _function_name(fn)
        flat, unravel = ravel_pytree(self.params)
        theta = np.asarray(flat, dtype=np.float64)
        at = _estimate_text(self.names, theta)

        def g(v: jax.Array) -> jax.Array:
            return jnp.ravel(jnp.asarray(fn(unravel(v))))

        shape = trace_shape(
            lambda v: jnp.asarray(fn(unravel(v))),
            flat,
            what=f"derived: fn ({label})",
            advice="it is differentiated by JAX: write it with jax.numpy",
        )
        if not (jnp.issubdtype(shape.dtype, jnp.floating) or jnp.issubdtype(shape.dtype, jnp.integer)):
            raise FisherlabArgumentError(
                f"derived: fn ({label}) returns dtype {shape.dtype}; it must return real numbers"
            )
        out_shape = tuple(shape.shape)

        def output(i: int) -> str:
            if not out_shape:
                return ""
            return f" (output {list(int(k) for k in np.unravel_index(i, out_shape))})"

        value = np.asarray(g(flat), dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(value))
        if bad.size:
            i = int(bad[0])
            raise InvalidParameterError(
                f"derived: fn ({label}) is {value[i]}{output(i)} at the estimate {at}: it is undefined "
                "there (a log or square root of a negative number?); the delta method needs a function "
                "that is finite and differentiable at the estimate"
            )
        jac = np.asarray(jax.jacobian(g)(flat), dtype=np.float64).reshape(value.size, theta.size)
        bad_jac = np.argwhere(~np.isfinite(jac))
        if bad_jac.size:
            i, j = (int(k) for k in bad_jac[0])
            raise InvalidParameterError(
                f"derived: the gradient of fn ({label}){output(i)} with respect to {self.names[j]} is "
                f"{jac[i, j]} at the estimate {at}: fn is not differentiable there (a square root or "
                "absolute value at 0?); the delta method needs a finite gradient"
            )
        sigma = self.cov(cov_kind.value).matrix
        cov = jac @ sigma @ jac.T
        variance = np.diag(cov).copy()
        # J Sigma J^T is positive semidefinite: a negative diagonal is rounding, bounded by
        # eps * P * (|J| |Sigma| |J|^T)
        rounding = (
            8 * np.finfo(np.float64).eps * theta.size * np.diag(np.abs(jac) @ np.abs(sigma) @ np.abs(jac).T)
        )
        if np.any(variance < -rounding):
            i = int(np.flatnonzero(variance < -rounding)[0])
            raise SingularInformationError(
                f"derived: the delta-method variance of fn ({label}){output(i)} is negative "
                f"({variance[i]:.3g}): the {cov_kind.value} covariance is not positive semidefinite"
            )
        se = np.sqrt(np.maximum(variance, 0.0)).reshape(out_shape)
        estimate: Any = float(value[0]) if out_shape == () else value.reshape(out_shape)
        return Derived(estimate, float(se) if out_shape == () else se, cov)

    def laplace(self) -> LaplaceApproximation:
        """Gaussian (Laplace) approximation of the posterior at the estimate, with evidence."""
        from ._laplace import laplace_approximation

        return laplace_approximation(self)
