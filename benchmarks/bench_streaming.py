"""Data beyond memory: bounded memory and streamed throughput of a Poisson GLM fit.

Two measurements, on generated data (Poisson regression, an intercept and 10 standard-normal
covariates, beta = 0.05·(1, ..., 10)/10, float64), in one run:

1. **Throughput** (``--rows``, default 5,000,000 rows: fits in memory). One Newton pass is the
   value, gradient and Hessian of the log-likelihood at a point. In memory: fisherlab's fit
   objective on arrays already in memory (its compiled value-and-gradient and Hessian
   kernels). Streamed: one pass over a Parquet file of the same rows as ``fl.fit`` makes it
   (the chunk checks, the compiled per-chunk kernel on several chunks at once, compensated
   sums), with the default chunk size: the first full pass reads the file (pyarrow decoding;
   for the formula path the design built per chunk) and writes the chunks to a scratch copy,
   the later passes (all but one of a fit's) read that copy. Ratio = streamed rows/s ÷
   in-memory rows/s of a later pass (target ≥ 0.7), for ``(y, x)`` chunks and for the
   command's formula path; the first pass's rows/s is printed beside it. Then the same fit in
   fresh processes, peak memory and wall time: ``fisherlab fit --no-stream``, ``--stream``,
   and statsmodels' ``GLM(...).fit()`` on the table read by pandas (statsmodels has no
   out-of-core path).
2. **Peak memory** (``--sizes``, multiples of 4.8 GB, the issue's file: 10 covariates and the
   response as float64 uncompressed, 54.5 million rows per unit). For each size a Parquet file
   is written (once; kept under ``--dir``) and ``fisherlab fit FILE --formula 'y ~ x1 + ... + x10'
   --family poisson --json`` runs in a fresh process; its peak resident memory (the child's
   ``ru_maxrss``, imports included) and wall time are printed. Target: under 1.2 GB and not
   growing with the file.

Usage::

    python benchmarks/bench_streaming.py                       # throughput + sizes 1, 2, 4 (≈ 32 GB of disk)
    python benchmarks/bench_streaming.py --sizes 1             # one 4.8 GB file
    python benchmarks/bench_streaming.py --sizes 0.05 --rows 1000000   # quick look
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
from typing import Any

import numpy as np

COVARIATES = 10
UNIT_ROWS = int(4.8e9 / (8 * (COVARIATES + 1)))  # 4.8 GB of float64 columns: y and x1..x10
BETA = 0.05 * np.arange(1, COVARIATES + 1) / COVARIATES
FORMULA = "y ~ " + " + ".join(f"x{j}" for j in range(1, COVARIATES + 1))
WRITE_ROWS = 1_000_000


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """Generated rows written in row groups of ``WRITE_ROWS`` (memory: one group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = ["y"] + [f"x{j}" for j in range(1, COVARIATES + 1)]
    schema = pa.schema([(n, pa.float64()) for n in names])
    tmp = path.with_suffix(".partial")
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        done = 0
        while done < rows:
            m = min(WRITE_ROWS, rows - done)
            x = rng.standard_normal((m, COVARIATES))
            y = rng.poisson(np.exp(0.2 + x @ BETA)).astype(np.float64)
            cols = [pa.array(y)] + [pa.array(x[:, j]) for j in range(COVARIATES)]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))
            done += m
    tmp.rename(path)


def throughput(rows: int, directory: Path) -> dict[str, float]:
    """Rows per second of one Newton pass, in memory and streamed from Parquet (see the module)."""
    import fisherlab as fl
    from fisherlab.data._chunks import StreamedData
    from fisherlab.inference._objective import Objective
    from fisherlab.params._constraints import Reparam

    path = directory / f"throughput_{rows}.parquet"
    if not path.exists():
        write_parquet(path, rows, seed=1)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    y = table.column("y").to_numpy()
    x = np.column_stack(
        [np.ones(rows)] + [table.column(f"x{j}").to_numpy() for j in range(1, COVARIATES + 1)]
    )
    del table
    model = fl.models.glm("poisson")
    params = {"beta": np.zeros(COVARIATES + 1)}
    reparam = Reparam(fl.params.as_params(params), model.constraints)
    u = np.asarray(reparam.to_unconstrained(fl.params.as_params(params))) + 0.01

    memory = Objective(model, reparam, None, fl.data.prepare_data(y, x), params)

    def in_memory_pass(point: np.ndarray) -> None:
        memory.value_and_grad(point)
        memory.hessian(point)

    cols = [f"x{j}" for j in range(1, COVARIATES + 1)]
    intercept = fl.data.chunks(lambda: ((c[1], np.column_stack([np.ones(c[1].shape[0]), c[2]])) for c in src))
    src = fl.data.from_parquet(path, y="y", x=cols)
    src.keep_passes()  # as fl.fit does
    streamed = Objective(model, reparam, None, StreamedData.first_chunk(intercept), params)

    def streamed_pass(point: np.ndarray) -> None:
        streamed.source._pass(point, True)  # type: ignore[attr-defined]

    from fisherlab.formula import first_pass

    plan = first_pass(fl.data.from_parquet(path), FORMULA, family=model.family)
    designs = plan.source()
    designs.keep_passes()
    design = Objective(model, reparam, None, StreamedData.first_chunk(designs), params)

    def formula_pass(point: np.ndarray) -> None:
        design.source._pass(point, True)  # type: ignore[attr-defined]

    out: dict[str, float] = {}
    runs = (("in_memory", in_memory_pass), ("streamed", streamed_pass), ("formula", formula_pass))
    for name, run in runs:
        t0 = time.perf_counter()
        run(u)  # compiles; the streamed passes read the file and write the scratch copy
        out[f"{name}_first"] = rows / (time.perf_counter() - t0)
        times = []
        for k in range(3):
            point = u + 1e-3 * (k + 1)
            t0 = time.perf_counter()
            run(point)
            times.append(time.perf_counter() - t0)
        out[name] = rows / min(times)
    out["ratio"] = out["streamed"] / out["in_memory"]
    out["formula_ratio"] = out["formula"] / out["in_memory"]
    out["chunk_rows"] = float(src.chunk_rows)
    t0 = time.perf_counter()
    fl.fit(model, intercept, init=params)
    out["fisherlab_streamed_fit_s"] = time.perf_counter() - t0
    return out


