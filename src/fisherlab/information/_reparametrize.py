r"""Reparametrisation of an information matrix: :math:`J^\top F J` through a function or a Jacobian.

New parameters :math:`\varphi = g(\theta)` carry the information
:math:`F_\varphi = G^{-\top} F G^{-1}` with :math:`G = \partial\varphi/\partial\theta` (that is
:math:`J^\top F J` with :math:`J = \partial\theta/\partial\varphi`), so that
:math:`\Sigma_\varphi = G\,\Sigma\,G^\top`; fewer new parameters than old are derived
parameters, whose information is :math:`(G F^{-1} G^\top)^{-1}`. :func:`reparametrize` is the
method ``InfoMatrix.reparametrize``, documented here once. JAX is imported inside it only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FisherlabArgumentError, InvalidParameterError, SingularInformationError
from ._forecast import checked_point

if TYPE_CHECKING:
    from ._matrix import InfoMatrix

__all__ = ["JACOBIAN_CONDITION", "LINEAR_RTOL", "reparametrize"]

#: Relative agreement of the Jacobians of ``fn`` at two points below which ``reparametrize``
#: without a point takes ``fn`` as affine: an affine map's derivatives agree to round-off
#: (a few ulps), a nonlinear one's differ at O(1) between the two points used.
LINEAR_RTOL = 1e-12

#: Condition number of the row- and column-equilibrated Jacobian above which the new parameters
#: count as dependent: the same 1e12 limit (12 of float64's 16 digits lost) as the singularity
#: test of an information matrix.
JACOBIAN_CONDITION = 1e12

# The two points at which an affine map's Jacobian is compared (zeros and a point with distinct,
# non-integer coordinates, so a map that is linear only along the diagonal is not missed).
_AFFINE_PROBE_OFFSET, _AFFINE_PROBE_STEP = 0.5, 0.1


def _new_name_list(new_names: Any) -> list[str]:
    names = [new_names] if isinstance(new_names, str) else new_names
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise FisherlabArgumentError(
            "reparametrize(new_names) must be a non-empty list of parameter names (str), got "
            f"{type(new_names).__name__} {new_names!r:.60}"
        )
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        raise InvalidParameterError(f"reparametrize(new_names) repeat {repeated}: each name must appear once")
    return list(names)


def _vector_map(fn: Callable[..., Any], old: list[str], new: list[str]) -> Callable[[Any], Any]:
    """``fn`` (dict old -> scalar to dict new -> scalar, or a sequence in ``new``'s order) as a
    map of flat JAX vectors, its output checked."""
    import jax.numpy as jnp

    def g(v: Any) -> Any:
        out = fn({n: v[i] for i, n in enumerate(old)})
        if isinstance(out, Mapping):
            if set(out) != set(new):
                missing = [n for n in new if n not in out]
                extra = [n for n in out if n not in set(new)]
                raise InvalidParameterError(
                    f"reparametrize: fn returned the keys {list(out)}, new_names are {new} "
                    f"(missing: {missing}; not in new_names: {extra}); return one value per new name"
                )
            values = []
            for n in new:
                x = jnp.asarray(out[n])
                if x.shape != ():
                    raise InvalidParameterError(
                        f"reparametrize: fn returned shape {x.shape} for {n!r}; each new parameter "
                        "is a scalar"
                    )
                values.append(x)
            vec = jnp.stack(values)
        elif isinstance(out, (str, bytes)) or out is None:
            raise FisherlabArgumentError(
                f"reparametrize: fn must return a dict new name -> value or a sequence in new_names "
                f"order, got {type(out).__name__}"
            )
        else:
            vec = jnp.asarray(out)
            if vec.shape == () and len(new) == 1:
                vec = vec.reshape(1)
            if vec.shape != (len(new),):
                raise InvalidParameterError(
                    f"reparametrize: fn returned shape {vec.shape}, expected ({len(new)},): one value "
                    f"per new name {new}, in that order"
                )
        if jnp.issubdtype(vec.dtype, jnp.complexfloating) or vec.dtype == jnp.bool_:
            raise FisherlabArgumentError(f"reparametrize: fn must return real numbers, got dtype {vec.dtype}")
        return vec.astype(jnp.float64)

    return g


def _jacobian(g: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    """∂g/∂x at ``x`` by forward-mode autodiff; a map JAX cannot trace is named as such."""
    import jax
    import jax.numpy as jnp

    try:
        return np.asarray(jax.jacfwd(g)(jnp.asarray(x, dtype=jnp.float64)), dtype=np.float64)
    except (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerArrayConversionError,
        jax.errors.TracerBoolConversionError,
        jax.errors.TracerIntegerConversionError,
    ) as exc:
        raise FisherlabArgumentError(
            "reparametrize: fn must be differentiable by JAX (written with jax.numpy, no float() "
            f"or NumPy on its arguments, no Python branches on their values); JAX said: {exc}"
        ) from exc


def _affine_jacobian(g: Callable[[Any], Any], p: int) -> np.ndarray:
    """The Jacobian of an affine ``g``, or InvalidParameterError if it differs at two points."""
    g0 = _jacobian(g, np.zeros(p))
    g1 = _jacobian(g, _AFFINE_PROBE_OFFSET + _AFFINE_PROBE_STEP * np.arange(p))
    finite = bool(np.all(np.isfinite(g0)) and np.all(np.isfinite(g1)))
    scale = max(float(np.max(np.abs(g0))), float(np.max(np.abs(g1)))) if finite else 0.0
    if not finite or float(np.max(np.abs(g1 - g0))) > LINEAR_RTOL * scale:
        raise InvalidParameterError(
            "reparametrize: fn is not linear; give at= or compute F with a center (its Jacobian "
            "differs between two points, so the point where it is taken matters)"
        )
    return g0


def _check_jacobian(F: InfoMatrix, G: np.ndarray, new: list[str], where: str) -> None:
    """A finite Jacobian whose rows (the new parameters) are independent, else a named error."""
    # an infinite entry first: forward mode turns the other entries of its row into 0 · inf = nan
    bad = np.argwhere(np.isinf(G)) if np.any(np.isinf(G)) else np.argwhere(np.isnan(G))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise InvalidParameterError(
            f"reparametrize: the Jacobian entry ∂{new[i]}/∂{F.names[j]} is {G[i, j]}{where}; the new "
            "parameters must be differentiable functions of the old ones there"
        )
    rows = np.linalg.norm(G, axis=1)
    scaled = G / np.where(rows > 0, rows, 1.0)[:, None]
    cols = np.linalg.norm(scaled, axis=0)
    scaled = scaled / np.where(cols > 0, cols, 1.0)[None, :]
    u, s, _ = np.linalg.svd(scaled, full_matrices=True)
    s_all = np.zeros(len(new))
    s_all[: s.size] = s
    cond = float(s_all[0] / s_all[-1]) if s_all[-1] > 0 else math.inf
    if cond > JACOBIAN_CONDITION:
        direction = u[:, -1]
        raise SingularInformationError(
            f"reparametrize: the new parameters {new} are not independent functions of {F.names}"
            f"{where}: {F._combination(direction, new)} does not change with them to first order "
            f"(condition number {cond:.3g} of the scaled Jacobian ∂φ/∂θ, limit "
            f"{JACOBIAN_CONDITION:.0e}); drop or redefine one of them, or take the Jacobian elsewhere",
            direction=dict(zip(new, direction.tolist(), strict=True)),
            condition_number=cond,
        )


def reparametrize(
    F: InfoMatrix,
    fn: Callable[[dict[str, Any]], Any] | Any,
    new_names: Sequence[str] | str,
    *,
    at: Mapping[str, float] | None = None,
) -> InfoMatrix:
    r"""The information about new parameters :math:`\varphi = g(\theta)`.

    With the Jacobian :math:`G = \partial\varphi/\partial\theta` (:math:`m \times P`, by
    ``jax.jacfwd`` at the point ``at``):

    * :math:`m = P` (a change of variables): :math:`F_\varphi = J^\top F J` with
      :math:`J = \partial\theta/\partial\varphi = G^{-1}`, i.e. :math:`G^{-\top} F G^{-1}`
      (two linear solves, no explicit inverse), so that :math:`F_\varphi^{-1} = G F^{-1} G^\top`;
      ``F`` itself may be singular.
    * :math:`m < P` (derived parameters): the information about :math:`\varphi` alone, the other
      directions marginalised, :math:`F_\varphi = (G F^{-1} G^\top)^{-1}` — the inverse of the
      delta-method covariance; ``F`` must be invertible.
    * :math:`m > P` is refused: information over more parameters than ``F`` has is singular.

    Args:
        fn: the map, one of: a function of a dict old name -> scalar (JAX values) that returns a
            dict new name -> scalar (keys exactly ``new_names``) or a sequence/array in
            ``new_names`` order, written with ``jax.numpy``; or the Jacobian itself, an array of
            shape ``(len(new_names), P)`` (then ``at`` is not used: pass none).
        new_names: the names of the new parameters (a list, or one name).
        at: the point (dict old name -> value, every name of ``F``) at which :math:`G` is taken;
            ``None`` takes :attr:`~fisherlab.InfoMatrix.center`; with neither, ``fn`` must be affine
            (its Jacobian is compared at two points).

    Returns:
        An :class:`~fisherlab.InfoMatrix` over ``new_names``, ``method``
        ``"reparametrized(<method>)"``, center :math:`g(\theta_0)` when a point is known (else
        ``None``), and the error propagated to first order, :math:`|G^{-1}|^\top|\delta F|\,|G^{-1}|`
        (square) or :math:`|K|\,|\delta F|\,|K|^\top` with :math:`K = F_\varphi G F^{-1}`.

    Raises:
        InvalidParameterError: more new names than parameters (use :meth:`combine` to extend
            information); ``fn`` non-linear with no point; a non-finite Jacobian entry (named
            :math:`\partial\varphi_i/\partial\theta_j`); ``fn``'s keys or shape not matching
            ``new_names``; ``at`` missing a name or non-finite.
        SingularInformationError: the new parameters are dependent at the point (scaled Jacobian's
            condition number above 1e12; the combination is named), or, for :math:`m < P`, ``F``
            is singular.
        FisherlabArgumentError: ``fn`` is neither callable nor an array, cannot be traced by JAX,
            or returns non-real values; ``new_names`` not a list of str; ``at`` with an array ``fn``.

    Examples:
        >>> import fisherlab as fl, jax.numpy as jnp
        >>> F = fl.InfoMatrix([[4.0, 0.0], [0.0, 1.0]], ["a", "b"], center={"a": 2.0, "b": 3.0})
        >>> H = F.reparametrize(lambda p: {"ab": p["a"] * p["b"], "lb": jnp.log(p["b"])}, ["ab", "lb"])
        >>> H.center
        {'ab': 6.0, 'lb': 1.0986122886681098}
        >>> H.cov().matrix.round(6).tolist()   # G cov Gᵀ, G = [[b, a], [0, 1/b]]
        [[6.25, 0.666667], [0.666667, 0.111111]]
        >>> F.reparametrize([[1.0, 1.0]], ["sum"]).cov().matrix.tolist()   # 1/4 + 1
        [[1.25]]
    """
    new = _new_name_list(new_names)
    m, p = len(new), len(F.names)
    if m > p:
        raise InvalidParameterError(
            f"reparametrize: {m} new parameters {new} from {p} parameters {F.names}: information "
            "over more parameters than it has would be singular; to add parameters another "
            "experiment measures, combine() the information matrices"
        )
    center: dict[str, float] | None = None
    if callable(fn):
        g = _vector_map(fn, list(F.names), new)
        point = checked_point(F.names, at, "reparametrize(at)") if at is not None else F.center
        if point is None:
            G = _affine_jacobian(g, p)
            where = ""
        else:
            x = np.array([point[n] for n in F.names])
            G = _jacobian(g, x)
            where = f" at {point}"
            value = np.asarray(g(x), dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(value))
            if bad.size:
                raise InvalidParameterError(
                    f"reparametrize: fn gives {new[int(bad[0])]} = {value[bad[0]]}{where}; the new "
                    "parameters must be finite at the point"
                )
            center = dict(zip(new, value.tolist(), strict=True))
    else:
        if at is not None:
            raise FisherlabArgumentError(
                "reparametrize: at= is only used when fn is a function; an array fn is the Jacobian already"
            )
        if isinstance(fn, (str, bytes, Mapping)) or fn is None:
            raise FisherlabArgumentError(
                "reparametrize: fn must be a function of a dict of parameters or the Jacobian "
                f"∂φ/∂θ as an array, got {type(fn).__name__}"
            )
        try:
            G = np.asarray(fn)
        except Exception as exc:  # ragged lists and the like
            raise FisherlabArgumentError(
                f"reparametrize: the Jacobian fn cannot be read as an array: {exc}"
            ) from exc
        if G.dtype.kind not in "iuf":
            raise FisherlabArgumentError(
                f"reparametrize: the Jacobian fn must hold real numbers, got dtype {G.dtype}"
            )
        G = G.astype(np.float64)
        if G.shape != (m, p):
            raise InvalidParameterError(
                f"reparametrize: the Jacobian has shape {G.shape}, expected ({m}, {p}): a row per new "
                f"name {new}, a column per parameter {F.names}"
            )
        where = ""
    _check_jacobian(F, G, new, where)
    method = f"reparametrized({F.method})"
    if m == p:
        matrix = np.linalg.solve(G.T, np.linalg.solve(G.T, F.matrix).T)
        error = None
        if F.error is not None:
            b = np.abs(np.linalg.solve(G, np.eye(p)))
            error = b.T @ F.error @ b
        return type(F)(matrix, new, error=error, method=method, center=center)
    factor, d = F._scaled_factor()
    w = np.linalg.solve(factor, d[:, None] * G.T)  # L⁻¹ D Gᵀ: G F⁻¹ Gᵀ = wᵀ w
    matrix = type(F)(w.T @ w, new).cov().matrix
    error = None
    if F.error is not None:
        k = np.abs(matrix @ (np.linalg.solve(factor.T, w).T * d))  # F_φ G F⁻¹
        error = k @ F.error @ k.T
    return type(F)(matrix, new, error=error, method=method, center=center)


# ----------------------------------------------------------------------------------- figures
