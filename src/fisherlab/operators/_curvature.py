r"""``fl.curvature``: the curvature of a model's log-likelihood on data as an object, not a matrix.

.. math:: C = \sum_{i=1}^N J_i^\top M_i J_i \quad (\text{or } -\nabla^2_\theta \textstyle\sum_i \ell_i),

with the kinds of :mod:`._head` (``"fisher"``, ``"ggn"``, ``"empirical"``, ``"mc_fisher"``) and
``"hessian"``; ``reduction="mean"`` divides by :math:`N`. The *structure* decides what is
computed and kept: ``operator``, ``dense``, ``diagonal``, ``block``, ``lowrank``
(:mod:`._structures`) or ``kfac`` (:mod:`._kfac`). All answer ``mv``, ``diagonal``,
``to_dense``, ``solve``, ``logdet``, ``trace`` and ``eigh`` of their own approximation
(:mod:`._base`), built from the passes over the data of :mod:`._exact` (in memory, or chunk by
chunk from an :func:`fisherlab.data.chunks` source).

Lanczos, stochastic Lanczos quadrature and Hutchinson's estimator come from matfree (a small,
JAX-native library of matrix-free linear algebra with reorthogonalised Lanczos and stochastic
trace estimators that report their standard errors), conjugate gradients from
``jax.scipy.sparse.linalg``.

**Precision.** The curvature works in the parameters' precision: float32 parameters with JAX's
64-bit mode off, exactly as the network was trained (data are cast to float32 as the training
code would), anything else in float64 (:mod:`fisherlab._precision`). The user's own JAX
configuration is never changed.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .._errors import FisherlabArgumentError, MethodUnavailableError
from .._options import CurvatureKind, CurvatureStructure, KFACApprox, Reduction, choose, count, seed_value
from .._precision import x64_for, x64_scope
from ..data._chunks import Chunks
from ..data._prepare import prepare_data
from ..model._model import Model, require_model
from ..params._pytree import as_params
from ._base import Curvature
from ._exact import Exact
from ._kfac import KFAC
from ._structures import Block, Dense, Diagonal, LowRank, Operator

__all__ = ["curvature"]


def _works_in_x64(params: Any) -> bool:
    """64-bit mode unless the parameters' floating arrays are all of a low precision (float32)."""
    dtypes = [
        np.dtype(leaf.dtype)
        for leaf in jax.tree_util.tree_leaves(params)
        if hasattr(leaf, "dtype") and np.issubdtype(np.dtype(leaf.dtype), np.floating)
    ]
    return not dtypes or x64_for(np.result_type(*dtypes))


