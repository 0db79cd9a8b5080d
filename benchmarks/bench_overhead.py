"""Benchmark: per-call cost of fisherlab's functions against the jitted JAX code a user would write.

    python benchmarks/bench_overhead.py              # N=100,000 iid Gamma rows
    python benchmarks/bench_overhead.py --n 20000    # quick run

Target (issue 11, "Fast first result"): ``fl.observed_information`` on an iid Gamma model
(N = 100,000 observations, parameters ``concentration`` and ``rate``) within 2x the time of
``jax.jit(jax.hessian(total_loglik))`` on the same inputs. ``fl.score``, ``fl.fisher``
(expected, closed form) and ``fl.loglik`` are printed against their jitted JAX equivalents
too, as ratios measured in the same run. Every fisherlab call validates its inputs (NaN/inf
data, the supports of the parameters and of y), names parameters and returns NumPy; the
JAX references do none of that. Timings are medians over interleaved rounds; never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TARGET = 2.0


class _Compiles(logging.Handler):
    """Counts XLA compilations reported by ``jax.log_compiles``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of "):
            self.names.append(msg.split(" of ", 1)[1].split(" in ", 1)[0])


def _median_times(cands: dict[str, Callable[[], Any]], repeats: int, inner: int) -> dict[str, list[float]]:
    """Interleaved rounds: each candidate timed once per round (``inner`` calls, per-call mean)."""
    times: dict[str, list[float]] = {k: [] for k in cands}
    for fn in cands.values():
        fn()  # warm-up (compilation)
    for _ in range(repeats):
        for name, fn in cands.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - t0) / inner)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--inner", type=int, default=20, help="calls per candidate per round")
    parser.add_argument("--json", type=Path)
    args, _ = parser.parse_known_args(argv)

    import jax
    import jax.numpy as jnp
    import numpyro.distributions as nd
    from jax.scipy.special import polygamma

    import fisherlab as fl

    rng = np.random.default_rng(args.seed)
    y = rng.gamma(2.5, 1.0 / 1.5, size=args.n)
    params = {"concentration": 2.5, "rate": 1.5}
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["concentration"], th["rate"]))

    def row_ll(th: Any, yi: Any) -> Any:
        return nd.Gamma(th["concentration"], th["rate"]).log_prob(yi)

    def total(th: Any, yy: Any) -> Any:
        return row_ll(th, yy).sum()

    def fisher_closed(th: Any) -> Any:
        a, b = th["concentration"], th["rate"]
        return args.n * jnp.array([[polygamma(1, a), -1.0 / b], [-1.0 / b, a / b**2]])

    jhess = jax.jit(jax.hessian(total))
    jscore = jax.jit(jax.vmap(jax.grad(row_ll), in_axes=(None, 0)))
    jll = jax.jit(jax.vmap(row_ll, in_axes=(None, 0)))
    jfisher = jax.jit(fisher_closed)
    y_dev = jax.device_put(y)
    pj = {k: jnp.asarray(v) for k, v in params.items()}

    def host(tree: Any) -> Any:
        return jax.tree_util.tree_map(np.asarray, tree)

    def fisher_call() -> Any:
        return fl.fisher(model, params, n=args.n)

    rows = [
        # (name, fisherlab call, JAX reference with the same NumPy y, JAX reference with y on the device)
        (
            "observed_information",
            lambda: fl.observed_information(model, params, y),
            lambda: host(jhess(pj, y)),
            lambda: host(jhess(pj, y_dev)),
        ),
        (
            "score",
            lambda: fl.score(model, params, y),
            lambda: host(jscore(pj, y)),
            lambda: host(jscore(pj, y_dev)),
        ),
        ("fisher (expected)", fisher_call, lambda: host(jfisher(pj)), None),
        (
            "loglik",
            lambda: fl.loglik(model, params, y),
            lambda: host(jll(pj, y)),
            lambda: host(jll(pj, y_dev)),
        ),
    ]
    cands: dict[str, Callable[[], Any]] = {}
    for name, ours, ref, ref_dev in rows:
        cands[f"fl:{name}"] = ours
        cands[f"jax:{name}"] = ref
        if ref_dev is not None:
            cands[f"jaxdev:{name}"] = ref_dev

    # first calls (compilation) on a fresh model, counted
    counter = _Compiles()
    logging.getLogger("jax").addHandler(counter)
    logging.getLogger("jax").setLevel(logging.DEBUG)
    first: dict[str, float] = {}
    first_compiles: dict[str, int] = {}
    with jax.log_compiles(True):
        for name, ours, _, _ in rows:
            before = len(counter.names)
            t0 = time.perf_counter()
            ours()
            first[name] = time.perf_counter() - t0
            first_compiles[name] = len(counter.names) - before

    load0 = os.getloadavg()[0]
    for fn in cands.values():
        fn()  # the references compile here
    with jax.log_compiles(True):
        before = len(counter.names)
        times = _median_times(cands, args.repeats, args.inner)
        timed_compiles = len(counter.names) - before
        # new parameter values of the same shapes: no recompilation
        before = len(counter.names)
        new = {"concentration": 2.0, "rate": 1.2}
        fl.observed_information(model, new, y)
        fl.score(model, new, y)
        fl.fisher(model, new, n=args.n)
        fl.loglik(model, new, y)
        recompiled = counter.names[before:]
    load1 = os.getloadavg()[0]

    med = {k: float(np.median(v)) for k, v in times.items()}
    best = {k: float(np.min(v)) for k, v in times.items()}
    obs = fl.observed_information(model, params, y).matrix
    h = jhess(pj, y_dev)
    names = fl.param_names(params)
    ref = np.array([[float(h[a][b]) for b in names] for a in names])
    rel_err = float(np.max(np.abs(obs + ref)) / np.max(np.abs(ref)))

    print(
        f"iid Gamma(concentration, rate), N = {args.n:,}, float64; "
        f"medians of {args.repeats} rounds x {args.inner} calls"
    )
    print(
        f"load average {load0:.2f} at start, {load1:.2f} at end"
        + ("  (HIGH: compare ratios only)" if max(load0, load1) > 1.5 else "")
    )
    print(
        f"{'function':22s} {'fisherlab':>11s} {'jax (NumPy y)':>14s} {'ratio':>6s} {'best':>5s} "
        f"{'jax (device y)':>15s} {'ratio':>6s} {'first call':>11s}"
    )
    out_rows = []
    for name, _, _, _ in rows:
        ours, ref_np = med[f"fl:{name}"], med[f"jax:{name}"]
        dev = med.get(f"jaxdev:{name}")
        r1 = ours / ref_np
        r_best = best[f"fl:{name}"] / best[f"jax:{name}"]
        r2 = ours / dev if dev else None
        dev_s = f"{dev * 1e3:12.3f} ms" if dev else f"{'-':>15s}"
        r2_s = f"{r2:6.2f}" if r2 else f"{'-':>6s}"
        print(
            f"{name:22s} {ours * 1e3:8.3f} ms {ref_np * 1e3:11.3f} ms {r1:6.2f} {r_best:5.2f} {dev_s} {r2_s} "
            f"{first[name]:8.2f} s ({first_compiles[name]} compilations)"
        )
        out_rows.append(
            {
                "name": name,
                "seconds": ours,
                "jax_seconds": ref_np,
                "jax_device_seconds": dev,
                "ratio": r1,
                "ratio_best": r_best,
                "ratio_device": r2,
                "first_call_seconds": first[name],
                "first_call_compilations": first_compiles[name],
                "times": times[f"fl:{name}"],
            }
        )
    ratio = out_rows[0]["ratio"]
    status = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"target: fl.observed_information <= {TARGET}x jax.jit(jax.hessian) on the same inputs: "
        f"{ratio:.2f}x {status} (best of the rounds: {out_rows[0]['ratio_best']:.2f}x; against y already on "
        f"the device: {out_rows[0]['ratio_device']:.2f}x)"
    )
    print(f"observed information vs jax.hessian: max relative difference {rel_err:.1e}")
    print(
        f"compilations while timing: {timed_compiles}; after new parameter values: {len(recompiled)}"
        + (f" ({', '.join(recompiled)})" if recompiled else " (no recompilation)")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "overhead",
                    "config": {"n": args.n, "seed": args.seed, "repeats": args.repeats, "inner": args.inner},
                    "machine": {
                        "cpu_count": os.cpu_count(),
                        "load_average": [load0, load1],
                        "python": sys.version,
                    },
                    "target": TARGET,
                    "status": status,
                    "rel_err": rel_err,
                    "recompiled": recompiled,
                    "rows": out_rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
