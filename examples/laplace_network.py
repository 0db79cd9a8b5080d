"""A Laplace posterior for a small network with fl.laplace: evidence, prior precision, calibrated predictions.

    python examples/laplace_network.py                 # prints the tables, writes the figure
    python examples/laplace_network.py --out DIR       # where the figure goes

1. Two moons (NumPy, seeded; :func:`datasets`): 200 training points, a validation set, an
   in-distribution test set and a *shifted* test set, the test moons rotated by 30 degrees about
   their centre. A 2-32-32-2 tanh MLP (Equinox) is trained with Adam (Optax) to the maximum a
   posteriori weights under the Gaussian prior N(0, 1/lambda0): the loss is the summed
   cross-entropy plus lambda0/2 ||theta||^2.
2. fl.laplace at those weights: the K-FAC GGN posterior, its log marginal likelihood at lambda0
   and at the prior precision that maximises it; the same for the full, diagonal and last-layer
   posteriors; the prior precision chosen by cross-validation instead. A check that the evidence
   is the formula of FitResult.laplace().log_evidence: a logistic regression fitted by fl.fit
   with the same prior gives the same number through both.
3. The MAP network against the Laplace predictives (probit, GLM, Monte Carlo) on the
   in-distribution and the shifted test sets: accuracy, negative log-likelihood per point and
   expected calibration error (:func:`ece`). The figure (laplace_uncertainty.svg and .png): the
   MAP network's confidence, the Laplace predictive's confidence and the standard deviation of
   its logit difference over the plane, with the training points.

The example works in float64 (``jax_enable_x64``). docs/tutorials/laplace_network.md walks
through the output. tests/test_laplace_tutorial.py runs ``main`` and checks the claims.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Noise (standard deviation) of every data set's points around the two arcs.
NOISE = 0.15
#: The shifted test set: the in-distribution test set's moons rotated by this angle (degrees)
#: about their centre (the origin).
SHIFT_ANGLE = 30.0
#: lambda0, the precision of the Gaussian prior N(0, 1/lambda0) the network is trained under
#: (weight decay lambda0/2 ||theta||^2 on the summed loss) and the Laplace's initial prior.
PRIOR_PRECISION = 1.0
#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
#: The Laplace posteriors compared: name -> fl.laplace's keywords.
STRUCTURES: dict[str, dict[str, str]] = {
    "kfac": {"structure": "kfac"},
    "full": {"structure": "full"},
    "diagonal": {"structure": "diagonal"},
    "last_layer": {"structure": "full", "subset": "last_layer"},
}


def moons(n: int, seed: int, angle: float = 0.0, noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: ``n`` points ``(n, 2)`` and labels ``(n,)``, 0 (upper) and 1.

    Like scikit-learn's ``make_moons`` with positions uniform along each arc, centred at the
    origin, Gaussian noise of standard deviation ``noise``, then rotated by ``angle`` degrees.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int32)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    x = np.where(labels[:, None] == 0, upper, lower) - np.array([0.5, 0.25])
    x = x + noise * rng.normal(size=x.shape)
    a = np.deg2rad(angle)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return x @ rotation.T, labels


def datasets(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(x, y)`` of train (200 points), val (200), test (1000) and shifted (the test set's
    points rotated by ``SHIFT_ANGLE``), each from its own seed."""
    x_test, y_test = moons(1000, seed + 2)
    a = np.deg2rad(SHIFT_ANGLE)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return {
        "train": moons(200, seed),
        "val": moons(200, seed + 1),
        "test": (x_test, y_test),
        "shifted": (x_test @ rotation.T, y_test),
    }


