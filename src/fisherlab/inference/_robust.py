r"""Robust covariances: the "meat" of the sandwich, heteroskedasticity- and cluster-robust.

For a maximum-likelihood (or MAP) estimate :math:`\hat\theta` the sandwich covariance is

.. math:: \Sigma = J^{-1} M J^{-1},\qquad
          J = -\nabla^2\Big[\sum_{i=1}^N \ell_i(\theta) + \log p(\theta)\Big]_{\hat\theta},

where the meat :math:`M` estimates :math:`\operatorname{Var}[\sum_i s_i]` of the total score
(sums over rows, no 1/N). This module computes :math:`M` from the per-row scores
:math:`s_i = \nabla_\theta \ell_i(\hat\theta)`:

=========  ===============================================================================
``HC0``    :math:`M = \sum_i s_i s_i^\top` (Huber 1967; White 1980): ``cov("sandwich")``
``HC1``    :math:`\frac{N}{N-P}\sum_i s_i s_i^\top` (MacKinnon & White 1985), :math:`P` as below
``HC2``    :math:`\sum_i s_i s_i^\top / (1-h_i)` (MacKinnon & White 1985)
``HC3``    :math:`\sum_i s_i s_i^\top / (1-h_i)^2` (MacKinnon & White 1985; the jackknife)
cluster    :math:`\frac{G}{G-1}\sum_{g=1}^G S_g S_g^\top`, :math:`S_g = \sum_{i \in g} s_i`
           (Liang & Zeger 1986; Cameron & Miller 2015); ``small_sample=False`` drops :math:`G/(G-1)`
=========  ===============================================================================

**Leverage.** :math:`h_i` generalises the diagonal of the hat matrix. With
:math:`H_i = -\nabla^2_{BB}\,\ell_i(\hat\theta)` the per-row curvature of a block
:math:`B` of the parameters,

.. math:: h_i = \operatorname{tr}\Big[\Big(\sum_k H_k\Big)^{-1} H_i\Big],\qquad \sum_i h_i = |B|.

For a GLM (:func:`fisherlab.models.glm`) the block is the coefficients :math:`\beta` (not
the family's extra parameter ``sigma`` / ``shape`` / ``alpha``, as R's ``sandwich`` covers
``glm`` coefficients only) and :math:`H_i = w_i x_i x_i^\top`, so

.. math:: h_i = w_i\, x_i^\top (X^\top W X)^{-1} x_i,

the diagonal of :math:`W^{1/2}X(X^\top W X)^{-1}X^\top W^{1/2}`: R's ``hatvalues(glm)`` and
``sandwich::vcovHC(type = "HC2"/"HC3")`` (Zeileis 2004, 2006) whenever the observed per-row
curvature equals the IRLS working weight, i.e. for canonical links (binomial-logit,
Poisson-log, Gaussian-identity; for the Gaussian :math:`h_i = x_i^\top(X^\top X)^{-1}x_i`, the
linear model's). For a non-canonical link the observed curvature is the working weight
plus a term proportional to the residual :math:`y_i-\mu_i` (mean zero), so :math:`h_i` differs
from R's Fisher-scoring hat values by that term.
For any other model the block is every parameter (the generalised leverage of
Wei, Hu & Fung 1998 at the estimate) and :math:`P` of ``HC1`` is the number of parameters;
for a GLM :math:`P` is the number of coefficients (R's ``sandwich``; statsmodels' ``OLS``).

References:
    P. J. Huber (1967), "The behavior of maximum likelihood estimates under nonstandard
    conditions", Proc. Fifth Berkeley Symp. 1, 221-233.
    H. White (1980), "A heteroskedasticity-consistent covariance matrix estimator and a
    direct test for heteroskedasticity", *Econometrica* 48, 817-838.
    J. G. MacKinnon and H. White (1985), "Some heteroskedasticity-consistent covariance
    matrix estimators with improved finite sample properties", *J. Econometrics* 29, 305-325.
    K.-Y. Liang and S. L. Zeger (1986), "Longitudinal data analysis using generalized linear
    models", *Biometrika* 73, 13-22.
    B.-C. Wei, Y.-Q. Hu and W.-K. Fung (1998), "Generalized leverage and its applications",
    *Scand. J. Statist.* 25, 25-37.
    A. Zeileis (2004), "Econometric computing with HC and HAC covariance matrix estimators",
    *J. Statistical Software* 11(10); (2006), "Object-oriented computation of sandwich
    estimators", *J. Statistical Software* 16(9).
    A. C. Cameron and D. L. Miller (2015), "A practitioner's guide to cluster-robust
    inference", *J. Human Resources* 50, 317-372.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError, InvalidDataError, SingularInformationError
from .._options import HCType

__all__ = ["Groups", "cluster_meat", "hc_meat", "leverage", "leverage_bread", "parse_groups"]

# h_i this close to 1 leaves 1 - h_i as rounding: the row alone determines its fitted value
LEVERAGE_ONE_TOL = 1e-10


class Groups(NamedTuple):
    """Cluster labels as integer codes.

    Attributes:
        codes: ``(N,)`` ints in ``0..G-1``, the cluster of each row.
        n_groups: the number of clusters G.
    """

    codes: np.ndarray
    n_groups: int


def parse_groups(groups: Any, n: int, caller: str = "cov('cluster')") -> Groups:
    """Validate ``groups`` (ints, strings, a pandas Series: one label per row) and code them ``0..G-1``.

    Raises:
        FisherlabArgumentError: ``groups`` is a scalar, a string or not one-dimensional.
        InvalidDataError: not one label per row, a missing label (NaN/None, row named),
            or fewer than 2 clusters.
    """
    if isinstance(groups, (str, bytes)) or np.ndim(groups) != 1:
        raise FisherlabArgumentError(
            f"{caller}: groups must be one cluster label per row (an array, list or pandas Series of "
            f"length N = {n}), got {type(groups).__name__} {groups!r:.60}"
        )
    labels = groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups)
    if labels.shape[0] != n:
        raise InvalidDataError(
            f"{caller}: groups has {labels.shape[0]} labels but the fit has N = {n} rows; "
            "give one cluster label per row of the fitted data"
        )
    missing = np.flatnonzero(np.asarray(pd.isna(labels)))
    if missing.size:
        raise InvalidDataError(
            f"{caller}: groups is missing (NaN/None) at row {int(missing[0])}"
            f"{f' and {missing.size - 1} more' if missing.size > 1 else ''}; every row needs a cluster label"
        )
    codes, uniques = pd.factorize(labels, sort=True)
    count = len(uniques)
    if count < 2:
        raise InvalidDataError(
            f"{caller}: groups has {count} cluster; cluster-robust covariance needs at least 2 "
            "(and is reliable with many: Cameron & Miller 2015 suggest dozens)"
        )
    return Groups(np.asarray(codes, dtype=np.int64), count)


def cluster_meat(scores: np.ndarray, groups: Groups, *, small_sample: bool = True) -> np.ndarray:
    r""":math:`c\sum_g S_g S_g^\top` with :math:`S_g = \sum_{i\in g} s_i`, :math:`c = G/(G-1)` or 1.

    Args:
        scores: per-row scores ``(N, P)``.
        groups: from :func:`parse_groups`.
        small_sample: multiply by :math:`G/(G-1)` (Stata's ``vce(cluster)`` for likelihood models).
    """
    sums = np.zeros((groups.n_groups, scores.shape[1]))
    np.add.at(sums, groups.codes, scores)
    factor = groups.n_groups / (groups.n_groups - 1.0) if small_sample else 1.0
    return factor * (sums.T @ sums)


def leverage(hessians: np.ndarray, block: np.ndarray) -> np.ndarray:
    r"""Generalised leverage :math:`h_i = \operatorname{tr}[(\sum_k H_k)^{-1} H_i]` on the block ``block``.

    Args:
        hessians: per-row curvature :math:`H_i = -\nabla^2\ell_i`, ``(N, P, P)``.
        block: indices of the parameters :math:`B` (the coefficients of a GLM).

    Returns:
        ``(N,)``; they sum to ``len(block)``.

    Raises:
        SingularInformationError: :math:`\sum_k H_k` on the block is not positive definite.
    """
    h = hessians[:, block][:, :, block]
    h = 0.5 * (h + np.swapaxes(h, 1, 2))
    return np.einsum("jk,ikj->i", leverage_bread(h.sum(axis=0)), h)


def leverage_bread(total: np.ndarray) -> np.ndarray:
    r""":math:`(\sum_k H_k)^{-1}` of :func:`leverage` (through its Cholesky factor).

    Raises:
        SingularInformationError: ``total`` is not positive definite.
    """
    try:
        chol = np.linalg.cholesky(total)
    except np.linalg.LinAlgError:
        raise SingularInformationError(
            "leverage (HC2/HC3): the summed per-row curvature of the coefficients is not positive "
            "definite, so hat values are undefined; use hc='HC0' or 'HC1'"
        ) from None
    inverse = np.linalg.inv(chol)
    return inverse.T @ inverse


def hc_meat(scores: np.ndarray, hc: HCType, *, n_params: int, hat: np.ndarray | None = None) -> np.ndarray:
    r"""The meat of ``HC0``..``HC3`` (module table) from per-row scores ``(N, P)``.

    Args:
        scores: per-row scores.
        hc: the variant.
        n_params: :math:`P` of ``HC1``'s :math:`N/(N-P)`.
        hat: leverages :math:`h_i` (``HC2``, ``HC3``).

    Raises:
        InvalidDataError: ``HC1`` with :math:`N \le P`; ``HC2``/``HC3`` with a row of leverage 1
            (named: the fit reproduces it exactly, e.g. a dummy column for that row alone) or
            above 1 (a model whose per-row curvature is not a regression's, named with the reason).
    """
    n = scores.shape[0]
    if hc is HCType.HC0:
        return scores.T @ scores
    if hc is HCType.HC1:
        if n <= n_params:
            raise InvalidDataError(f"hc='HC1' needs N > P, got N = {n}, P = {n_params}")
        return n / (n - n_params) * (scores.T @ scores)
    assert hat is not None
    one_minus = 1.0 - hat
    bad = np.flatnonzero(one_minus <= LEVERAGE_ONE_TOL)
    if bad.size and one_minus[bad[0]] < -LEVERAGE_ONE_TOL:
        i = int(bad[0])
        raise InvalidDataError(
            f"hc={hc.value!r}: row {i} has generalised leverage h = {hat[i]:.6g} > 1: its curvature "
            "-∇²ℓ_i exceeds the total's in some direction (as a scale parameter's does at an outlier, "
            "where 3r²/σ⁴ - 1/σ² is large), so HC2/HC3's 1/(1 - h), made for regression hat values "
            "in [0, 1), is undefined; use hc='HC0' or 'HC1', or fl.glm for a GLM (its leverages "
            "cover the coefficients only)"
        )
    if bad.size:
        i = int(bad[0])
        raise InvalidDataError(
            f"hc={hc.value!r}: row {i} has leverage h = {hat[i]:.12g} (1 - h = {one_minus[i]:.3g}): the fit "
            "reproduces it exactly (a dummy column for that row alone?), so 1/(1 - h) is undefined; "
            "use hc='HC0' or 'HC1', or drop the row"
        )
    power = 1.0 if hc is HCType.HC2 else 2.0
    weights = one_minus**-power
    return (scores * weights[:, None]).T @ scores
