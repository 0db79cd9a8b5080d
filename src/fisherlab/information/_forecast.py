r"""The forecasting algebra of information matrices: priors, combination, figures of merit.

A Fisher forecast asks what an experiment *would* tell: the information :math:`F` at a fiducial
point :math:`\theta_0` (:attr:`InfoMatrix.center`), Gaussian priors added to it, independent
experiments over different parameters combined (the information carried to new parameters
:math:`\varphi = g(\theta)` is :mod:`._reparametrize`), and the figures that summarise it
(½ log det, the Dark Energy Task Force's figure of merit, the expected information gain, the
Kullback–Leibler divergence between two forecasts). Each function here is a method of
:class:`~fisherlab.InfoMatrix` (``F.with_prior``, ``F.combine``, ``F.figure_of_merit``,
``F.information_gain``, ``F.kl_divergence``), documented here once.

Determinants and inverses use the Cholesky factor of the diagonally scaled matrix
(``InfoMatrix._scaled_factor``), so a singular or indefinite matrix raises
:class:`~fisherlab.SingularInformationError` naming the direction, as :meth:`InfoMatrix.cov` does.

``_matrix.py`` imports this module, so this one never imports it back (no import cycles between
sibling modules): results are built with ``type(F)``, the information matrix's own class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FisherlabArgumentError, InvalidParameterError, SingularInformationError, with_message
from .._options import _is_real_number

if TYPE_CHECKING:
    from ._matrix import InfoMatrix

__all__ = [
    "checked_point",
    "combine",
    "figure_of_merit",
    "information_gain",
    "kl_divergence",
    "log_det",
    "merged_center",
    "with_prior",
]

# exp(709.78) is the largest float64.
_LOG_MAX_FLOAT = 709.78


# ----------------------------------------------------------------------------------- helpers
def checked_point(names: Sequence[str], point: Any, what: str) -> dict[str, float] | None:
    """``point`` (a mapping name -> value covering ``names``; extra keys ignored) as floats in order.

    Raises:
        FisherlabArgumentError: ``point`` is not a mapping, or a value is not a real number.
        InvalidParameterError: a name without a value, or a value that is NaN or infinite.
    """
    if point is None:
        return None
    if not isinstance(point, Mapping):
        raise FisherlabArgumentError(
            f"{what} must be a dict parameter name -> value, got {type(point).__name__} {point!r:.60}"
        )
    missing = [n for n in names if n not in point]
    if missing:
        raise InvalidParameterError(
            f"{what} has no value for {missing[0]!r} (missing: {missing}); give one for every "
            f"parameter of {list(names)}"
        )
    out: dict[str, float] = {}
    for n in names:
        value = point[n]
        if not _is_real_number(value):
            raise FisherlabArgumentError(
                f"{what}[{n!r}] must be a real number, got {value!r:.60} of type {type(value).__name__}"
            )
        x = float(value)
        if not math.isfinite(x):
            raise InvalidParameterError(f"{what}[{n!r}] is {x}: the value of a parameter must be finite")
        out[n] = x
    return out


def merged_center(matrices: Sequence[InfoMatrix], names: Sequence[str]) -> dict[str, float] | None:
    """The common center of ``matrices`` over ``names``, or ``None``.

    ``None`` when two centers disagree on a shared name (exact comparison: a forecast combines
    information computed at one fiducial point) or when the known centers do not cover ``names``.
    """
    merged: dict[str, float] = {}
    for m in matrices:
        for n, v in (m.center or {}).items():
            if merged.setdefault(n, v) != v:
                return None
    if any(n not in merged for n in names):
        return None
    return {n: merged[n] for n in names}


def log_det(F: InfoMatrix) -> float:
    r""":math:`\log\det F` from the Cholesky factor :math:`L` of the scaled :math:`S = DFD`:
    :math:`2\sum_i \log L_{ii} - 2\sum_i \log d_i`. Singular or indefinite: SingularInformationError."""
    factor, d = F._scaled_factor()
    return float(2.0 * np.sum(np.log(np.diag(factor))) - 2.0 * np.sum(np.log(d)))


def _padded(m: InfoMatrix, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``m``'s matrix (and error) placed on ``names`` (a superset of ``m.names``), zero elsewhere."""
    lookup = {n: i for i, n in enumerate(names)}
    pos = np.array([lookup[n] for n in m.names], dtype=int)
    out = np.zeros((len(names), len(names)))
    out[np.ix_(pos, pos)] = m.matrix
    if m.error is None:
        return out, None
    err = np.zeros_like(out)
    err[np.ix_(pos, pos)] = m.error
    return out, err


