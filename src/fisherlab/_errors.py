"""The exception hierarchy of fisherlab.

Every error fisherlab raises on purpose derives from :class:`FisherlabError`
and, where it fits, from the matching built-in (``ValueError`` for bad input,
``ArithmeticError`` for numerical failure, ``NotImplementedError`` for a method
that does not exist for a model), so ``except ValueError`` keeps working.
Messages say what was wrong, where (row, field, parameter) and what to do.
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)

__all__ = [
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
]


class FisherlabError(Exception):
    """Base class of every error fisherlab raises on purpose."""


def with_message(exc: E, message: str) -> E:
    """A copy of ``exc``, same class and attributes, whose message is ``message``: an error
    re-raised with more context (a chunk's label, the design's column names) loses nothing."""
    twin = type(exc).__new__(type(exc))
    twin.__dict__.update(exc.__dict__)
    twin.args = (message,)
    return twin


class InvalidDataError(FisherlabError, ValueError):
    """Data that cannot be used: NaN/inf, mismatched lengths, values outside the support.

    The message names the first offending row and the field (``y``, ``x``,
    ``x['dose']``, ``x[:, 2]``).
    """


class FormulaError(FisherlabError, ValueError):
    """A model formula that cannot be used: a syntax error, no response, a term that cannot be evaluated.

    The message quotes the formula or the term and says what to write instead.
    """


class UnsafeFormulaError(FormulaError):
    """A formula term that would run code outside the allow-list of :func:`fisherlab.glm` and the CLI.

    Formula terms such as ``np.log(x)`` are Python evaluated by formulaic; before that,
    every term must consist of column names, numbers, operators and listed functions
    (``allow_code=True`` / ``--allow-code`` lifts the check, for formulas you trust).

    Attributes:
        term: the term's expression, e.g. ``"I(np.f2py.os.system('ls') + x)"``.
        token: the offending part, e.g. ``"np.f2py.os.system"``.
    """

    def __init__(self, message: str, *, term: str, token: str) -> None:
        super().__init__(message)
        self.term = term
        self.token = token


class InvalidOptionError(FisherlabError, ValueError):
    """An option outside its valid values: a string not among them (``method="bogus"``) or a
    number out of range (``n=0``, ``level=1.5``, ``-1 * F``, ``tol=-1``).

    The message names the argument, the value given and the valid values or range.
    """


class FisherlabArgumentError(FisherlabError, TypeError):
    """An argument of the wrong kind: a model that is not an ``fl.Model``, a non-scalar function for
    :func:`~fisherlab.hessian`, complex parameters.

    The message names the argument, what was given and what is accepted.
    """


class InvalidParameterError(FisherlabError, ValueError):
    """Parameters that give an invalid distribution (a negative scale, probs outside [0, 1]).

    The message names the row and the distribution parameter.
    """


class ModelError(FisherlabError, ValueError):
    """A model function that does not follow the contract of :class:`fisherlab.Model`."""


class MethodUnavailableError(FisherlabError, NotImplementedError):
    """The requested method does not exist for this model (say which one does)."""


class SingularInformationError(FisherlabError, ArithmeticError):
    """An information matrix that is singular or not positive definite.

    Attributes:
        direction: dict parameter name -> coefficient of the (near-)null
            direction, the parameter combination the data do not identify.
        condition_number: the ratio of the largest to the smallest eigenvalue
            magnitude (``inf`` when exactly singular).
    """

    def __init__(
        self,
        message: str,
        *,
        direction: dict[str, float] | None = None,
        condition_number: float | None = None,
    ) -> None:
        super().__init__(message)
        self.direction = direction or {}
        self.condition_number = condition_number


class NotConvergedError(FisherlabError, ArithmeticError):
    """An iterative computation (a fit, a quadrature) that did not reach its tolerance."""


class EstimateAtInfinityError(NotConvergedError):
    """The maximum-likelihood estimate does not exist: the log-likelihood keeps rising along a direction.

    Separation in logistic regression, a Poisson group whose counts are all zero, a
    binomial group with all successes: the fit runs towards infinity in some
    parameters and a "converged" estimate with a huge standard error would be a
    wrong answer. The message names the parameters and the rows that cause it.

    Attributes:
        direction: dict parameter name -> coefficient of the recession direction
            (the log-likelihood rises along ``+direction``), largest first.
        rows: the (0-based) rows whose fitted values run to the boundary.
    """

    def __init__(
        self, message: str, *, direction: dict[str, float] | None = None, rows: list[int] | None = None
    ) -> None:
        super().__init__(message)
        self.direction = direction or {}
        self.rows = rows or []


class NumericDerivativeError(NotConvergedError):
    """A finite-difference derivative that could not be computed.

    The function raised (the exception is chained as ``__cause__``), or it stayed
    NaN/inf at a perturbed point after retries with smaller steps. The message names
    the parameter values and, where one is to blame, the parameter.

    Attributes:
        point: dict parameter name -> value of the point at which ``f`` failed
            (for a non-finite value: the point being differentiated).
        parameter: the name of the parameter whose step failed, or ``None``.
    """

    def __init__(
        self, message: str, *, point: dict[str, float] | None = None, parameter: str | None = None
    ) -> None:
        super().__init__(message)
        self.point = point or {}
        self.parameter = parameter


class NumericAccuracyWarning(UserWarning):
    """A finite-difference derivative whose estimated error is large relative to its value.

    Issued once per call of the finite-difference engine (:mod:`fisherlab.numeric`), listing
    the worst entries by name, when an entry's error estimate exceeds
    :data:`fisherlab.numeric.ACCURACY_RTOL` of its natural scale: the function is noisy (a
    simulator solved to a tolerance; pass ``noise=``) or not smooth at the point (a kink, a
    discontinuity), and no step can make the derivative accurate. The estimates themselves
    are in the result's error fields (``.error``, ``.hessian_error``, ...).
    """


class OutputExistsError(FisherlabError, FileExistsError):
    """A file fisherlab would write already exists and overwriting was not asked for (``--force``)."""
