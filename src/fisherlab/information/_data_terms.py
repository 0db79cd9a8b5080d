r"""Log-likelihood, score, empirical Fisher and observed information of a model on data.

For rows :math:`(x_i, y_i)`, :math:`i = 1..N`, and :math:`\ell_i(\theta) = \log p(y_i\mid x_i,\theta)`:

- score :math:`s_i(\theta) = \nabla_\theta \ell_i(\theta)`, one vectorised pass
  (``vmap`` of ``grad`` over rows), an ``(N, P)`` array;
- empirical Fisher :math:`\sum_i s_i s_i^\top` (``reduction="mean"``: divided by N);
- observed information :math:`J(\theta) = -\sum_i \nabla^2 \ell_i(\theta)`
  (forward-over-reverse Hessian of the total).

Sums are totals over rows unless ``reduction="mean"`` is asked for. A chunk source
(:func:`fisherlab.data.chunks`, :func:`fisherlab.data.from_parquet`,
:func:`fisherlab.data.from_arrays`, :func:`fisherlab.data.from_dask`) stands in for ``y`` (``x``
omitted): each chunk is checked and computed on its own (kernels compiled once per chunk length),
per-row results are concatenated here and sums accumulated in float64 with compensated summation
(:meth:`~fisherlab.data.Chunks.reduce`, with :class:`SummedTerm`: on a Dask cluster's workers
where the source has a client), so memory is one chunk plus the result. Each function asks the
model's derivative backend (:func:`fisherlab.backends.backend_for`): with numeric
derivatives (``derivatives="numeric"``, or ``"auto"`` whose function cannot be traced) the
matrices carry ``.error`` and ``.evaluations``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._errors import FisherlabArgumentError
from .._options import Reduction, choose
from .._precision import float64
from ..backends import AutodiffBackend, Derivative, backend_for
from ..data._chunks import Chunks, labelled, prepared_chunks
from ..data._prepare import Data, prepare_data
from ..model._model import Model, require_model
from ..params._pytree import as_params, param_names
from ._fisher import fisher as fisher
from ._matrix import InfoMatrix

__all__ = [
    "SummedTerm",
    "empirical_fisher",
    "fisher",
    "loglik",
    "observed_information",
    "reduction_factor",
    "score",
]


def reduction_factor(reduction: str, n: int) -> float:
    """1 for ``"sum"``, ``1/n`` for ``"mean"``; else :class:`~fisherlab.InvalidOptionError`."""
    choice = choose(Reduction, reduction, "reduction")
    return 1.0 if choice is Reduction.SUM else 1.0 / n


def _prepare(where: str, model: Any, params: Any, y: Any, x: Any) -> tuple[Any, Any, Any]:
    """The model's backend, the checked parameters and the checked data (``where``: the caller)."""
    require_model(model, where)
    backend = backend_for(model, params, y, x)
    # parameters and data serve this call only (its results are NumPy): no copy into JAX buffers
    return backend, as_params(params, host=True), prepare_data(y, x, transient=True)


def _per_chunk(
    where: str, model: Any, params: Any, source: Chunks, x: Any, op: str
) -> Iterator[tuple[Any, Any, Any]]:
    """One pass over a chunk source: the backend's ``op`` of each chunk, with its data and the
    parameters; each chunk checked, the chunk named in an error of its data, rows or support."""
    require_model(model, where)
    if x is not None:
        raise FisherlabArgumentError(f"{where}: a chunk source holds x too; pass it as y and leave x out")
    params = as_params(params, host=True)
    backend = None
    for label, data in prepared_chunks(source, transient=True):
        if backend is None:
            backend = backend_for(model, params, data.y, data.x)
        with labelled(label):
            out = getattr(backend, op)(params, data)
        yield out, data, params


