r"""The deviance of a GLM fit (R's ``deviance()``, ``null.deviance``) and the nesting check of two GLM fits.

.. math:: D = \sum_{i=1}^N d(y_i, \hat\mu_i), \qquad
          d(y, \mu) = 2\{\ell(y; y) - \ell(y; \mu)\}\big|_{\phi = 1}

with the unit deviance :math:`d` of the family's record (:attr:`FamilyRecord.deviance`):
gaussian :math:`(y-\mu)^2` (so :math:`D` is the residual sum of squares), binomial
:math:`2\{y\log\frac{y}{n\mu} + (n-y)\log\frac{n-y}{n(1-\mu)}\}` (``y`` successes out of
``n`` trials), Poisson :math:`2\{y\log(y/\mu) - (y-\mu)\}`, Gamma
:math:`-2\{\log(y/\mu) - (y-\mu)/\mu\}`, inverse Gaussian :math:`(y-\mu)^2/(\mu^2 y)`, and the
negative binomial :math:`2\{y\log(y/\mu) - (y+\theta)\log\frac{y+\theta}{\mu+\theta}\}` at the
fitted :math:`\theta = 1/\hat\alpha` (``MASS::glm.nb``). The null deviance is the deviance of the
model with the intercept only (when the design has a constant column) and the same offset,
trials and extra parameter; without a constant column, of :math:`\mu_i = g^{-1}(o_i)`, as R does.

For a fit on a source of chunks (its ``data`` a :class:`~fisherlab.data._chunks.StreamedData`,
e.g. :func:`fisherlab.glm` on a table read in chunks) every one of these is a sum over rows,
accumulated chunk by chunk in float64 with compensation: the deviance, the null model's closed
form (:math:`\sum w_i y_i / \sum w_i n_i`) or its intercept-only fit (streamed as well), the
constant-column test (:func:`constant_columns`) and the nesting check of :meth:`lr_test`
(a QR factorisation of :math:`[X_{big}\;X_{small}]` updated chunk by chunk, Demmel et al. 2012).

This module registers the GLM's :func:`~fisherlab.inference._comparison.model_deviance`
(``res.deviance``) and :func:`~fisherlab.inference._comparison.check_nested` (``res.lr_test``).

References:
    P. McCullagh and J. A. Nelder (1989), *Generalized Linear Models*, 2nd ed., Chapman & Hall,
    sec. 2.3. R Core Team, ``?family`` (``dev.resids``), ``?glm`` (``null.deviance``);
    W. N. Venables and B. D. Ripley (2002), *Modern Applied Statistics with S*, 4th ed. (``glm.nb``).
    J. Demmel, L. Grigori, M. Hoemmen and J. Langou (2012), "Communication-optimal parallel and
    sequential QR and LU factorizations", *SIAM J. Sci. Comput.* 34, A206-A239 (TSQR).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .._errors import ModelError
from .._precision import float64
from ..data import Chunks, Data, chunks
from ..data._chunks import StreamedData, prepared_chunks
from ..inference import FitResult, fit
from ..inference._comparison import check_nested, model_deviance
from ._design import host_design, host_weights
from ._families import FAMILIES, Family
from ._glm import GLM, check_glm, glm
from ._links import LINKS

__all__ = ["constant_column", "constant_columns", "null_deviance", "streamed_source"]

#: The smaller design lies in the bigger one's column space when its least-squares residual on
#: it is below this fraction of its norm (rounding of a QR solve is ~1e-13 relative).
_SPAN = 1e-8


def _extra_value(model: GLM, params: Any) -> float | None:
    """The value of the extra parameter (fixed or fitted), ``None`` without one."""
    if model.poisson_limit:
        return 0.0
    leaf = FAMILIES[model.family].extra
    if leaf is None:
        return None
    if leaf.name in model.fixed:
        return model.fixed[leaf.name]
    return float(np.asarray(params[leaf.name]))


def _deviance_at(
    model: GLM, y: np.ndarray, mu: np.ndarray, trials: np.ndarray, params: Any, weights: np.ndarray
) -> float:
    r""":math:`\sum_i w_i d(y_i, \mu_i)`, ``weights`` R's prior weights (ones without)."""
    unit = FAMILIES[model.family].deviance
    if unit is None:  # every family record has one; a record added without it
        raise ModelError(f"the {model.family.value} family's record has no unit deviance")
    return float(np.sum(weights * unit(y, mu, trials, _extra_value(model, params))))


