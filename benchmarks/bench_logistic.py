r"""Benchmark: curvature of a logistic regression, N = 200,000 rows, d = 50, float64.

What is measured (all in one process, same data, same CPU):

- the **floor**: the closed form :math:`X^\top \mathrm{diag}(p(1-p)) X` written by hand,
  once in NumPy (``X.T @ (w[:, None] * X)``, ``w`` computed in NumPy) and once as a
  jitted ``jax.numpy`` function; the floor is the faster of the two;
- fisherlab after compilation: ``fl.fisher(..., method="exact")`` (target <= 1.5x floor),
  ``fl.empirical_fisher`` (target <= 2x) and ``fl.observed_information`` (target <= 4x),
  called as a user would, with NumPy ``X``/``y``; compile time (first call minus
  steady state) is reported separately, and a second call with NEW parameter values of
  the same shapes is checked for recompilation (compilations counted through
  ``jax.log_compiles``);
- references: statsmodels ``Logit.hessian`` (analytic), ``jax.jit(jax.hessian(loglik))``,
  ``vmap(grad)`` scores then ``G.T @ G``, and numdifftools ``Hessian`` at a reduced N
  (time scaled linearly to the full N).

Relative error = max |A - R| / max |R| against a closed form computed in extended
precision (``np.longdouble``): :math:`X^\top \mathrm{diag}(p(1-p))X` for the Fisher and the
observed information (equal for the canonical link), :math:`X^\top \mathrm{diag}((y-p)^2) X`
for the empirical Fisher.

Timings are medians over ``--repeats`` interleaved rounds (every candidate is timed
once per round, so a burst of load from other processes hits all of them alike).
This is a benchmark, not a test: it never fails on a timing; PASS/FAIL is printed.

    python benchmarks/bench_logistic.py                 # full size (about a minute)
    python benchmarks/bench_logistic.py --n 20000       # quick run
    python benchmarks/bench_logistic.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

TARGETS = {"fisher": 1.5, "empirical_fisher": 2.0, "observed_information": 4.0}


# --------------------------------------------------------------------------- helpers


@dataclass
class Row:
    """One line of the results table."""

    name: str
    seconds: float | None
    ratio: float | None = None
    target: float | None = None
    rel_err: float | None = None
    compile_s: float | None = None
    note: str = ""
    status: str = "-"
    times: list[float] = field(default_factory=list)


class CompileCounter(logging.Handler):
    """Counts XLA compilations logged by JAX while ``jax.log_compiles`` is on."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Compiling "):
            self.names.append(msg.split(" with ", 1)[0][len("Compiling ") :])

    def reset(self) -> None:
        self.names = []


