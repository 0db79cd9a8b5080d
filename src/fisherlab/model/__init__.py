"""The model: a function of parameters (and covariates) giving a distribution per row, and its state."""

from ._model import (
    Model as Model,
    call_user as call_user,
    observation_for as observation_for,
    require_model as require_model,
    validity as validity,
)
from ._state import EvaluationCache as EvaluationCache, ModelState as ModelState

__all__ = [
    "EvaluationCache",
    "Model",
    "ModelState",
    "call_user",
    "observation_for",
    "require_model",
    "validity",
]
