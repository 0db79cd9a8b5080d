"""Streamed Newton passes on a Dask cluster: one worker against two (issue "data beyond memory").

A Poisson regression with ``--p`` covariates (10) on ``--n`` generated rows (4,000,000) held as a
dask DataFrame of ``--partitions`` partitions (16), persisted on a ``distributed.LocalCluster``
of 1, then 2, worker processes with one thread each. ``fl.fit(model, fl.data.from_dask(...))``
reads the data once per Newton iterate: each pass (value, gradient and Hessian of the
log-likelihood) runs every partition's check and terms on the worker that holds it and adds the
partial sums in a tree on the cluster, so only a 10 x 10 matrix comes back. The script times
every pass of a warm fit (kernels compiled on the workers by a first fit), and reports:

- the median pass time per configuration, and the speed-up of 2 workers over 1 (the issue's
  target: >= 1.7);
- the compute of a pass: the work of every partition (``y``/``x`` out of the partition, the
  checks, the compiled kernel) timed one partition after another on the 1-worker cluster's
  worker, while nothing else runs there; the *overhead per pass* is the pass time minus that
  compute divided by the workers (scheduling, shipping the pass's function, the tree of
  additions, the result; for 2 workers also whatever slows two processes running at once);
- the same pass with no cluster (the partitions computed here one after another) and the
  in-memory ``fl.fit(model, y, x)``, for reference; every fit's estimates must agree to 1e-10.

    python benchmarks/bench_dask.py [--n 4000000] [--partitions 16] [--repeats 2]
    python benchmarks/bench_dask.py --n 400000          # quick

Allocator (``--malloc``): a chunk's kernel allocates per-row intermediates of tens of MB per
partition and frees them, every pass. glibc maps blocks above its mmap threshold (at most 32 MiB
when adaptive) with ``mmap`` and unmaps them on free, so each pass page-faults them in afresh
(measured here: a third of a pass's compute, and system time that two workers on this VM do not
overlap well). ``keep`` (the default) runs this process and the workers with
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` at 1 GiB, so freed blocks are reused;
``glibc`` keeps glibc's defaults; ``dask`` keeps distributed's default for its workers,
``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off glibc's adaptive threshold (every block
above 128 KiB mapped afresh: a pass 1.5x slower than ``glibc``).

Ratios are the result, not absolute times: the machine (2 cores) is shared, and its load
average is printed. With 2 cores and 2 single-threaded workers, anything else running on the
machine takes from the second worker first. ``--xla-single-thread`` starts the workers with
XLA's intra-op thread pool off, so that a single worker cannot borrow the second core (the
1-worker time then measures one core honestly).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from typing import Any

import dask
import dask.dataframe as dd
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

import fisherlab as fl
from fisherlab.data._dask import _chunk_partial

TARGET = 1.7  # the speed-up of 2 workers over 1
KEEP = str(2**30)  # bytes: glibc maps (and unmaps) no block smaller, nor trims the heap by less
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def poisson(th: Any, x: Any) -> Any:
    return fl.dist.Poisson(rate=jnp.exp(x @ th["beta"]))


def make_frame(n: int, p: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    beta = np.linspace(-0.2, 0.2, p)
    names = [f"x{j}" for j in range(p)]
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "y", rng.poisson(np.exp(x @ beta)).astype(np.float64))
    return frame, names


class PassTimer:
    """Times every call of ``source.reduce`` (one pass each) and keeps the last pass's function."""

    def __init__(self, source: Any) -> None:
        self.source, self.times, self.fn = source, [], None
        self._reduce = source.reduce
        source.reduce = self  # the instance's attribute: fl.fit calls it for every pass

    def __call__(self, fn: Any) -> Any:
        self.fn = fn
        t0 = time.perf_counter()
        out = self._reduce(fn)
        self.times.append(time.perf_counter() - t0)
        return out


def timed_fit(model: Any, source: Any, init: Any) -> tuple[Any, float, list[float], Any]:
    timer = PassTimer(source)
    t0 = time.perf_counter()
    res = fl.fit(model, source, init=init)
    return res, time.perf_counter() - t0, timer.times, timer.fn


def split(frame: pd.DataFrame, partitions: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), partitions + 1).astype(int)
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def partitions_one_by_one(fn: Any, layout: Any, *parts: pd.DataFrame) -> float:
    """Seconds of a pass's partition work, one partition after another (a task on a worker that
    holds them all: best of 3, after a warm-up)."""
    _chunk_partial(0, layout, fn, parts[0])
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for i, part in enumerate(parts):
            _chunk_partial(i, layout, fn, part)
        best = min(best, time.perf_counter() - t0)
    return best


