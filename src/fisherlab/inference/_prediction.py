r"""Predictions of a fit at new covariates: the hook that model classes extend.

:func:`model_predict` is a ``functools.singledispatch`` function of the model's type; the
default raises, and :mod:`fisherlab.models` registers the GLM's (the mean
:math:`\hat\mu = g^{-1}(x^\top\hat\beta + o)` with its delta-method standard error).
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from .._errors import MethodUnavailableError

__all__ = ["model_predict"]


@functools.singledispatch
def model_predict(model: Any, result: Any, newdata: Any, level: float, kind: str) -> pd.DataFrame:
    """Predictions of ``result`` (a fit of ``model``) at ``newdata``, one row per new row.

    Raises:
        MethodUnavailableError: the model class registers no prediction.
    """
    raise MethodUnavailableError(
        f"predict: not available for a {type(model).__name__}; it is defined for GLMs "
        "(fisherlab.models.glm). For any model, res.derived(lambda th: ...) gives a function of the "
        "parameters with its delta-method standard error"
    )
