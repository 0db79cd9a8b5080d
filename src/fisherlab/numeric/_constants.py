"""Constants of the finite-difference engine: steps, Richardson levels, retries, noise, accuracy."""

from __future__ import annotations

import numpy as np

#: The float64 machine epsilon.
EPS = float(np.finfo(np.float64).eps)
#: Base step relative to ``max(|theta_i|, 1)``. Central differences extrapolated over
#: ``L = 4`` halvings have a truncation error ~ (h/8)^6 f^(8) and a rounding error
#: ~ eps |f| / (h/8)^2, balanced near h ~ eps^(1/8) ~ 0.011; we start a little below
#: (4 eps^(1/6) ~ 0.0098) to stay clear of nearby singularities.
RELATIVE_STEP = 4.0 * EPS ** (1.0 / 6.0)
#: A parameter closer to a bound than ``NEAR_BOUND * h`` also tries a central stencil with
#: step ``distance / NEAR_BOUND`` (a function singular at the bound varies on the scale of
#: the distance; a step of a quarter of it keeps the Taylor expansion converging fast).
NEAR_BOUND = 4.0
#: Richardson levels: steps h, h/2, h/4, h/8.
LEVELS = 4
#: Step shrink factor for a retry after a non-finite value, and the number of retries.
RETRY_SHRINK = 8.0
MAX_RETRIES = 4
#: Function-value noise in units of ``eps * max|f|`` over the stencil: a sum of N terms
#: that cancel (a log-likelihood) carries ~eps * sum|terms| of rounding, tens of ulps of
#: the sum (64 covers a Gamma log-likelihood from scipy.stats with shape ~20 in our tests).
NOISE_ULPS = 64.0
#: Complex-step size relative to ``max(|theta_i|, 1)``.
COMPLEX_STEP = 1e-20
#: Relative error of a complex-step derivative: a few hundred ulps of rounding inside ``f``.
COMPLEX_ULPS = 256.0
#: An entry whose estimated error exceeds this fraction of its natural scale (see
#: :mod:`fisherlab.numeric._accuracy`) raises a :class:`~fisherlab.NumericAccuracyWarning`:
#: smooth functions in float64 reach ~1e-9; 1e-4 leaves room for ill-conditioned but honest
#: problems and still catches noise of relative size ~1e-8 in ``f`` (visible in second
#: derivatives) or a kink.
ACCURACY_RTOL = 1e-4
#: Entries listed by name in one accuracy warning (the worst first).
ACCURACY_SHOWN = 5
