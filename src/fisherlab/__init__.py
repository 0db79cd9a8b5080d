"""fisherlab: score, Fisher information, observed information and the uncertainty built on them.

Importing fisherlab turns on JAX's 64-bit mode (``jax_enable_x64``): covariances
come from inverting ill-conditioned matrices, so statistical work runs in
float64. Large networks may opt into float32 by passing float32 parameters and
data after import (``jax.config.update("jax_enable_x64", False)`` before any
fisherlab call switches the default back for the whole process).
"""

from . import (
    _config as _config,  # first: turns on float64
    datasets as datasets,
    dist as dist,
    models as models,
)
from ._errors import (
    EstimateAtInfinityError as EstimateAtInfinityError,
    FisherlabArgumentError as FisherlabArgumentError,
    FisherlabError as FisherlabError,
    FormulaError as FormulaError,
    InvalidDataError as InvalidDataError,
    InvalidOptionError as InvalidOptionError,
    InvalidParameterError as InvalidParameterError,
    MethodUnavailableError as MethodUnavailableError,
    ModelError as ModelError,
    NotConvergedError as NotConvergedError,
    NumericAccuracyWarning as NumericAccuracyWarning,
    NumericDerivativeError as NumericDerivativeError,
    OutputExistsError as OutputExistsError,
    SingularInformationError as SingularInformationError,
    UnsafeFormulaError as UnsafeFormulaError,
)
from ._options import (
    CovKind as CovKind,
    CovScale as CovScale,
    Derivatives as Derivatives,
    ExecutorKind as ExecutorKind,
    FisherMethod as FisherMethod,
    GradientMethod as GradientMethod,
    HCType as HCType,
    HessianMethod as HessianMethod,
    IMTestVariant as IMTestVariant,
    IntervalMethod as IntervalMethod,
    OptimMethod as OptimMethod,
    PValueMethod as PValueMethod,
    Reduction as Reduction,
)
from .formula import glm as glm
from .inference import (
    CheckResult as CheckResult,
    Derived as Derived,
    FitResult as FitResult,
    LaplaceApproximation as LaplaceApproximation,
    Summary as Summary,
    check as check,
    fit as fit,
)
from .information import (
    Covariance as Covariance,
    InfoMatrix as InfoMatrix,
    LabelledMatrix as LabelledMatrix,
    empirical_fisher as empirical_fisher,
    fisher as fisher,
    hessian as hessian,
    loglik as loglik,
    observed_information as observed_information,
    score as score,
)
from .model import Model as Model
from .params import param_names as param_names

__version__ = "0.1.0"

__all__ = [
    "CheckResult",
    "CovKind",
    "CovScale",
    "Covariance",
    "Derivatives",
    "Derived",
    "EstimateAtInfinityError",
    "ExecutorKind",
    "FisherMethod",
    "FisherlabArgumentError",
    "FisherlabError",
    "FitResult",
    "FormulaError",
    "GradientMethod",
    "HCType",
    "HessianMethod",
    "IMTestVariant",
    "InfoMatrix",
    "IntervalMethod",
    "InvalidDataError",
    "InvalidOptionError",
    "InvalidParameterError",
    "LabelledMatrix",
    "LaplaceApproximation",
    "MethodUnavailableError",
    "Model",
    "ModelError",
    "NotConvergedError",
    "NumericAccuracyWarning",
    "NumericDerivativeError",
    "OptimMethod",
    "OutputExistsError",
    "PValueMethod",
    "Reduction",
    "SingularInformationError",
    "Summary",
    "UnsafeFormulaError",
    "__version__",
    "check",
    "datasets",
    "dist",
    "empirical_fisher",
    "fisher",
    "fit",
    "glm",
    "hessian",
    "loglik",
    "models",
    "observed_information",
    "param_names",
    "score",
]
