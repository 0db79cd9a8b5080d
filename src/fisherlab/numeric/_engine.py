"""One call of the engine: the pool, the stencils, the derivatives and the accuracy warning."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from ._accuracy import _warn_inaccurate
from ._derivatives import _Derivatives, _derivatives
from ._executor import _Pool
from ._setup import _start


def _differentiate(
    f: Callable[[np.ndarray], Any],
    x: Any,
    names: Sequence[str] | None,
    step: Any,
    lower: Any,
    upper: Any,
    levels: int,
    noise: float,
    executor: Any,
    workers: int | None,
    cache: MutableMapping[bytes, Any] | None,
    *,
    second: bool,
    vectorized: bool,
    vector: bool,
) -> tuple[np.ndarray, _Derivatives]:
    """First (and with ``second``, second) derivatives of every output from one set of stencils.

    The pool lives for this call; one :class:`NumericAccuracyWarning` if an entry is inaccurate.
    """
    with _Pool(executor, workers, f) as pool:
        st, names_, f0 = _start(
            f,
            x,
            names,
            step,
            lower,
            upper,
            levels,
            noise,
            second=second,
            vectorized=vectorized,
            vector=vector,
            pool=pool,
            cache=cache,
        )
        d = _derivatives(st, names_, f0, second=second)
    _warn_inaccurate(d, st.x, names_, outputs=vector)
    return f0, d
