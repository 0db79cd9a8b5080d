"""Parallel evaluation of an expensive black-box simulator (issue 5, item 4).

A model whose function is slow (an external finite-element run, emulated by a sleep of
``--delay`` seconds per call, plus a real NumPy eigen-solve of a ``--dof``-storey shear
building) has its observed information computed by finite differences
(``derivatives="numeric"``: 1 + 4(P^2 + P) calls for P parameters). The perturbed
evaluations run one after another (``executor=None``) or concurrently
(``executor="threads"`` / ``"processes"``, ``workers=W``); the script prints the wall time of
each, its ratio to the serial run measured in the same process, the calls made, and checks
that every variant gives the serial matrix bit for bit. A second identical call shows the
per-model cache of evaluations (0 calls).

    python benchmarks/bench_parallel.py [--delay 0.02] [--dof 120] [--workers 4]

Ratios, not absolute times, are the result (the machine is shared; the load average is
printed). With a sleep-dominated simulator the speed-up approaches ``workers``; with a
CPU-bound one it is bounded by the cores (2 here). Worker processes are started with
``OPENBLAS_NUM_THREADS=1`` / ``OMP_NUM_THREADS=1`` (set here before they spawn): otherwise
each worker's LAPACK starts a thread per core and W workers oversubscribe the machine
(measured: ratio 1.0 instead of 0.52 for 2 processes).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.linalg

import fisherlab as fl

MASS = 1.0e4
K_NOMINAL = 2.0e7
P = 4  # stiffness multipliers of four groups of storeys
REPEATS = 3


def frequencies(theta: np.ndarray, dof: int, delay: float) -> np.ndarray:
    """Modal frequencies of a ``dof``-storey shear building whose storey groups have multipliers theta."""
    if delay:
        time.sleep(delay)  # the external program's run time
    k = K_NOMINAL * np.repeat(np.asarray(theta), int(np.ceil(dof / P)))[:dof]
    main = k + np.append(k[1:], 0.0)
    stiffness = np.diag(main) - np.diag(k[1:], 1) - np.diag(k[1:], -1)
    values = scipy.linalg.eigh(stiffness, MASS * np.eye(dof), eigvals_only=True, subset_by_index=[0, 5])
    return np.sqrt(values) / (2 * np.pi)


class Simulator:
    """The model function (module level and picklable, so a process pool can run it)."""

    def __init__(self, dof: int, delay: float) -> None:
        self.dof, self.delay = dof, delay

    def __call__(self, th: dict, mode: np.ndarray) -> fl.dist.Normal:
        f = frequencies(th["theta"], self.dof, self.delay)
        idx = np.asarray(mode, dtype=int)
        return fl.dist.Normal(f[idx], 0.005 * f[idx])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02, help="seconds of 'external run' per call")
    parser.add_argument("--dof", type=int, default=120, help="storeys of the simulated building")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # inherited by the spawned workers only (NumPy is loaded here)

    sim = Simulator(args.dof, args.delay)
    theta_true = np.array([1.0, 0.9, 1.1, 0.95])
    mode = np.repeat(np.arange(6), 5).astype(float)
    f_true = frequencies(theta_true, args.dof, 0.0)[mode.astype(int)]
    y = f_true * (1 + 0.005 * np.random.default_rng(0).normal(size=mode.size))
    params = {"theta": theta_true}

    rows = []
    reference = None
    for label, executor, workers in [
        ("serial", None, None),
        (f"threads x{args.workers}", "threads", args.workers),
        ("processes x2", "processes", 2),
    ]:
        model = fl.Model(sim, derivatives="numeric", executor=executor, workers=workers)
        # warm-up at another point (so that the timed call is not served from the cache): it
        # starts the model's pool once (spawned workers import fisherlab and JAX), later calls reuse it
        fl.observed_information(model, {"theta": theta_true * 1.01}, y, mode)
        walls = []
        for k in range(1, REPEATS):  # median over fresh points (no cache hits)
            t0 = time.perf_counter()
            fl.observed_information(model, {"theta": theta_true * (1 + 1e-3 * k)}, y, mode)
            walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        info = fl.observed_information(model, params, y, mode)
        walls.append(time.perf_counter() - t0)
        wall = float(np.median(walls))
        again = fl.observed_information(model, params, y, mode)
        if reference is None:
            reference = info.matrix
        same = bool(np.array_equal(info.matrix, reference))
        rows.append((label, wall, info.evaluations, again.evaluations, same))

    serial = rows[0][1]
    print(f"\nobserved information, P = {P}, N = {mode.size} rows, {args.dof}-storey eigen-solve + "
          f"{args.delay * 1e3:.0f} ms per call")  # fmt: skip
    print(f"median of {REPEATS} calls at fresh points after a warm-up call")
    print(f"{'executor':<16}{'wall s':>9}{'ratio':>8}{'calls':>7}{'2nd call':>10}  same matrix")
    for label, wall, calls, calls2, same in rows:
        print(f"{label:<16}{wall:9.3f}{wall / serial:8.2f}{calls:7d}{calls2:10d}  {'yes' if same else 'NO'}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
