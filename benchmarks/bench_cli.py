"""``fisherlab fit`` end to end on a large CSV: where the time goes (start-up, reading, fitting).

    python benchmarks/bench_cli.py                  # 1,000,000 rows x 10 covariates, Poisson
    python benchmarks/bench_cli.py --n 100000 --repeats 1
    python benchmarks/bench_cli.py --json out.json

Each round runs the real command, ``python -m fisherlab.cli fit DATA.csv --formula ...
--family poisson --json --timings``, in a fresh process (so JAX compilation is included, as a
user sees it) and reads the per-phase times the command reports in its JSON: ``read`` (CSV to
DataFrame), ``design`` (formulaic's design matrix and the response checks), ``fit`` (start
values and ``fl.fit``), ``check`` (identity diagnostics, skipped by default at this size),
``summary`` (standard errors, intervals, R's standard errors), ``report``. "start-up" is the
wall time not in any phase (interpreter, imports, argument parsing, output). The median round
is reported. A reference row times statsmodels' IRLS ``GLM(...).fit()`` on the same data
already in memory (no reading), when statsmodels is installed.

Timings are never asserted; the script exits 0 unless it crashes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def make_data(path: Path, n: int, d: int, seed: int) -> str:
    """Write a Poisson regression CSV with ``d`` standard-normal covariates; return its formula."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 0.3
    beta = rng.normal(size=d) * 0.2
    y = rng.poisson(np.exp(0.5 + X @ beta))
    names = [f"x{i}" for i in range(1, d + 1)]
    df = pd.DataFrame(X, columns=names)
    df.insert(0, "y", y)
    df.to_csv(path, index=False, float_format="%.8g")
    return "y ~ " + " + ".join(names)


def run_once(path: Path, formula: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "fisherlab.cli", "fit", str(path), "--formula", formula]
    cmd += ["--family", "poisson", "--json", "--timings"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"fisherlab fit failed ({proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    phases = dict(doc["timings"])
    phases["start-up"] = wall - sum(phases.values())
    return {"wall": wall, "phases": phases, "params": doc["params"]}


def statsmodels_reference(path: Path) -> tuple[float, dict[str, float]] | None:
    try:
        import statsmodels.api as sm
    except ImportError:
        return None
    df = pd.read_csv(path)
    y = df["y"].to_numpy(float)
    X = np.column_stack([np.ones(len(df)), df.drop(columns="y").to_numpy(float)])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    return time.perf_counter() - t0, dict(zip(["Intercept", *df.columns[1:]], res.params, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (1,000,000)")
    parser.add_argument("--d", type=int, default=10, help="covariates besides the intercept (10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process rounds (3)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args, _unknown = parser.parse_known_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        t0 = time.perf_counter()
        formula = make_data(path, args.n, args.d, args.seed)
        gen = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        print(f"data: {args.n:,} rows x {args.d + 1} columns, {size_mb:.0f} MB CSV (written in {gen:.1f} s)")
        rounds = [run_once(path, formula) for _ in range(args.repeats)]
        ref = statsmodels_reference(path)

    median = statistics.median(r["wall"] for r in rounds)
    best = min(rounds, key=lambda r: abs(r["wall"] - median))
    phases: dict[str, float] = best["phases"]
    print(f"\nfisherlab fit, median of {args.repeats} fresh processes: {median:.2f} s end to end\n")
    print(f"{'phase':<12} {'seconds':>9} {'share':>7}")
    for name in ("start-up", "read", "design", "fit", "check", "summary", "report"):
        if name in phases:
            print(f"{name:<12} {phases[name]:>9.3f} {100 * phases[name] / best['wall']:>6.1f}%")
    print(f"{'total':<12} {best['wall']:>9.3f} {100.0:>6.1f}%")
    result: dict[str, Any] = {
        "benchmark": "bench_cli",
        "config": {"n": args.n, "d": args.d, "seed": args.seed, "repeats": args.repeats, "csv_mb": size_mb},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "wall_seconds": [r["wall"] for r in rounds],
        "median_wall_seconds": median,
        "phases": phases,
        "shares": {k: v / best["wall"] for k, v in phases.items()},
    }
    if ref is not None:
        seconds, params = ref
        err = max(abs(params[k] - best["params"][k]) / abs(params[k]) for k in params)
        print(
            f"\nreference: statsmodels GLM IRLS on the data in memory: {seconds:.3f} s "
            f"(fisherlab's fit phase: {phases['fit']:.3f} s); max rel. difference of estimates {err:.1e}"
        )
        result["statsmodels_fit_seconds"] = seconds
        result["max_rel_diff_vs_statsmodels"] = err
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
