"""Benchmark: a network Laplace with fl.laplace, in units of one gradient.

    python benchmarks/bench_laplace.py                # MLP 784-256-tanh-10, N = 2,048, float32
    python benchmarks/bench_laplace.py --n 512        # quicker
    python benchmarks/bench_laplace.py --float64      # the same in float64
    python benchmarks/bench_laplace.py --no-torch     # fisherlab only, even where laplace-torch is installed
    python benchmarks/bench_laplace.py --breakdown    # + where the fits' time goes

The workload of ``bench_curvature.py`` (an MLP 784-256-tanh-10, softmax cross-entropy head
``fl.Model(lambda th, x: fl.dist.Categorical(logits=...))``, N seeded standard-normal inputs,
random labels, weights scaled by 1/sqrt(fan-in)) and its unit: one jit-compiled gradient of the
mean loss in JAX, measured in the same run. Each candidate is timed after its first (compiling)
call, as the median of ``--repeats`` interleaved rounds:

- ``KFAC fit``: ``fl.laplace(model, params, y, x, structure="kfac")`` (``kind="ggn"``, exact
  type-2 Kronecker factors; target 3 gradients), and the same followed by its first
  ``log_marginal_likelihood()``, which includes the factors' eigendecompositions wherever
  fisherlab makes them (in the constructor or on first use; laplace-torch's ``fit`` makes them);
- ``diagonal fit``: ``fl.laplace(..., structure="diagonal")`` (target 2 gradients);
- ``evidence at a new prior precision``: ``la.log_marginal_likelihood(2.0)`` on an existing
  object whose first evidence was computed (target 0.5 gradient), K-FAC and diagonal;
- ``optimize_prior_precision()`` (L-BFGS-B on the log evidence, a scalar prior), no target;
- ``predictive`` on ``--pred-rows`` new rows, ``method="glm"`` (1,000 draws of the logits) and
  ``"probit"``, timed once after one compiling call, no target (reported per 256 rows, scaled
  linearly: the work is per row).

Anchors: where ``torch``, ``backpack``, ``curvlinops`` and ``laplace`` (laplace-torch) import,
the network is rebuilt as ``nn.Sequential(Linear, Tanh, Linear)`` with a copy of the same
weights, on the same data and in the same dtype, and ``Laplace(net, "classification",
subset_of_weights="all", hessian_structure="kron" | "diag")`` is fitted in the same rounds with
its default backend (``CurvlinopsGGN``) and with ``backend=BackPackGGN``, in units of one
PyTorch gradient of the mean cross-entropy. The default backend's diagonal goes through the full
per-row Jacobians (N x 10 x P numbers, 16.7 GB at N = 2,048): it is timed once on ``--jac-n``
rows (32) and scaled linearly to N, a lower bound, and says so. Where the numbers are the same
quantity the script prints the relative difference of the log marginal likelihoods (see
``benchmarks/README.md`` for laplace-torch's bias convention). Without the packages it runs
fisherlab alone and says how to install them. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from bench_curvature import (
    FL,
    INSTALL,
    TORCH_UNIT,
    UNIT,
    _discard,
    _median,
    mlp_workload,
    parse_args,
    torch_anchors,
    torch_missing,
)

LT_DEFAULT, LT_BACKPACK = "laplace-torch default", "laplace-torch BackPACK"
KFAC_FIT = "KFAC fit: fl.laplace(structure='kfac')"
KFAC_FIT_EV = "KFAC fit + first evidence (eigendecomps)"
DIAG_FIT = "diagonal fit: fl.laplace(structure='diagonal')"
KFAC_EV = "evidence at a new prior precision, KFAC"
DIAG_EV = "evidence at a new prior precision, diagonal"
KFAC_OPT = "optimize_prior_precision(), KFAC"
DIAG_OPT = "optimize_prior_precision(), diagonal"
PRED_GLM = "predictive glm (KFAC), 256 rows"
PRED_PROBIT = "predictive probit (KFAC), 256 rows"

TARGETS = {KFAC_FIT: 3.0, KFAC_FIT_EV: 3.0, DIAG_FIT: 2.0, KFAC_EV: 0.5, DIAG_EV: 0.5}
# laplace-torch's counterpart of each quantity: (column, what), see LaplaceTorch.candidates
ANCHORS: dict[str, list[tuple[str, str]]] = {
    KFAC_FIT: [(LT_DEFAULT, "kron fit"), (LT_BACKPACK, "kron fit")],
    KFAC_FIT_EV: [(LT_DEFAULT, "kron fit"), (LT_BACKPACK, "kron fit")],
    DIAG_FIT: [(LT_DEFAULT, "diag fit"), (LT_BACKPACK, "diag fit")],
    KFAC_EV: [(LT_DEFAULT, "kron evidence")],
    DIAG_EV: [(LT_BACKPACK, "diag evidence")],
    KFAC_OPT: [(LT_DEFAULT, "kron optimize")],
    DIAG_OPT: [(LT_BACKPACK, "diag optimize")],
    PRED_GLM: [(LT_DEFAULT, "predictive mc")],
    PRED_PROBIT: [(LT_DEFAULT, "predictive probit")],
}
LAPLACE_INSTALL = INSTALL + " && .venv-torch/bin/pip install laplace-torch==0.3 torch==2.13.0"
PRED_REPORT_ROWS = 256
NEW_PRIOR = 2.0


def laplace_missing() -> str | None:
    """Why laplace-torch's anchors cannot run here (``None``: they can)."""
    missing = torch_missing()
    if missing is not None:
        return missing
    try:
        import laplace  # noqa: F401
    except ImportError as err:
        return f"{type(err).__name__}: {err}"
    return None


