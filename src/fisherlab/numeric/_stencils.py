r"""Finite-difference stencils on halving steps: the points of every entry and their estimates.

**Stencils.** Parameter :math:`i` gets a base step
:math:`h_i = c\,\max(|\theta_i|, 1)` with :math:`c =` :data:`RELATIVE_STEP`
(:math:`\approx 4\,\epsilon^{1/6}`, :math:`\epsilon` the float64 machine epsilon; the
scale :math:`\max(|\theta_i|,1)` makes a zero parameter work). At level
:math:`k = 0..L-1` the steps are :math:`t_k h_i`, :math:`t_k = 2^{-k}`. Central
differences

.. math::

    g_i(t) = \frac{f(\theta + t h_i e_i) - f(\theta - t h_i e_i)}{2 t h_i},\qquad
    H_{ii}(t) = \frac{f(\theta + t h_i e_i) - 2 f(\theta) + f(\theta - t h_i e_i)}{t^2 h_i^2},

    H_{ij}(t) = \frac{f_{++} + f_{--} - f_{+0} - f_{-0} - f_{0+} - f_{0-} + 2 f(\theta)}{2 t^2 h_i h_j}

(:math:`f_{\pm\pm} = f(\theta \pm t h_i e_i \pm t h_j e_j)`, :math:`f_{\pm 0}`,
:math:`f_{0\pm}` the diagonal points) all have error expansions in even powers of
:math:`t`, so the gradient, the diagonal and the off-diagonal share the points
:math:`\theta \pm t h_i e_i`: a Hessian costs :math:`1 + L(P^2 + P)` evaluations and
contains the gradient for free. Identical points are evaluated once (a cache keyed
by the point). A scalar ``f`` is the case :math:`N = 1` of one engine: every stencil table
carries a trailing output axis.

**One-sided stencils.** A parameter whose central stencil does not fit inside its bounds
(:mod:`fisherlab.numeric._setup`) uses a one-sided stencil towards the interior,
:math:`g_i(t) = (-3f_0 + 4f_1 - f_2)/(2 s t h_i)`,
:math:`H_{ii}(t) = (f_2 - 2 f_1 + f_0)/(t h_i)^2` with
:math:`f_k = f(\theta + k s t h_i e_i)`, and mixed entries involving it the forward
formula :math:`(f_{s_i s_j} - f_{s_i 0} - f_{0 s_j} + f_0)/(s_i s_j t^2 h_i h_j)`; their
expansions have every power of :math:`t`, and the extrapolation removes them one by one
(:math:`p_m = m+1`, resp. :math:`p_m = m`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._constants import EPS, NOISE_ULPS
from ._evaluator import _Evaluator


@dataclass
class _Tables:
    """Richardson tables ``(L, n, N)`` of one batch of ``n`` entries with ``N`` outputs each."""

    estimates: np.ndarray
    rounding: np.ndarray
    powers: np.ndarray  # (L-1, n, 1)
    bad: np.ndarray  # (n,): a non-finite value somewhere in the entry's stencil
    fmax: np.ndarray  # (n, N): the largest |f_n| over the entry's stencil


class _Stencils:
    """Builds the stencil points of every entry for the current steps and evaluates them."""

    def __init__(
        self, x: np.ndarray, h: np.ndarray, side: np.ndarray, ev: _Evaluator, levels: int, noise: float
    ) -> None:
        self.x, self.h, self.side, self.ev, self.noise = x, h, side, ev, noise
        self.t = 2.0 ** -np.arange(levels)

    def f0(self) -> np.ndarray:
        return self.ev(self.x[None, :])[0]

    def _flat(self, offsets: np.ndarray) -> np.ndarray:
        """``offsets`` ``(n, P)`` of ``h``-units -> the ``(L n, P)`` points ``x + offsets * t * h``."""
        pts = self.x + offsets[None, :, :] * (self.t[:, None, None] * self.h[None, None, :])
        return pts.reshape(-1, self.x.size)

    def _points(self, offsets: np.ndarray) -> np.ndarray:
        """f at ``x + offsets * t * h`` for every level: ``(L, n, N)``, one batch."""
        return self.ev(self._flat(offsets)).reshape(self.t.size, offsets.shape[0], -1)

    def _diagonal_offsets(self, idx: np.ndarray) -> np.ndarray:
        """Offsets ``(2n, P)``: the first then the second point of each axis stencil."""
        side = self.side[idx]
        central = side == 0
        # central uses +1/-1, one-sided uses s, 2s
        first = np.where(central, 1.0, side.astype(float))
        second = np.where(central, -1.0, 2.0 * side)
        eye = np.eye(self.x.size)[idx]
        return np.concatenate([eye * first[:, None], eye * second[:, None]])

    def prefetch(self, configurations: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Evaluate, as one batch, the axis stencils of ``(idx, side, h)`` configurations."""
        saved = self.side.copy(), self.h.copy()
        flat = []
        for idx, side, h in configurations:
            self.side[idx], self.h[idx] = side, h
            flat.append(self._flat(self._diagonal_offsets(idx)))
        self.side[:], self.h[:] = saved
        self.ev(np.concatenate(flat))

    @np.errstate(all="ignore")  # a NaN/inf value is detected and retried, not warned about
    def diagonal(self, idx: np.ndarray, f0: np.ndarray) -> tuple[_Tables, _Tables]:
        """Tables of first- and second-derivative estimates for parameters ``idx``."""
        n = idx.size
        side = self.side[idx]
        central = side == 0
        vals = self._points(self._diagonal_offsets(idx))
        fa, fb = vals[:, :n], vals[:, n:]
        th = (self.t[:, None] * self.h[idx][None, :])[:, :, None]
        c = central[None, :, None]
        sg = np.where(central, 1.0, side)[None, :, None]
        g = np.where(c, (fa - fb) / (2 * th), (-3 * f0 + 4 * fa - fb) / (2 * sg * th))
        d2 = np.where(c, (fa - 2 * f0 + fb) / th**2, (fb - 2 * fa + f0) / th**2)
        fmax = np.maximum(np.maximum(np.abs(fa), np.abs(fb)).max(axis=0), np.abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None]
        m = np.arange(1, len(self.t))[:, None, None]
        bad = ~np.all(np.isfinite(fa), axis=(0, 2)) | ~np.all(np.isfinite(fb), axis=(0, 2))
        first = _Tables(g, np.where(c, 1.0, 4.0) * noise / th, np.where(c, 2.0 * m, m + 1.0), bad, fmax)
        second = _Tables(d2, 4.0 * noise / th**2, np.where(c, 2.0 * m, 1.0 * m), bad, fmax)
        return first, second

    @np.errstate(all="ignore")
    def mixed(self, pairs: np.ndarray, f0: np.ndarray) -> _Tables:
        """Tables of off-diagonal estimates for the index pairs ``pairs`` (``(n, 2)``), one batch."""
        n = pairs.shape[0]
        i, j = pairs[:, 0], pairs[:, 1]
        si, sj = self.side[i], self.side[j]
        central = (si == 0) & (sj == 0)
        di = np.where(si == 0, 1.0, si)
        dj = np.where(sj == 0, 1.0, sj)
        eye = np.eye(self.x.size)
        up = eye[i] * di[:, None] + eye[j] * dj[:, None]
        cc = central[:, None]
        offsets = [
            up,
            np.where(cc, -up, up),  # forward pairs: a repeat, evaluated once
            eye[i] * di[:, None],
            eye[j] * dj[:, None],
            np.where(cc, -eye[i], eye[i] * di[:, None]),
            np.where(cc, -eye[j], eye[j] * dj[:, None]),
        ]
        vals = self._points(np.concatenate(offsets))
        stack = vals.reshape(self.t.size, 6, n, -1).swapaxes(0, 1)  # (6, L, n, N)
        f_pp, f_mm, f_i, f_j, f_mi, f_mj = stack
        tt = ((self.t**2)[:, None] * (self.h[i] * self.h[j])[None, :])[:, :, None]
        est_c = (f_pp + f_mm - f_i - f_mi - f_j - f_mj + 2 * f0) / (2 * tt)
        est_f = (f_pp - f_i - f_j + f0) / ((di * dj)[None, :, None] * tt)
        c = central[None, :, None]
        est = np.where(c, est_c, est_f)
        fmax = np.maximum(np.abs(stack).max(axis=(0, 1)), np.abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None]
        m = np.arange(1, len(self.t))[:, None, None]
        bad = ~np.all(np.isfinite(stack), axis=(0, 1, 3))
        return _Tables(est, 4.0 * noise / tt, np.where(c, 2.0 * m, 1.0 * m), bad, fmax)
