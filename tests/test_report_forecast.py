"""The report's forecast section: Cramér–Rao forecasts, the observed design's D-efficiency, the triangle plot.

Oracles: the public functions the section renders, called here on the same fit —
``fl.fisher`` (standard errors √diag (kF)⁻¹ with NumPy's inverse), ``fl.design.optimal`` on the
distinct observed rows and ``fl.design.efficiency`` of ``F / N`` against it.
"""

from __future__ import annotations

import html
import re

import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl
from fisherlab._format import format_number
from fisherlab.report import _forecast, build_html


def _logistic() -> fl.Model:
    return fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))


def _section(page: str) -> str:
    match = re.search(r'<section id="forecast">(.*?)</section>', page, flags=re.S)
    assert match is not None, "no forecast section"
    return match.group(1)


def _text(section: str) -> str:
    """The section without its SVG, entities decoded."""
    return html.unescape(re.sub(r"<svg.*?</svg>", "", section, flags=re.S))


@pytest.fixture(scope="module")
def challenger() -> fl.FitResult:
    d = fl.datasets.challenger()
    x = np.column_stack([np.ones(len(d)), d["temperature"].to_numpy(float)])
    res = fl.fit(_logistic(), d["incident"].to_numpy(float), x, init={"beta": jnp.zeros(2)})
    return res.rename(["Intercept", "temperature"])


@pytest.fixture(scope="module")
def section(challenger: fl.FitResult) -> str:
    return _section(build_html(challenger, profile=False, check_error="not run in this test"))


def test_cramer_rao_forecast_matches_fisher(challenger: fl.FitResult, section: str) -> None:
    x = np.asarray(challenger.data.x)
    F = fl.fisher(challenger.model, challenger.params, x).matrix
    text = _text(section)
    for k in (1, 2, 4):
        se = np.sqrt(np.diag(np.linalg.inv(k * F)))
        for value in se:
            assert format_number(float(value)) in text, (k, value)
    assert "se, N = 23 rows" in text and "se, 2N = 46 rows" in text and "se, 4N = 92 rows" in text


def test_d_efficiency_matches_the_design_functions(challenger: fl.FitResult, section: str) -> None:
    x = np.asarray(challenger.data.x)
    n = x.shape[0]
    F = fl.fisher(challenger.model, challenger.params, x)
    _, first = np.unique(x, axis=0, return_index=True)
    d = fl.design.optimal(challenger.model, challenger.params, x[np.sort(first)])
    eff = fl.design.efficiency(F / n, d.info, "D")
    assert 0.0 < eff <= 1.0
    text = _text(section)
    assert f"D-efficiency of the observed design{format_number(eff)}" in re.sub(r"\s*<[^>]+>\s*", "", section)
    assert f"the {np.unique(x, axis=0).shape[0]} distinct observed covariate rows" in text
    for w in d.weights:
        assert format_number(float(w)) in text
    # the support's covariate columns are named by the coefficients they multiply
    assert "<th>Intercept</th><th>temperature</th><th>weight</th>" in section


def test_triangle_svg_is_embedded(section: str) -> None:
    assert section.count("<svg") == 1
    svg = section[section.index("<svg") : section.index("</svg>")]
    assert "23 rows:1sigma" in svg and "92 rows:2sigma" in svg  # the ellipses' gids, one per matrix and level
    assert "<figcaption>Forecast 1σ and 2σ regions" in section


def test_model_without_covariates_gets_a_note() -> None:
    y = np.random.default_rng(0).poisson(3.0, size=100)
    res = fl.fit(fl.Model(lambda th, x: fl.dist.Poisson(th["rate"])), y, init={"rate": 1.0})
    section = _section(build_html(res, profile=False, check_error="not run"))
    text = _text(section)
    assert "Forecast skipped: the model has no covariates" in text
    assert "<svg" not in section and "<table" not in section
    assert text.count("Forecast skipped") == 1


def test_model_without_an_exact_fisher_gets_a_note() -> None:
    x = np.linspace(0.0, 1.0, 40)
    y = 1.0 + 2.0 * x + np.random.default_rng(1).normal(size=40)
    model = fl.Model.from_loglik(lambda th, y, x: -0.5 * (y - th["a"] - th["b"] * x) ** 2)
    res = fl.fit(model, y, x, init={"a": 0.0, "b": 0.0})
    text = _text(_section(build_html(res, profile=False, check_error="not run")))
    assert "Forecast skipped: no exact expected Fisher information for this model" in text


def test_many_rows_are_subsampled_deterministically(
    challenger: fl.FitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_forecast, "MAX_CANDIDATES", 10)
    first = _text(_forecast.forecast_body(challenger))
    assert "a deterministic subsample of 10 of the 16 distinct observed covariate rows" in first
    assert _text(_forecast.forecast_body(challenger)) == first
    x = np.asarray(challenger.data.x)
    _, index = np.unique(x, axis=0, return_index=True)
    keep = np.sort(np.random.default_rng(0).choice(np.sort(index), 10, replace=False))
    d = fl.design.optimal(challenger.model, challenger.params, x[keep])
    eff = fl.design.efficiency(fl.fisher(challenger.model, challenger.params, x) / x.shape[0], d.info, "D")
    assert format_number(eff) in first


def test_a_failure_never_fails_the_report(challenger: fl.FitResult, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(_forecast, "_distinct_rows", broken)
    section = _section(build_html(challenger, profile=False, check_error="not run"))
    assert "Forecast skipped: RuntimeError: boom" in _text(section)
    monkeypatch.setattr(
        _forecast, "_distinct_rows", lambda *a: (_ for _ in ()).throw(fl.FisherlabError("no"))
    )
    section = _section(build_html(challenger, profile=False, check_error="not run"))
    assert "Design efficiency unavailable: FisherlabError: no" in _text(section)
    assert "Cramér–Rao forecast" in _text(section) and "<svg" in section
