r"""First and second derivatives of every output from the stencils, retrying non-finite values.

**Failures.** A non-finite value at a perturbed point shrinks that parameter's
step by :data:`RETRY_SHRINK` and retries (up to :data:`MAX_RETRIES` times), then
raises :class:`~fisherlab.NumericDerivativeError` naming the point and the parameter;
an exception raised by ``f`` is chained into the same error with the parameter values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import NumericDerivativeError
from ._constants import MAX_RETRIES, RETRY_SHRINK
from ._evaluator import _describe
from ._richardson import _richardson
from ._stencils import _Stencils


def _fail(x: np.ndarray, names: list[str], i: int, h: float, what: str) -> NumericDerivativeError:
    return NumericDerivativeError(
        f"f is not finite at a perturbed point for {what}: parameter {names[i]} stepped by "
        f"{h:.3g} (after {MAX_RETRIES} smaller steps, each x{1 / RETRY_SHRINK:g}) from "
        f"{_describe(x, names)}; f may be undefined near this point: pass lower/upper bounds "
        "for the parameter, a smaller step, or move the point inside the domain",
        point=dict(zip(names, x.tolist(), strict=True)),
        parameter=names[i],
    )


@dataclass
class _Derivatives:
    """Engine output for ``N`` outputs: first derivatives ``(N, P)``, second ``(N, P, P)``."""

    value: np.ndarray
    first: np.ndarray
    first_err: np.ndarray
    first_round: np.ndarray
    fmax: np.ndarray  # (N, P): the largest |f_n| over each parameter's axis stencil
    second: np.ndarray | None
    second_err: np.ndarray | None
    second_round: np.ndarray | None
    evaluations: int


def _derivatives(st: _Stencils, names: list[str], f0: np.ndarray, *, second: bool) -> _Derivatives:
    """First (and if ``second``, second) derivatives of every output, retrying non-finite stencils."""
    size, n_out = st.x.size, f0.size
    out = {k: np.empty((size, n_out)) for k in ("g", "g_err", "g_round", "d2", "d2_err", "d2_round", "fmax")}
    todo = np.arange(size)
    for attempt in range(MAX_RETRIES + 1):
        first, diag = st.diagonal(todo, f0)
        ok = ~first.bad
        if np.any(ok):
            done = todo[ok]
            for key, tables in (("g", first), ("d2", diag)):
                val, err, rnd = _richardson(
                    tables.estimates[:, ok], tables.rounding[:, ok], tables.powers[:, ok]
                )
                out[key][done], out[key + "_err"][done], out[key + "_round"][done] = val, err, rnd
            out["fmax"][done] = first.fmax[ok]
        todo = todo[first.bad]
        if todo.size == 0:
            break
        if attempt == MAX_RETRIES:
            i = int(todo[0])
            raise _fail(st.x, names, i, float(st.h[i]), f"the derivatives in {names[i]}")
        st.h[todo] /= RETRY_SHRINK
    if not second:
        return _Derivatives(
            f0, out["g"].T, out["g_err"].T, out["g_round"].T, out["fmax"].T, None, None, None, st.ev.count
        )
    hess = np.zeros((n_out, size, size))
    hess_err = np.zeros((n_out, size, size))
    hess_round = np.zeros((n_out, size, size))
    diag_idx = np.arange(size)
    hess[:, diag_idx, diag_idx] = out["d2"].T
    hess_err[:, diag_idx, diag_idx] = out["d2_err"].T
    hess_round[:, diag_idx, diag_idx] = out["d2_round"].T
    pairs = np.column_stack(np.triu_indices(size, k=1))
    for attempt in range(MAX_RETRIES + 1):
        if pairs.size == 0:
            break
        tables = st.mixed(pairs, f0)
        ok = ~tables.bad
        if np.any(ok):
            val, err, rnd = _richardson(tables.estimates[:, ok], tables.rounding[:, ok], tables.powers[:, ok])
            pi, pj = pairs[ok, 0], pairs[ok, 1]
            hess[:, pi, pj] = hess[:, pj, pi] = val.T
            hess_err[:, pi, pj] = hess_err[:, pj, pi] = err.T
            hess_round[:, pi, pj] = hess_round[:, pj, pi] = rnd.T
        pairs = pairs[tables.bad]
        if pairs.size == 0:
            break
        if attempt == MAX_RETRIES:
            i, j = int(pairs[0, 0]), int(pairs[0, 1])
            raise _fail(st.x, names, i, float(st.h[i]), f"the mixed derivative in {names[i]}, {names[j]}")
        # Shrinking the steps of both parameters of a failed pair (the diagonal entries
        # already computed keep their values).
        st.h[np.unique(pairs)] /= RETRY_SHRINK
    return _Derivatives(
        f0,
        out["g"].T,
        out["g_err"].T,
        out["g_round"].T,
        out["fmax"].T,
        hess,
        hess_err,
        hess_round,
        st.ev.count,
    )