def rel_err(a: Any, ref: np.ndarray) -> float:
    """max |a - ref| / max |ref|, computed in extended precision."""
    a = np.asarray(a, dtype=np.longdouble)
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def once(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(cases: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Time every case once per round, ``repeats`` rounds; one untimed warm-up each first."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(once(fn)[0])
    return times


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X = [1, N(0,1)...] (n, d), beta ~ N(0, 0.1^2), y ~ Bernoulli(sigmoid(X beta)); a 2nd beta."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1))])
    beta = rng.normal(0.0, 0.1, d)
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    y = (rng.random(n) < p).astype(np.float64)
    beta_new = beta + rng.normal(0.0, 0.01, d)
    return X, y, beta, beta_new


def closed_forms(
    X: np.ndarray, y: np.ndarray, beta: np.ndarray, exact: bool = True, chunk: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """X^T diag(p(1-p)) X and X^T diag((y-p)^2) X, in np.longdouble (or float64 if not exact)."""
    dtype = np.longdouble if exact else np.float64
    d = X.shape[1]
    fisher = np.zeros((d, d), dtype)
    emp = np.zeros((d, d), dtype)
    b = beta.astype(dtype)
    for s in range(0, X.shape[0], chunk):
        xc = X[s : s + chunk].astype(dtype)
        p = 1 / (1 + np.exp(-(xc @ b)))
        fisher += xc.T @ ((p * (1 - p))[:, None] * xc)
        emp += xc.T @ (((y[s : s + chunk] - p) ** 2)[:, None] * xc)
    return fisher, emp


# --------------------------------------------------------------------------- benchmark


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import fisherlab as fl  # turns on float64

    jax.config.update("jax_enable_x64", True)
    counter = CompileCounter()
    logging.getLogger("jax").addHandler(counter)

    load_before = os.getloadavg()  # before this process adds its own load
    n, d, repeats = args.n, args.d, args.repeats
    X, y, beta, beta_new = make_data(n, d, args.seed)
    t_ref, (F_ref, E_ref) = once(lambda: closed_forms(X, y, beta, exact=not args.fast_reference))
    print(f"logistic regression: N={n:,}, d={d}, float64, seed={args.seed}, repeats={repeats}")
    print(
        f"load average {load_before[0]:.2f} (1 min, at start); cpu count {os.cpu_count()}, "
        f"jax {jax.__version__} ({jax.default_backend()}), "
        f"numpy {np.__version__}; reference closed form in "
        f"{'float64' if args.fast_reference else 'longdouble'} ({t_ref:.1f} s)"
    )

    # ---- floor: closed form by hand
    def floor_numpy() -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        w = p * (1.0 - p)
        return X.T @ (w[:, None] * X)

    @jax.jit
    def floor_jax_fn(b: jax.Array, Xj: jax.Array) -> jax.Array:
        p = jax.nn.sigmoid(Xj @ b)
        w = p * (1.0 - p)
        return Xj.T @ (w[:, None] * Xj)

    Xj, yj, bj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(beta)

    def floor_jax() -> jax.Array:
        return floor_jax_fn(bj, Xj).block_until_ready()

    # ---- JAX references (data already on the device, as the floor)
    def total_loglik(b: jax.Array, Xj: jax.Array, yj: jax.Array) -> jax.Array:
        eta = Xj @ b
        return jnp.sum(yj * eta - jax.nn.softplus(eta))

    jax_hess_fn = jax.jit(jax.hessian(total_loglik))

    def row_loglik(b: jax.Array, x: jax.Array, yi: jax.Array) -> jax.Array:
        eta = x @ b
        return yi * eta - jax.nn.softplus(eta)

    @jax.jit
    def opg_fn(b: jax.Array, Xj: jax.Array, yj: jax.Array) -> jax.Array:
        g = jax.vmap(jax.grad(row_loglik), in_axes=(None, 0, 0))(b, Xj, yj)
        return g.T @ g

    def jax_hess() -> jax.Array:
        return jax_hess_fn(bj, Xj, yj).block_until_ready()

    def opg() -> jax.Array:
        return opg_fn(bj, Xj, yj).block_until_ready()

    # ---- statsmodels (model built once, outside the timing; .hessian is analytic)
    sm_model = None
    try:
        import statsmodels.api as sm

        sm_model = sm.Logit(y, X)
    except ImportError:
        print("statsmodels not installed: skipped")

    # ---- fisherlab: a fresh Model per function, so its first call includes compilation
    def new_model() -> Any:
        return fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))

    models = {name: new_model() for name in TARGETS}
    fl_calls: dict[str, Callable[[np.ndarray], Any]] = {
        "fisher": lambda b: fl.fisher(models["fisher"], {"beta": b}, X, method="exact").matrix,
        "empirical_fisher": lambda b: (
            fl.empirical_fisher(models["empirical_fisher"], {"beta": b}, y, X).matrix
        ),
        "observed_information": lambda b: (
            fl.observed_information(models["observed_information"], {"beta": b}, y, X).matrix
        ),
    }
    first: dict[str, float] = {}
    first_compiles: dict[str, int] = {}
    results: dict[str, Any] = {}
    for name, call in fl_calls.items():
        counter.reset()
        with jax.log_compiles(True):
            first[name], results[name] = once(lambda call=call: call(beta))
        first_compiles[name] = len(counter.names)

    # ---- steady state, interleaved
    cases: dict[str, Callable[[], Any]] = {
        "floor_numpy": floor_numpy,
        "floor_jax": floor_jax,
        **{name: (lambda call=call: call(beta)) for name, call in fl_calls.items()},
        "jax_hessian": jax_hess,
        "vmap_grad_opg": opg,
    }
    if sm_model is not None:
        cases["statsmodels"] = lambda: sm_model.hessian(beta)
    times = interleaved(cases, repeats)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    floor = min(med["floor_numpy"], med["floor_jax"])
    floor_name = "numpy" if med["floor_numpy"] <= med["floor_jax"] else "jax"

    # ---- second call with NEW parameter values of the same shapes
    recompiled: dict[str, list[str]] = {}
    new_times: dict[str, float] = {}
    for name, call in fl_calls.items():
        counter.reset()
        with jax.log_compiles(True):
            new_times[name], _ = once(lambda call=call: call(beta_new))
        recompiled[name] = list(counter.names)
    logging.getLogger("jax").removeHandler(counter)

    rows: list[Row] = []

    def add(name: str, key: str, err: float | None, **kw: Any) -> None:
        rows.append(Row(name, med[key], med[key] / floor, rel_err=err, times=times[key], **kw))

    add("floor: numpy X.T @ (w[:,None]*X)", "floor_numpy", rel_err(floor_numpy(), F_ref))
    add("floor: jax.jit same expression", "floor_jax", rel_err(floor_jax(), F_ref))
    labels = {
        "fisher": 'fl.fisher(method="exact")',
        "empirical_fisher": "fl.empirical_fisher",
        "observed_information": "fl.observed_information",
    }
    for name in fl_calls:
        ref = E_ref if name == "empirical_fisher" else F_ref
        add(
            labels[name],
            name,
            rel_err(results[name], ref),
            target=TARGETS[name],
            compile_s=max(first[name] - med[name], 0.0),
            note=(
                f"recompiled: {'yes' if recompiled[name] else 'no'} "
                f"(new-params call {new_times[name]:.3f} s; "
                f"first call compiled {first_compiles[name]})"
            ),
        )
    if sm_model is not None:
        add(
            "statsmodels Logit.hessian (analytic)",
            "statsmodels",
            rel_err(-sm_model.hessian(beta), F_ref),
            note="returns -J; model built outside timing",
        )
    add("jax.jit(jax.hessian(loglik))", "jax_hessian", rel_err(-jax_hess(), F_ref), note="-H")
    add("vmap(grad) scores, G.T @ G", "vmap_grad_opg", rel_err(opg(), E_ref), note="vs OPG form")

    if not args.skip_numdifftools:
        rows.append(bench_numdifftools(args, floor))

    for row in rows:
        if row.target is not None and row.ratio is not None:
            row.status = "PASS" if row.ratio <= row.target else "FAIL"

    load_after = os.getloadavg()
    print()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        print(
            f"note: other processes were busy (load average {load_before[0]:.1f} at start, "
            f"{load_after[0]:.1f} at the end including this run, on {os.cpu_count()} cpus); "
            "multi-threaded BLAS suffers most from contention, so re-run on a quiet machine "
            "before trusting ratios"
        )
    print(f"floor = {floor:.4f} s ({floor_name}); ratios are median time / floor")
    print_table(rows)
    for name in fl_calls:
        if recompiled[name]:
            print(f"{labels[name]} recompiled on new params: {recompiled[name]}")

    if args.breakdown:
        print()
        breakdown(X, y, beta, models, repeats)

    return {
        "benchmark": "logistic",
        "config": {
            "n": n,
            "d": d,
            "seed": args.seed,
            "repeats": repeats,
            "nd_n": args.nd_n,
            "reference": "float64" if args.fast_reference else "longdouble",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_before_after": [load_before[0], load_after[0]],
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "numpy": np.__version__,
            "fisherlab": fl.__version__,
        },
        "floor_seconds": floor,
        "floor_source": floor_name,
        "recompiled": {k: bool(v) for k, v in recompiled.items()},
        "new_params_seconds": new_times,
        "rows": [asdict(r) for r in rows],
    }


def bench_numdifftools(args: argparse.Namespace, floor: float) -> Row:
    """numdifftools Hessian at N = nd_n rows, its time scaled linearly to N."""
    try:
        import numdifftools as nd
    except ImportError:
        return Row("numdifftools Hessian", None, note="not installed")
    m = min(args.nd_n, args.n)
    Xs, ys, beta, _ = make_data(m, args.d, args.seed)
    F_small, _ = closed_forms(Xs, ys, beta, exact=not args.fast_reference)
    count = [0]

    def loglik(b: np.ndarray) -> float:
        count[0] += 1
        eta = Xs @ b
        return float(np.sum(ys * eta - np.logaddexp(0.0, eta)))

    hess = nd.Hessian(loglik)
    ts = []
    out = None
    for _ in range(args.nd_repeats):
        count[0] = 0
        t, out = once(lambda: hess(beta))
        ts.append(t)
    scaled = statistics.median(ts) * args.n / m
    return Row(
        "numdifftools Hessian",
        scaled,
        ratio=scaled / floor,
        rel_err=rel_err(-np.asarray(out), F_small),
        note=f"N={m:,}, time x{args.n / m:g} to N={args.n:,}; {count[0]:,} evaluations",
        times=ts,
    )


def breakdown(X: np.ndarray, y: np.ndarray, beta: np.ndarray, models: dict[str, Any], repeats: int) -> None:
    """Where fisherlab's time goes: host-side data preparation vs the compiled kernel.

    Uses fisherlab internals (``_data.prepare_data``, the kernel cache on the model);
    skipped with a message when they change.
    """
    import jax
    import jax.numpy as jnp

    try:
        from fisherlab.data._prepare import prepare_data
        from fisherlab.params._pytree import as_params
    except ImportError as exc:  # internals moved
        print(f"breakdown unavailable: {exc}")
        return
    params = as_params({"beta": beta})
    data = prepare_data(y, X)
    kernels = {
        "fisher": ("fisher_exact", (params, data.x)),
        "empirical_fisher": ("empirical", (params, data.y, data.x)),
        "observed_information": ("observed", (params, data.y, data.x)),
    }

    def blocked(k: Any, a: tuple[Any, ...]) -> Callable[[], Any]:
        return lambda: jax.block_until_ready(k(*a))

    def prepared(*a: Any, **kw: Any) -> Callable[[], Any]:
        # block on the arrays: the host-to-device transfer is asynchronous
        def call() -> Any:
            out = prepare_data(*a, **kw)
            return jax.block_until_ready([out.x, out.y])

        return call

    def to_device(a: np.ndarray) -> Callable[[], Any]:
        return lambda: jax.block_until_ready(jnp.asarray(a))

    aligned = np.empty(X.nbytes + 64, np.uint8)
    start = -aligned.ctypes.data % 64
    X64 = aligned[start : start + X.nbytes].view(np.float64).reshape(X.shape)
    X64[...] = X
    cases: dict[str, Callable[[], Any]] = {
        "prepare_data(None, X), blocked": prepared(None, X, require_y=False),
        "  of which X.astype(float64)": lambda: X.astype(np.float64),
        "  of which np.isfinite(X).all()": lambda: np.isfinite(X).all(),
        f"  of which jnp.asarray(X) ({X.ctypes.data % 64}-byte offset)": to_device(X),
        "  (jnp.asarray of a 64-byte aligned X: copies too)": to_device(X64),
        "  (jax.device_put of a 64-byte aligned X: aliases)": lambda: jax.block_until_ready(
            jax.device_put(X64)
        ),
        "  (np.copyto into a 64-byte aligned buffer)": lambda: np.copyto(X64, X),
    }
    for name, (key, a) in kernels.items():
        kernel = models[name]._cache.get(key)
        if kernel is not None:
            cases[f"kernel only: {name}"] = blocked(kernel, a)
    times = interleaved(cases, repeats)
    print("breakdown of fisherlab's time (median s, min s):")
    for name, ts in times.items():
        print(f"  {name:<52} {statistics.median(ts):.4f}  {min(ts):.4f}")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'name':<38} {'median s':>9} {'x floor':>8} {'target':>7} {'rel err':>9} "
        f"{'compile s':>9} {'status':>6}  note"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:<38} {fmt(r.seconds, '.4f'):>9} {fmt(r.ratio, '.2f'):>8} "
            f"{fmt(r.target, '.1f'):>7} {fmt(r.rel_err, '.1e'):>9} "
            f"{fmt(r.compile_s, '.2f'):>9} {r.status:>6}  {r.note}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="rows (default 200,000)")
    parser.add_argument("--d", type=int, default=50, help="columns incl. intercept (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--nd-n", type=int, default=2_000, help="rows for numdifftools")
    parser.add_argument("--nd-repeats", type=int, default=3, help="numdifftools timed runs")
    parser.add_argument("--skip-numdifftools", action="store_true")
    parser.add_argument(
        "--fast-reference", action="store_true", help="closed form in float64, not longdouble"
    )
    parser.add_argument("--breakdown", action="store_true", help="also time fisherlab's data prep and kernel")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.n < 2 or args.d < 2 or args.repeats < 1 or args.nd_repeats < 1:
        parser.error("need --n >= 2, --d >= 2, --repeats >= 1, --nd-repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
