r"""The predictive of a network Laplace: the network's output with its uncertainty, and class probabilities.

The *output* :math:`f(x) \in \mathbb R^m` of a row is the parameters of its distribution that
depend on the (chosen) weights: the logits of a ``Categorical(logits=...)``, the mean of a
``Normal(net(x), sigma)`` (with ``sigma`` too where it is a parameter), in the distribution's
name order (``.names``). With :math:`\theta \sim N(\theta^*, \Sigma)`:

- ``"glm"``: the linearised network :math:`f(x,\theta) \approx f(x,\theta^*) + J(\theta-\theta^*)`
  (MacKay 1992; Immer et al. 2021), so :math:`f(x) \sim N(f(x,\theta^*), J\Sigma J^\top)`,
  :math:`J = \partial f/\partial\theta` of each row: for a K-FAC or diagonal posterior of a
  network whose parameters are all in dense layers, from the layers' factors
  :math:`\tilde a g^\top` of each row's Jacobian (:meth:`Outputs._layer_moments`, never the
  Jacobian itself); otherwise the rows' Jacobians in blocks, whitened by the structure's factored
  posterior (:mod:`._forms`: :math:`J\Sigma J^\top = (JS)(JS)^\top`). Class probabilities are
  :math:`E[\operatorname{softmax} f]` by ``num_samples`` draws of :math:`f` (default 1000);
- ``"probit"``: the same moments; probabilities by the probit approximation
  :math:`\operatorname{softmax}_k\big(\mu_k / \sqrt{1 + \pi\sigma_k^2/8}\big)` (sigmoid for a
  Bernoulli head; MacKay 1992, exact to about 0.02 for one logit; Lu et al. 2020 for
  several classes);
- ``"mc"``: ``num_samples`` draws of the weights (default 100), the network evaluated at each;
  mean, variance and covariance of the outputs over the draws, probabilities averaged.

``mean`` and ``variance`` are the output's (not of the observation :math:`y`: for a Normal head
the observation's predictive variance is ``variance + sigma**2``, what :meth:`Predictive.log_prob`
uses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.extend import core as jcore
from scipy.special import log_softmax, logsumexp, softmax

from .._errors import FisherlabArgumentError, InvalidDataError, MethodUnavailableError
from ..backends._curvature import _float_leaves
from ..data._prepare import prepare_data
from ..operators._exact import leaf_ranges, trace_layers
from ..operators._head import _eta_of, _layout, output_names, rows_distribution
from ..operators._layer_stats import output_factors_kernel
from ..operators._layers import ConvLayer, layer_index
from ..params._pytree import flatten_params, tree_signature
from ._forms import Composite, DiagonalForm, KronForm

__all__ = ["Outputs", "Predictive"]

#: Numbers held by one block of per-row Jacobians (rows x outputs x P): 2^23, 64 MiB in float64.
JACOBIAN_BLOCK_ELEMENTS = 2**23
#: Rows per call of the layer-factored predictive (:meth:`Outputs._layer_moments`).
LAYER_BLOCK_ROWS = 512


class Predictive:
    """The predictive on new rows (see the module docstring).

    Attributes:
        method: ``"glm"``, ``"probit"`` or ``"mc"``.
        names: the output's labels (``logits[0]``, ``loc``...), ``m`` of them.
        mean: the output's predictive mean, ``(N, m)`` (``(N,)`` when ``m == 1``).
        variance: its variance, shaped like ``mean`` (``"glm"``/``"probit"``: the diagonal of
            :math:`J\\Sigma J^\\top`).
        covariance: ``(N, m, m)`` (``(N,)`` when ``m == 1``).
        probs: class probabilities ``(N, K)`` of a ``Categorical(logits=)`` head, ``(N,)`` of a
            ``Bernoulli(logits=)`` head; ``None`` otherwise.
        samples: ``"mc"``: the outputs of the sampled weights ``(S, N, m)``; else ``None``.
    """

    def __init__(
        self,
        method: str,
        names: list[str],
        mean: np.ndarray,
        cov: np.ndarray,
        probs: np.ndarray | None,
        head: str,
        scale: np.ndarray | None,
        samples: np.ndarray | None,
    ) -> None:
        self.method, self.names = method, names
        single = mean.shape[1] == 1
        var = np.diagonal(cov, axis1=1, axis2=2).copy()
        self.mean = mean[:, 0] if single else mean
        self.variance = var[:, 0] if single else var
        self.covariance = cov[:, 0, 0] if single else cov
        self.probs = probs
        self.samples = samples
        self._head, self._scale, self._mean, self._var = head, scale, mean, var

    def __repr__(self) -> str:
        return f"Predictive(method={self.method!r}, N={self._mean.shape[0]}, outputs={self.names})"

    def log_prob(self, y: Any) -> np.ndarray:
        """The predictive log-density of observations ``y`` ``(N,)`` (negative: the NLL per row).

        Classification heads: :math:`\\log` ``probs`` at the label. A Normal head whose output is
        its mean: :math:`\\log N(y; \\mu, \\sigma_f^2 + \\sigma^2)` (``"mc"``: the mixture over the
        draws).

        Raises:
            MethodUnavailableError: another head.
            InvalidDataError: ``y`` with NaN/inf or of another length.
        """
        y = np.asarray(prepare_data(y, None).y)
        n = self._mean.shape[0]
        if y.shape[0] != n:
            raise FisherlabArgumentError(f"log_prob: y has {y.shape[0]} rows and the predictive {n}")
        tiny = np.finfo(np.float64).tiny
        if self._head in ("categorical", "bernoulli") and self.probs is not None:
            classes = self.probs.shape[1] if self._head == "categorical" else 2
            labels = y.reshape(n) if y.size == n else y
            bad = np.flatnonzero(~((labels == np.round(labels)) & (labels >= 0) & (labels < classes)))
            if labels.shape != (n,) or bad.size:
                row = int(bad[0]) if bad.size else 0
                raise InvalidDataError(
                    f"log_prob: y at row {row} is not a class label 0..{classes - 1} "
                    "(one integer label per row)"
                )
        if self._head == "categorical" and self.probs is not None:
            labels = y.astype(np.int64).reshape(n)
            return np.log(np.maximum(self.probs[np.arange(n), labels], tiny))
        if self._head == "bernoulli" and self.probs is not None:
            yy = y.reshape(n).astype(np.float64)
            return yy * np.log(np.maximum(self.probs, tiny)) + (1 - yy) * np.log(
                np.maximum(1 - self.probs, tiny)
            )
        if self._head == "normal" and self._scale is not None:
            yy = y.reshape(n, -1)
            s2 = self._scale**2
            if self.samples is not None:  # a mixture of N(loc_s, sigma^2) over the draws
                loc = self.samples
                terms = -0.5 * (np.log(2 * np.pi * s2) + (yy[None] - loc) ** 2 / s2)
                return (logsumexp(terms, axis=0) - np.log(loc.shape[0])).sum(axis=1)
            v = self._var + s2
            return (-0.5 * (np.log(2 * np.pi * v) + (yy - self._mean) ** 2 / v)).sum(axis=1)
        raise MethodUnavailableError(
            "log_prob of the predictive is for Categorical/Bernoulli(logits=) heads and Normal heads whose "
            "output is the mean; use method='mc' and the model's own distribution for another head"
        )


def _dependent(fn: Callable[[Any], list[Any]], params: Any) -> frozenset[int]:
    """Positions of ``fn(params)``'s outputs that depend on ``params`` (forward data flow in its jaxpr)."""
    closed = jax.make_jaxpr(fn)(params)
    jaxpr = closed.jaxpr
    dep = set(jaxpr.invars)
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, jcore.Literal) and v in dep for v in eqn.invars):
            dep.update(eqn.outvars)
    return frozenset(i for i, v in enumerate(jaxpr.outvars) if not isinstance(v, jcore.Literal) and v in dep)


