"""The model: a function of parameters (and covariates) giving a distribution per row, and its state."""

from ._model import Model as Model, validity as validity
from ._state import EvaluationCache as EvaluationCache, ModelState as ModelState

__all__ = ["EvaluationCache", "Model", "ModelState", "validity"]
