r"""The information matrices and covariances of a fit (the kinds of :meth:`FitResult.cov`).

Every kind is computed on the unconstrained fitting scale :math:`u` and mapped to the user's
parameters by the delta method, :math:`\Sigma_\theta = G\Sigma_u G^\top`,
:math:`G = \partial\theta/\partial u`:

- ``observed``, ``expected``, ``empirical``: the inverse of :func:`information_matrix`
  (plus the prior's curvature where the fit had a prior);
- ``sandwich`` (HC0): :math:`J^{-1} K J^{-1}`; HC1–HC3 and ``cluster`` rescale or regroup the
  meat :math:`K` (:func:`robust_meat`; formulas in :mod:`fisherlab.inference._robust`).

A numeric (finite-difference) information carries an error estimate; it is propagated to
first order, :math:`|d\Sigma| \le |\Sigma|\,|dA|\,|\Sigma|` entrywise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._errors import FisherlabArgumentError, InvalidDataError, InvalidOptionError
from ..._options import CovKind, CovScale, HCType, choose
from ...backends import backend_for
from ...data._chunks import CompensatedSum, StreamedData, labelled
from ...information._data_terms import empirical_fisher, observed_information, score
from ...information._fisher import fisher
from ...information._matrix import Covariance, InfoMatrix
from ...params._pytree import as_params, param_names
from .._robust import cluster_meat, hc_meat, leverage, leverage_bread, parse_groups

if TYPE_CHECKING:
    from ._fitresult import FitResult

__all__ = ["check_kind", "fit_covariance", "information_matrix", "robust_options"]


def check_kind(kind: str) -> CovKind:
    """``kind`` as a :class:`CovKind` (``InvalidOptionError`` naming the valid kinds)."""
    return choose(CovKind, kind, "kind")


def _prior_curvature(res: FitResult) -> np.ndarray:
    if res.prior is None:
        return np.zeros((len(res.names), len(res.names)))
    return res.prior.negative_hessian(res.params, names=res.names)


def _observed_from_objective(res: FitResult) -> np.ndarray | None:
    r"""The observed information (prior included) from the fit's own objective, or ``None``.

    The objective is :math:`f(u) = -[\ell + \log p](T(u))`. With an elementwise map
    :math:`\theta_i = T_i(u_{j_i})` (``res.elementwise_transforms()``) its derivatives give the
    information on the user's scale exactly:

    .. math:: J_{ik} = \frac{\partial^2_u f_{j_i j_k} - \delta_{ik}\, g_{\theta,i}\, T_i''}{T_i' T_k'},
              \qquad g_{\theta,i} = \partial_u f_{j_i} / T_i'.

    Compiled kernels of the fit serve it (autodiff objectives only), so the summary of a fit
    traces no other kernel; numeric objectives and mixing constraints return ``None``.
    """
    aligned = res.elementwise_transforms()
    if not res.vectorized or not aligned:
        return None
    u = np.asarray(res.u, dtype=np.float64)
    h_u = res.objective.hessian(u)
    if not np.all(np.isfinite(h_u)):
        return None
    index = np.array([j for _, j in aligned])
    h = h_u[np.ix_(index, index)]
    if res.reparam.identity:
        return h
    grad_u = res.objective.grad(u)[index]
    d1 = np.ones(index.size)
    d2 = np.zeros(index.size)
    for i, (t, j) in enumerate(aligned):
        if t is not None:
            uj = jnp.asarray(u[j])
            d1[i] = float(jax.grad(t)(uj))
            d2[i] = float(jax.grad(jax.grad(t))(uj))
    if not np.all(np.isfinite(d1)) or np.any(d1 == 0.0):
        return None
    h = h - np.diag(grad_u / d1 * d2)
    return h / np.outer(d1, d1)


def information_matrix(res: FitResult, choice: CovKind) -> InfoMatrix:
    """The ``observed`` / ``expected`` / ``empirical`` information of ``res`` at its estimate (not cached)."""
    y, x, p = res.data.y, res.data.x, res.params
    if choice is CovKind.OBSERVED:
        from_fit = _observed_from_objective(res)
        if from_fit is not None:
            return InfoMatrix(from_fit, res.names, method=choice.value)
        info = observed_information(res.model, p, y, x)
        m = info.matrix + _prior_curvature(res)
    elif choice is CovKind.EXPECTED:
        if isinstance(res.data, StreamedData) and res.data.first.x is not None:
            x = res.data.source  # the covariates of every chunk, streamed
        # an iid model (x is None) gives one observation's Fisher: N of them were seen
        info = fisher(res.model, p, x, n=res.nobs if x is None else 1)
        m = info.matrix + _prior_curvature(res)
    else:
        info = empirical_fisher(res.model, p, y, x)
        m = info.matrix
    # numeric derivatives (or Monte-Carlo) carry an error estimate: keep it
    return InfoMatrix(m, res.names, method=choice.value, error=info.error, evaluations=info.evaluations)


def robust_options(
    res: FitResult, choice: CovKind, hc: str | None, groups: Any, small_sample: bool | None
) -> HCType | None:
    """Check that ``hc`` / ``groups`` / ``small_sample`` fit ``kind``; the ``HCType`` of a sandwich."""
    if hc is not None and choice is not CovKind.SANDWICH:
        raise InvalidOptionError(
            f"hc={hc!r} applies to kind='sandwich' only, not kind={choice.value!r}; "
            "use cov('sandwich', hc=...)"
        )
    if groups is not None and choice is not CovKind.CLUSTER:
        raise InvalidOptionError(
            f"groups= applies to kind='cluster' only, not kind={choice.value!r}; use cov('cluster', groups=g)"
        )
    if small_sample is not None and choice is not CovKind.CLUSTER:
        raise InvalidOptionError(f"small_sample= applies to kind='cluster' only, not kind={choice.value!r}")
    if choice is CovKind.CLUSTER and groups is None:
        raise FisherlabArgumentError(
            "cov('cluster') needs groups=: one cluster label per row of the fitted data "
            f"(N = {res.nobs}), e.g. res.cov('cluster', groups=df['firm'])"
        )
    if choice is not CovKind.SANDWICH:
        return None
    return choose(HCType, HCType.HC0.value if hc is None else hc, "hc")


def _leverage_block(res: FitResult) -> np.ndarray:
    """Indices of the parameters whose per-row curvature defines the leverage (:mod:`.._robust`).

    A GLM (``fisherlab.models.glm``) names its fitted extra parameter ``dispersion_name``:
    the block is then the coefficients; for any other model, every parameter.
    """
    extra = getattr(res.model, "dispersion_name", None)
    return np.array([i for i, n in enumerate(param_names(res.params)) if n != extra], dtype=np.int64)


def _row_terms(res: FitResult, with_hat: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The per-row scores of the robust meats and, ``with_hat``, the leverages with the scores
    of the same pass (HC2, HC3), computed once per fit: a summary asks for its covariance
    several times (the table, the intervals, on both scales), and the per-row curvature behind
    the leverages is the costliest step."""
    cache = res._rows
    if not with_hat:
        if "scores" not in cache:
            cache["scores"] = np.asarray(score(res.model, res.params, res.data.y, res.data.x))
        return cache["scores"], None
    if "hat" not in cache:
        params = as_params(res.params)
        assert not isinstance(res.data, StreamedData)  # streamed fits: _streamed_meat
        rows = backend_for(res.model, params, res.data.y, res.data.x).row_curvature(params, res.data)
        cache["hat"] = leverage(-np.asarray(rows.hessians), _leverage_block(res))
        cache["hat_scores"] = np.asarray(rows.scores)
    return cache["hat_scores"], cache["hat"]


