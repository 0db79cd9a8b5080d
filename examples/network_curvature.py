"""Curvature of two small networks with fl.curvature: kinds, structures, and the empirical Fisher.

    python examples/network_curvature.py                 # prints the tables, writes spectra.svg
    python examples/network_curvature.py --out DIR       # where the figure goes

1. An Equinox classifier (2-16-3 MLP, tanh, softmax head) trained on three noisy spirals.
   Its Fisher (exact, through the softmax's closed form), empirical Fisher, GGN and Hessian as
   dense matrices; the diagonal, K-FAC and low-rank structures against the dense Fisher; the
   spectra of the kinds (the figure).
2. Where the empirical Fisher misleads: at the trained weights it is close to the Fisher; at
   the untrained ones (and on data the model does not fit) it is not, and the natural-gradient
   step it gives points elsewhere (cosine to the true one).
3. A heteroscedastic regression network (Normal head with a predicted scale): its Fisher is
   positive definite, its GGN at the observed y is not (the negative log-likelihood is not
   convex in the scale).

docs/tutorials/network_curvature.md walks through the output. tests/test_network_curvature.py
runs ``main`` and checks the claims.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def spirals(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved noisy spirals in the plane, ``n`` points each; labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(3):
        t = np.linspace(0.2, 1.0, n)
        angle = 3.0 * t + 2.0 * np.pi * k / 3 + rng.normal(0.0, 0.15, n)
        xs.append(np.column_stack([t * np.cos(angle), t * np.sin(angle)]))
        ys.append(np.full(n, k, dtype=np.int32))
    return np.concatenate(xs), np.concatenate(ys)


def train(model: Any, params: Any, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> Any:
    """Full-batch gradient ascent on the mean log-likelihood (plain JAX)."""
    import jax

    def mean_ll(p: Any) -> Any:
        return model.fn(p, x).log_prob(y).mean()

    step = jax.jit(lambda p: jax.tree_util.tree_map(lambda a, g: a + lr * g, p, jax.grad(mean_ll)(p)))
    for _ in range(steps):
        params = step(params)
    return params


def classifier(steps: int = 1500, seed: int = 0) -> dict[str, Any]:
    """Part 1 and 2: the Equinox classifier's curvatures."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    import fisherlab as fl

    x, y = spirals(60, seed)
    net = eqx.nn.MLP(2, 3, 16, 1, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    model, untrained = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    params = train(model, untrained, x, y, steps, lr=0.5)
    probs = np.asarray(model.fn(params, x).probs)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == y))
    dense = {
        kind: fl.curvature(model, params, y, x, kind=kind, structure="dense").to_dense().matrix
        for kind in ("fisher", "empirical", "ggn", "hessian")
    }
    fisher = dense["fisher"]
    norm = np.linalg.norm(fisher)
    structures = {}
    for structure in ("diagonal", "kfac", "block", "lowrank"):
        approx = fl.curvature(model, params, y, x, structure=structure, rank=10).to_dense().matrix
        structures[structure] = float(np.linalg.norm(approx - fisher) / norm)
    spectra = {kind: np.sort(np.linalg.eigvalsh(m))[::-1] for kind, m in dense.items()}

    def natural_cosine(p: Any) -> tuple[float, float]:
        """Cosine between the natural-gradient steps F^-1 g and K^-1 g (damped), and ||K - F|| / ||F||."""
        f = fl.curvature(model, p, y, x, kind="fisher", structure="dense").to_dense().matrix
        k = fl.curvature(model, p, y, x, kind="empirical", structure="dense").to_dense().matrix
        g = np.asarray(ravel_pytree(jax.grad(lambda q: model.fn(q, x).log_prob(y).sum())(p))[0])
        damping = 1e-3 * np.trace(f) / len(f)
        a = np.linalg.solve(f + damping * np.eye(len(f)), g)
        b = np.linalg.solve(k + damping * np.eye(len(k)), g)
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), float(
            np.linalg.norm(k - f) / np.linalg.norm(f)
        )

    return {
        "p": len(fisher),
        "accuracy": accuracy,
        "spectra": spectra,
        "structures": structures,
        "trained": natural_cosine(params),
        "untrained": natural_cosine(untrained),
        "trace": {kind: float(np.trace(m)) for kind, m in dense.items()},
    }


