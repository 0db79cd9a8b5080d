"""Parameters: pytree names and flattening, constraints (fitting scale), priors.

The flattening order is :func:`jax.flatten_util.ravel_pytree`'s; names follow it
(:func:`param_names`). Constraints map the user's parameters to an unconstrained vector for
fitting (:class:`Reparam`); priors are pytrees of distributions or a log-density (:class:`Prior`).
"""

from ._constraints import (
    CONSTRAINTS as CONSTRAINTS,
    Reparam as Reparam,
    resolve_constraints as resolve_constraints,
)
from ._prior import Prior as Prior, as_prior as as_prior
from ._pytree import (
    ParamCodec as ParamCodec,
    as_params as as_params,
    flatten_params as flatten_params,
    param_names as param_names,
    path_name as path_name,
    tree_signature as tree_signature,
)

__all__ = [
    "CONSTRAINTS",
    "ParamCodec",
    "Prior",
    "Reparam",
    "as_params",
    "as_prior",
    "flatten_params",
    "param_names",
    "path_name",
    "resolve_constraints",
    "tree_signature",
]