def on_cluster(workers: int, frame: pd.DataFrame, names: list[str], args: argparse.Namespace) -> dict:
    env = {"XLA_FLAGS": SINGLE_THREAD_XLA} if args.xla_single_thread else {}
    model = fl.Model(poisson)
    init = {"beta": np.zeros(args.p)}
    spawn_env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if args.malloc != "dask":  # the workers inherit this process's allocator settings
        spawn_env.pop("MALLOC_TRIM_THRESHOLD_", None)
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
            env=env,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        # the partitions scattered over the workers (round robin): a DataFrame held on the cluster
        pieces = client.scatter(split(frame, args.partitions))
        persisted = client.persist(dd.from_delayed(pieces, meta=frame.iloc[:0], verify_meta=False))
        source = fl.data.from_dask(persisted, y="y", x=names, client=client)
        t0 = time.perf_counter()
        timed_fit(model, source, init)  # compiles the kernels on the workers
        first = time.perf_counter() - t0
        fits, passes = [], []
        res = fn = None
        for _ in range(args.repeats):
            source = fl.data.from_dask(persisted, y="y", x=names, client=client)
            res, seconds, times, fn = timed_fit(model, source, init)
            fits.append(seconds)
            passes += times
        compute = None
        if workers == 1:  # every partition is on the one worker
            compute = client.submit(partitions_one_by_one, fn, source._layout, *pieces, pure=False).result()
    return {
        "res": res,
        "first_fit": first,
        "fit": min(fits),
        "passes": len(times),
        "pass": statistics.median(passes),
        "compute": compute,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000, help="rows")
    parser.add_argument("--p", type=int, default=10, help="covariates")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="timed fits per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--xla-single-thread", action="store_true", help="workers' XLA on one thread")
    parser.add_argument(
        "--malloc",
        choices=["keep", "glibc", "dask"],
        default="keep",
        help="allocator of this process and the workers (see the module docstring)",
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.malloc == "keep" and os.environ.get("MALLOC_MMAP_THRESHOLD_") != KEEP:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=KEEP, MALLOC_TRIM_THRESHOLD_=KEEP)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)  # glibc reads them at start

    frame, names = make_frame(args.n, args.p, args.seed)
    y, x = frame["y"].to_numpy(), frame[names].to_numpy()
    model, init = fl.Model(poisson), {"beta": np.zeros(args.p)}
    print(
        f"Poisson regression, N={args.n:,}, P={args.p}, {args.partitions} partitions of "
        f"{args.n // args.partitions:,} rows; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; jax {jax.__version__}; allocator: {args.malloc}"
        f"{'; workers XLA single-threaded' if args.xla_single_thread else ''}"
    )

    fl.fit(model, y, x, init=init)  # compiled
    t0 = time.perf_counter()
    memory = fl.fit(model, y, x, init=init)
    memory_fit = time.perf_counter() - t0

    local = dd.from_delayed([dask.delayed(p) for p in split(frame, args.partitions)], meta=frame.iloc[:0])
    here_source = fl.data.from_dask(local, y="y", x=names)
    timed_fit(model, here_source, init)  # compiled
    here_source = fl.data.from_dask(local, y="y", x=names)
    here_res, here_fit, here_times, _ = timed_fit(model, here_source, init)

    results = {w: on_cluster(w, frame, names, args) for w in (1, 2)}
    compute = results[1]["compute"]
    rows = [
        ("in memory, fl.fit(model, y, x)", memory_fit, None, None, None),
        ("from_dask, no client (here)", here_fit, len(here_times), statistics.median(here_times), 1),
    ]
    for w, r in results.items():
        rows.append((f"LocalCluster, {w} worker{'s' if w > 1 else ''}", r["fit"], r["passes"], r["pass"], w))
    print(f"\ncompute of one pass (all partitions, one after another, on a worker): {compute * 1e3:.0f} ms\n")
    print(f"{'configuration':34s} {'fit s':>7s} {'passes':>7s} {'pass ms':>8s} {'overhead ms':>12s}")
    for name, fit_s, n_passes, pass_s, w in rows:
        overhead = "" if pass_s is None else f"{(pass_s - compute / w) * 1e3:12.0f}"
        passes = "" if n_passes is None else f"{n_passes:7d}"
        pass_ms = "" if pass_s is None else f"{pass_s * 1e3:8.0f}"
        print(f"{name:34s} {fit_s:7.2f} {passes:>7s} {pass_ms:>8s} {overhead:>12s}")
    speedup = results[1]["pass"] / results[2]["pass"]
    ideal = results[1]["pass"] / (compute / 2 + results[1]["pass"] - compute)
    print(
        f"\nspeed-up per pass, 2 workers over 1: {speedup:.2f} (target >= {TARGET}: "
        f"{'PASS' if speedup >= TARGET else 'FAIL'}); with 1 worker's overhead and perfect halving "
        f"of the compute it would be {ideal:.2f}"
    )
    print(
        f"first fit on a fresh cluster (compiles on the workers): 1 worker {results[1]['first_fit']:.1f} s, "
        f"2 workers {results[2]['first_fit']:.1f} s"
    )
    agree = max(
        float(np.max(np.abs(r.flat_params - memory.flat_params) / np.abs(memory.flat_params)))
        for r in [here_res] + [v["res"] for v in results.values()]
    )
    verdict = "PASS" if agree < 1e-10 else "FAIL"
    print(f"estimates vs in memory: largest relative difference {agree:.1e} ({verdict})")
    if args.json:
        out = {
            "n": args.n,
            "p": args.p,
            "partitions": args.partitions,
            "load_average": os.getloadavg()[0],
            "compute_per_pass_s": compute,
            "memory_fit_s": memory_fit,
            "here_pass_s": statistics.median(here_times),
            "pass_s": {str(w): r["pass"] for w, r in results.items()},
            "overhead_s": {str(w): r["pass"] - compute / w for w, r in results.items()},
            "speedup": speedup,
            "max_relative_difference": agree,
            "malloc": args.malloc,
            "xla_single_thread": args.xla_single_thread,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
