r"""Benchmark: numeric (finite-difference) Hessians of black-box log-likelihoods.

Two problems, each written with NumPy/SciPy only (nothing JAX can trace):

- **Gamma**: :math:`-\sum_i \log \mathrm{Gamma}(y_i; a, b)` through ``scipy.stats.gamma.logpdf``,
  N = 5,000, at (shape, rate) = (2.5, 1.5); closed form
  :math:`J = N \begin{pmatrix}\psi'(a) & -1/b \\ -1/b & a/b^2\end{pmatrix}`.
- **Logistic**: :math:`-\sum_i [y_i \eta_i - \log(1 + e^{\eta_i})]`, :math:`\eta = X\beta`,
  d = 10 (an intercept and 9 standard-normal columns), N = 5,000; closed form
  :math:`X^\top \mathrm{diag}(p(1-p)) X`, summed in ``np.longdouble``.

Candidates: fisherlab ``fl.hessian(f, params, method="numeric")``; fisherlab's model API,
``fl.observed_information(fl.Model.from_loglik(loglik, derivatives="numeric"), params, y, x)``
with a per-row log-likelihood that calls ``scipy.stats`` (``gamma.logpdf``; ``logistic.logcdf``
of ``(2y - 1) x'beta``, which equals ``y eta - log(1 + e^eta)``); numdifftools ``Hessian(f)``
(defaults), statsmodels ``approx_hess3(x, f)`` (default step) and ``scipy.differentiate.hessian``
(defaults; SciPy >= 1.15, skipped with a note otherwise). Each function is wrapped to count
its evaluations (one per point; SciPy's vectorised calls are counted per point; for the model
API, one call of the model function, which evaluates all N rows, so the counts compare).
Relative error = max |H - J| / max |J|. Where a method reports an error estimate (fisherlab,
numdifftools with ``full_output``, SciPy), the table says whether it bounds the true error in
every entry. Times: median of ``--repeats`` interleaved rounds after a warm-up round, and the
ratio to numdifftools' median in the same run (the load average is printed; compare ratios).

Target (issue 5), checked for both fisherlab rows: <= 1e-8 relative error with no more
evaluations than numdifftools' default, and an error estimate that bounds the true error.
This is a benchmark, not a test: it prints MET/NOT MET and exits 0 unless it crashes.

    python benchmarks/bench_numeric.py
    python benchmarks/bench_numeric.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy
import scipy.special as sp
import scipy.stats as st

TARGET_REL = 1e-8


@dataclass
class Row:
    problem: str
    method: str
    rel_err: float | None
    evaluations: int | None
    seconds: float | None
    bounded: str = "-"
    note: str = ""
    ratio_vs_numdifftools: float | None = None
    times: list[float] = field(default_factory=list)


class Counted:
    """Wraps a scalar function ``f(v)`` and counts evaluations (one per point)."""

    def __init__(self, f: Callable[[np.ndarray], float]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, v: np.ndarray) -> float:
        self.calls += 1
        return self.f(np.asarray(v, dtype=np.float64))

    def batched(self, x: np.ndarray) -> np.ndarray:
        """SciPy's vectorised convention: ``x`` of shape ``(P, ...)`` -> values of shape ``(...)``."""
        flat = x.reshape(x.shape[0], -1)
        out = np.array([self(flat[:, k]) for k in range(flat.shape[1])])
        return out.reshape(x.shape[1:])


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def rel_err(h: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(h - ref)) / np.max(np.abs(ref)))


def bounded(h: np.ndarray, err: np.ndarray | None, ref: np.ndarray) -> str:
    if err is None:
        return "-"
    return "yes" if bool(np.all(np.abs(h - ref) <= err)) else "NO"