def heteroscedastic(seed: int = 1) -> dict[str, Any]:
    """Part 3: a Normal head with a predicted scale; Fisher versus GGN."""
    import jax
    import jax.numpy as jnp

    import fisherlab as fl

    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=(120, 1))
    y = np.sin(2.0 * x[:, 0]) + (0.1 + 0.3 * np.abs(x[:, 0])) * rng.normal(size=120)
    h = 12
    params = {
        "l1": {"w": jnp.asarray(rng.normal(size=(1, h))), "b": jnp.asarray(rng.normal(size=h))},
        "l2": {"w": jnp.asarray(rng.normal(size=(h, 2)) * 0.3), "b": jnp.zeros(2)},
    }

    def normal(th: Any, xx: Any) -> Any:
        out = jnp.tanh(xx @ th["l1"]["w"] + th["l1"]["b"]) @ th["l2"]["w"] + th["l2"]["b"]
        return fl.dist.Normal(out[:, 0], jax.nn.softplus(out[:, 1]) + 1e-3)

    model = fl.Model(normal)
    out: dict[str, Any] = {}
    for when, p in (("initial", params), ("trained", train(model, params, x, y, 3000, lr=0.05))):
        for kind in ("fisher", "ggn", "hessian"):
            dense = fl.curvature(model, p, y, x, kind=kind, structure="dense").to_dense().matrix
            w = np.linalg.eigvalsh(dense)
            # eigenvalues below -1e-9 of the largest: negative beyond rounding
            out[f"{when} {kind}"] = (float(w[0] / w[-1]), int(np.sum(w < -1e-9 * w[-1])))
    return out


def figure(spectra: dict[str, np.ndarray], path: Path) -> None:
    """The eigenvalue spectra of the classifier's curvatures (log scale; magnitudes of negatives)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for kind, w in spectra.items():
        ax.semilogy(np.arange(1, len(w) + 1), np.maximum(np.abs(w), 1e-12), label=kind, lw=1.5)
    ax.set_xlabel("eigenvalue index (descending)")
    ax.set_ylabel("|eigenvalue|")
    ax.set_title("Curvature spectra of a 2-16-3 classifier on three spirals")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)
    cls = classifier(args.steps)
    het = heteroscedastic()
    print(f"1. classifier: P = {cls['p']}, training accuracy {cls['accuracy']:.3f}")
    print("   trace:", ", ".join(f"{k} {v:.4g}" for k, v in cls["trace"].items()))
    print(
        "   relative Frobenius error against the dense Fisher:",
        ", ".join(f"{k} {v:.3f}" for k, v in cls["structures"].items()),
    )
    for kind, w in cls["spectra"].items():
        print(
            f"   {kind:9s} largest {w[0]:.4g}, smallest {w[-1]:.3g}, negative {int(np.sum(w < -1e-9 * w[0]))}"
        )
    for when in ("trained", "untrained"):
        cos, gap = cls[when]
        print(f"2. {when:9s}: ||K - F|| / ||F|| = {gap:.3f}; cosine(F^-1 g, K^-1 g) = {cos:.3f}")
    for label, (ratio, neg) in het.items():
        print(f"3. heteroscedastic, {label:15s}: smallest / largest eigenvalue {ratio:+.3g}, {neg} negative")
    args.out.mkdir(parents=True, exist_ok=True)
    figure(cls["spectra"], args.out / "spectra.svg")
    print(f"figure: {args.out / 'spectra.svg'}")
    return {"classifier": cls, "heteroscedastic": het}


if __name__ == "__main__":
    main()