def _streamed_meat(res: FitResult, hc: HCType | None, groups: Any, small_sample: bool | None) -> np.ndarray:
    """:func:`robust_meat` of a fit on a chunk source, one chunk at a time (no N-sized arrays but
    the cluster labels): HC1 rescales the empirical Fisher; HC2/HC3 take the leverages' bread
    from the observed information of the data (one pass) and the weighted scores' outer
    products chunk by chunk (a second); cluster sums each group's scores over the chunks."""
    data, params = res.data, as_params(res.params)
    assert isinstance(data, StreamedData)
    block = _leverage_block(res)
    if hc is HCType.HC1:
        n_params = block.size
        if res.nobs <= n_params:
            raise InvalidDataError(f"hc='HC1' needs N > P, got N = {res.nobs}, P = {n_params}")
        return res.nobs / (res.nobs - n_params) * empirical_fisher(res.model, params, data.source).matrix
    backend = backend_for(res.model, params, data.first.y, data.first.x)
    parsed = parse_groups(groups, res.nobs) if hc is None else None
    inverse = None
    if parsed is None:
        total = observed_information(res.model, params, data.source).matrix[np.ix_(block, block)]
        inverse = leverage_bread(total)
    meat = CompensatedSum()
    sums = None if parsed is None else np.zeros((parsed.n_groups, len(res.names)))
    start = 0
    for label, part in data:
        with labelled(label):
            if parsed is not None and sums is not None:
                scores = np.asarray(backend.scores(params, part).value)
                np.add.at(sums, parsed.codes[start : start + part.n], scores)
                start += part.n
                continue
            rows = backend.row_curvature(params, part)
            hessians = -np.asarray(rows.hessians)[:, block][:, :, block]
            assert hc is not None and inverse is not None
            hat = np.einsum("jk,ikj->i", inverse, 0.5 * (hessians + np.swapaxes(hessians, 1, 2)))
            meat.add(hc_meat(np.asarray(rows.scores), hc, n_params=block.size, hat=hat))
    if parsed is not None and sums is not None:
        factor = parsed.n_groups / (parsed.n_groups - 1.0) if small_sample is not False else 1.0
        return factor * (sums.T @ sums)
    return meat.value


