r"""``fl.laplace``: the Laplace approximation of a network's posterior, its evidence and its predictive.

With a Gaussian prior :math:`\theta \sim N(0, \Lambda^{-1})`, :math:`\Lambda = \operatorname{diag}(\lambda)`,
and the curvature :math:`H` of the log-likelihood at the trained weights :math:`\theta^*`
(:func:`fisherlab.curvature`, summed over rows; the generalised Gauss–Newton by default),

.. math:: p(\theta \mid D) \approx N\big(\theta^*, (H + \Lambda)^{-1}\big), \qquad
          \log p(D) \approx \log p(D\mid\theta^*) - \tfrac12\big[\log\det(H+\Lambda)
          - \log\det\Lambda + \theta^{*\top}\Lambda\theta^*\big]

(MacKay 1992; Ritter et al. 2018; Immer et al. 2021; Daxberger et al. 2021). This is
:func:`~fisherlab.inference._laplace.laplace_log_evidence`, the formula of
``FitResult.laplace().log_evidence``, with :math:`\log p(\theta^*)` the Gaussian prior's
density: the two differ only in :math:`H` (the fit's full observed information there, a
structured GGN or Fisher here). The evidence is exact for a linear-Gaussian model. It is a
statement about :math:`\theta^*` as a mode of the posterior: train with the same prior (weight
decay :math:`\lambda/2\,\lVert\theta\rVert^2` on the summed loss).

:math:`H` is factored once per structure (:mod:`._forms`), so a new prior precision costs no new
pass over the data nor a refactorisation for a scalar or per-layer prior (K-FAC, full and block
shift their eigenvalues; diagonal and low rank are elementwise and rank-:math:`r`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .._errors import FisherlabArgumentError, MethodUnavailableError, NotConvergedError
from .._options import (
    CurvatureKind,
    KFACApprox,
    LaplaceStructure,
    PredictiveMethod,
    PriorMethod,
    PriorStructure,
    choose,
    count,
    seed_value,
)
from .._precision import x64_scope
from ..data._chunks import Chunks
from ..data._prepare import prepare_data
from ..inference._laplace import laplace_log_evidence
from ..information._matrix import Covariance
from ..model._model import Model, require_model
from ..operators._base import MAX_DENSE_BYTES, Curvature, _scoped
from ..operators._curvature import _works_in_x64, curvature
from ..params._pytree import as_params
from ._forms import Form
from ._posterior_precision import PosteriorPrecision, form_of
from ._predictive import Outputs, Predictive, mean_probs
from ._prior_precision import PriorPrecision, parse_prior_precision, prior_of_structure
from ._subset import Subset, choose_subset

__all__ = ["NetworkLaplace", "laplace"]

#: ``optimize_prior_precision(method="marglik")`` searches log precisions in this range; an optimum
#: at its edge means the marginal likelihood keeps rising towards 0 or infinity.
LOG_PRECISION_BOUNDS = (-25.0, 25.0)

#: The grid of ``optimize_prior_precision(method="cv")`` unless one is given.
CV_GRID = tuple(np.logspace(-4, 4, 21).tolist())


class NetworkLaplace:
    """A Laplace approximation of a network's posterior (see :func:`laplace` and the module docstring).

    Attributes:
        kind, structure: the curvature's kind and the posterior precision's structure.
        mean: :math:`\\theta^*`, the posterior's parameters (a pytree: the model's, or the chosen
            subset's keyed by layer and name).
        subset: the paths of the chosen parameter leaves (``[]``: all).
        n, p: rows of the data and parameters of the posterior.
        layers: ``(name, start, stop)`` of each layer (the groups of a per-layer prior).
        log_likelihood: :math:`\\log p(D \\mid \\theta^*)`, summed over rows.
        curvature: :math:`H`, a :class:`~fisherlab.Curvature`.
        x64: whether the work runs with JAX's 64-bit mode (the parameters' dtype, as
            :func:`fisherlab.curvature`).
    """

    def __init__(
        self, sub: Subset, curv: Curvature, form: Form, prior: PriorPrecision, loglik: float
    ) -> None:
        self._sub, self.curvature, self._form, self._prior = sub, curv, form, prior
        self.kind, self.structure = curv.kind, _public_structure(curv.structure)
        self.mean, self.n, self.p, self.layers = curv.params, curv.n, curv.p, curv.layers
        self.subset = list(sub.leaves)
        self.log_likelihood = float(loglik)
        self.x64 = curv.x64
        self._theta = np.asarray(curv.exact.flat, dtype=np.float64)

    def __repr__(self) -> str:
        return (
            f"NetworkLaplace(kind={self.kind!r}, structure={self.structure!r}, P={self.p}, N={self.n}, "
            f"prior={self._prior.structure})"
        )

    # ------------------------------------------------------------------ the posterior
    @property
    @_scoped
    def prior_precision(self) -> Any:
        """:math:`\\lambda` as given: a float, a dict per layer, or a pytree like ``mean``."""
        return self._prior.public(self.layers, self.mean)

    @property
    @_scoped
    def posterior_precision(self) -> PosteriorPrecision:
        """:math:`H + \\Lambda` as a curvature object (``mv``, ``solve``, ``logdet``, ``eigh``...)."""
        return PosteriorPrecision(self.curvature, self._form, self._prior.flat)

    @property
    @_scoped
    def posterior_covariance(self) -> Covariance:
        """:math:`\\Sigma = (H + \\Lambda)^{-1}` as a labelled matrix (small :math:`P`).

        Raises:
            MethodUnavailableError: more than :data:`~fisherlab.operators.MAX_DENSE_BYTES` (the size
                is given); use ``posterior_variance``, ``sample`` or ``predictive``.
        """
        need = self.p * self.p * 8
        if need > MAX_DENSE_BYTES:
            raise MethodUnavailableError(
                f"the {self.p} x {self.p} posterior covariance needs {need / 2**30:.1f} GiB (more than "
                f"{MAX_DENSE_BYTES / 2**30:.0f} GiB); use posterior_variance, sample() or predictive()"
            )
        cov = self._form.cov_rows(self._prior.flat, np.eye(self.p))
        return Covariance(0.5 * (cov + cov.T), self.curvature.names)

    @property
    @_scoped
    def posterior_variance(self) -> Any:
        """The diagonal of :math:`\\Sigma`, a pytree like ``mean`` (every structure, any :math:`P`)."""
        return self.curvature._tree(self._form.cov_diagonal(self._prior.flat))

    # ------------------------------------------------------------------ evidence
    def _log_ml(self, prior: PriorPrecision) -> float:
        lam = prior.flat
        logprior = -0.5 * self.p * np.log(2 * np.pi) + 0.5 * np.sum(np.log(lam)) - 0.5 * lam @ self._theta**2
        return laplace_log_evidence(self.log_likelihood, float(logprior), self._form.logdet(lam), self.p)

    @_scoped
    def log_marginal_likelihood(self, prior_precision: Any = None) -> float:
        """:math:`\\log p(D) \\approx \\log p(D\\mid\\theta^*) - \\tfrac12[\\log\\det(H+\\Lambda) -
        \\log\\det\\Lambda + \\theta^{*\\top}\\Lambda\\theta^*]` at this prior precision or another
        (no new pass over the data; see the module docstring).

        Raises:
            SingularInformationError: :math:`H + \\Lambda` is not positive definite.
            InvalidOptionError: a prior precision that is not positive.
        """
        prior = self._prior if prior_precision is None else self._parse(prior_precision)
        return self._log_ml(prior)

    def _parse(self, value: Any) -> PriorPrecision:
        return parse_prior_precision(value, self.mean, self.layers, self.p)

    def _with(self, prior: PriorPrecision) -> NetworkLaplace:
        return NetworkLaplace(self._sub, self.curvature, self._form, prior, self.log_likelihood)

    @_scoped
    def optimize_prior_precision(
        self,
        method: str = "marglik",
        *,
        prior_structure: str | None = None,
        val: Any = None,
        grid: Any = None,
    ) -> NetworkLaplace:
        """A new Laplace with the prior precision chosen from the data.

        ``"marglik"`` maximises :meth:`log_marginal_likelihood` over :math:`\\log\\lambda` (L-BFGS-B,
        SciPy) with its gradient :math:`\\partial/\\partial\\log\\lambda_g = \\tfrac12 n_g -
        \\tfrac12\\lambda_g\\sum_{i\\in g}(\\Sigma_{ii} + \\theta_i^{*2})` (:math:`n_g` parameters in
        group :math:`g`), for one precision (``prior_structure="scalar"``), one per layer
        (``"layer"``) or one per parameter (``"diagonal"``; not with K-FAC); by default the
        structure of the current prior. ``"cv"`` takes the value of ``grid`` (default
        :math:`10^{-4}\\ldots10^4`, 21 values) with the least negative log predictive density
        (:meth:`Predictive.log_prob`, GLM predictive; probit for classification) on
        ``val = (y_val, x_val)``; a scalar prior.

        Raises:
            NotConvergedError: the optimiser failed, or the optimum is at the edge of
                ``exp(LOG_PRECISION_BOUNDS)`` (the evidence keeps rising towards a precision of 0 or
                infinity; the group is named).
            MethodUnavailableError: a per-parameter prior with K-FAC.
            FisherlabArgumentError: ``"cv"`` without ``val``.
        """
        method = choose(PriorMethod, method, "optimize_prior_precision: method").value
        if method == "cv":
            return self._cross_validate(val, grid)
        ps = choose(
            PriorStructure,
            prior_structure or self._prior.structure,
            "optimize_prior_precision: prior_structure",
        ).value
        if ps == "diagonal" and self.structure == "kfac":
            raise MethodUnavailableError(
                "structure='kfac' takes one prior precision per layer at most; use prior_structure='layer' "
                "or 'scalar', or structure='diagonal' / 'full' for one per parameter"
            )
        template = prior_of_structure(ps, np.ones(1), self.layers, self.p)
        groups = template.groups
        size = int(groups.max()) + 1
        counts = np.bincount(groups, minlength=size).astype(np.float64)
        start = np.exp(np.bincount(groups, np.log(self._prior.flat), minlength=size) / counts)
        theta2 = self._theta**2

        def objective(psi: np.ndarray) -> tuple[float, np.ndarray]:
            prior = prior_of_structure(ps, np.exp(psi), self.layers, self.p)
            lam = prior.flat
            value = self._log_ml(prior)
            per = np.bincount(groups, lam * (self._form.cov_diagonal(lam) + theta2), minlength=size)
            return -value, -(0.5 * counts - 0.5 * per)

        bounds = [LOG_PRECISION_BOUNDS] * size
        x0 = np.clip(np.log(start), *LOG_PRECISION_BOUNDS)
        res = scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds)
        if not res.success or not np.all(np.isfinite(res.x)):
            raise NotConvergedError(
                f"optimize_prior_precision: L-BFGS-B stopped without converging ({res.message})"
            )
        edge = np.flatnonzero(
            np.isclose(res.x, LOG_PRECISION_BOUNDS[0]) | np.isclose(res.x, LOG_PRECISION_BOUNDS[1])
        )
        if edge.size:
            g = int(edge[0])
            where = (
                "every parameter"
                if ps == "scalar"
                else (f"layer {self.layers[g][0]}" if ps == "layer" else self.curvature.names[g])
            )
            towards = "0" if res.x[g] < 0 else "infinity"
            raise NotConvergedError(
                f"optimize_prior_precision: the marginal likelihood keeps rising as the prior precision of "
                f"{where} goes to {towards} (stopped at {np.exp(res.x[g]):.3g}); the data do not bound it: "
                "use prior_structure='scalar' or a fixed prior_precision"
            )
        return self._with(prior_of_structure(ps, np.exp(res.x), self.layers, self.p))

    def _cross_validate(self, val: Any, grid: Any) -> NetworkLaplace:
        if not isinstance(val, tuple) or len(val) != 2:
            raise FisherlabArgumentError(
                "optimize_prior_precision(method='cv') needs val=(y_val, x_val), the validation data"
            )
        values = np.asarray(CV_GRID if grid is None else grid, dtype=np.float64).ravel()
        if values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise FisherlabArgumentError("optimize_prior_precision: grid must hold finite numbers > 0")
        y_val, x_val = val
        outs = Outputs(self._sub.model, self.mean, x_val)
        lams = [np.full(self.p, v) for v in values]
        mean, covs = outs.moments(self._form, lams)
        method = "probit" if outs.head in ("categorical", "bernoulli") else "glm"
        nll = []
        for cov in covs:
            probs = outs.probs(method, mean, cov, 1000, 0)
            pred = Predictive(method, outs.names, mean, cov, probs, outs.head, outs.scale, None)
            nll.append(-float(np.sum(pred.log_prob(y_val))))
        best = int(np.argmin(nll))
        return self._with(prior_of_structure("scalar", values[best : best + 1], self.layers, self.p))

    # ------------------------------------------------------------------ predictions
    @_scoped
    def predictive(
        self, x_new: Any, method: str = "glm", *, num_samples: int | None = None, seed: int = 0
    ) -> Predictive:
        """The predictive on rows ``x_new`` (:mod:`._predictive`): the output's ``mean``,
        ``variance``, ``covariance``, class ``probs`` and :meth:`Predictive.log_prob`.

        Args:
            x_new: new inputs, leading axis N.
            method: ``"glm"`` (linearised network), ``"probit"`` (its moments, probabilities by the
                probit approximation) or ``"mc"`` (sampled weights).
            num_samples: ``"glm"``: draws of the output for the probabilities (default 1000);
                ``"mc"``: draws of the weights (default 100).
            seed: the draws' seed.

        Raises:
            FisherlabArgumentError: no ``x_new``.
            InvalidDataError: NaN/inf in ``x_new``.
        """
        method = choose(PredictiveMethod, method, "predictive: method").value
        seed = seed_value(seed, "predictive: seed")
        default = 100 if method == "mc" else 1000
        num = default if num_samples is None else count(num_samples, "predictive: num_samples", what="draws")
        outs = Outputs(self._sub.model, self.mean, x_new)
        lam = self._prior.flat
        if method == "mc":
            samples = outs.sampled(self._draws(num, seed))
            mean = samples.mean(axis=0)
            centred = samples - mean
            cov = np.einsum("sni,snj->nij", centred, centred) / num
            probs = mean_probs(outs.head, samples)
            return Predictive(method, outs.names, mean, cov, probs, outs.head, outs.scale, samples)
        mean, (cov,) = outs.moments(self._form, [lam])
        probs = outs.probs(method, mean, cov, num, seed)
        return Predictive(method, outs.names, mean, cov, probs, outs.head, outs.scale, None)

    @_scoped
    def information_gain(self, x_new: Any) -> np.ndarray:
        r"""The expected information gain of ONE more observation at each row of ``x_new`` (nats).

        For the linearised network, labelling :math:`x` adds :math:`I(x) = J^\top W J` to the
        posterior precision (:math:`J = \partial f/\partial\theta` of the output,
        :math:`W` the head's Fisher information in the output at :math:`\theta^*`), and by the
        matrix determinant lemma the D-criterion's increment is

        .. math:: \tfrac12\big[\log\det(\Sigma^{-1} + J^\top W J) - \log\det\Sigma^{-1}\big]
                  = \tfrac12 \log\det\big(I_m + W^{1/2} J\Sigma J^\top W^{1/2}\big),

        the mutual information between the new label and the weights under the Gaussian
        posterior (MacKay 1992's information-based objective; the sequential D-optimal design of
        active learning). It needs only the predictive covariance :math:`J\Sigma J^\top`, so it
        works for every structure (K-FAC, diagonal, low rank, last layer, full) at any :math:`P`;
        the candidate with the largest gain is the next to label.

        Heads: ``Categorical(logits=)`` (:math:`W = \operatorname{diag}p - pp^\top`),
        ``Bernoulli(logits=)`` (:math:`p(1-p)`) and a Normal whose output is its mean
        (:math:`1/\sigma^2`).

        Raises:
            MethodUnavailableError: another head.
            FisherlabArgumentError / InvalidDataError: no ``x_new``, or NaN/inf in it.
        """
        pred = self.predictive(x_new, "probit")
        mean, head = pred._mean, pred._head
        n, m = mean.shape
        cov = np.asarray(pred.covariance, dtype=np.float64).reshape(n, m, m)
        if head == "categorical":
            p = np.exp(mean - mean.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            w = np.einsum("nk,kl->nkl", p, np.eye(m)) - np.einsum("nk,nl->nkl", p, p)
        elif head == "bernoulli":
            p = 1.0 / (1.0 + np.exp(-mean[:, 0]))
            w = (p * (1.0 - p))[:, None, None]
        elif head == "normal" and pred._scale is not None:
            w = np.einsum("nk,kl->nkl", 1.0 / pred._scale**2, np.eye(m))
        else:
            raise MethodUnavailableError(
                "information_gain needs a Categorical(logits=), Bernoulli(logits=) or Normal (mean output) "
                "head; for another model use fl.design.point_information with a dense posterior"
            )
        values, vectors = np.linalg.eigh(w)
        root = vectors * np.sqrt(np.maximum(values, 0.0))[:, None, :]
        inner = np.einsum("nkr,nkl,nls->nrs", root, cov, root)
        return 0.5 * np.sum(np.log1p(np.maximum(np.linalg.eigvalsh(inner), 0.0)), axis=1)

    def _draws(self, n: int, seed: int) -> np.ndarray:
        z = np.random.default_rng(seed).standard_normal((n, self.p))
        return self._theta + self._form.sqrt_rows(self._prior.flat, z)

    @_scoped
    def sample(self, n: int, seed: int = 0) -> Any:
        """``n`` draws of the model's parameters from the posterior: a pytree like the model's
        parameters with a leading axis ``n`` (parameters outside the subset at their values).

        Raises:
            InvalidOptionError: ``n < 1`` or ``seed < 0``.
        """
        n = count(n, "sample: n", what="draws")
        draws = jnp.asarray(self._draws(n, seed_value(seed, "sample: seed")), dtype=self.curvature.dtype)
        unravel, full = self.curvature.exact.unravel, self._sub.full
        trees = jax.vmap(lambda f: full(unravel(f)))(draws)
        return jax.tree_util.tree_map(np.asarray, trees)


def _public_structure(structure: str) -> str:
    return "full" if structure == "dense" else structure


def laplace(
    model: Model,
    params: Any,
    y: Any,
    x: Any = None,
    *,
    kind: str = "ggn",
    structure: str = "kfac",
    subset: Any = "all",
    prior_precision: Any = 1.0,
    rank: int = 20,
    num_samples: int = 1,
    seed: int = 0,
    ekfac: bool = False,
    kfac_approx: str = "expand",
    force: bool = False,
) -> NetworkLaplace:
    r"""The Laplace approximation of a network's posterior at its trained weights ``params``.

    .. math:: p(\theta\mid D) \approx N\big(\theta^*, (H + \Lambda)^{-1}\big),

    :math:`H` the ``kind`` curvature of the log-likelihood summed over rows
    (:func:`fisherlab.curvature`), :math:`\Lambda` the prior precision (prior
    :math:`N(0, \Lambda^{-1})`). See :class:`NetworkLaplace` for the evidence, the prior's
    optimisation, the predictive and samples.

    Args:
        model: an :class:`~fisherlab.Model` taking all rows at once (``fl.Model(fn)``,
            ``fl.Model.from_equinox``, ``fl.Model.from_flax``).
        params: the trained parameters (a pytree). Float32 parameters are worked on in float32 (the
            factored posterior in float64), others in float64.
        y: observations, leading axis N; or an :func:`fisherlab.data.chunks` source (``x`` omitted).
        x: inputs, leading axis N.
        kind: the curvature: ``"ggn"`` (default), ``"fisher"``, ``"mc_fisher"``, ``"empirical"`` or
            ``"hessian"`` (:func:`fisherlab.curvature`).
        structure: ``"kfac"`` (default), ``"diagonal"``, ``"full"`` (or ``"dense"``), ``"block"``
            (per layer) or ``"lowrank"`` (``rank`` eigenpairs plus the diagonal they leave).
        subset: ``"all"``, ``"last_layer"`` (the last dense or convolutional layer found in the
            model) or a list of parameter names or their prefixes (``["head"]``,
            ``["layers[2].weight"]``); the other parameters stay at their values.
        prior_precision: a number, one per layer (a dict or a sequence in ``layers`` order) or one
            per parameter (a pytree like the parameters, or :math:`P` numbers).
        rank: as :func:`fisherlab.curvature`'s.
        num_samples: as :func:`fisherlab.curvature`'s.
        seed: as :func:`fisherlab.curvature`'s.
        ekfac: as :func:`fisherlab.curvature`'s.
        kfac_approx: as :func:`fisherlab.curvature`'s.
        force: as :func:`fisherlab.curvature`'s.

    Returns:
        A :class:`NetworkLaplace`.

    Raises:
        SingularInformationError: :math:`H + \Lambda` is not positive definite.
        MethodUnavailableError: ``structure="full"`` that would not fit in memory (the size is
            given; use ``force=True``), ``"last_layer"`` without a layer, a per-parameter prior
            with K-FAC.
        InvalidOptionError: an unknown option, a prior precision that is not positive, a subset
            name that matches no parameter.
        InvalidDataError, ModelError: as :func:`fisherlab.curvature`.

    Examples:
        >>> import fisherlab as fl, jax.numpy as jnp, numpy as np
        >>> x = np.linspace(-2.0, 2.0, 40)[:, None]
        >>> y = (x[:, 0] + 0.3 * np.sin(7 * x[:, 0]) > 0).astype(np.int32)
        >>> m = fl.Model(lambda th, x: fl.dist.Categorical(logits=x @ th["w"] + th["b"]))
        >>> la = fl.laplace(m, {"w": jnp.array([[-2.0, 2.0]]), "b": jnp.zeros(2)}, y, x, structure="full")
        >>> la.predictive(np.array([[0.0], [1.5]]), method="probit").probs.shape
        (2, 2)
        >>> bool(la.optimize_prior_precision().log_marginal_likelihood() >= la.log_marginal_likelihood())
        True
    """
    require_model(model, "laplace")
    kind = choose(CurvatureKind, kind, "laplace: kind").value
    raw = "full" if isinstance(structure, str) and structure == "dense" else structure
    public = choose(LaplaceStructure, raw, "laplace: structure").value
    choose(KFACApprox, kfac_approx, "laplace: kfac_approx")
    x64 = _works_in_x64(params)
    with x64_scope(x64):
        params = as_params(params)

        def data() -> Any:  # the rows, for finding the last layer
            if isinstance(y, Chunks):
                return y
            prepared = prepare_data(y, x)
            return (prepared.y, prepared.x)

        sub = choose_subset(model, params, subset, data, x64)
        curv = curvature(
            sub.model,
            sub.params,
            y,
            x,
            kind=kind,
            structure="dense" if public == "full" else public,
            rank=rank,
            num_samples=num_samples,
            seed=seed,
            ekfac=ekfac,
            kfac_approx=kfac_approx,
            force=force,
        )
        form = form_of(curv)
        prior = parse_prior_precision(prior_precision, curv.params, curv.layers, curv.p)
        la = NetworkLaplace(sub, curv, form, prior, curv.exact.loglik())
        if not curv.exact.positive_semidefinite():  # H + Λ may not be positive definite: say so now
            form.logdet(prior.flat)
        return la
