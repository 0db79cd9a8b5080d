r"""The result of a fit: estimates and every flavour of uncertainty around them.

Covariance kinds (all in the user's parameters :math:`\theta`; "sum" convention,
so covariances shrink like 1/N):

=============  =============================================================
``observed``   :math:`J^{-1}`, :math:`J = -\nabla^2[\sum_i \ell_i + \log p(\theta)]` at :math:`\hat\theta`
``expected``   :math:`(F + P)^{-1}`, :math:`F` the expected Fisher, :math:`P = -\nabla^2 \log p(\theta)`
``empirical``  :math:`K^{-1}`, :math:`K = \sum_i s_i s_i^\top` (outer product of gradients, OPG)
``sandwich``   :math:`J^{-1} K J^{-1}` (Huber 1967; White 1980/1982), robust to misspecification;
               ``hc="HC1"``/``"HC2"``/``"HC3"`` rescale :math:`K` (MacKinnon & White 1985)
``cluster``    :math:`J^{-1} \tfrac{G}{G-1}\sum_g S_g S_g^\top J^{-1}`, :math:`S_g = \sum_{i\in g} s_i`
               (``groups=``; Cameron & Miller 2015); the formulas are in :mod:`fisherlab.inference._robust`
=============  =============================================================

With constraints the algebra runs on the unconstrained scale,
:math:`\Sigma_u = (G^\top A G)^{-1}` with :math:`G = \partial\theta/\partial u`,
and is reported as :math:`\Sigma_\theta = G\Sigma_u G^\top` (delta method).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from ..._errors import FisherlabArgumentError, InvalidOptionError, InvalidParameterError
from ..._options import CovKind
from ..._precision import float64_methods
from ...data._chunks import StreamedData
from ...data._prepare import Data
from ...information._data_terms import loglik
from ...information._matrix import Covariance, InfoMatrix
from ...model._model import Model
from ...params._constraints import Reparam
from ...params._prior import Prior
from ._covariance import check_kind, fit_covariance, information_matrix
from ._delta import Derived, delta_method
from ._summary import Summary
from ._wald import fit_summary, wald_intervals, wald_table

if TYPE_CHECKING:
    from .._comparison import LikelihoodRatioTest
    from .._laplace import LaplaceApproximation
    from .._objective import Objective

__all__ = ["FitResult"]


@float64_methods
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
        data: Data | StreamedData,
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
        if isinstance(data, StreamedData):  # the data term of the fit's last pass: no new pass
            self.loglik = float(objective.source.loglik(u))  # type: ignore[attr-defined]
        else:
            self.loglik = float(np.sum(loglik(model, params, data.y, data.x)))
        self.logprior = 0.0 if prior is None else float(prior.log_density(params))
        self._info: dict[str, InfoMatrix] = {}
        # per-row terms of the robust meats (scores, leverages): they depend on the fit only, so
        # renamed copies share them (:mod:`._covariance`)
        self._rows: dict[str, np.ndarray] = {}

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

    def information(self, kind: str = "observed") -> InfoMatrix:
        """Information matrix at the estimate: ``"observed"``, ``"expected"`` or ``"empirical"``.

        ``observed`` and ``expected`` include the prior's curvature
        :math:`-\\nabla^2\\log p(\\theta)` when the fit had a prior (posterior
        precision); ``empirical`` is the data's outer product of scores only.

        Raises:
            InvalidOptionError: ``kind`` not one of ``"observed"``, ``"expected"``,
                ``"empirical"`` (``"sandwich"`` and ``"cluster"`` are covariances: :meth:`cov`).
        """
        choice = check_kind(kind)
        if choice in (CovKind.SANDWICH, CovKind.CLUSTER):
            raise InvalidOptionError(
                f"kind={choice.value!r}: the {choice.value} is a covariance, not an information: use "
                f"cov({choice.value!r}); information kinds are ['observed', 'expected', 'empirical']"
            )
        if choice.value not in self._info:
            self._info[choice.value] = information_matrix(self, choice)
        return self._info[choice.value]

    def cov(
        self,
        kind: str = "observed",
        *,
        scale: str = "user",
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> Covariance:
        r"""Covariance of the estimate (see the module table for ``kind``).

        The robust kinds are :math:`J^{-1} M J^{-1}` with :math:`M` built from the per-row scores
        :math:`s_i` (the formulas, leverages and references are in
        :mod:`fisherlab.inference._robust`):

        - ``"sandwich"``, ``hc="HC0"`` (default): :math:`M = \sum_i s_i s_i^\top` (White 1980);
          ``"HC1"``: :math:`\tfrac{N}{N-P}\sum_i s_i s_i^\top`; ``"HC2"`` / ``"HC3"``:
          :math:`\sum_i s_i s_i^\top/(1-h_i)^{1\text{ or }2}` with :math:`h_i` the leverage
          (for a GLM the weighted hat values :math:`w_i x_i^\top(X^\top W X)^{-1}x_i`, as R's
          ``sandwich::vcovHC``; MacKinnon & White 1985; Zeileis 2004). :math:`P` counts a GLM's
          coefficients (its extra parameter ``sigma``/``shape``/``alpha`` excluded), else all parameters.
        - ``"cluster"``: :math:`M = \tfrac{G}{G-1}\sum_g S_g S_g^\top`, :math:`S_g = \sum_{i\in g} s_i`
          (Cameron & Miller 2015; Stata's ``vce(cluster)`` for ML models). statsmodels'
          default ``use_correction=True`` multiplies further by :math:`(N-1)/(N-K)`.

        Args:
            kind: ``"observed"``, ``"expected"``, ``"empirical"``, ``"sandwich"`` or ``"cluster"``.
            scale: ``"user"`` (your parameters) or ``"unconstrained"`` (the
                fitting scale :math:`u`, which differs only for constrained parameters).
            hc: ``"HC0"`` | ``"HC1"`` | ``"HC2"`` | ``"HC3"``, for ``kind="sandwich"`` only.
            groups: one cluster label per fitted row (ints, strings, a pandas Series), for
                ``kind="cluster"`` only (and required there).
            small_sample: ``kind="cluster"`` only: multiply by :math:`G/(G-1)` (``True``, the
                default) or not (``False``).

        Returns:
            A :class:`Covariance`; its ``method`` names the kind, e.g. ``"sandwich (HC3)"`` or
            ``"cluster (G=23)"``.

        Raises:
            SingularInformationError: the information is singular or indefinite,
                naming the unidentified parameter combination.
            InvalidOptionError: ``kind``, ``scale`` or ``hc`` not one of their values; ``hc``,
                ``groups`` or ``small_sample`` given with a kind they do not apply to.
            FisherlabArgumentError: ``kind="cluster"`` without ``groups``, or ``groups`` not
                one-dimensional.
            InvalidDataError: ``groups`` of the wrong length, with a missing label, or with fewer
                than 2 clusters; ``HC2``/``HC3`` with a row of leverage 1; ``HC1`` with N <= P.

        Examples:
            >>> import fisherlab as fl, numpy as np
            >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, 1.0))
            >>> x = np.array([0.0, 1.0, 2.0, 3.0]); y = np.array([0.1, 0.9, 2.3, 2.8])
            >>> res = fl.fit(m, y, x, init={"a": 0.0, "b": 0.0})
            >>> hc0, hc1 = (res.cov("sandwich", hc=h).matrix for h in ("HC0", "HC1"))
            >>> bool(np.allclose(hc1, hc0 * 4 / (4 - 2)))
            True
            >>> res.cov("cluster", groups=["a", "a", "b", "b"]).method
            'cluster (G=2)'
        """
        return fit_covariance(self, kind, scale, hc, groups, small_sample)

    def se(
        self,
        kind: str = "observed",
        *,
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> dict[str, float]:
        """Standard errors, name -> float (``hc``, ``groups``, ``small_sample``: as :meth:`cov`).

        Raises:
            InvalidOptionError: ``kind`` not one of its values.
            SingularInformationError: as :meth:`cov`.
        """
        return self.cov(kind, hc=hc, groups=groups, small_sample=small_sample).se()

    # ------------------------------------------------------------------ intervals
    def wald_df(self, kind: str = "observed") -> np.ndarray:
        r"""Degrees of freedom of each parameter's Wald test and interval under ``kind``.

        :math:`\infty` for every parameter (z tests, normal quantiles) for a fit by
        :func:`~fisherlab.fit`; a GLM fitted with R's dispersion (``fl.glm(...,
        dispersion="r")``) returns :math:`N - p` for its coefficients where R prints t tests.
        :meth:`conf_int`, :meth:`to_pandas` and :meth:`summary` use these
        (:mod:`fisherlab.inference._result._wald`).

        Raises:
            InvalidOptionError: ``kind`` not one of its values.
        """
        check_kind(kind)
        return np.full(len(self.names), np.inf)

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

        Examples:
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

    def conf_int(
        self,
        level: float = 0.95,
        kind: str = "observed",
        *,
        method: str = "wald",
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> pd.DataFrame:
        """Confidence intervals, a DataFrame with columns ``lower``, ``upper`` indexed by name.

        Args:
            level: coverage, e.g. 0.95.
            kind: covariance kind for Wald intervals (``hc``, ``groups``, ``small_sample``: as
                :meth:`cov`).
            method: ``"wald"`` (:math:`\\hat\\theta \\pm z\\,se`, or a t quantile where
                :meth:`wald_df` is finite; for a constrained
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
        robust: dict[str, Any] = {"hc": hc, "groups": groups, "small_sample": small_sample}
        return wald_intervals(self, level, kind, robust, method)

    # ------------------------------------------------------------------ tables
    def to_pandas(
        self,
        kind: str = "observed",
        level: float = 0.95,
        *,
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> pd.DataFrame:
        """Estimate, se, z (or t, see :meth:`wald_df`), two-sided p-value of 0 and interval per parameter.

        ``hc``, ``groups``, ``small_sample``: as :meth:`cov`.

        Raises:
            InvalidOptionError, FisherlabArgumentError: a bad ``kind`` or ``level`` (as :meth:`conf_int`).
        """
        robust: dict[str, Any] = {"hc": hc, "groups": groups, "small_sample": small_sample}
        return wald_table(self, kind, level, robust)

    def summary(
        self,
        kind: str = "observed",
        level: float = 0.95,
        *,
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> Summary:
        """The summary table (:class:`Summary`: ``str()`` for text, Rich renders it as a table).

        ``hc``, ``groups``, ``small_sample``: as :meth:`cov`; the header names the covariance
        (e.g. ``covariance: cluster (G=23)``).

        Raises:
            InvalidOptionError, FisherlabArgumentError: a bad ``kind`` or ``level`` (as :meth:`conf_int`).
        """
        robust: dict[str, Any] = {"hc": hc, "groups": groups, "small_sample": small_sample}
        return fit_summary(self, kind, level, robust)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        """The summary as HTML for notebooks: header lines, the table, the notes (all escaped)."""
        return self.summary()._repr_html_()

    # ------------------------------------------------------------------ delta method, Laplace
    def derived(
        self,
        fn: Callable[[Any], Any],
        kind: str = "observed",
        *,
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> Derived:
        """Delta method: estimate and standard error of ``fn(params)``.

        :math:`\\operatorname{Cov}[g(\\hat\\theta)] \\approx \\nabla g\\, \\Sigma\\, \\nabla g^\\top`
        with :math:`\\nabla g` by autodiff and :math:`\\Sigma` = :meth:`cov` (``kind``).

        Args:
            fn: ``fn(params) -> scalar or array``, written with ``jax.numpy`` (it is
                differentiated by JAX), defined and differentiable at the estimate.
            kind: the covariance kind of :meth:`cov` (``hc``, ``groups``, ``small_sample``: as there).

        Raises:
            InvalidParameterError: ``fn`` is not finite at the estimate (undefined there: the log
                of a negative parameter), or its gradient is not (not differentiable there:
                ``sqrt`` at 0); the function, the output and the estimate are named.
            FisherlabArgumentError: ``fn`` is not callable, cannot be traced by JAX, or returns
                a complex or non-numeric value.
            InvalidOptionError: ``kind`` not one of its values.
            SingularInformationError: as :meth:`cov`.

        Examples:
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
        return delta_method(self, fn, kind, hc, groups, small_sample)

    def laplace(self) -> LaplaceApproximation:
        """Gaussian (Laplace) approximation of the posterior at the estimate, with evidence."""
        from .._laplace import laplace_approximation

        return laplace_approximation(self)

    # ------------------------------------------------------------------ comparing fits, predictions
    @property
    def aic(self) -> float:
        r"""Akaike's information criterion :math:`-2\hat\ell + 2k`, :math:`k` = ``len(names)``.

        :math:`\hat\ell` is the total log-likelihood :attr:`loglik` and :math:`k` counts every
        estimated parameter, a GLM's dispersion parameter included (``sigma``, ``shape``,
        ``alpha``), as R's ``AIC()`` does for ``glm`` (gaussian, inverse Gaussian) and
        ``MASS::glm.nb``. R's Gamma AIC takes the dispersion ``deviance/N`` instead of the ML
        shape, so it is larger than this one; statsmodels' ``GLMResults.aic`` does not count the
        dispersion (2 less for the gaussian). See :mod:`fisherlab.inference._comparison`.

        Raises:
            MethodUnavailableError: the fit has a prior (a MAP estimate).

        Examples:
            >>> import fisherlab as fl, numpy as np
            >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
            >>> res = fl.fit(m, np.array([2.0, 4.0, 3.0, 5.0]), init={"rate": 1.0})
            >>> round(res.aic, 6) == round(-2 * res.loglik + 2, 6)
            True
        """
        from .._comparison import akaike

        return akaike(self)

    @property
    def bic(self) -> float:
        r"""Schwarz's Bayesian information criterion :math:`-2\hat\ell + k\log N` (:attr:`aic`'s :math:`k`).

        :math:`N` = :attr:`nobs`, the number of rows (R's ``nobs()``; a binomial row with
        trials counts once).

        Raises:
            MethodUnavailableError: the fit has a prior (a MAP estimate).
        """
        from .._comparison import schwarz

        return schwarz(self)

    @property
    def deviance(self) -> float:
        r"""The deviance :math:`D = \sum_i d(y_i, \hat\mu_i)`: R's ``deviance()`` of a GLM fit.

        :math:`d` is the family's unit deviance, twice the log-likelihood ratio of the
        saturated model to the fit at dispersion 1 (gaussian: the residual sum of squares;
        negative binomial: at the fitted :math:`\theta = 1/\hat\alpha`). Available for fits of
        :func:`fisherlab.models.glm`.

        Raises:
            MethodUnavailableError: the model defines no saturated model (not a GLM).
        """
        from .._comparison import model_deviance

        return model_deviance(self.model, self)

    def lr_test(self, smaller: FitResult) -> LikelihoodRatioTest:
        r"""Likelihood-ratio test of ``smaller``, a model nested in this one, fitted to the same data.

        .. math:: \mathrm{LR} = 2(\hat\ell - \hat\ell_{\text{smaller}}),\quad
                  \mathrm{df} = k - k_{\text{smaller}},\quad p = P(\chi^2_{\mathrm{df}} \ge \mathrm{LR})

        with every parameter (dispersion included) at its ML value in both models: R's
        ``lmtest::lrtest``, and ``anova(smaller, bigger, test = "LRT")`` for binomial and Poisson
        GLMs (for families with a dispersion R's ``anova`` scales by the Pearson dispersion
        instead). A parameter on the boundary of its space under the null (the negative
        binomial's ``alpha = 0``) is not :math:`\chi^2`: use
        :func:`fisherlab.models.overdispersion_test`.

        Returns:
            :class:`~fisherlab.inference._comparison.LikelihoodRatioTest` (``statistic``, ``df``,
            ``pvalue``, ``loglik_null``, ``loglik_alt``).

        Raises:
            ModelError: the fits cannot be nested: other rows or observations, not fewer
                parameters, a higher log-likelihood for ``smaller``; for GLMs another family,
                link, offset or trials, or a design outside this one's column space.
            MethodUnavailableError: a fit has a prior.
            FisherlabArgumentError: ``smaller`` is not a fit result.

        Examples:
            >>> import fisherlab as fl, numpy as np
            >>> from fisherlab import models
            >>> X = np.column_stack([np.ones(6), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
            >>> y = np.array([1.0, 0.0, 2.0, 3.0, 5.0, 6.0])
            >>> big = models.fit_glm(models.glm("poisson"), y, X)
            >>> small = models.fit_glm(models.glm("poisson"), y, X[:, :1])
            >>> t = big.lr_test(small)
            >>> t.df, round(t.statistic - (small.deviance - big.deviance), 10)
            (1, 0.0)
        """
        from .._comparison import likelihood_ratio_test

        return likelihood_ratio_test(self, smaller)

    def predict(self, newdata: Any, *, level: float = 0.95, kind: str = "observed") -> pd.DataFrame:
        r"""Predicted means at new covariates with delta-method standard errors (GLM fits).

        For a GLM, per new row: :math:`\hat\eta = x^\top\hat\beta + o`,
        :math:`\operatorname{se}(\hat\eta) = \sqrt{x^\top\Sigma_\beta x}`,
        :math:`\hat\mu = g^{-1}(\hat\eta)` and
        :math:`\operatorname{se}(\hat\mu) = |d\mu/d\eta|\,\operatorname{se}(\hat\eta)`, with
        :math:`\Sigma_\beta` the β-block of :meth:`cov` (``kind``); the interval is the Wald
        interval of :math:`\eta` mapped through :math:`g^{-1}` (statsmodels'
        ``get_prediction().summary_frame()``; R's ``predict(fit, newdata, se.fit = TRUE)``
        gives ``eta``/``se_eta`` with ``type = "link"`` and ``mean``/``se`` with ``type =
        "response"``).

        Args:
            newdata: the design matrix of the new rows ``(M, p)``, a dict ``{"X": ...,
                "offset": ...}`` as the model takes it, or a DataFrame: for a fit from a
                formula (:func:`fisherlab.glm`) one of the original columns, whose design the
                formula builds; otherwise one whose columns are the fit's coefficient names
                (after :meth:`rename` to design-column names).
            level: coverage of the interval.
            kind: the covariance kind of :meth:`cov`.

        Returns:
            DataFrame with columns ``mean``, ``se``, ``lower``, ``upper``, ``eta``,
            ``se_eta``, one row per new row.

        Raises:
            MethodUnavailableError: not a GLM fit.
            InvalidDataError: ``newdata`` of the wrong shape or columns, or not finite.
        """
        from .._prediction import model_predict

        return model_predict(self.model, self, newdata, level, kind)