def curvature(
    model: Model,
    params: Any,
    y: Any,
    x: Any = None,
    *,
    kind: str = "fisher",
    structure: str = "operator",
    reduction: str = "sum",
    num_samples: int = 1,
    seed: int = 0,
    rank: int = 20,
    force: bool = False,
    ekfac: bool = False,
    kfac_approx: str = "expand",
) -> Curvature:
    r"""The curvature of ``model``'s log-likelihood on ``(y, x)`` at ``params``, as an object.

    .. math:: C = \sum_{i=1}^N J_i^\top M_i J_i, \qquad J_i = \partial\eta_i/\partial\theta

    (``reduction="mean"``: :math:`C/N`), :math:`\eta_i` the parameters of row :math:`i`'s
    distribution, :math:`M_i` the kind's matrix (:mod:`fisherlab.operators`): ``"fisher"``
    the registry's closed form :math:`I(\eta_i)` (any registered family as the head),
    ``"mc_fisher"`` the outer products of scores at ``num_samples`` labels per row drawn from
    the model (seeded), ``"empirical"`` :math:`g_i g_i^\top` at the observed labels,
    ``"ggn"`` :math:`\nabla^2_\eta[-\log p(y_i\mid\eta_i)]`; ``"hessian"`` is
    :math:`-\nabla^2_\theta \sum_i \log p(y_i\mid x_i,\theta)`.

    Args:
        model: an :class:`~fisherlab.Model` whose function takes all rows at once
            (``fn(params, x)`` with ``x`` of leading axis N returns a distribution of batch
            shape ``(N, ...)``).
        params: the parameter pytree. Float32 parameters are worked on in float32 (JAX's
            64-bit mode off inside fisherlab, as in training); others in float64.
        y: observations, leading axis N (integer class labels are kept as integers); or a
            :func:`fisherlab.data.chunks` source of ``(y, x)`` mini-batches (``x`` omitted):
            every pass reads it chunk by chunk, memory :math:`O(P + \text{chunk})`.
        x: inputs, leading axis N, or ``None``.
        kind: ``"fisher"``, ``"mc_fisher"``, ``"empirical"``, ``"ggn"`` or ``"hessian"``.
        structure: ``"operator"``, ``"dense"``, ``"diagonal"``, ``"kfac"``, ``"block"`` or
            ``"lowrank"``.
        reduction: ``"sum"`` or ``"mean"``.
        num_samples: labels drawn per row for ``"mc_fisher"``.
        seed: the seed of the sampled labels and of the stochastic estimates.
        rank: eigenpairs kept by ``structure="lowrank"``.
        force: build a dense matrix larger than ``MAX_DENSE_BYTES`` anyway.
        ekfac: with ``structure="kfac"``, EKFAC's eigenvalue correction (George et al. 2018):
            in each layer's Kronecker eigenbasis :math:`Q_A \otimes Q_G` the eigenvalues
            :math:`\lambda_a\lambda_g/N` are replaced by the exact diagonal of the layer's block
            in that basis (the Frobenius-nearest matrix diagonal in it; one more pass).
        kfac_approx: with ``structure="kfac"``, how a convolution's weight shared over output
            positions is factored: ``"expand"`` (positions count like rows) or ``"reduce"``
            (summed over positions first); Eschenhagen et al. 2023. Dense layers: no difference.

    Returns:
        A :class:`Curvature`.

    Raises:
        InvalidOptionError: an unknown kind, structure, reduction or ``kfac_approx``;
            ``num_samples`` or ``rank`` below 1.
        InvalidDataError: NaN/inf data, rows that disagree, labels outside the head's support
            (a chunk's index is named), chunks whose fields differ.
        ModelError: the model function does not return a distribution, or one whose batch
            does not have the rows on its leading axis.
        MethodUnavailableError: ``kind="fisher"`` for a head without a closed form (use
            ``"mc_fisher"``); a dense matrix too large for memory (estimated size given).
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; bad parameters; ``x`` given
            with a chunk source.

    Examples:
        >>> import fisherlab as fl, jax.numpy as jnp, numpy as np
        >>> x = np.linspace(-1.0, 1.0, 50)[:, None]
        >>> y = (x[:, 0] > 0).astype(np.int32)
        >>> m = fl.Model(lambda th, x: fl.dist.Categorical(logits=x @ th["w"]))
        >>> C = fl.curvature(m, {"w": jnp.ones((1, 2))}, y, x, kind="fisher", structure="dense")
        >>> bool(np.allclose(C.to_dense().matrix, C.to_dense().matrix.T))
        True
    """
    require_model(model, "curvature")
    kind = choose(CurvatureKind, kind, "curvature: kind").value
    structure = choose(CurvatureStructure, structure, "curvature: structure").value
    reduction = choose(Reduction, reduction, "curvature: reduction").value
    approx = choose(KFACApprox, kfac_approx, "curvature: kfac_approx").value
    num_samples = count(num_samples, "curvature: num_samples", what="sampled labels per row")
    rank = count(rank, "curvature: rank", what="eigenpairs")
    seed = seed_value(seed, "curvature: seed")
    if model.kind != "distribution":
        raise MethodUnavailableError(
            "curvature needs a model that returns a distribution (fl.Model(fn)); a Model.from_loglik "
            "model has no head to take the Fisher, GGN or sampled labels of"
        )
    x64 = _works_in_x64(params)
    with x64_scope(x64):
        params = as_params(params)
        if isinstance(y, Chunks):
            if x is not None:
                raise FisherlabArgumentError(
                    "curvature: a chunk source holds x too; pass it as y and leave x out"
                )
            data: Any = y
        else:
            prepared = prepare_data(y, x)
            data = (prepared.y, prepared.x)
        exact = Exact(
            model,
            params,
            data,
            kind=kind,
            num_samples=num_samples,
            seed=seed,
            mean=reduction == "mean",
            x64=x64,
            # layer-based structures: the head comes from the first layer-statistics pass, in the
            # same compiled program (one forward pass of the network, not two); its checks are
            # raised before the structure returns
            defer_head=structure in ("diagonal", "kfac"),
        )
        if structure == "dense":
            return Dense(exact, force=bool(force))
        if structure == "diagonal":
            return Diagonal(exact)
        if structure == "block":
            return Block(exact, force=bool(force))
        if structure == "lowrank":
            return LowRank(exact, rank=rank)
        if structure == "kfac":
            return KFAC(exact, ekfac=bool(ekfac), approx=approx)
        return Operator(exact)