def _root_sum_square(errors: list[np.ndarray | None]) -> np.ndarray | None:
    """Independent errors combine in quadrature; ``None`` (exact) counts as zero."""
    known = [e for e in errors if e is not None]
    return None if not known else np.sqrt(sum(np.square(e) for e in known))


def _prior_matrix(F: InfoMatrix, prior: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A prior (dict name -> σ, or an InfoMatrix over some of F's names) as a matrix on F's names."""
    if isinstance(prior, type(F)):
        unknown = [n for n in prior.names if n not in set(F.names)]
        if unknown:
            raise InvalidParameterError(
                f"{what}: the prior is over {unknown}, which are not parameters of this information "
                f"matrix {F.names}; fix() or marginalize() the prior to them first"
            )
        return _padded(prior, F.names)
    if not isinstance(prior, Mapping):
        raise FisherlabArgumentError(
            f"{what} must be a dict parameter name -> prior standard deviation σ, or an InfoMatrix "
            f"(a prior's information), got {type(prior).__name__} {prior!r:.60}"
        )
    unknown = [n for n in prior if n not in set(F.names)]
    if unknown:
        raise InvalidParameterError(f"{what}: unknown parameter name(s) {unknown}; known: {F.names}")
    diag = np.zeros(len(F.names))
    index = {n: i for i, n in enumerate(F.names)}
    for n, sigma in prior.items():
        if not _is_real_number(sigma):
            raise FisherlabArgumentError(
                f"{what}: the prior σ of {n!r} must be a real number > 0 (math.inf for no prior), "
                f"got {sigma!r:.60} of type {type(sigma).__name__}"
            )
        s = float(sigma)
        if not s > 0.0:  # NaN, zero, negative, -inf
            raise InvalidParameterError(
                f"{what}: the prior σ of {n!r} is {s}; a standard deviation must be > 0 "
                "(math.inf for no prior; fix() a parameter that is known exactly)"
            )
        diag[index[n]] = 0.0 if math.isinf(s) else 1.0 / (s * s)
    return np.diag(diag), None


# ----------------------------------------------------------------------------------- priors
def with_prior(F: InfoMatrix, sigmas: Mapping[str, float] | InfoMatrix) -> InfoMatrix:
    r"""The information with independent Gaussian priors added: :math:`F + P`.

    A prior :math:`\theta_i \sim N(\cdot, \sigma_i^2)` carries the information
    :math:`P = \mathrm{diag}(1/\sigma_i^2)`; a prior that is itself an information matrix (a
    previous experiment, a correlated Gaussian prior) over some of the parameters is added aligned
    by name, zero on the others. The posterior covariance of the Gaussian forecast is
    :math:`(F + P)^{-1}`.

    Args:
        sigmas: a dict name -> σ (a finite real ``> 0``, or ``math.inf`` for no prior), over any
            of the names; or an :class:`~fisherlab.InfoMatrix` over a subset of the names.

    Returns:
        An :class:`~fisherlab.InfoMatrix` over the same names, ``method`` ``"<method>+prior"``,
        the same :attr:`~fisherlab.InfoMatrix.center`, errors combined in quadrature (a dict
        prior is exact).

    Raises:
        InvalidParameterError: a name that is not a parameter of ``F``; a σ that is NaN, zero,
            negative or ``-inf`` (the parameter is named).
        FisherlabArgumentError: ``sigmas`` is neither a dict nor an InfoMatrix, or a σ is not a
            real number (a bool, a string).

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["a", "b"])
        >>> F.with_prior({"a": 2.0}).matrix.tolist()   # 1 / 2**2 added to [a, a]
        [[4.25, 2.0], [2.0, 3.0]]
        >>> F.with_prior(fl.InfoMatrix([[1.0]], ["b"])).matrix.tolist()
        [[4.0, 2.0], [2.0, 4.0]]
    """
    prior, prior_err = _prior_matrix(F, sigmas, "with_prior(sigmas)")
    return type(F)(
        F.matrix + prior,
        F.names,
        error=_root_sum_square([F.error, prior_err]),
        method=f"{F.method}+prior",
        center=F.center,
    )


# ----------------------------------------------------------------------------------- combine
def combine(F: InfoMatrix, *others: InfoMatrix) -> InfoMatrix:
    r"""The information of independent experiments over possibly different parameters.

    Each matrix is placed on the union of the names (``F``'s order first, then names new to
    each further matrix in order of appearance), zero-padded where it has no information, and
    the padded matrices are summed: :math:`F_{\mathrm{tot}} = \sum_k \Pi_k^\top F_k \Pi_k`.
    A parameter only one experiment measures keeps that experiment's information. ``F + G``
    instead requires equal names.

    Args:
        *others: further :class:`~fisherlab.InfoMatrix` objects.

    Returns:
        An :class:`~fisherlab.InfoMatrix` over the union of the names, ``F``'s ``method``,
        errors combined in quadrature (as ``F + G``), and a center when the matrices' centers
        agree on shared names and cover every name (else ``None``).

    Raises:
        FisherlabArgumentError: an argument that is not an InfoMatrix (its position is named).

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["a", "b"])
        >>> G = fl.InfoMatrix([[1.0, 0.5], [0.5, 2.0]], ["b", "c"])
        >>> H = F.combine(G)
        >>> H.names, H.matrix.tolist()
        (['a', 'b', 'c'], [[4.0, 2.0, 0.0], [2.0, 4.0, 0.5], [0.0, 0.5, 2.0]])
    """
    for k, other in enumerate(others):
        if not isinstance(other, type(F)):
            raise FisherlabArgumentError(
                f"combine() takes InfoMatrix objects (the information of independent experiments); "
                f"argument {k + 1} is {type(other).__name__}"
            )
    names = list(F.names)
    seen = set(names)
    for other in others:
        for n in other.names:
            if n not in seen:
                names.append(n)
                seen.add(n)
    parts = [_padded(m, names) for m in (F, *others)]
    return type(F)(
        sum((p[0] for p in parts), np.zeros((len(names), len(names)))),
        names,
        error=_root_sum_square([p[1] for p in parts]),
        method=F.method,
        center=merged_center([F, *others], names),
    )


# ----------------------------------------------------------------------------------- reparametrize
def figure_of_merit(F: InfoMatrix, names: Sequence[str] | str | None = None, *, detf: bool = False) -> float:
    r"""½ log det of the information about ``names``, the others marginalised.

    :math:`\tfrac12 \log\det F_{\mathrm{marg}}` with :math:`F_{\mathrm{marg}} =
    ((F^{-1})_{kk})^{-1}` (:meth:`~fisherlab.InfoMatrix.marginalize`), from the Cholesky factor of
    the diagonally scaled matrix. It is minus the log volume of the forecast's error ellipsoid up to
    a constant (the D-optimality criterion), and depends on the parameters' units. With
    ``detf=True`` the Dark Energy Task Force's figure :math:`1/\sqrt{\det C_{kk}} =
    \exp(\tfrac12\log\det F_{\mathrm{marg}})`, usually on the pair :math:`(w_0, w_a)`
    (Albrecht et al. 2006, arXiv:astro-ph/0609591).

    Args:
        names: the parameters to keep (a list or one name); ``None`` keeps all.
        detf: return :math:`\exp(\tfrac12\log\det F_{\mathrm{marg}})` instead of its logarithm
            (``math.inf`` beyond float64's range).

    Returns:
        A float: ½ log det (nats), or the DETF figure with ``detf=True``.

    Raises:
        SingularInformationError: the matrix (or the block marginalised over) is singular.
        InvalidParameterError: an unknown or repeated name.
        FisherlabArgumentError: ``detf`` is not a bool.

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[4.0, 2.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 9.0]], ["w0", "wa", "h"])
        >>> round(F.figure_of_merit(["w0", "wa"], detf=True), 12)   # sqrt(4 * 3 - 2 * 2)
        2.828427124746
        >>> round(F.figure_of_merit(), 12)   # ½ log(8 * 9)
        2.138333059508
    """
    if not isinstance(detf, (bool, np.bool_)):
        raise FisherlabArgumentError(f"figure_of_merit(detf) must be True or False, got {detf!r}")
    half = 0.5 * log_det(F if names is None else F.marginalize(names))
    if not detf:
        return half
    return math.exp(half) if half < _LOG_MAX_FLOAT else math.inf


def information_gain(F: InfoMatrix, prior: Mapping[str, float] | InfoMatrix) -> float:
    r"""Expected information gain of the experiment over a Gaussian prior, in nats.

    For a Gaussian linear experiment with information :math:`F` and a Gaussian prior of
    information :math:`P`, the posterior has information :math:`F + P` and the expected
    Kullback–Leibler divergence from prior to posterior (equal to the mutual information between
    :math:`\theta` and the data; Lindley 1956, doi:10.1214/aoms/1177728069) is

    .. math:: \mathrm{EIG} = \tfrac12\log\det(F + P) - \tfrac12\log\det P .

    Args:
        prior: as in :meth:`with_prior`: a dict name -> σ, or an InfoMatrix over F's names; it
            must be proper on every parameter (a finite σ for each).

    Returns:
        The gain in nats (a float ``>= 0``).

    Raises:
        SingularInformationError: the prior gives no information on a parameter (named) or is
            singular, or ``F + P`` is.
        InvalidParameterError, FisherlabArgumentError: as :meth:`with_prior`.

    Examples:
        >>> import fisherlab as fl, math
        >>> F = fl.InfoMatrix([[3.0, 0.0], [0.0, 8.0]], ["a", "b"])
        >>> gain = F.information_gain({"a": 1.0, "b": 0.5})   # ½ log(4/1) + ½ log(12/4)
        >>> math.isclose(gain, 0.5 * math.log(4.0) + 0.5 * math.log(3.0), rel_tol=1e-14)
        True
    """
    matrix, _ = _prior_matrix(F, prior, "information_gain(prior)")
    diag = np.diag(matrix)
    none = np.flatnonzero(~(diag > 0))
    if none.size:
        name = F.names[int(none[0])]
        raise SingularInformationError(
            f"information_gain: the prior gives no information on {name!r} (no σ, σ = inf, or not "
            "among the prior's names), so the gain is infinite; give every parameter a proper prior",
            direction={name: 1.0},
            condition_number=math.inf,
        )
    prior_info = type(F)(matrix, F.names, method="prior")
    try:
        prior_log_det = log_det(prior_info)
    except SingularInformationError as exc:
        raise with_message(
            exc, f"information_gain: the prior is singular, so the gain is infinite; {exc}"
        ) from None
    posterior = type(F)(F.matrix + matrix, F.names, method=f"{F.method}+prior")
    return 0.5 * (log_det(posterior) - prior_log_det)


def kl_divergence(
    F: InfoMatrix,
    other: InfoMatrix,
    *,
    center: Mapping[str, float] | None = None,
    other_center: Mapping[str, float] | None = None,
) -> float:
    r"""Kullback–Leibler divergence between the Gaussian forecasts of two information matrices.

    .. math::
        \mathrm{KL}\big(N(\mu_F, F^{-1}) \,\|\, N(\mu_G, G^{-1})\big) = \tfrac12\big[
        \operatorname{tr}(G F^{-1}) - P + (\mu_G - \mu_F)^\top G (\mu_G - \mu_F)
        + \log\det F - \log\det G\big]

    in nats, over ``F``'s names (``G`` aligned by name). The trace and determinant terms are summed
    as :math:`\sum_i (\lambda_i - 1 - \log\lambda_i) \ge 0` over the eigenvalues of
    :math:`L_F^{-1} G L_F^{-\top}` (:math:`F = L_F L_F^\top`), so :math:`\mathrm{KL}(F\|F) = 0` to
    round-off.

    Args:
        other: the information :math:`G` of the second forecast, over the same names.
        center: :math:`\mu_F`, a dict name -> value; default ``F.center``.
        other_center: :math:`\mu_G`; default ``other.center``. When both means are unknown
            (``None``) the mean term is 0 (forecasts at one fiducial point).

    Returns:
        The divergence in nats (a float ``>= 0``).

    Raises:
        FisherlabArgumentError: ``other`` is not an InfoMatrix; a center is not a dict.
        InvalidParameterError: the names differ; one mean is known and the other not; a center
            misses a name or is not finite.
        SingularInformationError: ``F`` or ``G`` is singular (the divergence is infinite).

    Examples:
        >>> import fisherlab as fl, math
        >>> F = fl.InfoMatrix([[1.0, 0.0], [0.0, 1.0]], ["a", "b"], center={"a": 0.0, "b": 0.0})
        >>> G = fl.InfoMatrix([[2.0, 0.0], [0.0, 1.0]], ["a", "b"], center={"a": 1.0, "b": 0.0})
        >>> kl = F.kl_divergence(G)   # ½[(2 + 1) - 2 + 2·1² + 0 - log 2]
        >>> math.isclose(kl, 0.5 * (3.0 - 2.0 + 2.0 - math.log(2.0)), rel_tol=1e-14)
        True
        >>> F.kl_divergence(F)
        0.0
    """
    if not isinstance(other, type(F)):
        raise FisherlabArgumentError(
            f"kl_divergence(other) must be an InfoMatrix, got {type(other).__name__}"
        )
    if set(other.names) != set(F.names):
        raise InvalidParameterError(
            f"kl_divergence: the two forecasts are over different parameters: {F.names} vs "
            f"{other.names}; fix() or marginalize() them to the same names first"
        )
    g = other.matrix[np.ix_(other.index(F.names), other.index(F.names))]
    mu_f = checked_point(F.names, center, "kl_divergence(center)") if center is not None else F.center
    mu_g = (
        checked_point(F.names, other_center, "kl_divergence(other_center)")
        if other_center is not None
        else other.center
    )
    if (mu_f is None) != (mu_g is None):
        missing = "center" if mu_f is None else "other_center"
        raise InvalidParameterError(
            f"kl_divergence: one forecast's mean is known and the other's not; give {missing}= "
            "(or both matrices a center)"
        )
    G = type(F)(g, F.names, method=other.method)
    G._scaled_factor()  # singular G: the divergence is infinite, raise naming the direction
    factor, d = F._scaled_factor()
    a = np.linalg.solve(factor, d[:, None] * g * d[None, :])  # L⁻¹ D G D, F = D⁻¹ L Lᵀ D⁻¹
    whitened = np.linalg.solve(factor, a.T)
    x = np.linalg.eigvalsh(0.5 * (whitened + whitened.T)) - 1.0
    if np.any(x <= -1.0):
        raise SingularInformationError(
            "kl_divergence: G is not positive definite relative to F (an eigenvalue of F⁻¹G is "
            "<= 0 to float64 precision); the divergence is infinite",
            condition_number=math.inf,
        )
    quad = 0.0
    if mu_f is not None and mu_g is not None:
        delta = np.array([mu_g[n] - mu_f[n] for n in F.names])
        quad = float(delta @ g @ delta)
    return 0.5 * (float(np.sum(x - np.log1p(x))) + quad)