def streamed_source(result: FitResult) -> Chunks | None:
    """The source of chunks a fit streamed over (``result.data.source``), ``None`` for data in memory."""
    return result.data.source if isinstance(result.data, StreamedData) else None


def _streamed_deviance(model: GLM, source: Chunks, params: Any, mean: Callable[[Data], np.ndarray]) -> float:
    r""":math:`\sum_i w_i d(y_i, \mu_i)` over the chunks, ``mean(chunk)`` the chunk's :math:`\mu`."""

    def term(data: Data) -> tuple[float]:
        y = np.asarray(data.y, dtype=np.float64).reshape(-1)
        _, trials, _ = host_design(data.x, model.family)
        weights = host_weights(data.x, model.family)
        return (_deviance_at(model, y, mean(data), trials, params, weights),)

    (total,), _ = source.reduce(term)
    return float(total)


@model_deviance.register(GLM)
def _glm_deviance(model: GLM, result: FitResult) -> float:
    source = streamed_source(result)
    if source is not None:
        return _streamed_deviance(model, source, result.params, lambda d: model.mean(result.params, d.x))
    y = np.asarray(result.data.y, dtype=np.float64).reshape(-1)
    _, trials, _ = host_design(result.data.x, model.family)
    mu = model.mean(result.params, result.data.x)
    return _deviance_at(model, y, mu, trials, result.params, host_weights(result.data.x, model.family))


def constant_column(X: np.ndarray) -> bool:
    """Whether the design has a constant non-zero column (an intercept), as R's null model asks."""
    return bool(np.any(np.all(X == X[:1], axis=0) & (X[0] != 0)))


def constant_columns(x: Any, family: Family) -> tuple[np.ndarray, np.ndarray]:
    """The design's constant non-zero columns (a mask) and its first row.

    Args:
        x: a GLM's covariates (:func:`~fisherlab.models._design.design`), or a source of
            ``(y, x)`` chunks, read in one pass.
        family: the GLM's family.
    """
    if not isinstance(x, Chunks):
        X, _, _ = host_design(x, family)
        return np.all(X == X[:1], axis=0) & (X[0] != 0), X[0]
    first: np.ndarray | None = None
    same: np.ndarray | None = None
    for _, data in prepared_chunks(x, transient=True):
        X, _, _ = host_design(data.x, family)
        if first is None or same is None:
            first, same = X[0].copy(), np.ones(X.shape[1], dtype=bool)
        same &= np.all(X == first, axis=0)
    assert first is not None and same is not None  # a source gives at least one chunk
    return same & (first != 0), first


@float64
def null_deviance(result: FitResult) -> float:
    r"""R's ``null.deviance`` of a GLM fit: the deviance of the intercept-only model.

    The null model keeps the fit's offset, trials and extra parameter (the negative binomial's
    :math:`\hat\alpha`, as ``MASS::glm.nb`` does). With a constant column in the design its
    intercept is fitted (closed form :math:`\hat\mu = \sum y_i / \sum n_i` without an offset);
    without one, :math:`\mu_i = g^{-1}(o_i)`.

    Args:
        result: a fit of :func:`~fisherlab.models.glm`.

    Returns:
        The null deviance (float); its degrees of freedom are :math:`N - 1` with an intercept,
        :math:`N` without.

    Raises:
        TypeError: ``result`` is not a fit of a GLM.
        NotConvergedError: the intercept-only fit with an offset failed.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab import models
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> res = models.fit_glm(models.glm("gaussian"), np.array([1.0, 3.0, 4.0, 7.0]), X)
        >>> round(models.null_deviance(res), 6)     # sum (y - mean y)^2
        18.75
    """
    model = check_glm(result.model, "null_deviance")
    source = streamed_source(result)
    if source is not None:
        return _streamed_null_deviance(model, result, source)
    y = np.asarray(result.data.y, dtype=np.float64).reshape(-1)
    X, trials, offset = host_design(result.data.x, model.family)
    weights = host_weights(result.data.x, model.family)
    link = LINKS[model.link]
    if not constant_column(X):
        mu = np.asarray(link.inv(offset), dtype=np.float64)
    elif not np.any(offset):
        mu = np.full(y.shape, np.sum(weights * y) / np.sum(weights * trials))
    else:
        null = _null_model(model, result.params)
        x: dict[str, Any] = {"X": np.ones((y.size, 1)), "offset": offset}
        if isinstance(result.data.x, Mapping) and result.data.x.get("trials") is not None:
            x["trials"] = trials
        if isinstance(result.data.x, Mapping) and result.data.x.get("weights") is not None:
            x["weights"] = weights
        start = float(np.asarray(link.fun(np.sum(y) / np.sum(trials))) - np.mean(offset))
        res0 = fit(null, y, x, init={"beta": np.array([start])})
        mu = null.mean(res0.params, res0.data.x)
    return _deviance_at(model, y, mu, trials, result.params, weights)


