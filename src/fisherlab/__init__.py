"""fisherlab: score, Fisher information, observed information and the uncertainty built on them.

Importing fisherlab turns on JAX's 64-bit mode (``jax_enable_x64``): covariances
come from inverting ill-conditioned matrices, so statistical work runs in
float64. Large networks may opt into float32 by passing float32 parameters and
data after import (``jax.config.update("jax_enable_x64", False)`` before any
fisherlab call switches the default back for the whole process).
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import dist as dist  # noqa: E402
from ._errors import (  # noqa: E402
    FisherlabError as FisherlabError,
    InvalidDataError as InvalidDataError,
    InvalidParameterError as InvalidParameterError,
    MethodUnavailableError as MethodUnavailableError,
    ModelError as ModelError,
    NotConvergedError as NotConvergedError,
    SingularInformationError as SingularInformationError,
)
from ._hessian import hessian as hessian  # noqa: E402
from ._information import (  # noqa: E402
    empirical_fisher as empirical_fisher,
    fisher as fisher,
    loglik as loglik,
    observed_information as observed_information,
    score as score,
)
from ._matrix import InfoMatrix as InfoMatrix  # noqa: E402
from ._model import Model as Model  # noqa: E402
from ._params import param_names as param_names  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "FisherlabError",
    "InfoMatrix",
    "InvalidDataError",
    "InvalidParameterError",
    "MethodUnavailableError",
    "Model",
    "ModelError",
    "NotConvergedError",
    "SingularInformationError",
    "__version__",
    "dist",
    "empirical_fisher",
    "fisher",
    "hessian",
    "loglik",
    "observed_information",
    "param_names",
    "score",
]
