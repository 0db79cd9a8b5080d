"""The README's Quick start example reproduces R's glm on the Challenger data."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import statsmodels.api as sm

import fisherlab as fl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_and_matches_r(capsys) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    # R: glm(incident ~ temperature, binomial, data = challenger) -> 15.0429 (7.3786), -0.2322 (0.1082)
    assert "15.0429" in out and "7.37864" in out and "-0.232163" in out and "0.108237" in out
    assert "consistent with the model" in out


def test_challenger_against_statsmodels() -> None:
    df = fl.datasets.challenger()
    X = sm.add_constant(df["temperature"].to_numpy(float))
    y = df["incident"].to_numpy(float)
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, disp=False)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
    params = {"beta": ref.params}
    # Standard errors from the inverse observed information at the statsmodels MLE.
    se = np.array(list(fl.observed_information(model, params, y, X).se().values()))
    np.testing.assert_allclose(se, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(fl.score(model, params, y, X).sum(0), 0.0, atol=1e-8)
