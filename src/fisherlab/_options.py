"""Option strings, defined once: every option of fisherlab is a ``str`` enum here.

Functions accept the plain strings (``method="exact"``) or the enum members
(``fl.FisherMethod.EXACT``); :func:`choose` validates either in one place and raises
:class:`~fisherlab.InvalidOptionError` naming the argument, the value given and the
valid values. The command line builds its choices and help text from the same enums.

Numeric options are validated here too, with one rule each: :func:`count` (``n=``,
``num_samples=``), :func:`seed_value`, :func:`probability` (``level=``, ``alpha=``),
:func:`nonnegative_factor` (``c * F``) and :func:`positive_number` (``F / c``, tolerances).
A value of the wrong kind (``n=1.5``, ``level="0.9"``, ``seed=True``) raises
:class:`~fisherlab.FisherlabArgumentError` (a ``TypeError``); a number outside its range
(``n=0``, ``level=1.5``, ``-1 * F``) raises :class:`~fisherlab.InvalidOptionError` (a
``ValueError``). Both messages name the argument, the value given and what is valid.

Examples:
    >>> import fisherlab as fl
    >>> [k.value for k in fl.CovKind]
    ['observed', 'expected', 'empirical', 'sandwich', 'cluster']
    >>> fl.fisher(fl.Model(lambda th, x: fl.dist.Poisson(th["rate"])), {"rate": 1.0}, method="bogus")
    Traceback (most recent call last):
    ...
    fisherlab._errors.InvalidOptionError: method='bogus' is not one of ['auto', 'exact', 'mc']
    >>> from fisherlab._options import probability
    >>> probability(1.5, "level")
    Traceback (most recent call last):
    ...
    fisherlab._errors.InvalidOptionError: level must be in the open interval (0, 1), e.g. 0.95; got 1.5
"""

from __future__ import annotations

import enum
import math
import numbers
from typing import Any, TypeVar

from ._errors import FisherlabArgumentError, InvalidOptionError

__all__ = [
    "CovKind",
    "CovScale",
    "CurvatureKind",
    "CurvatureStructure",
    "Derivatives",
    "DesignCriterion",
    "ExecutorKind",
    "FisherMethod",
    "GLMDispersion",
    "GradientMethod",
    "HCType",
    "HessianMethod",
    "IMTestVariant",
    "IntervalMethod",
    "KFACApprox",
    "LaplaceStructure",
    "Missing",
    "OptimMethod",
    "PValueMethod",
    "PredictiveMethod",
    "PriorExpectation",
    "PriorMethod",
    "PriorStructure",
    "Reduction",
    "choose",
    "count",
    "nonnegative_factor",
    "positive_number",
    "probability",
    "seed_value",
    "values",
]

E = TypeVar("E", bound=enum.Enum)


def values(options: type[enum.Enum]) -> list[str]:
    """The option strings of an enum, in declaration order (for messages, CLI choices and help)."""
    return [str(o.value) for o in options]


def choose(options: type[E], value: object, name: str, error: type[Exception] = InvalidOptionError) -> E:
    """``options(value)``, or ``error`` saying ``"name='value' is not one of [...]"``.

    ``error`` defaults to :class:`~fisherlab.InvalidOptionError` (a ``FisherlabError`` and a
    ``ValueError``); a caller may name a more specific ``FisherlabError`` subclass.
    """
    try:
        return options(value)
    except ValueError:
        raise error(f"{name}={value!r} is not one of {values(options)}") from None


def _is_real_number(value: Any) -> bool:
    """A real number: ``int``/``float``, a NumPy/JAX real scalar or 0-d real array; never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    return dtype is not None and shape == () and getattr(dtype, "kind", "") in "iuf"


def _is_integer(value: Any) -> bool:
    """An integer: ``int``, a NumPy integer, or a 0-d integer array; never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
    return dtype is not None and shape == () and getattr(dtype, "kind", "") in "iu"


def count(value: Any, name: str, minimum: int = 1, what: str = "") -> int:
    """``value`` as an ``int`` at least ``minimum`` (``n=``, ``num_samples=``, a number of draws).

    Raises:
        FisherlabArgumentError: not an integer (a float such as ``1.5`` or ``2.0``, a bool, a string).
        InvalidOptionError: an integer below ``minimum``.
    """
    meaning = f" ({what})" if what else ""
    if not _is_integer(value):
        raise FisherlabArgumentError(
            f"{name} must be an integer >= {minimum}{meaning}, got {value!r} of type {type(value).__name__}"
        )
    if int(value) < minimum:
        raise InvalidOptionError(f"{name} must be an integer >= {minimum}{meaning}, got {int(value)}")
    return int(value)


