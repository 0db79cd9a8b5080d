r"""Benchmark: size and power of the information-matrix test, asymptotic vs parametric bootstrap.

White's (1982) information-matrix test, as ``fl.check`` computes it (``variant="white"``), at
the nominal 5% level, with two p-values for the same statistic:

- **asymptotic**: :math:`\Pr(\chi^2_{df} > T)` (``d.im_test_pvalue_asymptotic``);
- **bootstrap**: Horowitz's (1994) parametric bootstrap, B data sets simulated from the fitted
  model, each refitted, :math:`p = (1 + \#\{T^*_b \ge T\})/(B + 1)` (``pvalue="bootstrap"``).

A test rejects when :math:`p \le 0.05`. Each replication draws a fresh data set, fits the model
with ``fl.fit`` (from the true parameters) and runs ``fl.check`` at the estimate. Cases:

- size, correctly specified: (a) Gaussian nonlinear regression
  :math:`y = a e^{b x} + \varepsilon`, :math:`\varepsilon \sim N(0, \sigma^2)`,
  :math:`x \sim U(0, 2)`, :math:`(a, b, \sigma) = (1.5, 0.7, 0.5)`, at N = 60, 200, 1000;
  (b) Poisson regression :math:`\log\mu = \beta_0 + \beta_1 x`, :math:`x \sim N(0, 1)`,
  :math:`\beta = (0.5, 0.5)`, at N = 100, 500;
- power, misspecified: (c) overdispersion: negative-binomial counts (same mean as (b),
  variance :math:`\mu + \mu^2/2`) fitted by the Poisson regression, N = 200;
  (d) heteroskedasticity: :math:`y = 1 + 2x + e^{0.5 x}\varepsilon`, :math:`x \sim N(0, 1)`,
  fitted by the homoskedastic :math:`N(a + b x, \sigma^2)`, N = 200.

Rejection rates carry their binomial standard error :math:`\sqrt{r(1-r)/R}` over R
replications (``--reps``; 400 gives about ±1.1% at a 5% rate).

**Oracle and control variate (size cases).** With R = 400 a test of exact size 5% shows a
rate below 3% or above 7.5% about one time in 30 per case, and a fixed set of seeds keeps
whatever luck it had in every run. So each size replication also computes the *oracle*
bootstrap p-value: the same bootstrap drawn from the true parameters :math:`\theta_0`
instead of :math:`\hat\theta` (same x, same indicators, same refits, and the same random
keys as the bootstrap from :math:`\hat\theta`: common random numbers). Given x, the
oracle's :math:`T^*_b` and the observed :math:`T` are i.i.d., so its
:math:`p = (1 + \#\{T^*_b \ge T\})/(B + 1)` is exactly uniform on the grid and rejects with
probability exactly 5% when :math:`(B + 1) \cdot 0.05` is an integer (B = 199, 99). The oracle's
observed rate therefore measures the luck of the seeds, and

.. math:: \hat r_{cv} = 0.05 + \frac1R \sum_r \big(1[p_r \le 0.05] - 1[p^{oracle}_r \le 0.05]\big)

is an unbiased estimate of the bootstrap's size (a control variate with known mean) whose
standard error, from the paired differences, is what the estimation of :math:`\theta` adds.
It is a fraction of the binomial one: with common random numbers the two p-values reject in
the same replications but for the few (``disc``) where exactly one does; with none,
:math:`|\text{size} - 5\%| \le 3/R` at 95% confidence (the rule of three).
Target (issue 11): bootstrap size within 3–7.5% for N >= 50, judged on :math:`\hat r_{cv}`.
This is a benchmark, not a test: it never fails; it prints the table and PASS/FAIL against the
target and exits 0 unless it crashes.

    python benchmarks/bench_imtest.py                  # 400 replications per case, B = 199
    python benchmarks/bench_imtest.py --quick          # 100 replications, B = 99
    python benchmarks/bench_imtest.py --workers 8      # replications in 8 spawned processes
    python benchmarks/bench_imtest.py --select "a:"    # only cases whose name contains "a:"
    python benchmarks/bench_imtest.py --select "a:" --n 60 --seed-offset 5000   # other seeds
    python benchmarks/bench_imtest.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

LEVEL = 0.05
SIZE_TARGET = (0.03, 0.075)
CASES: list[tuple[str, str, int]] = [
    # (case, kind, N)
    ("a: Gaussian nonlinear", "size", 60),
    ("a: Gaussian nonlinear", "size", 200),
    ("a: Gaussian nonlinear", "size", 1000),
    ("b: Poisson regression", "size", 100),
    ("b: Poisson regression", "size", 500),
    ("c: overdispersion (NB fit by Poisson)", "power", 200),
    ("d: heteroskedasticity (Gaussian linear)", "power", 200),
]


@dataclass
class Cell:
    """One line of the table: rejection rates of the p-values (oracle and ``size_cv``: NaN for power)."""

    case: str
    kind: str
    n: int
    reps: int
    asymptotic: float
    asymptotic_se: float
    bootstrap: float
    bootstrap_se: float
    oracle: float
    oracle_se: float
    size_cv: float
    size_cv_se: float
    discordant: int
    failed_refits: int
    seconds_per_check: float


def _problem(
    case: str, n: int, rng: np.random.Generator
) -> tuple[Any, dict[str, Any], np.ndarray, np.ndarray]:
    """(model, true parameters, y, x) for one replication of ``case``."""
    import jax.numpy as jnp

    import fisherlab as fl

    if case.startswith("a"):
        x = rng.uniform(0.0, 2.0, n)
        y = 1.5 * np.exp(0.7 * x) + rng.normal(0.0, 0.5, n)
        model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] * jnp.exp(th["b"] * x), th["sigma"]))
        return model, {"a": 1.5, "b": 0.7, "sigma": 0.5}, y, x
    if case.startswith(("b", "c")):
        x = rng.normal(0.0, 1.0, n)
        mu = np.exp(0.5 + 0.5 * x)
        y = rng.poisson(mu) if case.startswith("b") else rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
        model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(th["b0"] + th["b1"] * x)))
        return model, {"b0": 0.5, "b1": 0.5}, y.astype(float), x
    x = rng.normal(0.0, 1.0, n)
    y = 1.0 + 2.0 * x + np.exp(0.5 * x) * rng.normal(0.0, 1.0, n)
    model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]))
    return model, {"a": 1.0, "b": 2.0, "sigma": 1.3}, y, x


_MODELS: dict[str, Any] = {}


def _oracle_pvalue(
    model: Any, truth: dict[str, Any], d: Any, y: Any, x: Any, num_bootstrap: int, seed: int
) -> float:
    r"""The bootstrap p-value of ``d``'s statistic with the data sets drawn from the true parameters.

    The same kernel as ``fl.check``'s bootstrap (same x, indicators, refits and random keys), only
    the parameters it draws from and refits from are :math:`\theta_0` instead of :math:`\hat\theta`.
    """
    import jax

    from fisherlab.data._prepare import prepare_data
    from fisherlab.inference._bootstrap import bootstrap_im_test, monte_carlo_pvalue
    from fisherlab.params._pytree import as_params

    rows, cols = np.triu_indices(len(d.names))
    index = {(d.names[a], d.names[b]): k for k, (a, b) in enumerate(zip(rows, cols, strict=True))}
    theta0 = jax.tree_util.tree_map(lambda t: np.asarray(t, dtype=np.float64), as_params(truth))
    boot = bootstrap_im_test(
        model,
        theta0,
        prepare_data(y, x),
        variant_white=True,
        kept=tuple(index[pair] for pair in d.im_test_indicators),
        refit=d.at_mle,
        num_bootstrap=num_bootstrap,
        seed=seed,
    )
    return monte_carlo_pvalue(d.im_test_statistic, boot.statistics)[0]


def _replications(
    case: str, n: int, seeds: list[int], num_bootstrap: int, oracle: bool
) -> list[tuple[float, float, float, int, float]]:
    """(asymptotic p, bootstrap p, oracle p (NaN without), failed refits, seconds of the check) per seed."""
    import fisherlab as fl

    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        model, truth, y, x = _problem(case, n, rng)
        model = _MODELS.setdefault(case, model)  # one model per case: its compiled kernels are reused
        try:
            res = fl.fit(model, y, x, init=truth)
        except fl.FisherlabError:
            out.append((math.nan, math.nan, math.nan, 0, 0.0))
            continue
        t0 = time.perf_counter()
        d = fl.check(model, res.params, y, x, pvalue="bootstrap", num_bootstrap=num_bootstrap, seed=seed)
        seconds = time.perf_counter() - t0
        failed = 0 if d.im_test_bootstrap is None else int(np.sum(~np.isfinite(d.im_test_bootstrap)))
        p_oracle = _oracle_pvalue(model, truth, d, y, x, num_bootstrap, seed) if oracle else math.nan
        out.append((d.im_test_pvalue_asymptotic, d.im_test_pvalue, p_oracle, failed, seconds))
    return out


def _rate(p: np.ndarray) -> tuple[float, float]:
    ok = p[np.isfinite(p)]
    if ok.size == 0:
        return math.nan, math.nan
    r = float(np.mean(ok <= LEVEL))
    return r, math.sqrt(r * (1.0 - r) / ok.size)


def _control_variate(p: np.ndarray, p_oracle: np.ndarray) -> tuple[float, float, int]:
    r""":math:`0.05 + \overline{1[p \le 0.05] - 1[p^{oracle} \le 0.05]}`, its paired standard error
    and the number of discordant replications (one p-value rejects, the other does not)."""
    ok = np.isfinite(p) & np.isfinite(p_oracle)
    diff = (p[ok] <= LEVEL).astype(float) - (p_oracle[ok] <= LEVEL)
    if diff.size < 2:
        return math.nan, math.nan, 0
    se = float(diff.std(ddof=1) / math.sqrt(diff.size))
    return LEVEL + float(diff.mean()), se, int(np.sum(diff != 0))


def run_case(
    case: str, kind: str, n: int, reps: int, num_bootstrap: int, workers: int, pool: Any, offset: int = 0
) -> Cell:
    seeds = [10_000 * n + offset + k for k in range(reps)]
    oracle = kind == "size"
    if pool is None:
        rows = _replications(case, n, seeds, num_bootstrap, oracle)
    else:
        parts = [seeds[w::workers] for w in range(workers)]
        rows = [
            r
            for chunk in pool.map(
                _replications,
                [case] * workers,
                [n] * workers,
                parts,
                [num_bootstrap] * workers,
                [oracle] * workers,
            )
            for r in chunk
        ]
    arr = np.array([r[:3] for r in rows])
    a, a_se = _rate(arr[:, 0])
    b, b_se = _rate(arr[:, 1])
    o, o_se = _rate(arr[:, 2]) if oracle else (math.nan, math.nan)
    cv, cv_se, discordant = _control_variate(arr[:, 1], arr[:, 2]) if oracle else (math.nan, math.nan, 0)
    return Cell(
        case,
        kind,
        n,
        int(np.sum(np.isfinite(arr[:, 1]))),
        a,
        a_se,
        b,
        b_se,
        o,
        o_se,
        cv,
        cv_se,
        discordant,
        int(sum(r[3] for r in rows)),
        float(np.median([r[4] for r in rows])),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=None, help="replications per case (400; --quick: 100)")
    parser.add_argument(
        "--bootstrap", type=int, default=None, help="B, bootstrap data sets (199; --quick: 99)"
    )
    parser.add_argument("--quick", action="store_true", help="100 replications, B = 99")
    parser.add_argument(
        "--workers", type=int, default=1, help="spawned worker processes (1: in this process)"
    )
    parser.add_argument("--select", default="", help="only cases whose name contains this")
    parser.add_argument("--n", type=int, nargs="*", default=None, help="only cases with these N")
    parser.add_argument(
        "--seed-offset", type=int, default=0, help="added to every replication's seed (independent sets)"
    )
    parser.add_argument("--json", help="write the table to this file")
    args, _ = parser.parse_known_args(argv)  # run_all.py may pass options meant for other benchmarks
    reps = args.reps or (100 if args.quick else 400)
    num_bootstrap = args.bootstrap or (99 if args.quick else 199)
    print(
        f"information-matrix test (White), nominal {LEVEL:.0%}: {reps} replications per case, "
        f"B = {num_bootstrap}, seed offset {args.seed_offset}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.workers} worker(s)"
    )
    header = (
        f"{'case':42s} {'kind':5s} {'N':>5s} {'reps':>5s}  {'asymptotic':>15s}  {'bootstrap':>15s}  "
        f"{'oracle':>15s}  {'size (cv)':>15s} {'disc':>4s}  {'fail':>4s} {'s/check':>7s}"
    )
    print(header)
    cells: list[Cell] = []
    pool = ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) if args.workers > 1 else None
    try:
        for case, kind, n in CASES:
            if (args.select and args.select not in case) or (args.n and n not in args.n):
                continue
            c = run_case(case, kind, n, reps, num_bootstrap, args.workers, pool, args.seed_offset)
            cells.append(c)
            verdict = ""
            if kind == "size":
                verdict = "PASS" if SIZE_TARGET[0] <= c.size_cv <= SIZE_TARGET[1] else "FAIL"

            def pct(r: float, se: float) -> str:
                return f"{'':15s}" if math.isnan(r) else f"{r:6.1%} ± {se:5.1%}"

            print(
                f"{case:42s} {kind:5s} {n:5d} {c.reps:5d}  {pct(c.asymptotic, c.asymptotic_se)}  "
                f"{pct(c.bootstrap, c.bootstrap_se)}  {pct(c.oracle, c.oracle_se)}  "
                f"{pct(c.size_cv, c.size_cv_se)} {c.discordant if kind == 'size' else '':>4}  "
                f"{c.failed_refits:4d} {c.seconds_per_check:7.2f}  {verdict}",
                flush=True,
            )
    finally:
        if pool is not None:
            pool.shutdown()
    print(
        "oracle: the bootstrap from the true parameters, exact size 5% (its rate is the seeds' luck); "
        "size (cv) = bootstrap - oracle + 5%, paired se; disc: replications where exactly one of "
        "the two rejects (with none, |size - 5%| <= 3/reps at 95%, the rule of three)"
    )
    print(
        f"size target for the bootstrap: {SIZE_TARGET[0]:.0%}–{SIZE_TARGET[1]:.1%} "
        "(PASS/FAIL above, on size (cv)); never asserts"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "reps": reps,
                    "bootstrap": num_bootstrap,
                    "seed_offset": args.seed_offset,
                    "cells": [asdict(c) for c in cells],
                },
                fh,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
