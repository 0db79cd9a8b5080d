r"""Design criteria: functions of an information matrix that a design maximises or minimises.

For the information :math:`M` of a design (per observation, or any total) over ``P`` parameters:

========  =======================================================  =====================
``"D"``   :math:`\log\det M` (the volume of the confidence ellipsoid)   larger is better
``"A"``   :math:`\operatorname{tr} M^{-1}` (the sum of the variances)   smaller is better
``"E"``   :math:`\lambda_{\min}(M)` (the worst-determined direction)    larger is better
``"Ds"``  :math:`\log\det` of :math:`M` marginalised to ``names``       larger is better
``"c"``   :math:`c^\top M^{-1} c` (the variance of :math:`c^\top\hat\theta`)  smaller is better
========  =======================================================  =====================

The design algorithms (:func:`~fisherlab.design.optimal`) maximise a concave function
:math:`\psi` of :math:`M` with the same optimum: :math:`\log\det M` (D), :math:`-\operatorname{tr}
M^{-1}` (A), :math:`-c^\top M^{-1} c` (c), :math:`\log\det M - \log\det M_{22}` (Ds, with
:math:`M_{22}` the block of the parameters not in ``names``) and, for E, Kiefer's smooth
:math:`\psi_p = -\tfrac1p \log\operatorname{tr} M^{-p}`, which tends to :math:`\log\lambda_{\min}`
(:math:`\psi_p \le \log\lambda_{\min} \le \psi_p + \log(P)/p`; here :math:`p = 128`).

The directional derivative of :math:`\psi` towards one observation at :math:`x`, the
*sensitivity* :math:`d(x) = \operatorname{tr}\big(\nabla\psi(M)\, I(x)\big)`, and its design
average :math:`\operatorname{tr}(\nabla\psi(M)\, M)` (the *bound*) give the equivalence theorem
(Kiefer & Wolfowitz 1960; Whittle 1973): a design is optimal iff :math:`d(x) \le` bound for every
:math:`x`, with equality on its support; for D the bound is :math:`P` and
:math:`d(x) = \operatorname{tr}(M^{-1} I(x))`. By concavity the gap
:math:`\max_x d(x) - \text{bound}` bounds :math:`\psi^* - \psi`, hence the design's efficiency.

References:
    J. Kiefer, J. Wolfowitz (1960). The equivalence of two extremum problems. Can. J. Math. 12.
    F. Pukelsheim (1993). Optimal Design of Experiments. Wiley.
    A. C. Atkinson, A. N. Donev, R. D. Tobias (2007). Optimum Experimental Designs, with SAS. OUP.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import FisherlabArgumentError, InvalidParameterError
from .._options import DesignCriterion, choose
from .._precision import float64
from ..information._matrix import InfoMatrix

__all__ = ["E_POWER", "Spec", "criterion", "efficiency", "psi", "spec_for"]

#: The power p of Kiefer's psi_p that stands in for the E criterion (log(P)/p from log lambda_min).
E_POWER = 128
# c-optimal designs may be singular (c in the range of M suffices): -c^T (M + delta I)^-1 c with
# delta this fraction of the mean eigenvalue keeps the algorithms finite; it moves the value by
# a relative ~1e-12.
_C_RIDGE = 1e-12


@dataclasses.dataclass(frozen=True)
class Spec:
    """A criterion resolved against parameter names: ``kind``, the c vector and the Ds mask."""

    kind: DesignCriterion
    names: tuple[str, ...]
    c: np.ndarray
    keep: np.ndarray  # 1.0 for the parameters of interest (Ds), else 0.0

    @property
    def size(self) -> int:
        """``P`` (D), ``s`` (Ds): the bound of the equivalence theorem for D and Ds."""
        return int(self.keep.sum()) if self.kind is DesignCriterion.DS else len(self.names)

    def label(self) -> str:
        """``"D"``, ``"Ds(a, b)"``, ``"c = (0, 1)"``, for summaries."""
        if self.kind is DesignCriterion.DS:
            return f"Ds({', '.join(n for n, k in zip(self.names, self.keep, strict=True) if k)})"
        if self.kind is DesignCriterion.C:
            return "c = (" + ", ".join(f"{v:.4g}" for v in self.c) + ")"
        return self.kind.value


def spec_for(kind: Any, names: Sequence[str], *, of: Any = None, c: Any = None) -> Spec:
    """Resolve ``criterion`` (``"D"``, ..., with ``names=`` for Ds and ``c=`` for c) on ``names``.

    Raises:
        InvalidOptionError: an unknown criterion.
        InvalidParameterError: Ds without names of interest, or with unknown / all names.
        FisherlabArgumentError: c missing, of the wrong length or not finite; ``names``/``c``
            given to a criterion that does not use them.
    """
    k = choose(DesignCriterion, kind, "criterion")
    names = tuple(names)
    p = len(names)
    keep = np.zeros(p)
    vec = np.zeros(p)
    if k is not DesignCriterion.DS and of is not None:
        raise FisherlabArgumentError(
            f"names= is for the Ds criterion (a subset of interest), not {k.value!r}"
        )
    if k is not DesignCriterion.C and c is not None:
        raise FisherlabArgumentError(f"c= is for the c criterion (a linear combination), not {k.value!r}")
    if k is DesignCriterion.DS:
        wanted = _names(of)
        unknown = [n for n in wanted if n not in names]
        if not wanted or unknown or len(set(wanted)) != len(wanted):
            raise InvalidParameterError(
                f"Ds needs names= (the parameters of interest, each once) among {list(names)}; "
                f"got {wanted}" + (f" (unknown: {unknown})" if unknown else "")
            )
        keep[[names.index(n) for n in wanted]] = 1.0
    if k is DesignCriterion.C:
        vec = _c_vector(c, names)
    return Spec(k, names, vec, keep)


def _names(of: Any) -> list[str]:
    if of is None:
        return []
    if isinstance(of, str):
        return [of]
    try:
        return [str(n) for n in of]
    except TypeError:
        raise FisherlabArgumentError(
            f"names= must be a parameter name or a list of them, got {of!r:.60}"
        ) from None


def _c_vector(c: Any, names: Sequence[str]) -> np.ndarray:
    if c is None:
        raise FisherlabArgumentError(
            f"the c criterion needs c= (a dict name -> coefficient, or {len(names)} numbers in the "
            f"order {list(names)})"
        )
    if isinstance(c, dict):
        unknown = [n for n in c if n not in names]
        if unknown:
            raise InvalidParameterError(f"c= names unknown parameter(s) {unknown}; known: {list(names)}")
        vec = np.array([float(c.get(n, 0.0)) for n in names])
    else:
        try:
            vec = np.asarray(c, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise FisherlabArgumentError(f"c= must hold numbers, got {c!r:.60}") from None
        if vec.shape != (len(names),):
            raise FisherlabArgumentError(
                f"c= has {vec.size} entries for {len(names)} parameters {list(names)}"
            )
    if not np.all(np.isfinite(vec)) or not np.any(vec):
        raise FisherlabArgumentError(f"c= must be finite and not all zero, got {vec.tolist()}")
    return vec


def _logdet(m: jax.Array) -> jax.Array:
    return 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(m))))


def psi(kind: DesignCriterion) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    r"""The concave function :math:`\psi(M; c, \text{keep})` the algorithms maximise (module docstring)."""
    if kind is DesignCriterion.D:
        return lambda m, c, keep: _logdet(m)
    if kind is DesignCriterion.DS:

        def ds(m: jax.Array, c: jax.Array, keep: jax.Array) -> jax.Array:
            other = 1.0 - keep
            return _logdet(m) - _logdet(m * jnp.outer(other, other) + jnp.diag(keep))

        return ds
    if kind is DesignCriterion.A:
        return lambda m, c, keep: -jnp.trace(jnp.linalg.inv(m))
    if kind is DesignCriterion.C:

        def c_value(m: jax.Array, c: jax.Array, keep: jax.Array) -> jax.Array:
            ridge = _C_RIDGE * jnp.trace(m) / m.shape[0]
            return -c @ jnp.linalg.solve(m + ridge * jnp.eye(m.shape[0]), c)

        return c_value

    def e_value(m: jax.Array, c: jax.Array, keep: jax.Array) -> jax.Array:
        inv = jnp.linalg.inv(m)
        scale = jnp.trace(inv)
        power = jnp.linalg.matrix_power(inv / scale, E_POWER)
        return -(jnp.log(jnp.trace(power)) / E_POWER + jnp.log(scale))

    return e_value


def _value(info: InfoMatrix, spec: Spec) -> float:
    """The reported criterion (module table) of a nonsingular information matrix."""
    kind = spec.kind
    if kind is DesignCriterion.E:
        info.cov()  # a singular matrix raises, naming the direction
        return float(np.linalg.eigvalsh(info.matrix)[0])
    if kind is DesignCriterion.DS:
        keep = [n for n, k in zip(spec.names, spec.keep, strict=True) if k]
        return _half_logdet(info.marginalize(keep)) * 2.0
    if kind is DesignCriterion.D:
        return _half_logdet(info) * 2.0
    if kind is DesignCriterion.A:
        return float(np.trace(info.cov().matrix))
    return _c_variance(info, spec.c)


def _c_variance(info: InfoMatrix, c: np.ndarray) -> float:
    r""":math:`c^\top M^- c`: a c-optimal design may be singular, and :math:`c^\top\theta` is still
    estimable when :math:`c` lies in the range of :math:`M` (Pukelsheim 1993, 2.4): then any
    generalised inverse gives the same value (the Moore–Penrose one here)."""
    scale = np.sqrt(np.maximum(np.diag(info.matrix), np.finfo(np.float64).tiny))
    scaled = info.matrix / np.outer(scale, scale)
    pinv = np.linalg.pinv(scaled, rcond=1e-12, hermitian=True)
    cs = c / scale
    if np.linalg.norm(scaled @ (pinv @ cs) - cs) > 1e-8 * np.linalg.norm(cs):
        info.cov()  # not estimable: the singular direction is named there
    return float(cs @ pinv @ cs)


def _half_logdet(info: InfoMatrix) -> float:
    cov = info.cov()  # raises on a singular matrix, naming the direction
    sign, logdet = np.linalg.slogdet(cov.matrix)
    return -0.5 * float(logdet) if sign > 0 else -math.inf


def _as_info(value: Any, what: str) -> InfoMatrix:
    info = getattr(value, "info", value)  # a Design gives its information
    if not isinstance(info, InfoMatrix):
        raise FisherlabArgumentError(
            f"{what} must be an InfoMatrix (or a design from fl.design.optimal), got {type(value).__name__}"
        )
    return info


@float64
def criterion(F: Any, kind: str = "D", *, names: Iterable[str] | str | None = None, c: Any = None) -> float:
    r"""The value of a design criterion for the information ``F`` (see the table above).

    ``"D"``: :math:`\log\det F`; ``"A"``: :math:`\operatorname{tr} F^{-1}`; ``"E"``:
    :math:`\lambda_{\min}(F)`; ``"Ds"``: :math:`\log\det` of ``F.marginalize(names)``; ``"c"``:
    :math:`c^\top F^{-1} c`. The scale is the user's: a total information (``fl.fisher`` of N
    rows) or a per-observation one (a design's ``info``) give values that differ by N's power.

    Args:
        F: an :class:`~fisherlab.InfoMatrix` (or a design, whose ``info`` is used).
        kind: ``"D"``, ``"A"``, ``"E"``, ``"Ds"`` or ``"c"``.
        names: the parameters of interest for ``"Ds"``.
        c: the combination for ``"c"``: a dict name -> coefficient or one number per parameter.

    Returns:
        The criterion as a float.

    Raises:
        SingularInformationError: ``F`` singular (no criterion is finite; the direction is named).
        InvalidOptionError: an unknown ``kind``.
        InvalidParameterError / FisherlabArgumentError: bad ``names`` or ``c`` (see ``spec_for``).

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[2.0, 0.0], [0.0, 0.5]], ["a", "b"])
        >>> fl.design.criterion(F, "D")     # log det = log(2 * 0.5)
        0.0
        >>> fl.design.criterion(F, "A"), fl.design.criterion(F, "E")
        (2.5, 0.5)
        >>> fl.design.criterion(F, "c", c={"b": 1.0})
        2.0
    """
    info = _as_info(F, "F")
    return _value(info, spec_for(kind, info.names, of=names, c=c))


@float64
def efficiency(
    F: Any, G: Any, kind: str = "D", *, names: Iterable[str] | str | None = None, c: Any = None
) -> float:
    r"""Efficiency of the design with information ``F`` relative to ``G`` (1 = as good; 0.5: twice the runs).

    ``"D"``: :math:`(\det F/\det G)^{1/P}`; ``"Ds"``: the same on the marginal information, power
    :math:`1/s`; ``"A"``: :math:`\operatorname{tr}G^{-1}/\operatorname{tr}F^{-1}`; ``"E"``:
    :math:`\lambda_{\min}(F)/\lambda_{\min}(G)`; ``"c"``: :math:`c^\top G^{-1}c / c^\top F^{-1}c`.
    Each is homogeneous of degree one: the efficiency is the fraction of ``G``'s runs that
    would do the job of ``F``'s. Both must be on the same scale (per observation, say).

    Raises:
        InvalidParameterError: ``F`` and ``G`` over different parameters.
        SingularInformationError: either matrix singular.

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[1.0, 0.0], [0.0, 1.0]], ["a", "b"])
        >>> fl.design.efficiency(F, 2 * F, "D"), fl.design.efficiency(F, 2 * F, "A")
        (0.5, 0.5)
    """
    f, g = _as_info(F, "F"), _as_info(G, "G")
    if set(f.names) != set(g.names):
        raise InvalidParameterError(
            f"efficiency compares designs over the same parameters, got {f.names} and {g.names}"
        )
    g = InfoMatrix(g.matrix[np.ix_(g.index(f.names), g.index(f.names))], f.names)
    spec = spec_for(kind, f.names, of=names, c=c)
    vf, vg = _value(f, spec), _value(g, spec)
    if spec.kind in (DesignCriterion.D, DesignCriterion.DS):
        return float(math.exp((vf - vg) / spec.size))
    if spec.kind is DesignCriterion.E:
        return vf / vg
    return vg / vf
