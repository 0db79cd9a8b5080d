"""Benchmark: curvature of a network with fl.curvature, in units of one gradient.

    python benchmarks/bench_curvature.py               # MLP 784-256-tanh-10, N = 2,048, float32
    python benchmarks/bench_curvature.py --n 512       # quicker
    python benchmarks/bench_curvature.py --float64     # the same in float64
    python benchmarks/bench_curvature.py --no-torch    # fisherlab only, even where PyTorch is installed

Workload of issue 12: an MLP 784-256-tanh-10 with a softmax cross-entropy head
(``fl.dist.Categorical(logits=...)``), N inputs, random weights and labels. The unit is one
jit-compiled gradient of the mean loss in JAX, measured in the same run (these machines are
noisy: ratios hold, seconds do not). Each candidate is timed after its first (compiling) call,
as the median of ``--repeats`` interleaved rounds:

- ``operator mv``: one product ``C.mv(v)`` of the exact Fisher operator (the head's factor
  computed once when the operator is built; targets: <= 2.5 gradients);
- ``diagonal, exact`` (Fisher), ``diagonal, MC`` (``kind="mc_fisher"``, one sampled label per
  input), ``diagonal, empirical`` (sum of squared per-example gradients): building the
  ``structure="diagonal"`` object (targets 3, 1.5 and 3 gradients);
- the anchor ``naive per-example gradients``: ``jax.vmap(jax.grad)`` over the rows, squared and
  summed (the empirical diagonal as a user would write it in JAX);
- ``KFAC``: building ``structure="kfac"`` (the Kronecker factors of both dense layers; their
  eigendecompositions wait for the first solve, logdet or eigh) with one sampled label per
  input (target 2 gradients) and the exact type-2 factors (``kind="fisher"``, all 10 columns
  of the softmax Fisher's square root; BackPACK's KFLR: 9.8 in the issue).

PyTorch anchors: where ``torch``, ``backpack`` (backpack-for-pytorch) and ``curvlinops``
(curvlinops-for-pytorch) import, the same network is built as ``nn.Sequential(Linear, Tanh,
Linear)`` with a copy of the same weights, on the same data and in the same dtype, and timed in
the same rounds, in units of one PyTorch gradient of the mean cross-entropy
(``loss.backward()``): BackPACK's ``DiagGGNExact``, ``DiagGGNMC``, ``SumGradSquared``, ``KFAC``
(one sample) and ``KFLR``; curvlinops' ``GGNLinearOperator`` (one product) and
``KFACLinearOperator`` (computing its factors, weight and bias in one factor as fisherlab
does; ``fisher_type="mc"`` with one sample and ``"type-2"``). Where the numbers are the same
deterministic quantity the script prints the largest relative difference. Without the three
packages it runs fisherlab alone and says how to install them (``benchmarks/README.md``).
Timings are never asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# PyTorch's OpenMP threads otherwise spin at each barrier: on 2 cores shared with other jobs that
# made its gradient 4-8x slower (JAX's thread pool is not hurt so); set before torch is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FL, BP, CL = "fisherlab", "BackPACK", "curvlinops"
UNIT = "one gradient (unit)"
TORCH_UNIT = ("PyTorch", UNIT)  # the anchors' unit: one PyTorch gradient, for both packages
MV = "operator mv (fisher)"
DIAG = "diagonal, exact (fisher)"
DIAG_GGN = "diagonal, exact (ggn)"
DIAG_MC = "diagonal, MC (mc_fisher, 1 label)"
DIAG_EMP = "diagonal, empirical"
NAIVE = "naive per-example gradients (JAX vmap)"
KFAC_MC = "KFAC, 1 sampled label (mc_fisher)"
KFAC_T2 = "KFAC, exact type-2 (fisher)"

TARGETS = {MV: 2.5, DIAG: 3.0, DIAG_GGN: 3.0, DIAG_MC: 1.5, DIAG_EMP: 3.0, KFAC_MC: 2.0}
# the anchor of each quantity: (source, BackPACK extension or curvlinops operator)
ANCHORS: dict[str, list[tuple[str, str]]] = {
    MV: [(CL, "ggn mv")],
    DIAG: [(BP, "DiagGGNExact")],
    DIAG_GGN: [(BP, "DiagGGNExact")],
    DIAG_MC: [(BP, "DiagGGNMC")],
    DIAG_EMP: [(BP, "SumGradSquared")],
    KFAC_MC: [(BP, "KFAC"), (CL, "kfac mc")],
    KFAC_T2: [(BP, "KFLR"), (CL, "kfac type-2")],
}
INSTALL = (
    "python3 -m venv .venv-torch && .venv-torch/bin/pip install -e '.[networks]' && "
    ".venv-torch/bin/pip install torch==2.13.0 && "
    ".venv-torch/bin/pip install backpack-for-pytorch curvlinops-for-pytorch torch==2.13.0"
)

# a parameter of the torch network, in the order of its .parameters(): the path of the same
# array in fisherlab's params dict and whether it is stored transposed there (a dense layer's
# weight is (in, out) in JAX, (out, in) in torch)
Layout = Sequence[tuple[tuple[str, ...], bool]]


def _median(fns: dict[Hashable, Callable[[], Any]], repeats: int) -> dict[Hashable, float]:
    """Median seconds of each call over ``repeats`` interleaved rounds, after one warm-up call."""
    import jax

    for fn in fns.values():
        jax.block_until_ready(fn())  # compile
    times: dict[Hashable, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def torch_missing() -> str | None:
    """Why the PyTorch anchors cannot run here (``None``: they can)."""
    try:
        import backpack  # noqa: F401
        import curvlinops  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        return f"{type(err).__name__}: {err}"
    return None


def to_torch_layout(tree: Any, layout: Layout) -> list[np.ndarray]:
    """fisherlab's params-shaped pytree as NumPy arrays in the torch network's layout."""
    out = []
    for path, transposed in layout:
        leaf = tree
        for key in path:
            leaf = leaf[key]
        out.append(np.asarray(leaf).T if transposed else np.asarray(leaf))
    return out


def from_torch_layout(arrays: Sequence[np.ndarray], layout: Layout) -> dict[str, Any]:
    """The inverse of :func:`to_torch_layout` (a nested dict of NumPy arrays)."""
    tree: dict[str, Any] = {}
    for a, (path, transposed) in zip(arrays, layout, strict=True):
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = np.ascontiguousarray(a.T if transposed else a)
    return tree


def max_rel(got: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> float:
    """max over arrays of max |got - ref| / max |ref|."""
    return max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))) / np.max(np.abs(b)))
        for a, b in zip(got, ref, strict=True)
    )


def _discard(fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` returning nothing: PyTorch on the CPU has finished when a call returns."""

    def call() -> None:
        fn()

    return call


