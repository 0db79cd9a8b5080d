"""Benchmark: fl.fit of a logistic regression to full convergence vs statsmodels' Newton.

    python benchmarks/bench_fit.py                 # N=200,000, d=50
    python benchmarks/bench_fit.py --n 20000       # quick run

Target (issue "Inference"): fisherlab's fit, including the standard errors, in at most
1.5x the time of statsmodels' ``Logit(y, X).fit(method="newton")`` (which also computes
its standard errors), with standard errors equal to 1e-8 relative. The first call,
which includes JAX compilation, is reported separately. Timings are medians over
interleaved repeats in one process; they are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

TARGET = 1.5


def _data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])
    beta = rng.normal(0.0, 0.1, size=d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(float)
    return X, y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args, _ = parser.parse_known_args(argv)

    import statsmodels.api as sm

    import fisherlab as fl

    X, y = _data(args.n, args.d, args.seed)
    init = {"beta": np.zeros(args.d)}

    def fisherlab_fit() -> tuple[np.ndarray, np.ndarray]:
        model = fisherlab_fit.model  # type: ignore[attr-defined]
        res = fl.fit(model, y, X, init=init)
        return np.asarray(res.params["beta"]), np.array(list(res.se().values()))

    def statsmodels_fit() -> tuple[np.ndarray, np.ndarray]:
        res = sm.Logit(y, X).fit(method="newton", disp=False)
        return np.asarray(res.params), np.asarray(res.bse)

    fisherlab_fit.model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    fisherlab_fit()
    first = time.perf_counter() - t0

    times: dict[str, list[float]] = {"fisherlab": [], "statsmodels": []}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("fisherlab", fisherlab_fit), ("statsmodels", statsmodels_fit)):
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["fisherlab"] / med["statsmodels"]
    est_err = float(
        np.max(
            np.abs(results["fisherlab"][0] - results["statsmodels"][0]) / np.abs(results["statsmodels"][0])
        )
    )
    se_err = float(
        np.max(np.abs(results["fisherlab"][1] - results["statsmodels"][1]) / results["statsmodels"][1])
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    print(
        f"fit: logistic regression N={args.n:,}, d={args.d}, float64, "
        f"seed={args.seed}, repeats={args.repeats}"
    )
    print(f"load average {load:.2f} (1 min); ratios are medians of interleaved rounds in this process")
    print(f"{'name':<44}{'median s':>10}{'ratio':>8}{'target':>8}  status")
    print(f"{'statsmodels Logit.fit(method=newton) + bse':<44}{med['statsmodels']:>10.3f}{1.0:>8.2f}{'-':>8}")
    status = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{'fl.fit + se()':<44}{med['fisherlab']:>10.3f}{ratio:>8.2f}{TARGET:>8.1f}  {status}")
    print(
        f"{'fl.fit + se(), first call (compiles)':<44}{first:>10.3f}"
        f"{first / med['statsmodels']:>8.2f}{'-':>8}"
    )
    print(f"max relative difference: estimates {est_err:.1e}, standard errors {se_err:.1e} (target 1e-8)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "n": args.n,
                    "d": args.d,
                    "times": times,
                    "median": med,
                    "ratio": ratio,
                    "first_call_s": first,
                    "estimate_rel_err": est_err,
                    "se_rel_err": se_err,
                    "load": load,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
