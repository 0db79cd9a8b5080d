"""fisherlab: score, Fisher information, observed information and the uncertainty built on them.

Precision: fisherlab computes in float64 inside its own calls, and leaves the rest of the
process as the user configured JAX. Importing fisherlab does not touch JAX's 64-bit mode
(``jax_enable_x64``, ``JAX_ENABLE_X64``): a network trained in float32 in the same
process keeps ``jnp.ones(3).dtype == float32``. Every statistical function (``fit``,
``glm``, ``fisher``, ``score``, ``check``, ...) and every method of its results
(``res.cov()``, ``res.summary()``, ``InfoMatrix.cov()``, ...) runs with 64-bit mode on
for the duration of the call (``jax.enable_x64``, thread-local; :mod:`fisherlab._precision`),
always, by design: covariances come from inverting ill-conditioned matrices. Curvature of
networks, ``fl.curvature``, follows the parameters' dtype instead: float32 parameters are
worked on in float32, exactly as they were trained; that is how a user of a large network
opts into float32.

``import fisherlab`` itself imports no JAX, so that ``fisherlab --help`` answers at
once: the public names below are imported on first use (``fl.fit``, ``fl.dist``,
``from fisherlab import glm``; PEP 562). ``fisherlab._config`` sets up JAX's persistent
compilation cache before the first of fisherlab's modules that use JAX is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import _config

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs; at run time see _LAZY
    from . import (
        data as data,
        datasets as datasets,
        design as design,
        dist as dist,
        models as models,
        plot as plot,
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
    from .operators import Curvature as Curvature, Estimate as Estimate, curvature as curvature
    from .params import param_names as param_names
    from .posterior import NetworkLaplace as NetworkLaplace, Predictive as Predictive, laplace as laplace

_config.at_import()  # before any submodule: the compilation cache before JAX is needed

__version__ = "0.1.0"

# Public name -> the submodule that defines it (the submodules data, datasets, design, dist, models
# and plot are themselves public names); the same pairs as the TYPE_CHECKING imports above
# (tests/test_startup.py checks that they agree).
_LAZY: dict[str, str] = {
    **{name: f".{name}" for name in ("data", "datasets", "design", "dist", "models", "plot")},
    **dict.fromkeys(
        (
            "EstimateAtInfinityError",
            "FisherlabArgumentError",
            "FisherlabError",
            "FormulaError",
            "InvalidDataError",
            "InvalidOptionError",
            "InvalidParameterError",
            "MethodUnavailableError",
            "ModelError",
            "NotConvergedError",
            "NumericAccuracyWarning",
            "NumericDerivativeError",
            "OutputExistsError",
            "SingularInformationError",
            "UnsafeFormulaError",
        ),
        "._errors",
    ),
    **dict.fromkeys(
        (
            "CovKind",
            "CovScale",
            "Derivatives",
            "ExecutorKind",
            "FisherMethod",
            "GradientMethod",
            "HCType",
            "HessianMethod",
            "IMTestVariant",
            "IntervalMethod",
            "OptimMethod",
            "PValueMethod",
            "Reduction",
        ),
        "._options",
    ),
    "glm": ".formula",
    **dict.fromkeys(("Curvature", "Estimate", "curvature"), ".operators"),
    **dict.fromkeys(("NetworkLaplace", "Predictive", "laplace"), ".posterior"),
    **dict.fromkeys(
        ("CheckResult", "Derived", "FitResult", "LaplaceApproximation", "Summary", "check", "fit"),
        ".inference",
    ),
    **dict.fromkeys(
        (
            "Covariance",
            "InfoMatrix",
            "LabelledMatrix",
            "empirical_fisher",
            "fisher",
            "hessian",
            "loglik",
            "observed_information",
            "score",
        ),
        ".information",
    ),
    "Model": ".model",
    "param_names": ".params",
}

__all__ = sorted([*_LAZY, "__version__"])


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt fl.name is still an error there

    def __getattr__(name: str) -> object:
        """Import the public ``name`` on first use (PEP 562) and keep it in the module."""
        where = _LAZY.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = importlib.import_module(where, __name__)
        value = module if where == f".{name}" else getattr(module, name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