def _null_model(model: GLM, params: Any) -> GLM:
    """The intercept-only GLM: the same family and link, its extra parameter held at the fit's."""
    leaf = FAMILIES[model.family].extra
    extra = _extra_value(model, params)
    fixed = {leaf.name: extra} if (leaf is not None and extra is not None) else None
    return glm(model.family.value, model.link.value, fixed=fixed)


def _null_x(x: Any) -> dict[str, Any]:
    """A chunk's covariates for the intercept-only model: a column of ones, the same offset,
    trials and weights."""
    if not isinstance(x, Mapping):
        return {"X": np.ones((np.shape(x)[0], 1))}
    out = {"X": np.ones((np.shape(x["X"])[0], 1))}
    out.update({k: x[k] for k in ("offset", "trials", "weights") if x.get(k) is not None})
    return out


def _streamed_null_deviance(model: GLM, result: FitResult, source: Chunks) -> float:
    """:func:`null_deviance` over a source of chunks: the same cases, from sums."""
    link = LINKS[model.link]
    constant, _ = constant_columns(source, model.family)

    def sums(data: Data) -> tuple[Any, ...]:
        y = np.asarray(data.y, dtype=np.float64).reshape(-1)
        _, trials, offset = host_design(data.x, model.family)
        weights = host_weights(data.x, model.family)
        return (
            np.sum(weights * y),
            np.sum(weights * trials),
            np.sum(y),
            np.sum(trials),
            np.sum(offset),
            np.sum(offset != 0),
        )

    (wy, wn, sy, sn, so, nonzero), n = source.reduce(sums)
    if not constant.any():
        return _streamed_deviance(
            model,
            source,
            result.params,
            lambda d: np.asarray(link.inv(host_design(d.x, model.family)[2]), dtype=np.float64),
        )
    if not nonzero:
        rate = float(wy / wn)
        return _streamed_deviance(model, source, result.params, lambda d: np.full(d.n, rate))
    null = _null_model(model, result.params)

    def pairs() -> Iterator[tuple[Any, Any]]:
        for _, y, x in source:
            yield y, _null_x(x)

    ones = chunks(pairs)
    ones.num_rows = n  # type: ignore[attr-defined]  # known: the scan of the fit reads one chunk
    start = float(np.asarray(link.fun(sy / sn)) - so / n)
    res0 = fit(null, ones, init={"beta": np.array([start])})
    return _streamed_deviance(model, ones, result.params, lambda d: null.mean(res0.params, d.x))


def _design_of(res: FitResult, family: Family) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return host_design(res.data.x, family)


def _same_rows(family: Family, big: tuple[Any, Any, Any], small: tuple[Any, Any, Any]) -> None:
    """Equal offsets, trials and prior weights of two fits' rows ``(trials, offset, x)``."""
    if np.shape(big[1]) != np.shape(small[1]) or not np.array_equal(big[1], small[1]):
        raise ModelError("lr_test: the fits have different offsets, so they are not nested")
    if not np.array_equal(big[0], small[0]):
        raise ModelError("lr_test: the fits have different binomial trials, so they are not nested")
    if not np.array_equal(host_weights(big[2], family), host_weights(small[2], family)):
        raise ModelError("lr_test: the fits have different prior weights, so they are not nested")


