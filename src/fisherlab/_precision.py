r"""Float64 for fisherlab's own computations, without changing the user's JAX.

Covariances come from inverting ill-conditioned matrices, so every statistical computation
of fisherlab runs with JAX's 64-bit mode on. It is turned on *around* fisherlab's own
calls, not for the process: :func:`float64` runs a function under ``jax.enable_x64(True)``
(a thread-local setting that JAX's tracing and compilation caches key on), and
:func:`float64_methods` does the same for every public method and property of a class, so a
result's ``cov()`` or ``summary()`` called later is float64 too. A network trained in float32
in the same process keeps ``jnp.ones(3).dtype == float32``: importing fisherlab changes
nothing in the user's own code.

Curvature of networks (:func:`fisherlab.curvature`) instead follows the parameters: float32
parameters are worked on with 64-bit mode off, exactly as the user's training code runs them
(:func:`x64_for`).

This module imports no JAX (``import fisherlab`` stays fast); the wrappers import it on their
first call.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

__all__ = ["float64", "float64_methods", "is_float64", "x64_for", "x64_scope"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_MARK = "__fisherlab_float64__"

#: Dunder methods that compute (and so run in float64) when a class defines them.
_DUNDERS = frozenset(
    {
        "__init__",
        "__call__",
        "__repr__",
        "__str__",
        "__format__",
        "__getitem__",
        "__iter__",
        "__len__",
        "__add__",
        "__radd__",
        "__sub__",
        "__mul__",
        "__rmul__",
        "__truediv__",
        "__matmul__",
        "__rmatmul__",
        "__array__",
        "_repr_html_",
        "_repr_markdown_",
        "_repr_latex_",
    }
)


@contextlib.contextmanager
def x64_scope(enabled: bool = True) -> Iterator[None]:
    """JAX's 64-bit mode set to ``enabled`` inside the block (thread-local), restored after."""
    import jax

    with jax.enable_x64(enabled):
        yield


def float64(fn: F) -> F:
    """Decorator: ``fn`` runs with JAX's 64-bit mode on (:func:`x64_scope`)."""
    if getattr(fn, _MARK, False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import jax

        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def is_float64(obj: Any) -> bool:
    """Whether ``obj`` (a function, method, property or ``cached_property``) runs in float64."""
    if isinstance(obj, property):
        return obj.fget is None or is_float64(obj.fget)
    if isinstance(obj, functools.cached_property):
        return is_float64(obj.func)
    if isinstance(obj, (staticmethod, classmethod)):
        return is_float64(obj.__func__)
    return bool(getattr(obj, _MARK, False))


def _wrap_attribute(value: Any) -> Any:
    if isinstance(value, property):
        return property(
            float64(value.fget) if value.fget is not None else None,
            float64(value.fset) if value.fset is not None else None,
            value.fdel,
            value.__doc__,
        )
    if isinstance(value, functools.cached_property):
        wrapped = functools.cached_property(float64(value.func))
        wrapped.__doc__ = value.__doc__
        return wrapped
    if isinstance(value, staticmethod):
        return staticmethod(float64(value.__func__))
    if isinstance(value, classmethod):
        return classmethod(float64(value.__func__))
    if callable(value) and not isinstance(value, type):
        return float64(value)
    return value


def float64_methods(cls: C, *, skip: Collection[str] = ()) -> C:
    """Class decorator: the public methods and properties defined in ``cls`` (and the computing
    dunders of :data:`_DUNDERS`) run with JAX's 64-bit mode on. Inherited members are wrapped
    where their own class is decorated. ``skip`` names members left as they are (called as
    ``float64_methods(cls, skip=(...))`` after the class)."""
    for name, value in list(vars(cls).items()):
        if (name.startswith("_") and name not in _DUNDERS) or name in skip:
            continue
        wrapped = _wrap_attribute(value)
        if wrapped is not value:
            if isinstance(wrapped, functools.cached_property):
                wrapped.__set_name__(cls, name)
            setattr(cls, name, wrapped)
    return cls


def x64_for(dtype: Any) -> bool:
    """Whether work on parameters of ``dtype`` runs with 64-bit mode on: everything but
    float32/float16/bfloat16 parameters (networks keep the precision they were trained in)."""
    import numpy as np

    try:
        return np.dtype(dtype).itemsize >= 8 or not np.issubdtype(np.dtype(dtype), np.floating)
    except TypeError:  # bfloat16 and other extension dtypes: low precision
        return False