def _rows(where: str, model: Any, params: Any, source: Chunks, x: Any, op: str) -> np.ndarray:
    """A per-row quantity (``loglik``, ``scores``) of every chunk, concatenated."""
    parts = [
        out if op == "loglik" else out.value for out, _, _ in _per_chunk(where, model, params, source, x, op)
    ]
    return np.concatenate(parts)


class SummedTerm:
    """One chunk's sum over rows for :meth:`~fisherlab.data.Chunks.reduce`: the backend's ``op``
    (``score_gram``, ``negative_hessian``) as ``(value, error, [evaluations, has error, has
    evaluations])``, every output an array that adds over chunks.

    It holds only the model, the checked parameters and ``op``, and chooses the backend on the
    chunk where it runs (kept on the model: decided once), so a source that computes on a
    cluster's workers ships it there (it pickles with cloudpickle).
    """

    def __init__(self, model: Model, params: Any, op: str) -> None:
        self.model, self.params, self.op = model, params, op

    @property
    def thread_safe(self) -> bool:
        """Compiled JAX work (an autodiff backend) runs on several chunks at once; a model's own
        Python code (numeric derivatives) runs on one chunk at a time."""
        return isinstance(self.model.state.backend, AutodiffBackend)

    def __call__(self, data: Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        backend = backend_for(self.model, self.params, data.y, data.x)
        d: Derivative = getattr(backend, self.op)(self.params, data)
        value = np.asarray(d.value, dtype=np.float64)
        error = np.zeros_like(value) if d.error is None else np.asarray(d.error, dtype=np.float64)
        counts = [d.evaluations or 0, d.error is not None, d.evaluations is not None]
        return value, error, np.asarray(counts, dtype=np.float64)


def _summed(
    where: str, model: Any, params: Any, source: Chunks, x: Any, op: str
) -> tuple[Derivative, int, Any]:
    """A sum over rows (``score_gram``, ``negative_hessian``) over the chunks: one
    :meth:`~fisherlab.data.Chunks.reduce` (float64, compensated; on a cluster's workers for a
    :class:`~fisherlab.data.DaskSource` with a client); errors add, as do numeric evaluations.
    Returns the sum, the rows and the parameters."""
    require_model(model, where)
    if x is not None:
        raise FisherlabArgumentError(f"{where}: a chunk source holds x too; pass it as y and leave x out")
    params = as_params(params, host=True)
    (value, error, counts), rows = source.reduce(SummedTerm(model, params, op))
    evaluations = int(counts[0]) if counts[2] else None
    return Derivative(value, error if counts[1] else None, evaluations), rows, params


def _info(d: Derivative, names: list[str], method: str, factor: float) -> InfoMatrix:
    error = None if d.error is None else d.error * factor
    return InfoMatrix(d.value * factor, names, error=error, method=method, evaluations=d.evaluations)


@float64
def loglik(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row log-likelihood :math:`\ell_i(\theta) = \log p(y_i \mid x_i, \theta)`.

    Args:
        model: a :class:`~fisherlab.Model`.
        params: parameter pytree of real numbers. Floating leaves keep their dtype
            (:func:`~fisherlab.params.as_params`); integers become float64.
        y: observations, leading axis N (array, pytree or pandas object). Dtypes are
            kept (:func:`~fisherlab.data.prepare_data`): float32 stays float32, integer
            labels and counts stay integers.
        x: covariates with leading axis N, or ``None``.

    Returns:
        ``numpy`` array ``(N,)`` in the computation's dtype (float32 for float32 parameters
        and data, else float64). An observation that is impossible under the
        parameters gives ``-inf`` (a correct value); NaN never comes back.

    Raises:
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; a parameter that is
            complex, a bool, ``None`` or not numeric (the parameter is named).
        InvalidDataError: NaN/inf, complex values or mismatched rows in ``y``/``x``, ``y``
            outside the support, e.g. a class label outside 0..K-1 (row and field named).
        InvalidParameterError: parameters giving an invalid distribution
            (row and distribution parameter named); non-finite or empty parameters.
        ModelError: the model function failed (it is named as the culprit only when the
            failure happened inside it).

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
        >>> fl.loglik(m, {"rate": 2.0}, np.array([0, 3])).round(4).tolist()
        [-2.0, -1.7123]
    """
    if isinstance(y, Chunks):
        return _rows("loglik", model, params, y, x, "loglik")
    backend, params, data = _prepare("loglik", model, params, y, x)
    return backend.loglik(params, data)


@float64
def score(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row scores :math:`s_i = \nabla_\theta \log p(y_i \mid x_i, \theta)`.

    Returns:
        ``numpy`` array ``(N, P)``, columns in :func:`~fisherlab.param_names` order.
        Under the model, :math:`\mathbb{E}[s_i] = 0` at the true parameters.

    Raises:
        FisherlabArgumentError, InvalidDataError, InvalidParameterError, ModelError: as
            :func:`loglik`; also a non-finite score (row named).

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
        >>> fl.score(m, {"mu": 0.5}, np.array([0.0, 2.0])).tolist()   # y - mu
        [[-0.5], [1.5]]
    """
    if isinstance(y, Chunks):
        return _rows("score", model, params, y, x, "scores")
    backend, params, data = _prepare("score", model, params, y, x)
    return backend.scores(params, data).value


@float64
def empirical_fisher(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Empirical Fisher :math:`\hat F = \sum_i s_i s_i^\top` (``"mean"``: divided by N).

    The outer-product-of-gradients (OPG) estimate. It equals the Fisher in
    expectation only at the true parameters of a correctly specified model;
    away from that it can differ badly (Kunstner, Balles & Hennig 2019,
    "Limitations of the empirical Fisher approximation", NeurIPS).

    Args:
        reduction: ``"sum"`` (total over rows, the default) or ``"mean"``.

    Raises:
        InvalidOptionError: ``reduction`` not ``"sum"`` or ``"mean"``.
        FisherlabArgumentError, InvalidDataError, InvalidParameterError, ModelError: as
            :func:`loglik`; also a non-finite score (row named).

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
        >>> fl.empirical_fisher(m, {"mu": 0.0}, np.array([1.0, -2.0])).matrix.tolist()
        [[5.0]]
    """
    reduction_factor(reduction, 1)  # reject a bad option before any work
    if isinstance(y, Chunks):
        gram, rows, params = _summed("empirical_fisher", model, params, y, x, "score_gram")
        return _info(gram, param_names(params), "empirical", reduction_factor(reduction, rows))
    backend, params, data = _prepare("empirical_fisher", model, params, y, x)
    gram = backend.score_gram(params, data)
    return _info(gram, param_names(params), "empirical", reduction_factor(reduction, data.n))


@float64
def observed_information(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Observed information :math:`J(\theta) = -\sum_i \nabla^2_\theta \log p(y_i\mid x_i,\theta)`.

    Minus the Hessian of the total log-likelihood (``"mean"``: divided by N).
    At the maximum-likelihood estimate :math:`J(\hat\theta)^{-1}` is the usual
    covariance estimate; its expectation under the model is the Fisher.

    Raises:
        InvalidOptionError: ``reduction`` not ``"sum"`` or ``"mean"``.
        FisherlabArgumentError, InvalidDataError, InvalidParameterError, ModelError: as
            :func:`loglik`; also a non-finite Hessian.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
        >>> fl.observed_information(m, {"rate": 2.0}, np.array([1, 3])).matrix.tolist()  # sum y / rate^2
        [[1.0]]
    """
    reduction_factor(reduction, 1)  # reject a bad option before any work
    if isinstance(y, Chunks):
        neg, rows, params = _summed("observed_information", model, params, y, x, "negative_hessian")
        return _info(neg, param_names(params), "observed", reduction_factor(reduction, rows))
    backend, params, data = _prepare("observed_information", model, params, y, x)
    neg = backend.negative_hessian(params, data)
    return _info(neg, param_names(params), "observed", reduction_factor(reduction, data.n))
