r"""Laplace approximation of the posterior, and the evidence it implies.

At the MAP :math:`\hat\theta`, with :math:`H = -\nabla^2[\log p(y\mid\theta) + \log p(\theta)]`
(the fit's observed information including the prior's curvature),

.. math:: p(\theta \mid y) \approx \mathcal N(\hat\theta, H^{-1}), \qquad
          \log p(y) \approx \log p(y\mid\hat\theta) + \log p(\hat\theta)
          + \tfrac{P}{2}\log 2\pi - \tfrac12 \log\det H

(Tierney & Kadane 1986, JASA 81, 82–86; MacKay 2003, ch. 27). The evidence is
exact for a Gaussian likelihood in the mean with a Gaussian prior. It needs a
proper (normalised) prior; the mean and covariance do not.

:func:`laplace_log_evidence` is the one formula: this fit's Laplace and the network Laplace
(:func:`fisherlab.laplace`) both call it, with the fit's full observed information for
:math:`H` here and a curvature structure (full, block, diagonal, K-FAC, low rank) of the
generalised Gauss–Newton or Fisher plus the Gaussian prior's precision there.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from .._errors import MethodUnavailableError
from .._options import count, seed_value
from .._precision import float64_methods
from ..information._matrix import Covariance

if TYPE_CHECKING:
    from ._result import FitResult

__all__ = ["LaplaceApproximation", "laplace_approximation", "laplace_log_evidence"]


def laplace_log_evidence(loglik: float, logprior: float, logdet_precision: float, p: int) -> float:
    """:math:`\\log p(y) \\approx \\log p(y\\mid\\theta^*) + \\log p(\\theta^*) + \\tfrac P2 \\log 2\\pi
    - \\tfrac12 \\log\\det H`, :math:`H` the posterior precision at the mode :math:`\\theta^*`."""
    return float(loglik + logprior + 0.5 * p * np.log(2 * np.pi) - 0.5 * logdet_precision)


@float64_methods
class LaplaceApproximation:
    """Gaussian approximation :math:`\\mathcal N(\\hat\\theta, H^{-1})` of the posterior.

    Attributes:
        mean: :math:`\\hat\\theta`, a pytree like the fit's parameters.
        cov: :class:`~fisherlab.Covariance`, :math:`H^{-1}` in the user's parameters.
    """

    def __init__(self, result: FitResult) -> None:
        self._result = result
        self.mean = result.params
        self.cov: Covariance = result.cov("observed")

    @property
    def log_evidence(self) -> float:
        """:math:`\\log p(y)` by the Laplace approximation (needs a proper prior)."""
        _require_prior(self._result)
        info = self._result.information("observed")
        sign, logdet = np.linalg.slogdet(info.matrix)
        if sign <= 0:
            info.cov()  # raises SingularInformationError naming the direction
        return laplace_log_evidence(self._result.loglik, self._result.logprior, logdet, len(info.names))

    def _repr_html_(self) -> str:
        """Mean and standard deviation per parameter as an HTML table for notebooks (escaped)."""
        frame = pd.DataFrame(
            {"mean": self._result.flat_params, "sd": np.sqrt(np.diag(self.cov.matrix))},
            index=self.cov.names,
        )
        title = "LaplaceApproximation: Gaussian N(mean, J⁻¹) at the " + (
            "MAP estimate" if self._result.prior is not None else "MLE"
        )
        table = frame.to_html(float_format=lambda v: f"{v:.6g}")
        return f"<div><strong>{html.escape(title)}</strong>{table}</div>"

    def sample(self, n: int, seed: int = 0) -> Any:
        """``n`` draws from the approximation, a pytree like ``mean`` with a leading axis ``n``.

        Raises:
            FisherlabArgumentError: ``n`` or ``seed`` not an integer.
            InvalidOptionError: ``n < 1`` or ``seed < 0``.
        """
        n = count(n, "n", 1, "the number of draws")
        seed = seed_value(seed)
        flat, unravel = ravel_pytree(self.mean)
        draws = np.random.default_rng(seed).multivariate_normal(
            np.asarray(flat), self.cov.matrix, size=int(n), method="cholesky"
        )
        return jax.tree_util.tree_map(np.asarray, jax.vmap(unravel)(jnp.asarray(draws)))


def _require_prior(result: FitResult) -> None:
    """The evidence needs a proper prior: say so where the fit has none."""
    if result.prior is None or not result.prior.proper:
        raise MethodUnavailableError(
            "the Laplace evidence log p(y) needs a proper prior: refit with prior= (a distribution per "
            "parameter or a normalised log-density); .mean and .cov exist without one"
        )


def laplace_approximation(result: FitResult) -> LaplaceApproximation:
    """The Laplace approximation of a fit (see :class:`LaplaceApproximation`)."""
    return LaplaceApproximation(result)