def torch_anchors(net: Any, params: Any, layout: Layout, x: Any, y: Any, **kwargs: Any) -> TorchAnchors:
    """The anchors on ``net`` (a torch module) with fisherlab's ``params`` copied in, in their dtype."""
    import torch

    leaves = to_torch_layout(params, layout)
    net = net.to(torch.float64 if leaves[0].dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for p, a in zip(net.parameters(), leaves, strict=True):
            p.copy_(torch.from_numpy(np.array(a)))
    print(
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; the same weights and data"
    )
    return TorchAnchors(net, x, y, **kwargs)


class TorchAnchors:
    """BackPACK and curvlinops on a torch copy of the network (same weights, data and dtype).

    ``net`` is the plain network (PyTorch's gradient and curvlinops run on it); BackPACK runs on
    an extended deep copy so that its hooks do not weigh on the plain gradient.
    """

    def __init__(self, net: Any, x: Any, y: Any, *, kfac_approx: str = "expand", seed: int = 0) -> None:
        import torch
        from backpack import extend

        torch.manual_seed(seed)
        self.net = net
        self.x = torch.from_numpy(np.array(x))
        self.y = torch.from_numpy(np.asarray(y).astype(np.int64))
        self.loss = torch.nn.CrossEntropyLoss()
        self.params = list(net.parameters())
        self.ext_net = extend(copy.deepcopy(net))
        self.ext_loss = extend(torch.nn.CrossEntropyLoss())
        self.kfac_approx = kfac_approx
        self._ggn: Any = None

    def gradient(self) -> None:
        """One gradient of the mean cross-entropy (the unit of the anchors)."""
        self.net.zero_grad(set_to_none=True)
        self.loss(self.net(self.x), self.y).backward()

    def backpack(self, extension: str) -> list[Any]:
        """One backward pass with a BackPACK extension; its results, one per parameter."""
        from backpack import backpack, extensions

        ext_cls = getattr(extensions, extension)
        ext = ext_cls(mc_samples=1) if extension in ("DiagGGNMC", "KFAC") else ext_cls()
        self.ext_net.zero_grad(set_to_none=True)
        loss = self.ext_loss(self.ext_net(self.x), self.y)
        with backpack(ext), warnings.catch_warnings():
            # BackPACK's hooks on the first layer, whose input needs no gradient
            warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
            loss.backward()
        return [getattr(p, ext.savefield) for p in self.ext_net.parameters()]

    def ggn_mv(self, v: Sequence[Any]) -> list[Any]:
        """One product of curvlinops' GGN operator (built once, outside the timing)."""
        from curvlinops import GGNLinearOperator

        if self._ggn is None:
            self._ggn = GGNLinearOperator(
                self.net, self.loss, self.params, [(self.x, self.y)], check_deterministic=False,
                num_data=len(self.y),
            )  # fmt: skip
        return self._ggn @ list(v)

    def kfac(self, fisher_type: str) -> Any:
        """curvlinops' KFAC with its Kronecker factors computed (weight and bias in one factor)."""
        from curvlinops import KFACLinearOperator

        op = KFACLinearOperator(
            self.net, self.loss, self.params, [(self.x, self.y)], check_deterministic=False,
            num_data=len(self.y), num_per_example_loss_terms=1, fisher_type=fisher_type, mc_samples=1,
            kfac_approx=self.kfac_approx, separate_weight_and_bias=False,
        )  # fmt: skip
        op.compute_kronecker_factors()
        return op

    def candidates(self, quantities: Sequence[str]) -> dict[Hashable, Callable[[], Any]]:
        """The timed calls: (source, quantity) -> a call returning nothing to wait for."""
        ones = [self.x.new_ones(p.shape) for p in self.params]
        run: dict[str, Callable[[], Any]] = {
            "ggn mv": lambda: self.ggn_mv(ones),
            "kfac mc": lambda: self.kfac("mc"),
            "kfac type-2": lambda: self.kfac("type-2"),
        }
        out: dict[Hashable, Callable[[], Any]] = {TORCH_UNIT: self.gradient}
        for q in quantities:
            for src, what in ANCHORS.get(q, []):
                out[src, q] = _discard(run.get(what) or (lambda what=what: self.backpack(what)))
        return out

    def numpy(self, tensors: Sequence[Any]) -> list[np.ndarray]:
        return [t.detach().numpy() for t in tensors]

    def kflr_diagonal(self, extension: str = "KFLR") -> list[np.ndarray]:
        """The diagonal of BackPACK's Kronecker factors, in each parameter's shape."""
        out = []
        for p, factors in zip(self.ext_net.parameters(), self.backpack(extension), strict=True):
            d = np.ones(1)
            for f in factors:  # [G] for a bias, [G, A] for a weight
                d = np.outer(d, np.diag(f.detach().numpy())).ravel()
            out.append(d.reshape(p.shape))
        return out


def anchor_rows(med: dict[Hashable, float], quantities: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each anchor's ratio to one PyTorch gradient: {source: {quantity: gradients}}."""
    unit = med.get(TORCH_UNIT)
    out: dict[str, dict[str, float]] = {}
    if unit is None:
        return out
    for q in quantities:
        for src, _ in ANCHORS.get(q, []):
            out.setdefault(src, {})[q] = med[src, q] / unit
    return out


def print_table(med: dict[Hashable, float], quantities: Sequence[str], *, torch_skipped: str | None) -> None:
    """fisherlab's ratios beside the anchors', then one line per target."""
    fl_unit = med[FL, UNIT]
    bp_unit = med.get(TORCH_UNIT)
    anchors = anchor_rows(med, quantities)

    def cell(src: str, q: str) -> str:
        return f"{anchors[src][q]:.1f}" if q in anchors.get(src, {}) else "–"

    print(f"{'gradients of the same framework':42s} {FL:>10s} {BP:>10s} {CL:>10s} {'target':>7s}")
    torch_unit = "–" if bp_unit is None else f"{bp_unit:.4f}"
    print(f"{UNIT + ', seconds':42s} {fl_unit:10.4f} {torch_unit:>10s} {torch_unit:>10s}")
    if bp_unit is not None:
        print(f"{'  (one JAX gradient in PyTorch gradients)':42s} {fl_unit / bp_unit:10.2f}")
    for q in quantities:
        target = TARGETS.get(q)
        print(
            f"{q:42s} {med[FL, q] / fl_unit:10.1f} {cell(BP, q):>10s} {cell(CL, q):>10s} "
            f"{'' if target is None else f'{target:.1f}':>7s}"
        )
    for q in quantities:
        if q not in TARGETS:
            continue
        r = med[FL, q] / fl_unit
        mark = "PASS" if r <= TARGETS[q] else "MISS"
        others = [f"{src} {anchors[src][q]:.1f}" for src in (BP, CL) if q in anchors.get(src, {})]
        note = f" (anchors: {', '.join(others)})" if others else ""
        print(f"target {q} <= {TARGETS[q]:.1f}: fisherlab {r:.1f} {mark}{note}")
    if torch_skipped:
        print(f"PyTorch anchors skipped ({torch_skipped}); to run them: {INSTALL}")


def parse_args(argv: list[str] | None, doc: str, n: int, **extra: int) -> argparse.Namespace:
    """The options both curvature benchmarks take (``extra``: more integer options and their
    defaults); ``--float64`` turns JAX's 64-bit mode on for the process here."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=n)
    for name, default in extra.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch anchors")
    parser.add_argument("--json", type=Path, help="also write the ratios as JSON")
    args, _ = parser.parse_known_args(argv)
    if args.float64:
        import jax

        jax.config.update("jax_enable_x64", True)
    return args


def write_json(
    path: Path | None,
    med: dict[Hashable, float],
    quantities: Sequence[str],
    skipped: str | None,
    **extra: Any,
) -> None:
    """The ratios (and ``extra``) as JSON, when ``--json`` was given."""
    if path is None:
        return
    path.write_text(
        json.dumps(
            {
                "unit_seconds": med[FL, UNIT],
                "torch_unit_seconds": med.get(TORCH_UNIT),
                "gradients": {q: med[FL, q] / med[FL, UNIT] for q in quantities},
                "anchors": anchor_rows(med, quantities),
                "anchors_skipped": skipped,
                **extra,
            }
        )
    )


def mlp_workload(args: argparse.Namespace) -> argparse.Namespace:
    """The MLP 784-``args.hidden``-tanh-10 workload, seeded: ``x, y, params, layout, net, loss``
    (the mean cross-entropy: its gradient is the unit), ``d_in, h, k, dtype`` (float32 unless
    ``args.float64``) and ``rng``, the generator after the data and weights were drawn."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.float64 if args.float64 else jnp.float32
    rng = np.random.default_rng(0)
    d_in, h, k = 784, args.hidden, 10
    x = jnp.asarray(rng.normal(size=(args.n, d_in)), dtype=dtype)
    y = rng.integers(0, k, size=args.n).astype(np.int32)
    params = {
        "l1": {"w": jnp.asarray(rng.normal(size=(d_in, h)) / np.sqrt(d_in), dtype), "b": jnp.zeros(h, dtype)},
        "l2": {"w": jnp.asarray(rng.normal(size=(h, k)) / np.sqrt(h), dtype), "b": jnp.zeros(k, dtype)},
    }
    layout: Layout = [(("l1", "w"), True), (("l1", "b"), False), (("l2", "w"), True), (("l2", "b"), False)]

    def net(th: Any, xx: Any) -> Any:
        return jnp.tanh(xx @ th["l1"]["w"] + th["l1"]["b"]) @ th["l2"]["w"] + th["l2"]["b"]

    def loss(th: Any, xx: Any, yy: Any) -> Any:
        return -jnp.mean(jax.nn.log_softmax(net(th, xx))[jnp.arange(yy.shape[0]), yy])

    return argparse.Namespace(
        x=x, y=y, params=params, layout=layout, net=net, loss=loss, d_in=d_in, h=h, k=k, dtype=dtype, rng=rng
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__, 2048, hidden=256)
    import jax
    import jax.numpy as jnp

    import fisherlab as fl

    w = mlp_workload(args)
    x, y, params, layout, net, loss = w.x, w.y, w.params, w.layout, w.net, w.loss
    d_in, h, k, dtype, rng = w.d_in, w.h, w.k, w.dtype, w.rng
    grad = jax.jit(jax.grad(loss))
    per_example = jax.jit(
        lambda th, xx, yy: jax.tree_util.tree_map(
            lambda g: (g**2).sum(0),
            jax.vmap(lambda xi, yi: jax.grad(loss)(th, xi[None], yi[None]))(xx, yy),
        )
    )
    model = fl.Model(lambda th, xx: fl.dist.Categorical(logits=net(th, xx)))
    op = fl.curvature(model, params, y, x, kind="fisher")
    v = jax.tree_util.tree_map(jnp.ones_like, params)

    cands: dict[Hashable, Callable[[], Any]] = {
        (FL, UNIT): lambda: grad(params, x, y),
        (FL, MV): lambda: op.mv(v),
        (FL, DIAG): lambda: fl.curvature(model, params, y, x, structure="diagonal").diagonal(),
        (FL, DIAG_MC): lambda: fl.curvature(
            model, params, y, x, kind="mc_fisher", structure="diagonal"
        ).diagonal(),
        (FL, DIAG_EMP): lambda: fl.curvature(
            model, params, y, x, kind="empirical", structure="diagonal"
        ).diagonal(),
        (FL, KFAC_MC): lambda: fl.curvature(model, params, y, x, kind="mc_fisher", structure="kfac").trace(),
        (FL, KFAC_T2): lambda: fl.curvature(model, params, y, x, structure="kfac").trace(),
    }
    quantities = [q for _, q in cands if q != UNIT] + [NAIVE]
    p = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
    print(
        f"MLP 784-{h}-tanh-10, softmax cross-entropy, N = {args.n}, P = {p:,}, "
        f"{'float64' if args.float64 else 'float32'}; medians of {args.repeats} interleaved rounds"
    )
    skipped = "--no-torch" if args.no_torch else torch_missing()
    anchors = None
    if skipped is None:
        import torch

        tnet = torch.nn.Sequential(torch.nn.Linear(d_in, h), torch.nn.Tanh(), torch.nn.Linear(h, k))
        anchors = torch_anchors(tnet, params, layout, x, y)
        cands.update(anchors.candidates(quantities))

    load0 = os.getloadavg()[0]
    med = _median(cands, args.repeats)
    # the naive anchor holds N x P numbers (1.6 GB here): timed in its own rounds, after the
    # others, so that its memory traffic does not slow the candidate timed next to it
    med.update(_median({(FL, NAIVE): lambda: per_example(params, x, y)}, args.repeats))
    load1 = os.getloadavg()[0]
    print(f"load average {load0:.2f} at start, {load1:.2f} at end")
    print_table(med, quantities, torch_skipped=skipped)

    # agreement where the numbers are the same deterministic quantity
    rel: dict[str, float] = {}
    emp = fl.curvature(model, params, y, x, kind="empirical", structure="diagonal").diagonal()
    naive = per_example(params, x, y)
    rel["empirical diagonal vs the naive JAX anchor"] = max_rel(
        jax.tree_util.tree_leaves(emp), jax.tree_util.tree_leaves(naive)
    )
    if anchors is not None:
        n = args.n

        def mean(kind: str, structure: str) -> Any:
            return fl.curvature(model, params, y, x, kind=kind, structure=structure, reduction="mean")

        tv = [np.asarray(rng.normal(size=np.shape(a)), dtype) for a in to_torch_layout(params, layout)]
        v_fl = from_torch_layout(tv, layout)
        tv_t = [anchors.x.new_tensor(a) for a in tv]
        bp_diag = anchors.numpy(anchors.backpack("DiagGGNExact"))
        rel["exact diagonal (fisher) vs BackPACK DiagGGNExact"] = max_rel(
            to_torch_layout(mean("fisher", "diagonal").diagonal(), layout), bp_diag
        )
        rel["exact diagonal (ggn) vs BackPACK DiagGGNExact"] = max_rel(
            to_torch_layout(mean("ggn", "diagonal").diagonal(), layout), bp_diag
        )
        rel["empirical diagonal vs BackPACK SumGradSquared x N"] = max_rel(
            to_torch_layout(mean("empirical", "diagonal").diagonal(), layout),
            [a * n for a in anchors.numpy(anchors.backpack("SumGradSquared"))],
        )
        rel["operator mv (fisher) vs curvlinops GGN mv"] = max_rel(
            to_torch_layout(mean("fisher", "operator").mv(v_fl), layout), anchors.numpy(anchors.ggn_mv(tv_t))
        )
        kfac = mean("fisher", "kfac")
        rel["KFAC type-2 diagonal vs BackPACK KFLR"] = max_rel(
            to_torch_layout(kfac.diagonal(), layout), anchors.kflr_diagonal()
        )
        rel["KFAC type-2 mv vs curvlinops KFAC type-2"] = max_rel(
            to_torch_layout(kfac.mv(v_fl), layout), anchors.numpy(anchors.kfac("type-2") @ tv_t)
        )
    for name, r in rel.items():
        print(f"{name}: max relative difference {r:.1e}")
    write_json(
        args.json,
        med,
        quantities,
        skipped,
        rel=rel["empirical diagonal vs the naive JAX anchor"],
        agreement=rel,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
