"""fisherlab: score, Fisher information, observed information and the uncertainty built on them.

Importing fisherlab turns on JAX's 64-bit mode (``jax_enable_x64``): covariances
come from inverting ill-conditioned matrices, so statistical work runs in
float64. Large networks may opt into float32 by passing float32 parameters and
data after import (``jax.config.update("jax_enable_x64", False)`` before any
fisherlab call switches the default back for the whole process).
"""

from . import _config as _config  # first: turns on float64
from . import datasets as datasets
from . import dist as dist
from ._errors import (
    FisherlabError as FisherlabError,
)
from ._errors import (
    InvalidDataError as InvalidDataError,
)
from ._errors import (
    InvalidParameterError as InvalidParameterError,
)
from ._errors import (
    MethodUnavailableError as MethodUnavailableError,
)
from ._errors import (
    ModelError as ModelError,
)
from ._errors import (
    NotConvergedError as NotConvergedError,
)
from ._errors import (
    SingularInformationError as SingularInformationError,
)
from ._hessian import hessian as hessian
from ._information import (
    empirical_fisher as empirical_fisher,
)
from ._information import (
    fisher as fisher,
)
from ._information import (
    loglik as loglik,
)
from ._information import (
    observed_information as observed_information,
)
from ._information import (
    score as score,
)
from ._matrix import InfoMatrix as InfoMatrix
from ._model import Model as Model
from ._params import param_names as param_names

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
    "datasets",
    "dist",
    "empirical_fisher",
    "fisher",
    "hessian",
    "loglik",
    "observed_information",
    "param_names",
    "score",
]