def seed_value(value: Any, name: str = "seed") -> int:
    """A random seed: an ``int`` >= 0 (the same rule for JAX keys and NumPy generators).

    Raises:
        FisherlabArgumentError: not an integer.
        InvalidOptionError: a negative integer.
    """
    return count(value, name, minimum=0, what="a random seed")


def probability(value: Any, name: str, example: float = 0.95) -> float:
    """A level or significance in the open interval (0, 1), as a ``float``.

    Raises:
        FisherlabArgumentError: not a real number (a string, a bool, a complex number, an array).
        InvalidOptionError: NaN, or a number outside (0, 1) (0 and 1 excluded).
    """
    if not _is_real_number(value):
        raise FisherlabArgumentError(
            f"{name} must be a number in (0, 1), e.g. {example}; got {value!r} of type {type(value).__name__}"
        )
    level = float(value)
    if not 0.0 < level < 1.0:
        raise InvalidOptionError(f"{name} must be in the open interval (0, 1), e.g. {example}; got {level!r}")
    return level


def nonnegative_factor(value: Any, name: str) -> float:
    """A finite real number >= 0 as a ``float`` (a scale factor such as ``n`` repetitions).

    Raises:
        FisherlabArgumentError: not a real number (a bool, a complex number, a string, an array).
        InvalidOptionError: a negative, infinite or NaN number.
    """
    if not _is_real_number(value):
        raise FisherlabArgumentError(
            f"{name} must be a finite real number >= 0, got {value!r} of type {type(value).__name__}"
        )
    factor = float(value)
    if not (math.isfinite(factor) and factor >= 0.0):
        raise InvalidOptionError(f"{name} must be a finite real number >= 0, got {factor!r}")
    return factor


def positive_number(value: Any, name: str) -> float:
    """A finite real number > 0 as a ``float`` (a tolerance, a divisor, a width).

    Raises:
        FisherlabArgumentError: not a real number.
        InvalidOptionError: zero, negative, infinite or NaN.
    """
    if not _is_real_number(value):
        raise FisherlabArgumentError(
            f"{name} must be a finite real number > 0, got {value!r} of type {type(value).__name__}"
        )
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise InvalidOptionError(f"{name} must be a finite real number > 0, got {number!r}")
    return number


class GLMDispersion(str, enum.Enum):
    """``dispersion=`` of :func:`fisherlab.glm`: which dispersion the result's standard errors use."""

    ML = "ml"
    """Maximum likelihood: ``res.cov()`` is the inverse observed information, dispersion by ML."""
    R = "r"
    """R's ``summary.glm``: Pearson dispersion (1 for binomial and Poisson), ``fl.models.glm_covariance``."""


class Missing(str, enum.Enum):
    """``missing=`` of :func:`fisherlab.glm` (R's ``na.action``): what rows with a missing value do."""

    RAISE = "raise"
    """Refuse the data, naming the columns with missing values and the first row (R's ``na.fail``)."""
    DROP = "drop"
    """Drop the rows with a missing value in a column the model uses (R's ``na.omit``)."""


class GradientMethod(str, enum.Enum):
    """``method`` of :func:`fisherlab.numeric.gradient`."""

    CENTRAL = "central"
    COMPLEX = "complex"


class ExecutorKind(str, enum.Enum):
    """``executor`` strings: a pool of ``workers`` threads or (spawned) processes made for one call."""

    THREADS = "threads"
    PROCESSES = "processes"


class Reduction(str, enum.Enum):
    """How per-observation contributions are combined: ``"sum"`` (total) or ``"mean"`` (1/N)."""

    SUM = "sum"
    MEAN = "mean"


class CurvatureKind(str, enum.Enum):
    """Which curvature ``fl.curvature`` takes (``fisherlab.operators``)."""

    FISHER = "fisher"
    MC_FISHER = "mc_fisher"
    EMPIRICAL = "empirical"
    GGN = "ggn"
    HESSIAN = "hessian"


class CurvatureStructure(str, enum.Enum):
    """What ``fl.curvature`` materialises: nothing, the dense matrix, its diagonal, blocks, ..."""

    OPERATOR = "operator"
    DENSE = "dense"
    DIAGONAL = "diagonal"
    KFAC = "kfac"
    BLOCK = "block"
    LOWRANK = "lowrank"


