r"""A GLM's covariates: the design matrix :math:`X` (N, p), binomial trials :math:`n_i`, offset :math:`o_i`.

``x`` is the design matrix, or a dict ``{"X": design, "trials": n_i, "offset": o_i,
"weights": w_i}`` with optional ``"trials"`` (families that take them: the binomial),
``"offset"`` (a known term added to :math:`\eta = X\beta + o`) and ``"weights"``, R's prior
weights: for the families whose dispersion is estimated (gaussian, Gamma, inverse Gaussian)
row :math:`i` has dispersion :math:`\phi/w_i` (:attr:`ExtraParameter.per_weight`); for the
Poisson and negative binomial (:data:`LIKELIHOOD_WEIGHTS`) row :math:`i`'s log-likelihood
counts :math:`w_i` times (:class:`~fisherlab.dist.Weighted`), as in R's ``glm`` and
``MASS::glm.nb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ModelError
from ._families import FAMILIES, Family

__all__ = [
    "LIKELIHOOD_WEIGHTS",
    "Design",
    "check_params",
    "design",
    "host_design",
    "host_weights",
    "takes_weights",
]


class Design(NamedTuple):
    """The covariates of a GLM, split."""

    X: Any  # (..., p)
    trials: Any  # (...,) or None
    offset: Any  # (...,) or 0.0
    weights: Any = None  # (...,) or None


_X_KEYS = frozenset({"X", "trials", "offset", "weights"})

#: Families whose prior weights multiply each row's log-likelihood (R's ``glm``, ``glm.nb``).
LIKELIHOOD_WEIGHTS = frozenset({Family.POISSON, Family.NEGATIVE_BINOMIAL})


def takes_weights(family: Family) -> bool:
    """Whether the family takes R's prior weights (a dispersion divisor, or likelihood weights)."""
    extra = FAMILIES[family].extra
    return family in LIKELIHOOD_WEIGHTS or (extra is not None and extra.per_weight is not None)


# the families whose covariates may carry prior weights, for messages
_WITH_WEIGHTS = ", ".join(f.value for f in FAMILIES if takes_weights(f))
# the families whose covariates may carry trials ("binomial"), for messages
_WITH_TRIALS = ", ".join(f.value for f, r in FAMILIES.items() if r.trials is not None)


def design(x: Any, family: Family) -> Design:
    """Split the covariates into design, trials and offset, checking their structure.

    Raises:
        ModelError: no covariates, a dict with unknown keys or without ``"X"``, trials or
            weights for a family that takes none, a design that is not 2-D.
    """
    if x is None:
        raise ModelError("a GLM needs covariates: pass the design matrix X (N, p) as x")
    if isinstance(x, Mapping):
        unknown = sorted(set(map(str, x)) - _X_KEYS)
        if "X" not in x or unknown:
            raise ModelError(
                "GLM covariates are the design matrix (N, p) or a dict with keys 'X' (design), "
                f"'trials' ({_WITH_TRIALS}), 'offset' and 'weights' ({_WITH_WEIGHTS}); got keys "
                f"{sorted(map(str, x))}. A pandas DataFrame is read as a dict of columns: pass "
                "df.to_numpy() instead"
            )
        X, trials, offset, weights = x["X"], x.get("trials"), x.get("offset", 0.0), x.get("weights")
    else:
        X, trials, offset, weights = x, None, 0.0, None
    if trials is not None and FAMILIES[family].trials is None:
        raise ModelError(f"'trials' is for the {_WITH_TRIALS} family, not {family.value}")
    if weights is not None and not takes_weights(family):
        raise ModelError(
            f"'weights' (R's prior weights) are for the {_WITH_WEIGHTS} families, not {family.value} "
            "(the binomial's trials go in 'trials')"
        )
    if jnp.ndim(X) < 2:
        raise ModelError(
            f"the GLM design matrix must be 2-D (N, p), got shape {jnp.shape(X)}: "
            "add a column axis (X[:, None]) and the intercept column of ones"
        )
    return Design(X, trials, offset, weights)


def host_weights(x: Any, family: Family) -> np.ndarray:
    """R's prior weights (N,) as NumPy (ones when absent)."""
    d = design(x, family)
    n = np.shape(d.X)[0]
    return np.ones(n) if d.weights is None else np.asarray(d.weights, dtype=np.float64)


def host_design(x: Any, family: Family) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design (N, p), trials (N,) (ones when absent) and offset (N,) as NumPy arrays."""
    d = design(x, family)
    X = np.asarray(d.X, dtype=np.float64)
    n = X.shape[0]
    trials = np.ones(n) if d.trials is None else np.asarray(d.trials, dtype=np.float64)
    offset = np.broadcast_to(np.asarray(d.offset, dtype=np.float64), (n,))
    return X, trials, offset


def check_params(params: Any, p: int, family: Family, free: str | None) -> jax.Array:
    """``params["beta"]``, after checking that the leaves are ``beta`` (p,) and the free extra parameter.

    Raises:
        ModelError: other leaves, or ``beta`` of another shape.
    """
    expected = {"beta"} | ({free} if free else set())
    if not isinstance(params, Mapping) or set(params) != expected:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ModelError(
            f"glm({family.value!r}) takes parameters {sorted(expected)} (beta of shape ({p},)), got {got}"
        )
    beta = params["beta"]
    if jnp.shape(beta) != (p,):
        raise ModelError(f"beta must have shape ({p},), one per design column; got {jnp.shape(beta)}")
    return jnp.asarray(beta)
