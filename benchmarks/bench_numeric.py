r"""Benchmark: numeric (finite-difference) Hessians of black-box log-likelihoods.

Two problems, each written with NumPy/SciPy only (nothing JAX can trace):

- **Gamma**: :math:`-\sum_i \log \mathrm{Gamma}(y_i; a, b)` through ``scipy.stats.gamma.logpdf``,
  N = 5,000, at (shape, rate) = (2.5, 1.5); closed form
  :math:`J = N \begin{pmatrix}\psi'(a) & -1/b \\ -1/b & a/b^2\end{pmatrix}`.
- **Logistic**: :math:`-\sum_i [y_i \eta_i - \log(1 + e^{\eta_i})]`, :math:`\eta = X\beta`,
  d = 10 (an intercept and 9 standard-normal columns), N = 5,000; closed form
  :math:`X^\top \mathrm{diag}(p(1-p)) X`, summed in ``np.longdouble``.

Candidates: fisherlab ``fl.hessian(f, params, method="numeric")``, numdifftools
``Hessian(f)`` (defaults), statsmodels ``approx_hess3(x, f)`` (default step) and
``scipy.differentiate.hessian`` (defaults; SciPy >= 1.15, skipped with a note otherwise).
Each function is wrapped to count its evaluations (one per point; SciPy's vectorised
calls are counted per point). Relative error = max |H - J| / max |J|. Where a method
reports an error estimate (fisherlab, numdifftools with ``full_output``, SciPy), the
table says whether it bounds the true error in every entry.

Target (issue 5): fisherlab <= 1e-8 relative error with no more evaluations than
numdifftools' default, and an error estimate that bounds the true error. This is a
benchmark, not a test: it prints PASS/FAIL and exits 0 unless it crashes.

    python benchmarks/bench_numeric.py
    python benchmarks/bench_numeric.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
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


Problem = tuple[Callable[[np.ndarray], float], np.ndarray, list[str], np.ndarray]


def gamma_problem(n: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    a, b = 2.5, 1.5
    y = rng.gamma(a, 1 / b, size=n)

    def f(v: np.ndarray) -> float:
        return -float(np.sum(st.gamma.logpdf(y, v[0], scale=1 / v[1])))

    ref = n * np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    return f, np.array([a, b]), ["shape", "rate"], ref


def logistic_problem(n: int, d: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1))])
    beta = rng.normal(0, 0.5, d)
    p = 1 / (1 + np.exp(-x @ beta))
    y = rng.binomial(1, p).astype(float)

    def f(v: np.ndarray) -> float:
        eta = x @ v
        return -float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    xl = x.astype(np.longdouble)
    pl = 1 / (1 + np.exp(-(xl @ beta.astype(np.longdouble))))
    ref = np.asarray((xl.T * (pl * (1 - pl))) @ xl, dtype=np.float64)
    return f, beta, [f"beta[{i}]" for i in range(d)], ref


# --------------------------------------------------------------------------- candidates


def run_fisherlab(f: Callable, x: np.ndarray, names: list[str], lower: float | None) -> tuple:
    import fisherlab as fl

    counted = Counted(f)
    params = dict(zip(names, x.tolist(), strict=True))
    order = fl.param_names(params)
    idx = [names.index(n) for n in order]

    def tree_f(th: dict[str, float]) -> float:
        return counted(np.array([th[n] for n in names]))

    H = fl.hessian(tree_f, params, method="numeric", lower=lower)
    back = np.argsort(idx)
    assert H.error is not None
    h, err = H.matrix[np.ix_(back, back)], H.error[np.ix_(back, back)]
    note = "" if H.evaluations == counted.calls else f"reported {H.evaluations} evaluations"
    return h, err, counted.calls, note


def run_numdifftools(f: Callable, x: np.ndarray) -> tuple:
    import numdifftools as nd

    counted = Counted(f)
    out = nd.Hessian(counted, full_output=True)(x)
    return np.asarray(out.estimate), np.asarray(out.error_estimate), counted.calls, ""


def run_statsmodels(f: Callable, x: np.ndarray) -> tuple:
    from statsmodels.tools.numdiff import approx_hess3

    counted = Counted(f)
    return np.asarray(approx_hess3(x, counted)), None, counted.calls, "no error estimate"


def run_scipy(f: Callable, x: np.ndarray) -> tuple:
    from scipy.differentiate import hessian

    counted = Counted(f)
    res = hessian(counted.batched, x)
    ok = bool(np.all(res.success))
    return np.asarray(res.ddf), np.asarray(res.error), counted.calls, "" if ok else "success=False"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--n-gamma", type=int, default=5000, help="Gamma observations (5,000)")
    parser.add_argument("--n-logistic", type=int, default=5000, help="logistic rows (5,000)")
    parser.add_argument("--logistic-d", type=int, default=10, help="logistic columns with intercept (10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="write the results as JSON")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"(ignoring arguments meant for other benchmarks: {' '.join(unknown)})")

    problems = {
        f"gamma N={args.n_gamma}": (*gamma_problem(args.n_gamma, args.seed), 0.0),
        f"logistic N={args.n_logistic} d={args.logistic_d}": (
            *logistic_problem(args.n_logistic, args.logistic_d, args.seed + 1),
            None,
        ),
    }
    import fisherlab  # noqa: F401  (imported before timing: JAX's import is not the method's cost)

    have_scipy_diff = hasattr(scipy, "differentiate") or _importable("scipy.differentiate")

    rows: list[Row] = []
    for pname, (f, x, names, ref, lower) in problems.items():
        candidates: dict[str, Callable[[], tuple]] = {
            "fisherlab numeric": lambda f=f, x=x, names=names, lower=lower: run_fisherlab(f, x, names, lower),
            "numdifftools Hessian": lambda f=f, x=x: run_numdifftools(f, x),
            "statsmodels approx_hess3": lambda f=f, x=x: run_statsmodels(f, x),
            "scipy.differentiate.hessian": lambda f=f, x=x: run_scipy(f, x),
        }
        for mname, call in candidates.items():
            if mname.startswith("scipy") and not have_scipy_diff:
                note = f"skipped: SciPy {scipy.__version__} < 1.15"
                rows.append(Row(pname, mname, None, None, None, note=note))
                continue
            try:
                t0 = time.perf_counter()
                h, err, calls, note = call()
                secs = time.perf_counter() - t0
            except ImportError as exc:
                rows.append(Row(pname, mname, None, None, None, note=f"skipped: {exc}"))
                continue
            rows.append(Row(pname, mname, rel_err(h, ref), calls, secs, bounded(h, err, ref), note))

    header = (
        f"{'problem':<26} {'method':<28} {'rel. error':>10} {'evals':>6} {'time s':>7} "
        f"{'err bounds':>10}  note"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        rel = "-" if r.rel_err is None else f"{r.rel_err:.2e}"
        ev = "-" if r.evaluations is None else str(r.evaluations)
        secs = "-" if r.seconds is None else f"{r.seconds:.3f}"
        print(f"{r.problem:<26} {r.method:<28} {rel:>10} {ev:>6} {secs:>7} {r.bounded:>10}  {r.note}")

    print()
    verdicts = {}
    for pname in problems:
        fl_row = next(r for r in rows if r.problem == pname and r.method == "fisherlab numeric")
        nd_row = next(r for r in rows if r.problem == pname and r.method == "numdifftools Hessian")
        assert fl_row.rel_err is not None and fl_row.evaluations is not None
        ok_acc = fl_row.rel_err <= TARGET_REL
        ok_cost = nd_row.evaluations is None or fl_row.evaluations <= nd_row.evaluations
        ok_bound = fl_row.bounded == "yes"
        verdicts[pname] = ok_acc and ok_cost and ok_bound
        print(
            f"{'PASS' if verdicts[pname] else 'FAIL'} {pname}: fisherlab rel. error {fl_row.rel_err:.1e} "
            f"(target <= {TARGET_REL:.0e}), {fl_row.evaluations} evaluations vs numdifftools "
            f"{nd_row.evaluations}, error estimate bounds the true error: {fl_row.bounded}"
        )
    if args.json:
        payload: dict[str, Any] = {
            "benchmark": "bench_numeric",
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "target_rel_err": TARGET_REL,
            "rows": [asdict(r) for r in rows],
            "pass": verdicts,
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
