"""Quick start: how well do 23 Space Shuttle launches pin down O-ring risk versus temperature?

Logistic regression of an O-ring incident on launch temperature (the bundled
Challenger data): the maximum-likelihood fit, its uncertainty four ways
(observed and expected information, the empirical Fisher, the sandwich), a
profile-likelihood interval, a derived quantity by the delta method, and the
identity diagnostics (is the model consistent with the data?).

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd

import fisherlab as fl


def main() -> None:
    df = fl.datasets.challenger()
    X = np.column_stack([np.ones(len(df)), df["temperature"].to_numpy(float)])
    y = df["incident"].to_numpy(float)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))

    res = fl.fit(model, y, X, init={"beta": np.zeros(2)})
    print("Challenger O-rings: P(incident) = logistic(b0 + b1 * temperature)\n")
    print(res.summary())

    kinds = ["observed", "expected", "empirical", "sandwich"]
    table = pd.DataFrame({f"se ({k})": list(res.se(k).values()) for k in kinds}, index=res.names)
    print("\nstandard errors by kind of information:")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))

    print("\n95% profile-likelihood intervals (asymmetric, like R's confint):")
    print(res.conf_int(method="profile").to_string(float_format=lambda v: f"{v:.4f}"))

    p31 = res.derived(lambda th: 1 / (1 + jnp.exp(-(th["beta"][0] + 31.0 * th["beta"][1]))))
    print(f"\nP(incident) at 31 °F, Challenger's launch: {p31.estimate:.4f} (delta-method se {p31.se:.4f})")

    print("\nidentity diagnostics:", fl.check(model, res.params, y, X).verdict)


if __name__ == "__main__":
    main()