def robust_meat(
    res: FitResult, hc: HCType | None, groups: Any, small_sample: bool | None
) -> tuple[np.ndarray, str]:
    """The meat of a robust covariance in the user's parameters (HC1..HC3, cluster) and its label."""
    if isinstance(res.data, StreamedData):
        meat = _streamed_meat(res, hc, groups, small_sample)
        if hc is None:
            return meat, f"cluster (G={parse_groups(groups, res.nobs).n_groups})"
        return meat, f"sandwich ({hc.value})"
    if hc is None:  # cluster
        parsed = parse_groups(groups, res.nobs)
        scores, _ = _row_terms(res, with_hat=False)
        meat = cluster_meat(scores, parsed, small_sample=small_sample is not False)
        return meat, f"cluster (G={parsed.n_groups})"
    n_params, label = _leverage_block(res).size, f"sandwich ({hc.value})"
    if hc is HCType.HC1:
        return hc_meat(_row_terms(res, with_hat=False)[0], hc, n_params=n_params), label
    scores, hat = _row_terms(res, with_hat=True)
    return hc_meat(scores, hc, n_params=n_params, hat=hat), label


def fit_covariance(
    res: FitResult,
    kind: str,
    scale: str,
    hc: str | None,
    groups: Any,
    small_sample: bool | None,
) -> Covariance:
    """:meth:`FitResult.cov`: the covariance of ``kind`` on ``scale``, labelled (see the module)."""
    choice = check_kind(kind)
    on_scale = choose(CovScale, scale, "scale")
    hc_choice = robust_options(res, choice, hc, groups, small_sample)
    g = res.reparam.jacobian(jnp.asarray(res.u))
    names_u = res.reparam.names_u

    def on_u(kind_: str) -> InfoMatrix:
        info = res.information(kind_)
        if res.reparam.identity:
            return info
        error = None if info.error is None else np.abs(g).T @ info.error @ np.abs(g)
        return InfoMatrix(g.T @ info.matrix @ g, names_u, method=f"{kind_} (unconstrained)", error=error)

    error_u = None
    label = choice.value
    if choice is CovKind.SANDWICH and hc_choice is HCType.HC0:
        bread = on_u("observed").cov().matrix
        cov_u = bread @ on_u("empirical").matrix @ bread
    elif choice in (CovKind.SANDWICH, CovKind.CLUSTER):
        bread = on_u("observed").cov().matrix
        meat, label = robust_meat(res, hc_choice, groups, small_sample)
        if not res.reparam.identity:
            meat = g.T @ meat @ g
        cov_u = bread @ meat @ bread
    else:
        info_u = on_u(choice.value)
        cov_u = info_u.cov().matrix
        if info_u.error is not None:
            # first order: d(A^-1) = -A^-1 dA A^-1, so |d cov| <= |cov| |dA| |cov| entrywise
            error_u = np.abs(cov_u) @ info_u.error @ np.abs(cov_u)
    if on_scale is CovScale.UNCONSTRAINED:
        return Covariance(cov_u, names_u, method=label, error=error_u)
    cov = cov_u if res.reparam.identity else g @ cov_u @ g.T
    error = error_u
    if error_u is not None and not res.reparam.identity:
        error = np.abs(g) @ error_u @ np.abs(g).T
    return Covariance(cov, res.names, method=label, error=error)