# --------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """One benchmark problem: the flat negative log-likelihood for the reference tools and the
    same likelihood as a black-box fisherlab model (per-row log-likelihood through SciPy)."""

    f: Callable[[np.ndarray], float]  # negative total log-likelihood of a flat vector
    x0: np.ndarray
    names: list[str]  # names of x0's entries, in order
    ref: np.ndarray  # closed-form Hessian of f = observed information, ordered as names
    lower: float | None  # bound handed to fl.hessian
    loglik: Callable[[dict, np.ndarray, Any], np.ndarray]  # per-row, for Model.from_loglik
    params: dict[str, Any]
    y: np.ndarray
    x: np.ndarray | None


def gamma_problem(n: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    a, b = 2.5, 1.5
    y = rng.gamma(a, 1 / b, size=n)

    def f(v: np.ndarray) -> float:
        return -float(np.sum(st.gamma.logpdf(y, v[0], scale=1 / v[1])))

    def loglik(th: dict, y: np.ndarray, x: Any) -> np.ndarray:
        return st.gamma.logpdf(y, th["shape"], scale=1 / th["rate"])

    ref = n * np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    return Problem(f, np.array([a, b]), ["shape", "rate"], ref, 0.0, loglik, {"shape": a, "rate": b}, y, None)


def logistic_problem(n: int, d: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1))])
    beta = rng.normal(0, 0.5, d)
    p = 1 / (1 + np.exp(-x @ beta))
    y = rng.binomial(1, p).astype(float)

    def f(v: np.ndarray) -> float:
        eta = x @ v
        return -float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    def loglik(th: dict, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        # y*eta - log(1 + e^eta) = log sigmoid((2y - 1) eta), the standard logistic log-CDF
        return st.logistic.logcdf((2 * y - 1) * (x @ th["beta"]))

    xl = x.astype(np.longdouble)
    pl = 1 / (1 + np.exp(-(xl @ beta.astype(np.longdouble))))
    ref = np.asarray((xl.T * (pl * (1 - pl))) @ xl, dtype=np.float64)
    names = [f"beta[{i}]" for i in range(d)]
    return Problem(f, beta, names, ref, None, loglik, {"beta": beta}, y, x)


# --------------------------------------------------------------------------- candidates

FL_HESSIAN = "fisherlab (fl.hessian, method='numeric')"
FL_MODEL = "fisherlab (model API, derivatives='numeric')"
NUMDIFFTOOLS = "numdifftools Hessian"
FISHERLAB_ROWS = (FL_HESSIAN, FL_MODEL)


def run_fisherlab(pr: Problem) -> tuple:
    import fisherlab as fl

    counted = Counted(pr.f)
    params = dict(zip(pr.names, pr.x0.tolist(), strict=True))
    order = fl.param_names(params)
    idx = [pr.names.index(n) for n in order]

    def tree_f(th: dict[str, float]) -> float:
        return counted(np.array([th[n] for n in pr.names]))

    H = fl.hessian(tree_f, params, method="numeric", lower=pr.lower)
    back = np.argsort(idx)
    assert H.error is not None
    h, err = H.matrix[np.ix_(back, back)], H.error[np.ix_(back, back)]
    note = "" if H.evaluations == counted.calls else f"reported {H.evaluations} evaluations"
    return h, err, counted.calls, note


def run_fisherlab_model(pr: Problem) -> tuple:
    """``fl.observed_information`` of ``Model.from_loglik(..., derivatives="numeric")``.

    The model's function is wrapped to count its calls; each call evaluates all N rows,
    so one call is comparable with one evaluation of the total log-likelihood by the
    reference tools. The model is built inside the timing (it is part of the user's call)."""
    import fisherlab as fl

    calls = 0
    in_fn = 0.0

    def loglik(th: dict, y: np.ndarray, x: Any) -> np.ndarray:
        nonlocal calls, in_fn
        calls += 1
        t0 = time.perf_counter()
        out = pr.loglik(th, y, x)
        in_fn += time.perf_counter() - t0
        return out

    model = fl.Model.from_loglik(loglik, derivatives="numeric")
    J = fl.observed_information(model, pr.params, pr.y, pr.x)
    assert J.error is not None
    idx = [pr.names.index(n) for n in J.names]  # the closed form, reordered to fisherlab's names
    back = np.argsort(idx)
    h, err = np.asarray(J.matrix)[np.ix_(back, back)], np.asarray(J.error)[np.ix_(back, back)]
    note = f"model function {in_fn:.4f} s of it"
    if J.evaluations != calls:
        note = f"reported {J.evaluations} evaluations (+{calls - J.evaluations} validation call); " + note
    return h, err, calls, note


def run_numdifftools(pr: Problem) -> tuple:
    import numdifftools as nd

    counted = Counted(pr.f)
    out = nd.Hessian(counted, full_output=True)(pr.x0)
    return np.asarray(out.estimate), np.asarray(out.error_estimate), counted.calls, ""


def run_statsmodels(pr: Problem) -> tuple:
    from statsmodels.tools.numdiff import approx_hess3

    counted = Counted(pr.f)
    return np.asarray(approx_hess3(pr.x0, counted)), None, counted.calls, "no error estimate"


def run_scipy(pr: Problem) -> tuple:
    from scipy.differentiate import hessian

    counted = Counted(pr.f)
    res = hessian(counted.batched, pr.x0)
    ok = bool(np.all(res.success))
    return np.asarray(res.ddf), np.asarray(res.error), counted.calls, "" if ok else "success=False"


CANDIDATES: dict[str, Callable[[Problem], tuple]] = {
    FL_HESSIAN: run_fisherlab,
    FL_MODEL: run_fisherlab_model,
    NUMDIFFTOOLS: run_numdifftools,
    "statsmodels approx_hess3": run_statsmodels,
    "scipy.differentiate.hessian": run_scipy,
}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--n-gamma", type=int, default=5000, help="Gamma observations (5,000)")
    parser.add_argument("--n-logistic", type=int, default=5000, help="logistic rows (5,000)")
    parser.add_argument("--logistic-d", type=int, default=10, help="logistic columns with intercept (10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds after a warm-up (3)")
    parser.add_argument("--json", type=str, default=None, help="write the results as JSON")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"(ignoring arguments meant for other benchmarks: {' '.join(unknown)})")
    repeats = max(1, args.repeats)

    problems = {
        f"gamma N={args.n_gamma}": gamma_problem(args.n_gamma, args.seed),
        f"logistic N={args.n_logistic} d={args.logistic_d}": logistic_problem(
            args.n_logistic, args.logistic_d, args.seed + 1
        ),
    }
    import fisherlab  # noqa: F401  (imported before timing: JAX's import is not the method's cost)

    have_scipy_diff = hasattr(scipy, "differentiate") or _importable("scipy.differentiate")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"load average {load_before[0]:.2f} (1 min, at start); cpu count {os.cpu_count()}; "
        f"times are medians of {repeats} interleaved rounds after one untimed warm-up round"
    )

    rows: list[Row] = []
    for pname, pr in problems.items():
        active: dict[str, Callable[[Problem], tuple]] = {}
        for mname, run in CANDIDATES.items():
            if mname.startswith("scipy") and not have_scipy_diff:
                note = f"skipped: SciPy {scipy.__version__} < 1.15"
                rows.append(Row(pname, mname, None, None, None, note=note))
            else:
                active[mname] = run
        results: dict[str, tuple] = {}
        times: dict[str, list[float]] = {m: [] for m in active}
        first: dict[str, float] = {}
        for rnd in range(repeats + 1):  # round 0 is the warm-up
            for mname, run in list(active.items()):
                try:
                    t0 = time.perf_counter()
                    out = run(pr)
                    secs = time.perf_counter() - t0
                except ImportError as exc:
                    rows.append(Row(pname, mname, None, None, None, note=f"skipped: {exc}"))
                    del active[mname]
                    continue
                results[mname] = out
                if rnd == 0:
                    first[mname] = secs
                else:
                    times[mname].append(secs)
        for mname in CANDIDATES:
            if mname not in active:
                continue
            h, err, calls, note = results[mname]
            secs = float(np.median(times[mname]))
            if mname == FL_MODEL:
                note = "; ".join(filter(None, [note, f"first call {first[mname]:.3f} s"]))
            row = Row(pname, mname, rel_err(h, pr.ref), calls, secs, bounded(h, err, pr.ref), note)
            row.times = times[mname]
            rows.append(row)
        nd_row = next((r for r in rows if r.problem == pname and r.method == NUMDIFFTOOLS), None)
        for r in rows:
            if r.problem == pname and r.seconds is not None and nd_row is not None and nd_row.seconds:
                r.ratio_vs_numdifftools = r.seconds / nd_row.seconds
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3

    header = (
        f"{'problem':<21} {'method':<45} {'rel. error':>10} {'evals':>6} {'time s':>7} "
        f"{'/ numdiff':>9} {'err bounds':>10}  note"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        rel = "-" if r.rel_err is None else f"{r.rel_err:.2e}"
        ev = "-" if r.evaluations is None else str(r.evaluations)
        secs = "-" if r.seconds is None else f"{r.seconds:.4f}"
        ratio = "-" if r.ratio_vs_numdifftools is None else f"{r.ratio_vs_numdifftools:.2f}x"
        print(
            f"{r.problem:<21} {r.method:<45} {rel:>10} {ev:>6} {secs:>7} {ratio:>9} {r.bounded:>10}  {r.note}"
        )
    print(
        "evals: calls of the total log-likelihood (reference tools, fl.hessian) or of the model "
        "function (model API); each call evaluates all N rows.\n"
        "/ numdiff: median wall time / numdifftools' median wall time on the same problem, same run."
    )

    print()
    target = (
        f"target: <={TARGET_REL:.0e} relative error with no more evaluations than numdifftools' "
        "default, error estimate bounds the true error"
    )
    verdicts: dict[str, dict[str, bool]] = {}
    for pname in problems:
        nd_row = next((r for r in rows if r.problem == pname and r.method == NUMDIFFTOOLS), None)
        nd_evals = None if nd_row is None else nd_row.evaluations
        verdicts[pname] = {}
        for mname in FISHERLAB_ROWS:
            r = next(r for r in rows if r.problem == pname and r.method == mname)
            assert r.rel_err is not None and r.evaluations is not None
            cheap = nd_evals is None or r.evaluations <= nd_evals
            ok = r.rel_err <= TARGET_REL and cheap and r.bounded == "yes"
            verdicts[pname][mname] = ok
            print(
                f"{pname} | {mname}: rel. error {r.rel_err:.1e}, {r.evaluations} evaluations vs "
                f"numdifftools {nd_evals}, error estimate bounds the true error: {r.bounded}\n"
                f"    {target}: {'MET' if ok else 'NOT MET'}"
            )
    print()
    print(f"load average {load_before[0]:.2f} at start, {load_after[0]:.2f} at end (1 min)")
    if max(load_before[0], load_after[0]) > 0.75 * (os.cpu_count() or 1):
        print("note: other processes were busy; absolute times are unreliable, compare the ratios only")
    if args.json:
        payload: dict[str, Any] = {
            "benchmark": "bench_numeric",
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": {"start": load_before[0], "end": load_after[0]},
            "repeats": repeats,
            "target_rel_err": TARGET_REL,
            "rows": [asdict(r) for r in rows],
            "target_met": verdicts,
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
