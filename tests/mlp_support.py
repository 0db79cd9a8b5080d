"""The small tanh MLP with a softmax head that the curvature tests share."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

import fisherlab as fl

__all__ = ["mlp_net", "small_mlp"]


def mlp_net(th: Any, x: Any) -> Any:
    """Logits of a one-hidden-layer tanh network: ``tanh(x W1 + b1) W2 + b2``."""
    return jnp.tanh(x @ th["l1"]["w"] + th["l1"]["b"]) @ th["l2"]["w"] + th["l2"]["b"]


def small_mlp(
    n: int, d: int, h: int, k: int, seed: int
) -> tuple[fl.Model, dict[str, Any], np.ndarray, np.ndarray]:
    """``(model, params, x, y)``: ``n`` standard-normal inputs of ``d`` features, ``k`` random
    labels, random ``d``-``h``-``k`` weights (seeded), a Categorical head on :func:`mlp_net`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n).astype(np.int32)
    params = {
        "l1": {"w": jnp.asarray(rng.normal(size=(d, h)) * 0.7), "b": jnp.asarray(rng.normal(size=h) * 0.1)},
        "l2": {"w": jnp.asarray(rng.normal(size=(h, k)) * 0.7), "b": jnp.asarray(rng.normal(size=k) * 0.1)},
    }
    model = fl.Model(lambda th, xx: fl.dist.Categorical(logits=mlp_net(th, xx)))
    return model, params, x, y