def ece(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of class probabilities ``probs`` ``(N, K)`` at labels ``y``.

    A point's confidence is its largest class probability and its prediction the argmax. With
    ``bins`` equal-width bins of the confidence, bin ``b`` holding ``(b/bins, (b+1)/bins]`` (the
    first also 0),

        ECE = sum_b (n_b / N) |accuracy in bin b - mean confidence in bin b|,

    0 for a classifier whose confidence is its accuracy (Naeini et al. 2015; Guo et al. 2017).
    """
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, mean confidence, negative log-likelihood per point and ECE of class
    probabilities ``(N, K)``."""
    tiny = np.finfo(np.float64).tiny
    return {
        "acc": float(np.mean(probs.argmax(axis=1) == y)),
        "conf": float(np.mean(probs.max(axis=1))),
        "nll": float(-np.mean(np.log(np.maximum(probs[np.arange(len(y)), y], tiny)))),
        "ece": ece(probs, y),
    }


def map_loss(model: Any, x: np.ndarray, y: np.ndarray, lam: float) -> Any:
    """``theta -> -sum_i log p(y_i | x_i, theta) + lam/2 ||theta||^2``: the negative log posterior
    under the prior N(0, 1/lam), up to a constant."""
    import jax
    import jax.numpy as jnp

    def loss(p: Any) -> Any:
        penalty = sum(jnp.sum(a**2) for a in jax.tree_util.tree_leaves(p))
        return -model.fn(p, x).log_prob(y).sum() + 0.5 * lam * penalty

    return loss


def train(model: Any, params: Any, x: np.ndarray, y: np.ndarray, steps: int, lam: float) -> Any:
    """Full-batch Adam (cosine-decayed step) on :func:`map_loss`: the maximum a posteriori weights
    under the prior N(0, 1/lam)."""
    import jax
    import optax

    loss = map_loss(model, x, y, lam)
    opt = optax.adam(optax.cosine_decay_schedule(1e-2, steps, alpha=1e-2))

    @jax.jit
    def step(p: Any, state: Any) -> tuple[Any, Any]:
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return optax.apply_updates(p, updates), state

    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params


def network(steps: int, seed: int, data: dict[str, Any]) -> tuple[Any, Any]:
    """The trained 2-32-32-2 tanh MLP as an fl model and its MAP parameters."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import fisherlab as fl

    net = eqx.nn.MLP(2, 2, 32, 2, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    x, y = data["train"]
    return model, train(model, params, x, y, steps, PRIOR_PRECISION)


def map_probs(model: Any, params: Any, x: np.ndarray) -> np.ndarray:
    """The MAP network's class probabilities ``(N, K)``."""
    import jax.numpy as jnp

    return np.asarray(model.fn(params, jnp.asarray(x)).probs, dtype=np.float64)


def fit_laplace(model: Any, params: Any, data: dict[str, Any], name: str) -> dict[str, Any]:
    """One posterior of ``STRUCTURES`` at lambda0 and at the marginal-likelihood prior precision."""
    import fisherlab as fl

    x, y = data["train"]
    t0 = time.perf_counter()
    la = fl.laplace(model, params, y, x, prior_precision=PRIOR_PRECISION, **STRUCTURES[name])
    opt = la.optimize_prior_precision(method="marglik")
    return {
        "initial": la,
        "laplace": opt,
        "lml0": la.log_marginal_likelihood(),
        "lml": opt.log_marginal_likelihood(),
        "seconds": time.perf_counter() - t0,
    }


def evidence_cross_check(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[float, float]:
    """A logistic regression fitted by fl.fit with the prior N(0, 1/lam) on each coefficient:
    ``FitResult.laplace().log_evidence`` and fl.laplace's log marginal likelihood at the same
    mode and prior (full structure; for a logistic head the GGN is the Hessian)."""
    import jax.numpy as jnp

    import fisherlab as fl

    model = fl.Model(lambda th, xx: fl.dist.Bernoulli(logits=xx @ th["w"] + th["b"]))
    prior = {"w": fl.dist.Normal(0.0, lam**-0.5), "b": fl.dist.Normal(0.0, lam**-0.5)}
    yf = y.astype(np.float64)
    res = fl.fit(model, yf, x, init={"w": jnp.zeros(2), "b": jnp.zeros(())}, prior=prior)
    la = fl.laplace(model, res.params, yf, x, structure="full", prior_precision=lam)
    return res.laplace().log_evidence, la.log_marginal_likelihood()


def predictions(
    model: Any, params: Any, fits: dict[str, Any], cv: Any, data: dict[str, Any]
) -> dict[str, dict[str, dict[str, float]]]:
    """Scores (:func:`scores`) of the MAP network and the Laplace predictives on test and shifted."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    kfac, last = fits["kfac"]["laplace"], fits["last_layer"]["laplace"]
    for split in ("test", "shifted"):
        x, y = data[split]
        rows = {
            "MAP": map_probs(model, params, x),
            "kfac probit": kfac.predictive(x, method="probit").probs,
            "kfac glm": kfac.predictive(x, method="glm").probs,
            "kfac mc": kfac.predictive(x, method="mc").probs,
            "kfac probit, cv prior": cv.predictive(x, method="probit").probs,
            "full probit": fits["full"]["laplace"].predictive(x, method="probit").probs,
            "diagonal probit": fits["diagonal"]["laplace"].predictive(x, method="probit").probs,
            "last_layer probit": last.predictive(x, method="probit").probs,
            "last_layer mc": last.predictive(x, method="mc").probs,
        }
        table[split] = {name: scores(p, y) for name, p in rows.items()}
    return table


def figure(model: Any, params: Any, la: Any, data: dict[str, Any], out: Path, n: int = 61) -> list[Path]:
    """Three panels over the plane ([-3, 3]^2, an ``n`` x ``n`` grid) with the training points:
    the MAP network's confidence, the Laplace probit predictive's, and the standard deviation
    of the logit difference f_1 - f_0 under the Laplace (its epistemic uncertainty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm

    g = np.linspace(-3.0, 3.0, n)
    gx, gy = np.meshgrid(g, g)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    pred = la.predictive(grid, method="probit")
    cov = pred.covariance  # (n*n, 2, 2)
    sd = np.sqrt(np.maximum(cov[:, 0, 0] + cov[:, 1, 1] - 2.0 * cov[:, 0, 1], 0.0)).reshape(n, n)
    panels = (
        (map_probs(model, params, grid).max(axis=1).reshape(n, n), "MAP network: confidence"),
        (pred.probs.max(axis=1).reshape(n, n), "Laplace (K-FAC, probit): confidence"),
        (sd, "Laplace: sd of logit difference"),
    )
    x, y = data["train"]
    xs = data["shifted"][0]
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.3), sharey=True)
    # confidence levels finer towards 1, each band its own colour: where the MAP says 0.999 and
    # the Laplace 0.99 shows
    levels = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0]
    norm = BoundaryNorm(levels, plt.get_cmap("viridis").N)
    for i, (ax, (values, title)) in enumerate(zip(axes, panels, strict=True)):
        if i < 2:
            cs = ax.contourf(gx, gy, values, levels=levels, norm=norm, cmap="viridis")
            bar = fig.colorbar(cs, ax=ax, shrink=0.8, ticks=levels)
            bar.ax.tick_params(labelsize=7)
        else:
            cs = ax.contourf(gx, gy, values, levels=12, cmap="magma")
            fig.colorbar(cs, ax=ax, shrink=0.8)
        ax.scatter(xs[:, 0], xs[:, 1], s=1.5, c="0.75", alpha=0.5)
        colours = np.where(y == 0, "tab:orange", "tab:red")
        ax.scatter(x[:, 0], x[:, 1], s=9, c=colours, edgecolors="k", linewidths=0.3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$x_2$")
    fig.suptitle("Two moons: training points (orange, red) and the shifted test set (grey)", fontsize=10)
    fig.tight_layout()
    paths = [out / "laplace_uncertainty.svg", out / "laplace_uncertainty.png"]
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import jax

    import fisherlab as fl

    jax.config.update("jax_enable_x64", True)  # float64 weights (the tutorial's section 8)
    t_start = time.perf_counter()
    data = datasets(args.seed)
    model, params = network(args.steps, args.seed, data)
    x, y = data["train"]
    train_acc = float(np.mean(map_probs(model, params, x).argmax(axis=1) == y))
    grad = jax.grad(map_loss(model, x, y, PRIOR_PRECISION))(params)
    grad_norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree_util.tree_leaves(grad))))
    print(
        f"1. 2-32-32-2 tanh MLP, P = {len(fl.param_names(params))}, {args.steps} Adam steps "
        f"({time.perf_counter() - t_start:.1f} s): training accuracy {train_acc:.3f}, "
        f"gradient norm of the loss {grad_norm:.3f}"
    )

    fits = {name: fit_laplace(model, params, data, name) for name in STRUCTURES}
    print(f"2. log marginal likelihood at lambda0 = {PRIOR_PRECISION:g} -> at the marglik prior precision")
    for name, f in fits.items():
        print(
            f"   {name:10s} P = {f['laplace'].p:4d}: {f['lml0']:8.2f} -> {f['lml']:8.2f} "
            f"(lambda = {f['laplace'].prior_precision:.3f}; {f['seconds']:.1f} s)"
        )
    xv, yv = data["val"]
    cv = fits["kfac"]["initial"].optimize_prior_precision(method="cv", val=(yv, xv))
    print(f"   kfac, lambda by cross-validation on the validation set: {cv.prior_precision:.4g}")
    ev_fit, ev_la = evidence_cross_check(x, y, PRIOR_PRECISION)
    print(f"   logistic regression: FitResult.laplace().log_evidence = {ev_fit:.6f}, fl.laplace {ev_la:.6f}")

    table = predictions(model, params, fits, cv, data)
    cols = ("acc", "conf", "NLL", "ECE")
    print(f"3. {'':23s} {'in-distribution test':>27s}   {'shifted (rotated 30 deg)':>27s}")
    print(f"   {'predictive':23s} " + "   ".join(" ".join(f"{c:>6s}" for c in cols) for _ in range(2)))
    for name in table["test"]:
        cells = [" ".join(f"{table[split][name][c.lower()]:6.3f}" for c in cols) for split in table]
        print(f"   {name:23s} " + "   ".join(cells))
    cov = fits["kfac"]["laplace"].predictive(data["test"][0], method="probit").covariance
    logit_var = float(np.mean(cov[:, [0, 1], [0, 1]]))
    diff_var = float(np.mean(cov[:, 0, 0] + cov[:, 1, 1] - 2.0 * cov[:, 0, 1]))
    print(
        f"   kfac on the test set: mean variance of a logit {logit_var:.2f}, "
        f"of the logit difference {diff_var:.2f}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    paths = figure(model, params, fits["kfac"]["laplace"], data, args.out)
    print(f"figure: {', '.join(str(p) for p in paths)}; total {time.perf_counter() - t_start:.1f} s")
    return {
        "params": params,
        "train_accuracy": train_acc,
        "grad_norm": grad_norm,
        "fits": fits,
        "cv": cv,
        "evidence": (ev_fit, ev_la),
        "table": table,
        "logit_variance": (logit_var, diff_var),
        "figures": paths,
    }


if __name__ == "__main__":
    main()
