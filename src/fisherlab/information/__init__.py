"""Information matrices of a model: score, expected / empirical Fisher, observed information, Hessian.

Each public function validates its arguments, asks the model's derivative backend
(:mod:`fisherlab.backends`) and returns labelled results (:class:`InfoMatrix`).
"""

from ._data_terms import (
    empirical_fisher as empirical_fisher,
    loglik as loglik,
    observed_information as observed_information,
    reduction_factor as reduction_factor,
    score as score,
)
from ._fisher import family_parts as family_parts, fisher as fisher
from ._hessian import hessian as hessian
from ._matrix import Covariance as Covariance, InfoMatrix as InfoMatrix, LabelledMatrix as LabelledMatrix

__all__ = [
    "Covariance",
    "InfoMatrix",
    "LabelledMatrix",
    "empirical_fisher",
    "family_parts",
    "fisher",
    "hessian",
    "loglik",
    "observed_information",
    "reduction_factor",
    "score",
]
