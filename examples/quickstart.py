"""Quick start: how well do 23 Space Shuttle launches pin down O-ring risk versus temperature?

Logistic regression of an O-ring incident on launch temperature (the bundled
Challenger data), fitted by Newton's method with fisherlab's score and observed
information, then the uncertainty three ways: observed information, expected
(Fisher) information and the empirical Fisher (outer product of scores).

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import fisherlab as fl


def main() -> None:
    df = fl.datasets.challenger()
    X = np.column_stack([np.ones(len(df)), df["temperature"].to_numpy(float)])
    y = df["incident"].to_numpy(float)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))

    # Newton-Raphson on the log-likelihood: beta <- beta + J^-1 (sum of scores).
    params = {"beta": np.zeros(2)}
    for step in range(50):
        grad = fl.score(model, params, y, X).sum(axis=0)
        J = fl.observed_information(model, params, y, X)
        delta = np.linalg.solve(J.matrix, grad)
        params = {"beta": params["beta"] + delta}
        if np.max(np.abs(delta)) < 1e-12:
            break
    print(f"Challenger O-rings: logistic regression, {len(y)} launches, Newton converged in {step + 1} steps")
    print(f"log-likelihood {fl.loglik(model, params, y, X).sum():.4f}\n")

    names = ["Intercept", "temperature"]
    kinds = {
        "observed": fl.observed_information(model, params, y, X),
        "expected": fl.fisher(model, params, X),
        "empirical": fl.empirical_fisher(model, params, y, X),
    }
    table = pd.DataFrame(
        {"estimate": params["beta"], **{f"se ({k})": list(F.se().values()) for k, F in kinds.items()}},
        index=names,
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))

    # The founding identities at the estimate: mean score 0; observed = expected for a canonical link.
    s = fl.score(model, params, y, X)
    print(f"\nsum of scores at the MLE: {np.abs(s.sum(axis=0)).max():.1e}  (should be 0)")
    gap = np.max(np.abs(kinds["observed"].matrix - kinds["expected"].matrix))
    print(f"max |observed - expected information|: {gap:.1e}  (0 for the canonical logit link)")
    p31 = 1 / (1 + np.exp(-(params["beta"] @ [1.0, 31.0])))
    print(f"\nfitted probability of an O-ring incident at 31 °F (Challenger's launch): {p31:.4f}")


if __name__ == "__main__":
    main()