def _streamed_nested(family: Family, big: Chunks, small: Chunks) -> None:
    r"""The data checks of :func:`_glm_nested` over two sources read side by side: the same rows,
    and the smaller design in the column space of the bigger one, from the triangular factor
    :math:`R` of :math:`[X_{big}\;X_{small}] = QR` updated chunk by chunk (TSQR): the residual of
    the smaller design's column :math:`j` on the bigger design has the norm of column :math:`j` of
    :math:`R`'s lower-right block."""
    R: np.ndarray | None = None
    p = 0
    pairs = itertools.zip_longest(
        prepared_chunks(big, transient=True), prepared_chunks(small, transient=True)
    )
    for one, two in pairs:
        if one is None or two is None or one[1].n != two[1].n:
            raise ModelError(
                "lr_test: the fits' sources give different rows, so they are not fitted to the same data"
            )
        db, ds = one[1], two[1]
        Xb, tb, ob = host_design(db.x, family)
        Xs, ts, os_ = host_design(ds.x, family)
        if not np.array_equal(np.asarray(db.y), np.asarray(ds.y)):
            raise ModelError("lr_test: the fits have different responses, so they are not nested")
        _same_rows(family, (tb, ob, db.x), (ts, os_, ds.x))
        p = Xb.shape[1]
        block = np.hstack([Xb, Xs])
        R = np.asarray(np.linalg.qr(block if R is None else np.vstack([R, block]), mode="r"))
    if R is None or R.shape[1] == p:
        return
    lower = R[min(p, R.shape[0]) :, p:]
    resid = np.linalg.norm(lower, axis=0) if lower.size else np.zeros(R.shape[1] - p)
    scale = np.maximum(np.linalg.norm(R[:, p:], axis=0), np.finfo(np.float64).tiny)
    outside = np.flatnonzero(resid > _SPAN * scale)
    if outside.size:
        raise ModelError(
            f"lr_test: column {int(outside[0])} of the smaller fit's design is not in the column space "
            "of this fit's design, so the smaller model is not nested in it"
        )


@check_nested.register(GLM)
def _glm_nested(model: GLM, big: FitResult, small: FitResult) -> None:
    other = small.model
    if not isinstance(other, GLM):
        raise ModelError(
            f"lr_test: this fit is a GLM and the smaller one a {type(other).__name__}; compare GLM fits "
            "with GLM fits (or two fl.Model fits)"
        )
    if other.family is not model.family:
        hint = ""
        if {model.family, other.family} == {Family.NEGATIVE_BINOMIAL, Family.POISSON}:
            hint = (
                " (the Poisson model is the negative binomial's boundary alpha = 0, where the LR "
                "statistic is not chi-square: use fisherlab.models.overdispersion_test)"
            )
        raise ModelError(
            f"lr_test: the fits have different families ({model.family.value} and "
            f"{other.family.value}), so they are not nested{hint}"
        )
    if other.link is not model.link:
        raise ModelError(
            f"lr_test: the fits have different links ({model.link.value} and {other.link.value}), "
            "so they are not nested"
        )
    if other.poisson_limit and not model.poisson_limit:
        raise ModelError(
            "lr_test: the smaller fit is the negative binomial's boundary alpha = 0, where the LR "
            "statistic is not chi-square: use fisherlab.models.overdispersion_test"
        )
    for name, value in other.fixed.items():
        if name in model.fixed and model.fixed[name] != value:
            raise ModelError(
                f"lr_test: the fits hold {name} fixed at different values ({model.fixed[name]} and "
                f"{value}), so they are not nested"
            )
        if name not in model.fixed and model.dispersion_name is None:
            raise ModelError(f"lr_test: the smaller fit fixes {name} = {value}, the bigger one has no {name}")
    if model.fixed and not other.fixed.keys() >= model.fixed.keys():
        raise ModelError(
            f"lr_test: this fit holds {model.fixed} fixed and the smaller one estimates it, so it is not "
            "nested in this fit"
        )
    sources = (streamed_source(big), streamed_source(small))
    if sources != (None, None):
        if None in sources:
            raise ModelError(
                "lr_test: one fit streamed its data from a source and the other held them in memory; "
                "fit both models to the data the same way"
            )
        _streamed_nested(model.family, *sources)  # type: ignore[arg-type]
        return
    Xb, tb, ob = _design_of(big, model.family)
    Xs, ts, os_ = _design_of(small, other.family)
    _same_rows(model.family, (tb, ob, big.data.x), (ts, os_, small.data.x))
    if Xs.shape[1]:
        coef, *_ = np.linalg.lstsq(Xb, Xs, rcond=None)
        resid = np.linalg.norm(Xs - Xb @ coef, axis=0)
        scale = np.maximum(np.linalg.norm(Xs, axis=0), np.finfo(np.float64).tiny)
        outside = np.flatnonzero(resid > _SPAN * scale)
        if outside.size:
            j = int(outside[0])
            raise ModelError(
                f"lr_test: column {j} of the smaller fit's design is not "
                "in the column space of this fit's design, so the smaller model is not nested in it"
            )