class KFACApprox(str, enum.Enum):
    """How K-FAC treats a weight shared over positions (a convolution's): Eschenhagen et al. 2023."""

    EXPAND = "expand"  # positions count like rows
    REDUCE = "reduce"  # positions summed (inputs averaged) before the outer products


class LaplaceStructure(str, enum.Enum):
    """The structure of a network Laplace's posterior precision (``fl.laplace(structure=)``).

    ``"dense"`` is accepted for ``"full"`` (``fl.curvature``'s name for it)."""

    FULL = "full"  # the P x P matrix
    BLOCK = "block"  # a dense block per layer
    DIAGONAL = "diagonal"
    KFAC = "kfac"  # Kronecker factors per layer
    LOWRANK = "lowrank"  # top eigenpairs plus the diagonal they leave


class PriorStructure(str, enum.Enum):
    """How many prior precisions a Laplace's prior has (``optimize_prior_precision``)."""

    SCALAR = "scalar"  # one for all parameters
    LAYER = "layer"  # one per layer
    DIAGONAL = "diagonal"  # one per parameter


class PriorMethod(str, enum.Enum):
    """How ``optimize_prior_precision`` chooses the prior precision."""

    MARGLIK = "marglik"  # maximise the Laplace log marginal likelihood (gradient-based)
    CV = "cv"  # the grid value of least negative log predictive density on validation data


class PredictiveMethod(str, enum.Enum):
    """The predictive of a network Laplace (``la.predictive(method=)``)."""

    GLM = "glm"  # the linearised network: output ~ N(f(x), J Sigma J^T)
    MC = "mc"  # Monte-Carlo over sampled weights
    PROBIT = "probit"  # GLM moments, class probabilities by the probit approximation


class Derivatives(str, enum.Enum):
    """How derivatives of a model are taken."""

    AUTODIFF = "autodiff"
    NUMERIC = "numeric"
    AUTO = "auto"


class FisherMethod(str, enum.Enum):
    """``method`` of :func:`fisher`."""

    AUTO = "auto"
    EXACT = "exact"
    MC = "mc"


class DesignCriterion(str, enum.Enum):
    """``criterion`` of :func:`fisherlab.design.criterion` and :func:`fisherlab.design.optimal`."""

    D = "D"
    A = "A"
    E = "E"
    DS = "Ds"
    C = "c"


class PriorExpectation(str, enum.Enum):
    """``prior_method`` of a Bayesian design: the expectation over the prior (:mod:`fisherlab.design`)."""

    QUADRATURE = "quadrature"
    MC = "mc"


class HessianMethod(str, enum.Enum):
    """``method`` of :func:`hessian`."""

    AUTODIFF = "autodiff"
    NUMERIC = "numeric"


class CovKind(str, enum.Enum):
    """``kind`` of :meth:`FitResult.cov`."""

    OBSERVED = "observed"
    EXPECTED = "expected"
    EMPIRICAL = "empirical"
    SANDWICH = "sandwich"
    CLUSTER = "cluster"


class HCType(str, enum.Enum):
    """``hc`` of :meth:`FitResult.cov` with ``kind="sandwich"``: the heteroskedasticity-consistent variant.

    ``HC0`` (White 1980), ``HC1`` (x N/(N-P)), ``HC2`` and ``HC3`` (MacKinnon & White 1985, by leverage).
    """

    HC0 = "HC0"
    HC1 = "HC1"
    HC2 = "HC2"
    HC3 = "HC3"


class IntervalMethod(str, enum.Enum):
    """``method`` of :meth:`FitResult.conf_int`."""

    WALD = "wald"
    PROFILE = "profile"


class OptimMethod(str, enum.Enum):
    """``method`` of :func:`fit`."""

    AUTO = "auto"
    NEWTON = "newton"
    LBFGS = "lbfgs"


class IMTestVariant(str, enum.Enum):
    """``variant`` of the information-matrix test in :func:`check`."""

    WHITE = "white"
    OPG = "opg"


class PValueMethod(str, enum.Enum):
    """``pvalue`` of :func:`check`: how the information-matrix test's p-value is computed.

    ``"bootstrap"``: parametric bootstrap (Horowitz 1994); ``"asymptotic"``: White's
    chi-square; ``"auto"``: the bootstrap where the model can sample and the cost is within
    budget, else the chi-square.
    """

    AUTO = "auto"
    BOOTSTRAP = "bootstrap"
    ASYMPTOTIC = "asymptotic"


class CovScale(str, enum.Enum):
    """``scale`` of :meth:`fisherlab.FitResult.cov`: the user's parameters or the fitting scale."""

    USER = "user"
    UNCONSTRAINED = "unconstrained"