def _once(fn: Callable[[], Any]) -> float:
    """Seconds of one call (after whatever warm-up the caller did)."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def _recorded(fn: Callable[[], Any], seconds: list[float]) -> Callable[[], Any]:
    """``fn`` appending the seconds of each of its calls to ``seconds`` (the spread of the rounds)."""
    import jax

    def call() -> Any:
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - t0)
        return out

    return call


class _OneBatch:
    """What ``Laplace.fit`` reads of a loader: ``dataset`` (for N) and one full batch ``(x, y)``
    (a ``DataLoader`` would also time its collation of N rows, not laplace-torch's work)."""

    def __init__(self, x: Any, y: Any) -> None:
        self.dataset, self._batch = x, (x, y)

    def __iter__(self) -> Any:
        return iter([self._batch])


class LaplaceTorch:
    """laplace-torch on the torch copy of the network (each backend on its own deep copy:
    BackPACK extends the module it is given)."""

    def __init__(self, net: Any, x: Any, y: Any) -> None:
        self.net_default = copy.deepcopy(net)
        self.net_backpack = copy.deepcopy(net)
        self.x, self.y = x, y
        self.loader = _OneBatch(x, y)
        self._kron: Any = None
        self._diag: Any = None

    def fit(self, structure: str, backend: str, loader: Any = None) -> Any:
        from laplace import Laplace
        from laplace.curvature import BackPackGGN

        kw = {"backend": BackPackGGN} if backend == LT_BACKPACK else {}
        net = self.net_backpack if backend == LT_BACKPACK else self.net_default
        la = Laplace(net, "classification", subset_of_weights="all", hessian_structure=structure, **kw)
        with warnings.catch_warnings():
            # BackPACK's hooks on the first layer, whose input needs no gradient
            warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
            la.fit(self.loader if loader is None else loader)
        return la

    @property
    def kron(self) -> Any:
        """A fitted K-FAC Laplace (default backend) for the evidence, optimisation and predictive."""
        if self._kron is None:
            self._kron = self.fit("kron", LT_DEFAULT)
            self._kron.log_marginal_likelihood()
        return self._kron

    @property
    def diag(self) -> Any:
        """A fitted diagonal Laplace (BackPACK: the default's needs N x 10 x P numbers)."""
        if self._diag is None:
            self._diag = self.fit("diag", LT_BACKPACK)
            self._diag.log_marginal_likelihood()
        return self._diag

    def evidence(self, la: Any, prior_precision: float) -> float:
        import torch

        with torch.no_grad():
            return float(la.log_marginal_likelihood(prior_precision=prior_precision))

    def optimize(self, structure: str) -> float:
        """laplace-torch's own tuning (marglik: 100 Adam steps on a scalar log precision) on a fresh
        copy of the fitted object; the precision found."""
        la = copy.copy(self.kron if structure == "kron" else self.diag)
        with warnings.catch_warnings():  # its reminder that link_approx defaults to probit
            warnings.filterwarnings("ignore", "By default `link_approx`", UserWarning)
            la.optimize_prior_precision(method="marglik", pred_type="glm")
        return float(la.prior_precision.reshape(-1)[0])

    def predictive(self, rows: int, link: str) -> Any:
        import torch

        with torch.no_grad():
            return self.kron(self.x[:rows], pred_type="glm", link_approx=link, n_samples=1000)

    def candidates(self) -> dict[Hashable, Callable[[], Any]]:
        """The interleaved anchors: (column, quantity) -> a call returning nothing to wait for."""
        run: dict[tuple[str, str], Callable[[], Any]] = {
            (LT_DEFAULT, "kron fit"): lambda: self.fit("kron", LT_DEFAULT),
            (LT_BACKPACK, "kron fit"): lambda: self.fit("kron", LT_BACKPACK),
            (LT_BACKPACK, "diag fit"): lambda: self.fit("diag", LT_BACKPACK),
            (LT_DEFAULT, "kron evidence"): lambda: self.evidence(self.kron, NEW_PRIOR),
            (LT_BACKPACK, "diag evidence"): lambda: self.evidence(self.diag, NEW_PRIOR),
            (LT_DEFAULT, "kron optimize"): lambda: self.optimize("kron"),
            (LT_BACKPACK, "diag optimize"): lambda: self.optimize("diag"),
        }
        return {key: _discard(fn) for key, fn in run.items()}

    def joint_kron_evidence(self, prior_precision: float) -> float:
        """The evidence with fisherlab's K-FAC convention (weight and bias in one Kronecker factor):
        curvlinops' type-2 factors with ``separate_weight_and_bias=False``, decomposed and summed
        by laplace-torch's ``Kron``/``KronDecomposed``, in laplace-torch's evidence formula."""
        import torch
        from curvlinops import KFACLinearOperator
        from laplace.utils import Kron

        la = self.kron
        net = self.net_default
        params = [p for p in net.parameters() if p.requires_grad]
        op = KFACLinearOperator(
            net, torch.nn.CrossEntropyLoss(reduction="sum"), params, [(self.x, self.y)],
            fisher_type="type-2", separate_weight_and_bias=False, check_deterministic=False,
        )  # fmt: skip
        op.compute_kronecker_factors()
        kfacs = [
            [op._gradient_covariances[name], op._input_covariances[name]]
            for name, _ in net.named_modules()
            if name in op._mapping
        ]
        delta = torch.tensor([prior_precision], dtype=params[0].dtype)
        with torch.no_grad():
            logdet_post = float((Kron(kfacs).decompose() + delta).logdet())
            theta = torch.cat([p.detach().reshape(-1) for p in params])
            p = theta.numel()
            logdet_prior = p * float(np.log(prior_precision))
            scatter = prior_precision * float(theta @ theta)
            return float(la.log_likelihood) - 0.5 * (logdet_post - logdet_prior + scatter)


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__, 2048, hidden=256)
    more = argparse.ArgumentParser(add_help=False)
    more.add_argument("--pred-rows", type=int, default=32, help="rows of the timed predictive (32)")
    more.add_argument("--jac-n", type=int, default=32, help="rows of laplace-torch's default diagonal (32)")
    more.add_argument("--breakdown", action="store_true", help="where the fits' time goes")
    extra, _ = more.parse_known_args(argv)

    import jax

    import fisherlab as fl

    w = mlp_workload(args)
    x, y, params, layout, net, loss = w.x, w.y, w.params, w.layout, w.net, w.loss
    d_in, h, k, dtype = w.d_in, w.h, w.k, w.dtype
    grad = jax.jit(jax.grad(loss))
    model = fl.Model(lambda th, xx: fl.dist.Categorical(logits=net(th, xx)))

    def fit(structure: str) -> Any:
        return fl.laplace(model, params, y, x, structure=structure)

    la_k, la_d = fit("kfac"), fit("diagonal")
    ev_k, ev_d = la_k.log_marginal_likelihood(), la_d.log_marginal_likelihood()  # first evidence
    cands: dict[Hashable, Callable[[], Any]] = {
        (FL, UNIT): lambda: grad(params, x, y),
        (FL, KFAC_FIT): _discard(lambda: fit("kfac")),
        (FL, KFAC_FIT_EV): _discard(lambda: fit("kfac").log_marginal_likelihood()),
        (FL, DIAG_FIT): _discard(lambda: fit("diagonal")),
        (FL, KFAC_EV): lambda: la_k.log_marginal_likelihood(NEW_PRIOR),
        (FL, DIAG_EV): lambda: la_d.log_marginal_likelihood(NEW_PRIOR),
    }
    optimized: dict[str, float | str] = {}
    for q, la in ((KFAC_OPT, la_k), (DIAG_OPT, la_d)):
        try:
            optimized[q] = float(la.optimize_prior_precision().prior_precision)
            cands[FL, q] = _discard(la.optimize_prior_precision)
        except Exception as err:  # a prior the data do not bound: say so, time nothing
            optimized[q] = f"{type(err).__name__}: {err}"
    quantities = [
        KFAC_FIT,
        KFAC_FIT_EV,
        DIAG_FIT,
        KFAC_EV,
        DIAG_EV,
        KFAC_OPT,
        DIAG_OPT,
        PRED_GLM,
        PRED_PROBIT,
    ]
    p = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
    print(
        f"MLP 784-{h}-tanh-10, softmax cross-entropy, N = {args.n}, P = {p:,}, "
        f"{'float64' if args.float64 else 'float32'}; medians of {args.repeats} interleaved rounds"
    )
    skipped = "--no-torch" if args.no_torch else laplace_missing()
    lt: LaplaceTorch | None = None
    if skipped is None:
        import laplace
        import torch

        tnet = torch.nn.Sequential(torch.nn.Linear(d_in, h), torch.nn.Tanh(), torch.nn.Linear(h, k))
        anchors = torch_anchors(tnet, params, layout, x, y)
        print(f"laplace-torch {getattr(laplace, '__version__', '0.3')}")
        lt = LaplaceTorch(anchors.net, anchors.x, anchors.y)
        cands[TORCH_UNIT] = anchors.gradient
        cands.update(lt.candidates())

    load0 = os.getloadavg()[0]
    calls: dict[Hashable, list[float]] = {}
    med: dict[Hashable, float] = _median(
        {key: _recorded(fn, calls.setdefault(key, [])) for key, fn in cands.items()}, args.repeats
    )
    spread = {
        key: (min(ts[1:]), max(ts[1:])) for key, ts in calls.items() if len(ts) > 1
    }  # after the warm-up
    # once each, after one compiling call: the predictive on --pred-rows rows (its cost is per
    # row: a block of per-row Jacobians times the posterior covariance) and laplace-torch's
    # default diagonal on --jac-n rows (N x 10 x P Jacobians), both scaled linearly
    rows = min(extra.pred_rows, args.n)
    xp = x[:rows]
    la_k.predictive(xp, method="glm")  # compiles the Jacobian kernel (probit uses the same)
    once: dict[Hashable, float] = {
        (FL, PRED_GLM): _once(lambda: la_k.predictive(xp, method="glm")),
        (FL, PRED_PROBIT): _once(lambda: la_k.predictive(xp, method="probit")),
    }
    jac_n = min(extra.jac_n, args.n)
    if lt is not None:
        lt.predictive(2, "probit")
        once[LT_DEFAULT, PRED_GLM] = _once(lambda: lt.predictive(rows, "mc"))
        once[LT_DEFAULT, PRED_PROBIT] = _once(lambda: lt.predictive(rows, "probit"))
        small = _OneBatch(lt.x[:jac_n], lt.y[:jac_n])
        lt.fit("diag", LT_DEFAULT, _OneBatch(lt.x[:2], lt.y[:2]))
        once[LT_DEFAULT, DIAG_FIT] = _once(lambda: lt.fit("diag", LT_DEFAULT, small))
    scale = {
        PRED_GLM: PRED_REPORT_ROWS / rows,
        PRED_PROBIT: PRED_REPORT_ROWS / rows,
        DIAG_FIT: args.n / jac_n,
    }
    for key, seconds in once.items():
        med[key] = seconds * scale[key[1]]  # type: ignore[index]
    load1 = os.getloadavg()[0]
    print(f"load average {load0:.2f} at start, {load1:.2f} at end")

    # the table: each side in gradients of its own framework
    fl_unit, t_unit = med[FL, UNIT], med.get(TORCH_UNIT)
    ratios = {q: med[FL, q] / fl_unit for q in quantities if (FL, q) in med}
    anchor_ratios: dict[str, dict[str, float]] = {}
    if t_unit is not None:
        for q in quantities:
            for col, what in ANCHORS.get(q, []):
                seconds = med.get((col, q), med.get((col, what)))  # timed once / in the rounds
                if seconds is not None:
                    anchor_ratios.setdefault(col, {})[q] = seconds / t_unit

    def cell(col: str, q: str) -> str:
        r = anchor_ratios.get(col, {}).get(q)
        return "–" if r is None else f"{r:.1f}" if r < 1e4 else f"{r:,.0f}"

    w = 46
    head = f"{'gradients of the same framework':{w}s} {FL:>10s}"
    print(f"{head} {'l-t default':>12s} {'l-t BackPACK':>12s} {'target':>7s}  fisherlab's rounds, min-max")
    t_cell = "–" if t_unit is None else f"{t_unit:.4f}"
    print(f"{UNIT + ', seconds':{w}s} {fl_unit:10.4f} {t_cell:>12s} {t_cell:>12s}")
    if t_unit is not None:
        print(f"{'  (one JAX gradient in PyTorch gradients)':{w}s} {fl_unit / t_unit:10.2f}")
    for q in quantities:
        target = TARGETS.get(q)
        mine = f"{ratios[q]:.1f}" if q in ratios else "–"
        lo, hi = spread.get((FL, q), (np.nan, np.nan))
        rounds = "" if np.isnan(lo) else f"  {lo / fl_unit:.1f}-{hi / fl_unit:.1f}"
        print(
            f"{q:{w}s} {mine:>10s} {cell(LT_DEFAULT, q):>12s} {cell(LT_BACKPACK, q):>12s} "
            f"{'' if target is None else f'{target:.1f}':>7s}{rounds}"
        )

    def per_row(key: Hashable) -> str:
        return f"{med[key] / PRED_REPORT_ROWS * 1e3:.0f} ms"

    note = f"fisherlab {per_row((FL, PRED_GLM))} (glm) and {per_row((FL, PRED_PROBIT))} (probit) per row"
    if lt is not None:
        note += (
            f", laplace-torch {per_row((LT_DEFAULT, PRED_GLM))} (glm, mc link, 1,000 draws) and "
            f"{per_row((LT_DEFAULT, PRED_PROBIT))} (glm, probit link)"
        )
    print(f"(predictive: timed once on {rows} rows and scaled to {PRED_REPORT_ROWS}: {note})")
    if lt is not None:
        jac_gb = args.n * k * p * np.dtype(dtype).itemsize / 1e9
        print(
            f"(laplace-torch default diagonal: timed once on {jac_n} rows, "
            f"{once[LT_DEFAULT, DIAG_FIT]:.2f} s, scaled linearly to N = {args.n}: a lower bound, its "
            f"per-row Jacobians would take {jac_gb:.1f} GB at N; issue's figures: default 11,600, "
            "BackPACK 6.9)"
        )
    for q, target in TARGETS.items():
        r = ratios[q]
        mark = "PASS" if r <= target else "FAIL"
        others = [
            f"{col} {anchor_ratios[col][q]:.1f}"
            for col in (LT_DEFAULT, LT_BACKPACK)
            if q in anchor_ratios.get(col, {})
        ]
        note = f" (anchors: {', '.join(others)})" if others else ""
        print(f"target {q} <= {target:.1f}: fisherlab {r:.2f} {mark}{note}")
    for q, value in optimized.items():
        print(f"{q}: prior precision {value if isinstance(value, str) else f'{value:.4g}'}")
    if skipped:
        print(f"laplace-torch anchors skipped ({skipped}); to run them: {LAPLACE_INSTALL}")

    # agreement: the log marginal likelihoods at the same prior precision
    agreement: dict[str, float] = {}
    if lt is not None:
        for lam in (1.0, NEW_PRIOR):
            fd, td = la_d.log_marginal_likelihood(lam), lt.evidence(lt.diag, lam)
            fk, tk = la_k.log_marginal_likelihood(lam), lt.evidence(lt.kron, lam)
            tb = lt.evidence(lt.fit("kron", LT_BACKPACK), lam)
            tj = lt.joint_kron_evidence(lam)
            print(f"log marginal likelihood at prior precision {lam:g}:")
            print(
                f"  diagonal: fisherlab {fd:.6g}, laplace-torch (BackPACK DiagGGNExact) {td:.6g}: "
                f"relative difference {rel_diff(fd, td):.1e}"
            )
            print(
                f"  K-FAC: fisherlab {fk:.6g}; curvlinops' joint weight-and-bias factors in laplace-torch's "
                f"Kron {tj:.6g}: relative difference {rel_diff(fk, tj):.1e} (the same approximation)"
            )
            print(
                f"  K-FAC: laplace-torch KronLaplace {tk:.6g} (default), {tb:.6g} (BackPACK KFLR): bias in "
                f"a factor of its own, another approximation; relative difference to fisherlab "
                f"{rel_diff(fk, tk):.1e}"
            )
            agreement[f"diagonal evidence, prior {lam:g}"] = rel_diff(fd, td)
            agreement[f"kfac evidence vs joint-factor reference, prior {lam:g}"] = rel_diff(fk, tj)
            agreement[f"kfac evidence vs KronLaplace (bias separate), prior {lam:g}"] = rel_diff(fk, tk)
        print(
            f"log-likelihood: fisherlab {la_k.log_likelihood:.6g}, "
            f"laplace-torch {float(lt.kron.log_likelihood):.6g}; "
            f"optimised prior precision (laplace-torch, 100 Adam steps): K-FAC {lt.optimize('kron'):.4g}, "
            f"diagonal {lt.optimize('diag'):.4g}"
        )
    else:
        print(f"log marginal likelihood at prior precision 1: K-FAC {ev_k:.6g}, diagonal {ev_d:.6g}")

    if extra.breakdown:
        breakdown(fl, model, params, y, x, fl_unit, args.repeats)

    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "unit_seconds": fl_unit,
                    "torch_unit_seconds": t_unit,
                    "gradients": ratios,
                    "rounds_min_max": {
                        q: [lo / fl_unit, hi / fl_unit] for (src, q), (lo, hi) in spread.items() if src == FL
                    },
                    "anchors": anchor_ratios,
                    "anchors_skipped": skipped,
                    "scaled": {
                        "predictive_rows": rows,
                        "report_rows": PRED_REPORT_ROWS,
                        "diag_default_rows": jac_n,
                    },
                    "optimized_prior_precision": optimized,
                    "agreement": agreement,
                }
            )
        )
    return 0