class Outputs:
    """The output :math:`f(x, \\theta_S)` of a model on new rows: values, Jacobians, head facts."""

    def __init__(self, model: Any, params: Any, x: Any) -> None:
        if x is None:
            raise FisherlabArgumentError(
                "predictive needs the new rows x_new (covariates with a leading axis)"
            )
        self.model, self.params = model, params
        self.x = prepare_data(np.zeros(_rows(x)), x).x
        self.n = _rows(self.x)
        self.flat, self.unravel = flatten_params(params)
        # what the output is does not depend on the rows: read it from the first one
        first = jax.tree_util.tree_map(lambda a: a[:1], self.x)
        d, rows = rows_distribution(model, params, first, 1)

        def leaves_of(p: Any) -> list[Any]:
            dd = rows_distribution(model, p, first, 1)[0]
            return [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(dd)]

        floats = {i for i, _ in _float_leaves(d)}
        self.keep = frozenset(i for i in _dependent(leaves_of, params) if i in floats)
        if not self.keep:
            raise MethodUnavailableError(
                "the model's distribution does not depend on the Laplace's parameters: nothing to predict "
                "with uncertainty (check subset=)"
            )
        self.names = output_names(d, rows, self.keep)
        self.m = len(self.names)
        # the output's columns among all floating parameters of a row's distribution ("ggn"'s eta,
        # which the layers' trace returns)
        columns: list[int] = []
        col = 0
        for i, event in _layout(d, rows):
            size = int(np.prod(event)) if event else 1
            if i in self.keep:
                columns.extend(range(col, col + size))
            col += size
        self.columns = tuple(columns)
        self.head = _head_of(d, rows, self.names)
        self.scale = None
        if self.head == "normal":  # the noise of every row, for log_prob
            d_all, rows_all = rows_distribution(model, params, self.x, self.n)
            scale = jnp.broadcast_to(d_all.scale, rows_all)
            self.scale = np.asarray(scale, dtype=np.float64).reshape(self.n, -1)

    def moments(self, form: Any, lams: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``f(x, θ*)`` ``(N, m)`` and, per prior in ``lams``, :math:`J\\Sigma J^\\top` ``(N, m, m)``:
        by the layers' factors where every parameter is in a dense layer and the posterior is
        K-FAC or diagonal (:meth:`_layer_moments`), else from the rows' Jacobians."""
        fast = self._layer_moments(form, lams)
        if fast is not None:
            return fast
        p = int(self.flat.shape[0])
        size = max(1, min(256, self.n, JACOBIAN_BLOCK_ELEMENTS // max(self.m * p, 1)))
        kernel = self._jacobian_kernel(size)
        mean = np.empty((self.n, self.m))
        covs = [np.empty((self.n, self.m, self.m)) for _ in lams]
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            xb = jax.tree_util.tree_map(lambda a, s=start, t=stop: _pad(a[s:t], size), self.x)
            value, jac = kernel(self.flat, xb)
            rows = stop - start
            mean[start:stop] = np.asarray(value, dtype=np.float64)[:rows]
            j = np.asarray(jac)[:rows]  # (B, m, P), the network's precision
            flat_j = j.reshape(rows * self.m, p)
            for cov, lam in zip(covs, lams, strict=True):
                w = form.whiten_rows(lam, flat_j).reshape(rows, self.m, -1)  # J S, S S^T = Sigma
                cov[start:stop] = np.matmul(w, np.swapaxes(w, 1, 2))
        return mean, covs

    def _layer_moments(
        self, form: Any, lams: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """:math:`J\\Sigma J^\\top` from the factors of the rows' Jacobians, dense layer by dense layer.

        Row :math:`i`'s Jacobian of output :math:`k` in layer :math:`l` is :math:`\\tilde a\\,g_k^\\top`
        (:func:`~fisherlab.operators._layer_stats.output_factors_kernel`). With the layer's
        posterior covariance :math:`(R_A \\otimes R_G)\\operatorname{diag}(1/v)(R_A\\otimes R_G)^\\top`
        (K-FAC: :math:`R = Q`, :math:`v = e + s`; diagonal: :math:`R = I`, :math:`v = d + \\lambda`),
        :math:`(J\\Sigma J^\\top)_{kk'} = \\sum_b \\beta_{kb}\\beta_{k'b}c_b` with
        :math:`\\alpha = R_A^\\top\\tilde a`, :math:`\\beta_k = R_G^\\top g_k` and
        :math:`c = (\\alpha^{\\odot 2})^\\top (1/v)`: :math:`O(d_\\text{in}^2 + m\\,d_\\text{out}^2)`
        per row and layer instead of :math:`O(m\\,d_\\text{in}^2 d_\\text{out})`. ``None`` where it
        does not apply (another structure, a convolution, a parameter outside a dense layer,
        several distributions per row).
        """
        kron = isinstance(form, Composite) and all(isinstance(f, KronForm) for _, f in form.parts)
        if not (kron or isinstance(form, DiagonalForm)):
            return None
        size = min(LAYER_BLOCK_ROWS, self.n)
        xb0 = jax.tree_util.tree_map(lambda a: _pad(a[:size], size), self.x)
        tagged = trace_layers(self.model, "ggn", self.params, xb0, size)
        if tagged is None or any(isinstance(layer, ConvLayer) for layer in tagged.layers):
            return None
        leaves = jax.tree_util.tree_leaves(self.params)
        covered = {i for layer in tagged.layers for i in (layer.w, layer.b) if i is not None}
        if covered != set(range(len(leaves))):
            return None
        ranges = leaf_ranges(self.params)
        by_weight = {f.kron.layer.w: (idx, f) for idx, f in form.parts} if kron else {}
        if kron and set(by_weight) != {layer.w for layer in tagged.layers}:
            return None
        columns = self.columns
        # per layer and prior: (R_A or None, R_G or None, 1 / v as (d_in [+1], d_out))
        specs: list[list[tuple[Any, Any, np.ndarray]]] = []
        for lam in lams:
            per_layer = []
            for layer in tagged.layers:
                if kron:
                    idx, f = by_weight[layer.w]
                    per_layer.append((f.qa, f.qg, 1.0 / f._shift(lam[idx])))
                else:
                    idx = layer_index(
                        layer,
                        ranges[layer.w],
                        None if layer.b is None else ranges[layer.b],
                        tuple(np.shape(leaves[layer.w])),
                    )
                    per_layer.append((None, None, 1.0 / form._positive(form.d[idx] + lam[idx])))
            specs.append(per_layer)
        sig = ("laplace", "output-factors", columns, tuple(tagged.layers), size, tree_signature(self.x))
        kernel = self.model.state.kernel(sig, lambda: output_factors_kernel(tagged, columns))
        mean = np.empty((self.n, self.m))
        covs = [np.zeros((self.n, self.m, self.m)) for _ in lams]
        for lo in range(0, self.n, size):
            hi = min(lo + size, self.n)
            xb = jax.tree_util.tree_map(lambda a, s=lo, t=hi: _pad(a[s:t], size), self.x)
            f, inputs, grads = kernel(leaves, xb)
            rows = hi - lo
            mean[lo:hi] = np.asarray(f, dtype=np.float64)[:rows]
            for li, (layer, a, g) in enumerate(zip(tagged.layers, inputs, grads, strict=True)):
                a = np.asarray(a, dtype=np.float64)[:rows]
                g = np.asarray(g, dtype=np.float64)[:, :rows]  # (m, B, d_out)
                if layer.b is not None:
                    a = np.concatenate([a, np.ones((rows, 1))], axis=1)
                for cov, per_layer in zip(covs, specs, strict=True):
                    qa, qg, inv = per_layer[li]
                    alpha = a if qa is None else a @ qa
                    beta = g if qg is None else g @ qg
                    c = (alpha**2) @ inv  # (B, d_out)
                    cov[lo:hi] += np.einsum("kbd,jbd,bd->bkj", beta, beta, c, optimize=True)
        return mean, covs

    def _jacobian_kernel(self, size: int) -> Callable[..., Any]:
        unravel, model, keep = self.unravel, self.model, self.keep

        def build() -> Callable[..., Any]:
            def row(f: jax.Array, x_row: Any) -> jax.Array:
                xb = jax.tree_util.tree_map(lambda a: a[None], x_row)
                d, rows = rows_distribution(model, unravel(f), xb, 1)
                return _eta_of(d, rows, keep).reshape(-1)

            def kernel(f: jax.Array, xb: Any) -> Any:
                return jax.vmap(lambda xr: (row(f, xr), jax.jacrev(row)(f, xr)))(xb)

            return kernel

        sig = ("laplace", "jacobian", keep, size, tree_signature(self.params), tree_signature(self.x))
        return self.model.state.kernel(sig, build)

    def sampled(self, draws: np.ndarray) -> np.ndarray:
        """``(S, N, m)``: the outputs of each row of ``draws`` ``(S, P)`` (the network run per draw)."""
        unravel, x, model, keep = self.unravel, self.x, self.model, self.keep

        def build() -> Callable[..., Any]:
            def eta(f: jax.Array, xx: Any) -> jax.Array:
                n = _rows(xx)
                d, rows = rows_distribution(model, unravel(f), xx, n)
                return _eta_of(d, rows, keep).reshape(n, -1)

            def kernel(flats: jax.Array, xx: Any) -> Any:
                return jax.lax.map(lambda f: eta(f, xx), flats)

            return kernel

        sig = ("laplace", "sampled", self.keep, tree_signature(self.params), tree_signature(x))
        kernel = self.model.state.kernel(sig, build)
        return np.asarray(kernel(jnp.asarray(draws, dtype=self.flat.dtype), x), dtype=np.float64)

    def probs(self, method: str, mean: np.ndarray, cov: np.ndarray, num: int, seed: int) -> np.ndarray | None:
        """Class probabilities of a logits head from the output's moments (``"glm"``: by sampling)."""
        if self.head not in ("categorical", "bernoulli"):
            return None
        if method == "probit":
            var = np.diagonal(cov, axis1=1, axis2=2)
            z = mean / np.sqrt(1.0 + np.pi / 8.0 * var)
            return _link(self.head, z)
        rng = np.random.default_rng(seed)
        out = np.zeros(mean.shape if self.head == "categorical" else mean.shape[:1])
        chol = _cholesky_psd(cov)
        for start in range(0, num, 1000):
            k = min(1000, num - start)
            z = mean[None] + np.einsum("nij,snj->sni", chol, rng.standard_normal((k, *mean.shape)))
            out += _link(self.head, z).sum(axis=0)
        return out / num


def _link(head: str, z: np.ndarray) -> np.ndarray:
    if head == "categorical":
        return softmax(z, axis=-1)
    return 1.0 / (1.0 + np.exp(-z[..., 0]))


def mean_probs(head: str, samples: np.ndarray) -> np.ndarray | None:
    """Class probabilities averaged over sampled outputs ``(S, N, m)`` (``None``: not a logits head)."""
    if head == "categorical":
        return np.exp(logsumexp(log_softmax(samples, axis=-1), axis=0) - np.log(samples.shape[0]))
    if head == "bernoulli":
        return _link(head, samples).mean(axis=0)
    return None


def _cholesky_psd(cov: np.ndarray) -> np.ndarray:
    """A factor ``L`` with ``L Lᵀ = cov`` per row, for positive semi-definite ``cov`` ``(N, m, m)``."""
    w, v = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 1, 2)))
    return v * np.sqrt(np.maximum(w, 0.0))[:, None, :]


def _head_of(d: nd.Distribution, rows: tuple[int, ...], names: list[str]) -> str:
    """``"categorical"``, ``"bernoulli"`` (logits heads), ``"normal"`` (the output is its mean) or
    ``"other"``."""
    if isinstance(d, nd.CategoricalLogits) and len(rows) == 1 and all(n.startswith("logits") for n in names):
        return "categorical"
    if isinstance(d, nd.BernoulliLogits) and len(rows) == 1 and names == ["logits"]:
        return "bernoulli"
    if isinstance(d, nd.Normal) and all(n.startswith("loc") for n in names):
        return "normal"
    return "other"


def _rows(x: Any) -> int:
    return int(np.shape(jax.tree_util.tree_leaves(x)[0])[0])


def _pad(a: Any, size: int) -> Any:
    """``a`` padded to ``size`` rows by repeating its first row (padded rows are dropped)."""
    rows = a.shape[0]
    if rows == size:
        return a
    return jnp.concatenate([a, jnp.repeat(a[:1], size - rows, axis=0)])