def _measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` in a fresh process: its exit status, output, wall time and peak RSS (bytes)."""
    probe = (
        "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
        f"r = subprocess.run({cmd!r}, capture_output=True, text=True); "
        "print(json.dumps({'rc': r.returncode, 'out': r.stdout, 'err': r.stderr[-2000:], "
        "'wall': time.perf_counter() - t, "
        "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {result['err']}")
    return result


def _cli(path: Path, *options: str) -> list[str]:
    exe = Path(sys.executable).with_name("fisherlab")
    return [
        str(exe),
        "fit",
        str(path),
        "--formula",
        FORMULA,
        "--family",
        "poisson",
        "--json",
        "--no-check",
        *options,
    ]


STATSMODELS = """
import sys, numpy as np, pandas as pd, statsmodels.api as sm
frame = pd.read_parquet(sys.argv[1])
X = sm.add_constant(frame[[f"x{j}" for j in range(1, 11)]].to_numpy())
fit = sm.GLM(frame["y"].to_numpy(), X, family=sm.families.Poisson()).fit()
print(fit.params[1])
"""


def side_by_side(path: Path, rows: int) -> dict[str, dict[str, float]]:
    """Peak RSS and wall time of the same fit: fisherlab in memory, streamed, statsmodels in memory."""
    out = {}
    for name, cmd in (
        ("fisherlab in memory", _cli(path, "--no-stream")),
        ("fisherlab streamed", _cli(path, "--stream")),
        ("statsmodels GLM", [sys.executable, "-c", STATSMODELS, str(path)]),
    ):
        try:
            r = _measured(cmd)
        except SystemExit as exc:  # statsmodels not installed
            print(f"  {name}: skipped ({str(exc)[:80]})")
            continue
        out[name] = {"rss": r["rss"], "wall": r["wall"]}
        print(f"  {name:22s} peak RSS {r['rss'] / 2**30:5.2f} GiB, {r['wall']:6.1f} s  ({rows:,} rows)")
    return out


def peak_memory(path: Path, rows: int) -> dict[str, float]:
    """Peak RSS (bytes) and wall time of the streamed ``fisherlab fit`` on ``path``, fresh process."""
    result = _measured(_cli(path))
    fit = json.loads(result["out"])
    return {"rows": rows, "rss": result["rss"], "wall": result["wall"], "beta1": fit["params"]["x1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the throughput comparison")
    parser.add_argument("--sizes", default="1,2,4", help="file sizes in units of 4.8 GB (comma-separated)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "fisherlab_bench_streaming"))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {}
    if not args.skip_throughput:
        from fisherlab._precision import float64  # fisherlab's own float64 scope, as its functions run

        t = float64(throughput)(args.rows, directory)
        figures["throughput"] = t
        print(f"Newton pass, Poisson GLM, {args.rows:,} rows, P = {COVARIATES + 1}:")
        print(f"  in memory            {t['in_memory'] / 1e6:8.2f} M rows/s")
        chunk = f"chunks of {int(t['chunk_rows']):,} rows"
        print(
            f"  streamed, (y, x)     {t['streamed'] / 1e6:8.2f} M rows/s  ({chunk}; first pass, "
            f"reading the file: {t['streamed_first'] / 1e6:.2f})"
        )
        print(
            f"  streamed, formula    {t['formula'] / 1e6:8.2f} M rows/s  (the command's path; first "
            f"pass, building the design: {t['formula_first'] / 1e6:.2f})"
        )
        for key, label in (("ratio", "(y, x)"), ("formula_ratio", "formula")):
            verdict = "PASS" if t[key] >= 0.7 else "MISS"
            print(f"  ratio {label:14s} {t[key]:8.2f}   (target >= 0.7: {verdict})")
        print(f"  full streamed fl.fit: {t['fisherlab_streamed_fit_s']:.1f} s")
        print("same fit, fresh processes (statsmodels has no out-of-core path):")
        figures["side_by_side"] = side_by_side(directory / f"throughput_{args.rows}.parquet", args.rows)
    rows_out = []
    for size in [float(s) for s in args.sizes.split(",") if s]:
        rows = int(size * UNIT_ROWS)
        path = directory / f"poisson_{rows}.parquet"
        if not path.exists():
            t0 = time.perf_counter()
            write_parquet(path, rows)
            size_gb = path.stat().st_size / 1e9
            print(f"wrote {path} ({size_gb:.2f} GB on disk) in {time.perf_counter() - t0:.0f} s")
        r = peak_memory(path, rows)
        r["size_gb"] = size * 4.8
        rows_out.append(r)
        verdict = "PASS" if r["rss"] < 1.2e9 else "MISS"
        print(
            f"fisherlab fit, {size * 4.8:5.1f} GB uncompressed ({rows:,} rows): peak RSS "
            f"{r['rss'] / 1e9:.2f} GB, {r['wall']:.0f} s  ({verdict}: < 1.2 GB)"
        )
    figures["peak_memory"] = rows_out
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
