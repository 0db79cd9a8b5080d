r"""Parameter constraints: fitting in an unconstrained space, reporting in the user's.

A model may declare ``constraints={"sigma": "positive", "p": "unit_interval"}``
(keys are parameter names as :func:`~fisherlab.param_names` writes a leaf's
path, without element indices; values are the names below or NumPyro
constraint objects). fisherlab then optimises over :math:`u` with
:math:`\theta = T(u)`, :math:`T` NumPyro's bijection onto the support
(``exp`` for positive, ``sigmoid`` for the unit interval, stick-breaking for a
simplex), so no step ever leaves the support. Covariances are reported in
:math:`\theta` through the Jacobian :math:`G = \partial\theta/\partial u`,
:math:`\Sigma_\theta = G \Sigma_u G^\top` (the delta method; at an interior
maximum this equals the inverse information computed directly in
:math:`\theta`), and on the :math:`u` scale on request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.distributions import constraints as nc
from numpyro.distributions.transforms import biject_to

from .._errors import InvalidParameterError, ModelError
from ._pytree import path_name

__all__ = ["CONSTRAINTS", "Reparam", "resolve_constraints"]

CONSTRAINTS: dict[str, nc.Constraint] = {
    "real": nc.real,
    "positive": nc.positive,
    "nonnegative": nc.nonnegative,
    "unit_interval": nc.unit_interval,
    "simplex": nc.simplex,
    "ordered": nc.ordered_vector,
    "lower_cholesky": nc.lower_cholesky,
    "positive_definite": nc.positive_definite,
}


def resolve_constraints(spec: Mapping[str, Any] | None) -> dict[str, nc.Constraint]:
    """Check a ``constraints=`` mapping and turn names into NumPyro constraints."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ModelError(f"constraints must be a dict name -> constraint, got {type(spec).__name__}")
    out: dict[str, nc.Constraint] = {}
    for name, value in spec.items():
        if isinstance(value, str):
            if value not in CONSTRAINTS:
                raise ModelError(
                    f"unknown constraint {value!r} for {name!r}; use one of {sorted(CONSTRAINTS)} "
                    "or a numpyro.distributions.constraints object"
                )
            out[str(name)] = CONSTRAINTS[value]
        elif isinstance(value, nc.Constraint):
            out[str(name)] = value
        else:
            raise ModelError(f"constraint for {name!r} must be a name or a NumPyro constraint, got {value!r}")
    return out


class Reparam:
    """The map between user parameters ``theta`` (a pytree) and a flat unconstrained vector ``u``.

    Attributes:
        constraints: leaf path -> NumPyro constraint (unconstrained leaves absent).
        names_u: names of the unconstrained coordinates (``"log(sigma)"``-style
            labels are not used: a constrained leaf's coordinates are named
            ``"u(sigma)"``, ``"u(p)[0]"``).
    """

    def __init__(self, template: Any, constraints: Mapping[str, nc.Constraint]) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(template)
        self.paths = [path_name(path) or "theta" for path, _ in leaves]
        unknown = sorted(set(constraints) - set(self.paths))
        if unknown:
            raise ModelError(
                f"constraints name parameter(s) {unknown} that are not in the parameters {self.paths}"
            )
        self.constraints = dict(constraints)
        self.transforms = [
            biject_to(self.constraints[p]) if p in self.constraints else None for p in self.paths
        ]
        u_tree = self.to_unconstrained_tree(template, check=True)
        flat, self._unravel_u = ravel_pytree(u_tree)
        self.size = int(flat.size)
        self.names_u = self._names_u(u_tree)

    @property
    def identity(self) -> bool:
        """True when no parameter is constrained."""
        return not self.constraints

    def _names_u(self, u_tree: list[jax.Array]) -> list[str]:
        names: list[str] = []
        for path, leaf, t in zip(self.paths, u_tree, self.transforms, strict=True):
            base = path if t is None else f"u({path})"
            shape = np.shape(leaf)
            if not shape:
                names.append(base)
            else:
                names.extend(f"{base}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape))
        return names

    def to_unconstrained_tree(self, params: Any, check: bool = False) -> list[jax.Array]:
        leaves = self.treedef.flatten_up_to(params)  # type: ignore[attr-defined]
        out = []
        for path, leaf, t in zip(self.paths, leaves, self.transforms, strict=True):
            leaf = jnp.asarray(leaf, dtype=jnp.float64)
            if t is None:
                out.append(leaf)
                continue
            if check and not bool(jnp.all(self.constraints[path](leaf))):
                raise InvalidParameterError(
                    f"initial value of {path} = {np.asarray(leaf)} is outside its constraint "
                    f"({self.constraints[path]}); start inside the support"
                )
            out.append(t.inv(leaf))
        return out

    def to_unconstrained(self, params: Any, check: bool = False) -> jax.Array:
        """Flat ``u`` of a parameter pytree (``check``: raise if a leaf is outside its constraint)."""
        return ravel_pytree(self.to_unconstrained_tree(params, check=check))[0]

    def to_params(self, u: jax.Array | np.ndarray) -> Any:
        """The parameter pytree of a flat ``u`` (traceable; a NumPy vector is accepted too)."""
        u_tree = self._unravel_u(jnp.asarray(u))
        leaves = [leaf if t is None else t(leaf) for leaf, t in zip(u_tree, self.transforms, strict=True)]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def jacobian(self, u: jax.Array | np.ndarray) -> np.ndarray:
        """``G = d theta_flat / d u``, shape ``(P, P_u)``."""
        if self.identity:
            return np.eye(self.size)
        return np.asarray(jax.jacfwd(lambda v: ravel_pytree(self.to_params(v))[0])(u))

    def leaf_transform(self, path: str) -> Callable[[jax.Array], jax.Array] | None:
        """The bijection of one leaf (``None`` when unconstrained)."""
        return self.transforms[self.paths.index(path)]
