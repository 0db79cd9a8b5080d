r"""An information matrix as a GetDist Gaussian, and the forecast conventions it shares with ``fl.plot``.

A Fisher forecast is the Gaussian :math:`\mathcal N(\theta_0, F^{-1})` around the fiducial point
:math:`\theta_0`; :func:`to_getdist` hands it to `GetDist <https://getdist.readthedocs.io>`_
(``getdist.gaussian_mixtures.GaussianND``) so that forecasts can be drawn with GetDist's triangle
plots next to chains. The parameter selection, the fiducial point and the labels are read here
once for every forecast face (:func:`selected_names`, :func:`fiducial_vector`, :func:`label_list`;
:func:`fisherlab.plot.triangle` uses the same ones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FisherlabArgumentError, InvalidParameterError, MethodUnavailableError

if TYPE_CHECKING:
    from getdist.gaussian_mixtures import GaussianND

    from ._matrix import InfoMatrix

__all__ = ["fiducial_vector", "getdist_names", "label_list", "selected_names", "to_getdist"]


def selected_names(names: Any, available: Sequence[str], what: str = "names") -> list[str]:
    """The parameters asked for: ``None`` means all of ``available``; one name or a list of them.

    Only the kind, emptiness and repetition are checked here; whether a matrix holds the
    names is checked by the caller, who knows which matrix it is.

    Raises:
        FisherlabArgumentError: ``names`` is not a name or a list of names.
        InvalidParameterError: no name, or a name given twice.
    """
    if names is None:
        return list(available)
    chosen = [names] if isinstance(names, str) else names
    if isinstance(chosen, Mapping) or not isinstance(chosen, Sequence):
        raise FisherlabArgumentError(
            f"{what} must be a parameter name or a list of them, got {type(names).__name__} {names!r:.60}"
        )
    chosen = list(chosen)
    odd = [n for n in chosen if not isinstance(n, str)]
    if odd:
        raise FisherlabArgumentError(
            f"{what} must be parameter names (strings), got {odd[0]!r} of type {type(odd[0]).__name__}"
        )
    if not chosen:
        raise InvalidParameterError(
            f"{what} is empty: name at least one parameter, e.g. {list(available)[:2]}"
        )
    repeated = sorted({n for n in chosen if chosen.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"{what} repeat {repeated}: name each parameter once")
    return chosen


def fiducial_vector(center: Any, names: Sequence[str]) -> np.ndarray:
    """The fiducial values of ``names``, float64 ``(len(names),)``, from a dict or a parameter pytree.

    ``center`` is ``None`` (every value 0), a dict name -> number, or any parameter pytree
    (``{"beta": np.array([1.0, 2.0])}`` gives ``beta[0]`` and ``beta[1]``, the names of
    :func:`fisherlab.param_names`). Names in ``center`` that are not asked for are ignored.

    Raises:
        InvalidParameterError: a name of ``names`` has no value in ``center`` (the missing and
            the given names are listed), or a value is not finite.
        FisherlabArgumentError: a value is not a real number.
    """
    if center is None:
        return np.zeros(len(names))
    import jax

    from ..params._pytree import param_names

    given = param_names(center)
    values: list[np.ndarray] = []
    for leaf in jax.tree_util.tree_leaves(center):
        arr = np.asarray(leaf)
        if arr.dtype.kind not in "iuf":
            raise FisherlabArgumentError(
                f"center values must be real numbers, got {leaf!r:.40} (dtype {arr.dtype}); give the "
                "fiducial point as a dict name -> float or a parameter pytree of real arrays"
            )
        values.append(np.ravel(arr).astype(np.float64))
    flat = np.concatenate(values) if values else np.zeros(0)
    lookup = dict(zip(given, flat.tolist(), strict=True))
    missing = [n for n in names if n not in lookup]
    if missing:
        raise InvalidParameterError(
            f"center has no value for {missing}; it gives {given[:12]}{' ...' if len(given) > 12 else ''}: "
            "add the fiducial value of every plotted parameter (or pass center=None for zeros)"
        )
    out = np.array([lookup[n] for n in names], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise InvalidParameterError(
            f"center value of {names[int(bad[0])]} is {out[bad[0]]}: the fiducial point must be finite"
        )
    return out


def label_list(labels: Any, names: Sequence[str], default: Sequence[str] | None = None) -> list[str]:
    """The label of each of ``names``: from a dict name -> label (missing names keep their default),
    a list in ``names`` order, or ``None`` (the defaults: ``default``, else the names).

    Raises:
        InvalidParameterError: a dict key that is not one of ``names``, or a list whose length is
            not ``len(names)``.
        FisherlabArgumentError: ``labels`` is not a dict or a list, or a label is not a string.
    """
    base = list(default) if default is not None else list(names)
    if labels is None:
        return base
    if isinstance(labels, Mapping):
        unknown = [k for k in labels if k not in set(names)]
        if unknown:
            raise InvalidParameterError(
                f"labels name {unknown}, which are not among the parameters {list(names)}; "
                "key labels by the names shown"
            )
        out = [labels.get(n, b) for n, b in zip(names, base, strict=True)]
    elif isinstance(labels, Sequence) and not isinstance(labels, str):
        out = list(labels)
        if len(out) != len(names):
            raise InvalidParameterError(
                f"labels has {len(out)} entries for {len(names)} parameters {list(names)}; give one "
                "label per parameter, in that order, or a dict name -> label"
            )
    else:
        raise FisherlabArgumentError(
            f"labels must be a dict name -> label or a list of labels, got {type(labels).__name__} "
            f"{labels!r:.60}"
        )
    odd = [(n, lab) for n, lab in zip(names, out, strict=True) if not isinstance(lab, str)]
    if odd:
        name, lab = odd[0]
        raise FisherlabArgumentError(
            f"the label of {name} must be a string, got {lab!r:.40} of type {type(lab).__name__}"
        )
    return out


_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]+")


def getdist_names(names: Sequence[str]) -> list[str]:
    """Parameter names as plain identifiers, as GetDist wants them.

    Every run of characters other than letters, digits and ``_`` becomes one ``_`` and a
    trailing one is dropped: ``"beta[0]"`` -> ``"beta_0"``, ``"W[1,2]"`` -> ``"W_1_2"``,
    ``"layers[0].W"`` -> ``"layers_0_W"``; a name that would start with a digit gets ``p_``
    in front.

    Raises:
        InvalidParameterError: two names map to the same identifier (both are named).
    """
    out: list[str] = []
    for name in names:
        safe = _NOT_IDENTIFIER.sub("_", name).rstrip("_") or "p"
        out.append(f"p_{safe}" if safe[0].isdigit() else safe)
    seen: dict[str, str] = {}
    for name, safe in zip(names, out, strict=True):
        if safe in seen:
            raise InvalidParameterError(
                f"parameters {seen[safe]!r} and {name!r} both become {safe!r} as GetDist names (which "
                "must be plain identifiers); rename one of them, or export one with names=[...]"
            )
        seen[safe] = name
    return out


def to_getdist(
    info: InfoMatrix,
    center: Any = None,
    *,
    names: Sequence[str] | str | None = None,
    labels: Mapping[str, str] | Sequence[str] | None = None,
    label: str | None = None,
) -> GaussianND:
    r"""The Fisher forecast :math:`\mathcal N(\theta_0, (F^{-1})_{kk})` as a GetDist ``GaussianND``.

    The covariance is the block of :math:`F^{-1}` over the exported parameters :math:`k`
    (every other parameter is marginalised, i.e. unknown); its mean is the fiducial point.

    Args:
        info: the information matrix :math:`F`.
        center: the fiducial point :math:`\theta_0`: a dict name -> value, a parameter pytree, or
            ``None`` for zeros. Values of parameters not exported are ignored.
        names: the parameters to export, in order (default: all of ``info.names``).
        labels: LaTeX labels, a dict name -> label or a list in ``names`` order; by default each
            parameter's fisherlab name. GetDist's own names are :func:`getdist_names` of them.
        label: the legend label of the Gaussian (``None``: none).

    Returns:
        ``getdist.gaussian_mixtures.GaussianND`` (its ``.means[0]``, ``.covs[0]``, ``.names`` and
        ``.label``).

    Raises:
        MethodUnavailableError: GetDist is not installed.
        SingularInformationError: :math:`F` is singular (the direction is named).
        InvalidParameterError: a name not in ``info``, a parameter without a center value, labels
            that do not match the names, or two names that map to one GetDist name.
        FisherlabArgumentError: ``info`` is not an :class:`InfoMatrix`, or an argument of the wrong kind.

    Examples:
        >>> import fisherlab as fl
        >>> from fisherlab.information._getdist import to_getdist
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["beta[0]", "sigma"])
        >>> g = to_getdist(F, {"beta": [1.0], "sigma": 0.5}, label="survey")
        >>> g.names, g.means[0].tolist(), g.covs[0].round(3).tolist()
        (['beta_0', 'sigma'], [1.0, 0.5], [[0.375, -0.25], [-0.25, 0.5]])
        >>> [p.label for p in g.paramNames.names], g.label
        (['beta[0]', 'sigma'], 'survey')
    """
    if not callable(getattr(info, "cov", None)) or not hasattr(info, "names"):  # the method passes self
        raise FisherlabArgumentError(
            f"to_getdist needs an InfoMatrix (the information of the forecast), got {type(info).__name__}"
        )
    if label is not None and not isinstance(label, str):
        raise FisherlabArgumentError(f"label must be a string (the legend label), got {type(label).__name__}")
    try:
        from getdist.gaussian_mixtures import GaussianND
    except ImportError as exc:
        raise MethodUnavailableError(
            "to_getdist needs GetDist, which is not installed: pip install 'fisherlab[forecast]' (getdist)"
        ) from exc
    keep = selected_names(names, info.names)
    idx = info.index(keep)
    mean = fiducial_vector(center, keep)
    cov = info.cov().matrix[np.ix_(idx, idx)]
    return GaussianND(
        mean,
        cov,
        names=getdist_names(keep),
        labels=label_list(labels, keep),
        label=label or "",
    )