def breakdown(fl: Any, model: Any, params: Any, y: Any, x: Any, unit: float, repeats: int) -> None:
    """Where the fits' time goes: the curvature pass (``fl.curvature``) against ``fl.laplace``
    (K-FAC and diagonal), and NumPy's ``eigh`` of each Kronecker factor (the factors are private
    attributes: skipped if they move)."""
    curv = fl.curvature(model, params, y, x, kind="ggn", structure="kfac")
    try:
        mats = [m for f in curv.factors for m in (f.big_a, f.big_g)]
    except AttributeError as err:
        print(f"breakdown skipped (fisherlab's K-FAC internals moved: {err})")
        return
    parts: dict[Hashable, Callable[[], Any]] = {
        "curvature pass: fl.curvature(kind='ggn', structure='kfac')": _discard(
            lambda: fl.curvature(model, params, y, x, kind="ggn", structure="kfac")
        ),
        "fl.laplace(structure='kfac')": _discard(lambda: fl.laplace(model, params, y, x, structure="kfac")),
        "fl.laplace(structure='kfac') + first evidence": _discard(
            lambda: fl.laplace(model, params, y, x, structure="kfac").log_marginal_likelihood()
        ),
        "curvature pass: fl.curvature(kind='ggn', structure='diagonal')": _discard(
            lambda: fl.curvature(model, params, y, x, kind="ggn", structure="diagonal")
        ),
        "fl.laplace(structure='diagonal')": _discard(
            lambda: fl.laplace(model, params, y, x, structure="diagonal")
        ),
    }
    for m in mats:
        parts[f"np.linalg.eigh of a {m.shape[0]} x {m.shape[0]} factor (float64)"] = _discard(
            lambda m=m: np.linalg.eigh(m)
        )
    med = _median(parts, repeats)
    print("breakdown of the fits, in gradients (medians of interleaved rounds):")
    for name, seconds in med.items():
        print(f"  {name}: {seconds / unit:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
