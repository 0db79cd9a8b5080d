"""Benchmark: a negative-binomial regression from a fresh process, fisherlab vs statsmodels.

    python benchmarks/bench_glm_startup.py              # N=20,000 rows, 3 covariates
    python benchmarks/bench_glm_startup.py --n 5000     # quick run

Target (issue 11, "Fast first result"): fitting an NB2 regression (log link,
``y ~ x1 + x2 + x3`` plus the intercept and alpha, Var = mu + alpha mu^2), printing its
summary and running ``fl.check`` takes at most 3x the wall time of statsmodels'
``sm.NegativeBinomial(y, X).fit()`` (the discrete NB2 model, alpha estimated by maximum
likelihood: the same model) plus ``summary()``, both timed from a fresh process, imports
included. fisherlab is timed twice per round: cold (an empty JAX persistent compilation
cache: ``FISHERLAB_CACHE_DIR`` set to a new temporary folder) and warm (a second process
with the same folder). Both the Python API (``fl.glm``) and the command line
(``fisherlab fit DATA.csv --formula ... --family negative_binomial``, which prints the
summary and runs the identity check) are timed. Timings are medians over rounds; never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 3.0

STATSMODELS = """
import sys
import pandas as pd
import statsmodels.api as sm
df = pd.read_csv(sys.argv[1])
X = sm.add_constant(df[["x1", "x2", "x3"]])
res = sm.NegativeBinomial(df["y"], X).fit(disp=0)
text = str(res.summary())
print(*res.params.to_numpy())
"""

FISHERLAB = """
import sys
import pandas as pd
import fisherlab as fl
df = pd.read_csv(sys.argv[1])
res = fl.glm("y ~ x1 + x2 + x3", df, family="negative_binomial")
text = str(res.summary())
check = fl.check(res.model, res.params, res.data.y, res.data.x)
print(*[res.params["beta"][i] for i in range(4)], res.params["alpha"])
"""


def _write_data(path: Path, n: int, seed: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    mu = np.exp(0.5 + X @ np.array([0.3, -0.2, 0.1]))
    alpha = 0.5
    y = rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mu))
    pd.DataFrame({"y": y, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2]}).to_csv(path, index=False)


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (each: statsmodels, cold, warm)")
    parser.add_argument("--skip-cli", action="store_true", help="time the Python API only")
    parser.add_argument("--json", type=Path)
    args, _ = parser.parse_known_args(argv)

    py = sys.executable
    times: dict[str, list[float]] = {}
    outputs: dict[str, str] = {}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "nb.csv"
        _write_data(data, args.n, args.seed)
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("FISHERLAB_NO_CACHE", "JAX_COMPILATION_CACHE_DIR")
        }
        cli = [py, "-m", "fisherlab.cli", "fit", str(data), "--formula", "y ~ x1 + x2 + x3"]
        cli += ["--family", "negative_binomial"]
        for r in range(args.repeats):
            wall, outputs["statsmodels"] = _run([py, "-c", STATSMODELS, str(data)], base_env)
            times.setdefault("statsmodels", []).append(wall)
            faces = [("api", [py, "-c", FISHERLAB, str(data)])]
            if not args.skip_cli:
                faces.append(("cli", cli))
            for face, cmd in faces:
                env = dict(base_env, FISHERLAB_CACHE_DIR=str(Path(tmp) / f"cache-{face}-{r}"))
                for state in ("cold", "warm"):
                    wall, out = _run(cmd, env)
                    times.setdefault(f"{face} {state}", []).append(wall)
                    outputs[f"{face} {state}"] = out
    load1 = os.getloadavg()[0]

    med = {k: float(np.median(v)) for k, v in times.items()}
    sm_time = med["statsmodels"]
    est_sm = np.array(outputs["statsmodels"].split()[:5], dtype=float)
    est_fl = np.array(outputs["api warm"].split()[:5], dtype=float)
    rel = float(np.max(np.abs(est_fl - est_sm) / np.abs(est_sm)))
    slow_alarm = any("slow_operation_alarm" in o or "Constant folding" in o for o in outputs.values())

    print(
        f"NB2 regression, N = {args.n:,}, y ~ x1 + x2 + x3 (+ intercept, alpha); fresh process each, "
        f"imports included; medians of {args.repeats} rounds"
    )
    print(
        f"load average {load0:.2f} at start, {load1:.2f} at end"
        + ("  (HIGH)" if max(load0, load1) > 1.5 else "")
    )
    print(f"{'candidate':44s} {'wall s':>8s} {'/ statsmodels':>14s}")
    print(f"{'statsmodels NegativeBinomial.fit + summary':44s} {sm_time:8.2f} {1.0:14.2f}")
    labels = {
        "api": "fl.glm + summary + fl.check",
        "cli": "fisherlab fit (summary + check)",
    }
    rows = []
    for key in times:
        if key == "statsmodels":
            continue
        face, state = key.split()
        ratio = med[key] / sm_time
        status = "PASS" if ratio <= TARGET else "FAIL"
        print(f"{labels[face] + ', ' + state + ' cache':44s} {med[key]:8.2f} {ratio:14.2f}  {status}")
        rows.append({"name": key, "seconds": med[key], "ratio": ratio, "status": status, "times": times[key]})
    print(f"target: <= {TARGET}x statsmodels' wall time, imports included")
    print(f"estimates vs statsmodels: max relative difference {rel:.1e}")
    print("XLA slow-operation alarm on stderr: " + ("YES" if slow_alarm else "no"))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "glm_startup",
                    "config": {"n": args.n, "seed": args.seed, "repeats": args.repeats},
                    "machine": {
                        "cpu_count": os.cpu_count(),
                        "load_average": [load0, load1],
                        "python": sys.version,
                    },
                    "statsmodels_seconds": sm_time,
                    "statsmodels_times": times["statsmodels"],
                    "target": TARGET,
                    "max_rel_diff_vs_statsmodels": rel,
                    "slow_operation_alarm": slow_alarm,
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
