"""Benchmark: curvature of a network with fl.curvature, in units of one gradient.

    python benchmarks/bench_curvature.py               # MLP 784-256-tanh-10, N = 2,048, float32
    python benchmarks/bench_curvature.py --n 512       # quicker
    python benchmarks/bench_curvature.py --float64     # the same in float64

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
- ``KFAC``: building ``structure="kfac"`` (Kronecker factors of both dense layers, with their
  eigendecompositions) with one sampled label per input (target 2 gradients, as the anchors
  measured) and the exact type-2 factors (``kind="fisher"``, all 10 columns of the softmax
  Fisher's square root; BackPACK's KFLR: 9.8).

The targets and the PyTorch anchors (BackPACK, curvlinops) are issue 12's; this script prints
fisherlab's ratios and the naive JAX anchor. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = {
    "operator mv (fisher)": 2.5,
    "diagonal, exact (fisher)": 3.0,
    "diagonal, MC (mc_fisher, 1 label)": 1.5,
    "diagonal, empirical": 3.0,
    "KFAC, 1 sampled label (mc_fisher)": 2.0,
}


def _median(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    import jax

    for fn in fns.values():
        jax.block_until_ready(fn())  # compile
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the ratios as JSON")
    args, _ = parser.parse_known_args(argv)

    import jax
    import jax.numpy as jnp

    import fisherlab as fl

    dtype = jnp.float64 if args.float64 else jnp.float32
    rng = np.random.default_rng(0)
    d_in, h, k = 784, args.hidden, 10
    x = jnp.asarray(rng.normal(size=(args.n, d_in)), dtype=dtype)
    y = rng.integers(0, k, size=args.n).astype(np.int32)
    params = {
        "l1": {"w": jnp.asarray(rng.normal(size=(d_in, h)) / np.sqrt(d_in), dtype), "b": jnp.zeros(h, dtype)},
        "l2": {"w": jnp.asarray(rng.normal(size=(h, k)) / np.sqrt(h), dtype), "b": jnp.zeros(k, dtype)},
    }

    def net(th: Any, xx: Any) -> Any:
        return jnp.tanh(xx @ th["l1"]["w"] + th["l1"]["b"]) @ th["l2"]["w"] + th["l2"]["b"]

    def loss(th: Any, xx: Any, yy: Any) -> Any:
        return -jnp.mean(jax.nn.log_softmax(net(th, xx))[jnp.arange(yy.shape[0]), yy])

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

    cands: dict[str, Callable[[], Any]] = {
        "one gradient (unit)": lambda: grad(params, x, y),
        "operator mv (fisher)": lambda: op.mv(v),
        "diagonal, exact (fisher)": lambda: fl.curvature(
            model, params, y, x, structure="diagonal"
        ).diagonal(),
        "diagonal, MC (mc_fisher, 1 label)": lambda: fl.curvature(
            model, params, y, x, kind="mc_fisher", structure="diagonal"
        ).diagonal(),
        "diagonal, empirical": lambda: fl.curvature(
            model, params, y, x, kind="empirical", structure="diagonal"
        ).diagonal(),
        "naive per-example gradients (JAX vmap)": lambda: per_example(params, x, y),
        "KFAC, 1 sampled label (mc_fisher)": lambda: fl.curvature(
            model, params, y, x, kind="mc_fisher", structure="kfac"
        ).trace(),
        "KFAC, exact type-2 (fisher)": lambda: fl.curvature(model, params, y, x, structure="kfac").trace(),
    }
    load0 = os.getloadavg()[0]
    med = _median(cands, args.repeats)
    load1 = os.getloadavg()[0]
    unit = med["one gradient (unit)"]
    p = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
    print(
        f"MLP 784-{h}-tanh-10, softmax cross-entropy, N = {args.n}, P = {p:,}, "
        f"{'float64' if args.float64 else 'float32'}; medians of {args.repeats} rounds"
    )
    print(f"load average {load0:.2f} at start, {load1:.2f} at end")
    print(f"{'candidate':42s} {'seconds':>10s} {'gradients':>10s} {'target':>8s}")
    for name, t in med.items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("PASS" if t / unit <= target else "FAIL")
        print(f"{name:42s} {t:10.4f} {t / unit:10.1f} {'' if target is None else f'{target:.1f}':>8s} {mark}")
    # the diagonals agree with each other where they should (the empirical one with the naive anchor)
    emp = fl.curvature(model, params, y, x, kind="empirical", structure="diagonal").diagonal()
    naive = per_example(params, x, y)
    rel = max(  # the anchor's per-example loss is one row's -log p: its gradient is -s_i
        float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
        for a, b in zip(jax.tree_util.tree_leaves(emp), jax.tree_util.tree_leaves(naive), strict=True)
    )
    print(f"empirical diagonal vs the naive anchor: max relative difference {rel:.1e}")
    if args.json:
        args.json.write_text(
            json.dumps({"unit_seconds": unit, "gradients": {k: t / unit for k, t in med.items()}, "rel": rel})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
