"""``fisherlab fit`` end to end on a large CSV: where the time goes (start-up, reading, fitting).

    python benchmarks/bench_cli.py                  # 1,000,000 rows x 10 covariates, Poisson
    python benchmarks/bench_cli.py --n 100000 --repeats 1
    python benchmarks/bench_cli.py --json out.json
    python benchmarks/bench_cli.py --n 3500000 --repeats 1 --report   # + the same fit with --report

Each round runs the real command, ``python -m fisherlab.cli fit DATA.csv --formula ...
--family poisson --json --timings``, in a fresh process (so JAX compilation is included, as a
user sees it) and reads the per-phase times the command reports in its JSON: ``read`` (CSV to
DataFrame), ``design`` (formulaic's design matrix and the response checks), ``fit`` (start
values and ``fl.fit``), ``check`` (identity diagnostics, skipped by default at this size),
``summary`` (standard errors, intervals, R's standard errors), ``report``. "start-up" is the
wall time not in any phase (interpreter, imports, argument parsing, output). The median round
is reported. A reference row times statsmodels' IRLS ``GLM(...).fit()`` on the same data
already in memory (no reading), when statsmodels is installed.

``--report`` also runs, in each round, the same command with ``--report FILE.html --force``
(an HTML report into a temporary directory) and prints both runs side by side. Every run
prints its peak resident memory: the child process's own maximum RSS from ``os.wait4``
(exact, not sampled; not measured where ``os.wait4`` is missing, e.g. Windows).

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


def _run(cmd: list[str]) -> tuple[int, str, str, float | None]:
    """Run ``cmd``; return (exit status, stdout, stderr, the child's peak RSS in MB or None)."""
    if not hasattr(os, "wait4"):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr, None
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the sum over children
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in kilobytes on Linux, bytes on macOS
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
        return code, out.read(), err.read(), peak


def run_once(path: Path, formula: str, report: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "fisherlab.cli", "fit", str(path), "--formula", formula]
    cmd += ["--family", "poisson", "--json", "--timings"]
    if report is not None:
        cmd += ["--report", str(report), "--force"]
    t0 = time.perf_counter()
    code, stdout, stderr, peak = _run(cmd)
    wall = time.perf_counter() - t0
    if code != 0:  # a negative code is a signal: -9 is often the out-of-memory killer
        memory = f", peak RSS {peak:,.0f} MB" if peak is not None else ""
        raise RuntimeError(f"fisherlab fit failed ({code}{memory}): {stderr.strip()}")
    doc = json.loads(stdout)
    phases = dict(doc["timings"])
    phases["start-up"] = wall - sum(phases.values())
    return {"wall": wall, "phases": phases, "params": doc["params"], "peak_rss_mb": peak}


def _median_round(rounds: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    median = statistics.median(r["wall"] for r in rounds)
    return median, min(rounds, key=lambda r: abs(r["wall"] - median))


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
    parser.add_argument(
        "--report", action="store_true", help="also time each round with --report (an HTML report)"
    )
    args, _unknown = parser.parse_known_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        t0 = time.perf_counter()
        formula = make_data(path, args.n, args.d, args.seed)
        gen = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        print(f"data: {args.n:,} rows x {args.d + 1} columns, {size_mb:.0f} MB CSV (written in {gen:.1f} s)")
        rounds, with_report = [], []
        for _ in range(args.repeats):  # interleaved, so a burst of load hits both alike
            rounds.append(run_once(path, formula))
            if args.report:
                with_report.append(run_once(path, formula, Path(tmp) / "report.html"))
        ref = statsmodels_reference(path)

    median, best = _median_round(rounds)
    runs = {"fit": (median, best)}
    if with_report:
        runs["fit --report"] = _median_round(with_report)
    phases: dict[str, float] = best["phases"]
    for label, (wall, chosen) in runs.items():
        peak = chosen["peak_rss_mb"]
        memory = f", peak RSS {peak:,.0f} MB" if peak is not None else ""
        print(
            f"\nfisherlab {label}, median of {args.repeats} fresh processes: {wall:.2f} s end to end{memory}"
        )
    print(f"\n{'phase':<12}" + "".join(f" {label:>14} {'share':>6}" for label in runs))
    names = ("start-up", "read", "design", "fit", "check", "profile", "summary", "report")
    for name in names:
        if any(name in chosen["phases"] for _, chosen in runs.values()):
            cells = []
            for _, chosen in runs.values():
                v = chosen["phases"].get(name)
                cells.append(
                    f" {v:>13.3f}s {100 * v / chosen['wall']:>5.1f}%"
                    if v is not None
                    else f" {'—':>14} {'':>6}"
                )
            print(f"{name:<12}" + "".join(cells))
    print(
        f"{'total':<12}" + "".join(f" {chosen['wall']:>13.3f}s {100.0:>5.1f}%" for _, chosen in runs.values())
    )
    peaks = [chosen["peak_rss_mb"] for _, chosen in runs.values()]
    if all(p is not None for p in peaks):
        print(f"{'peak RSS':<12}" + "".join(f" {p:>12,.0f}MB {'':>6}" for p in peaks))
    result: dict[str, Any] = {
        "benchmark": "bench_cli",
        "config": {
            "n": args.n,
            "d": args.d,
            "seed": args.seed,
            "repeats": args.repeats,
            "csv_mb": size_mb,
            "report": args.report,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "wall_seconds": [r["wall"] for r in rounds],
        "median_wall_seconds": median,
        "phases": phases,
        "shares": {k: v / best["wall"] for k, v in phases.items()},
        "peak_rss_mb": [r["peak_rss_mb"] for r in rounds],
    }
    if with_report:
        wall_r, best_r = runs["fit --report"]
        result["report"] = {
            "wall_seconds": [r["wall"] for r in with_report],
            "median_wall_seconds": wall_r,
            "phases": best_r["phases"],
            "peak_rss_mb": [r["peak_rss_mb"] for r in with_report],
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
