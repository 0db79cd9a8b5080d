"""The HTML report: content, escaping, self-containedness, atomic writing, and a headless-browser render."""

from __future__ import annotations

import html
import os
import pathlib
import subprocess
import sys
from html.parser import HTMLParser

import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl
from browser_support import MIN_PIXEL_STD, console_errors, headless, pixels
from fisherlab.report import build_html, write_report

EVIL = "<script>alert(1)</script>"
KINDS = ("observed", "expected", "empirical", "sandwich")
PROFILE_STROKE = "#d9730d"  # colour of the profile-likelihood contours (report._figures.PROFILE_COLOR)


def _logistic() -> fl.Model:
    return fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))


@pytest.fixture(scope="module")
def challenger() -> fl.FitResult:
    d = fl.datasets.challenger()
    x = np.column_stack([np.ones(len(d)), d["temperature"].to_numpy(float)])
    res = fl.fit(_logistic(), d["incident"].to_numpy(float), x, init={"beta": jnp.zeros(2)})
    return res.rename(["Intercept", "temperature"])


@pytest.fixture(scope="module")
def poisson3() -> fl.FitResult:
    rng = np.random.default_rng(7)
    n = 200
    group = rng.integers(0, 2, size=n)
    x = np.column_stack([np.ones(n), rng.normal(size=n), group])
    y = rng.poisson(np.exp(0.4 + 0.3 * x[:, 1] - 0.5 * x[:, 2]))
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
    res = fl.fit(model, y.astype(float), x, init={"beta": jnp.zeros(3)})
    return res.rename(["Intercept", "x1", "C(group)[T.b]"])


@pytest.fixture(scope="module")
def page(challenger: fl.FitResult) -> str:
    return build_html(
        challenger,
        title="Challenger O-rings",
        command="fisherlab fit challenger.csv",
        source="challenger.csv",
    )


@pytest.fixture(scope="module")
def page3(poisson3: fl.FitResult) -> str:
    return build_html(poisson3, title="three parameters", source="counts.csv")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


# ---------------------------------------------------------------------------- content
def test_sections_present(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    for ident in (
        "estimates",
        "standard-errors",
        "correlation",
        "regions",
        "spectrum",
        "forecast",
        "diagnostics",
    ):
        assert f'<section id="{ident}">' in page, ident
    assert "<footer>" in page and "produced" in page and "UTC" in page
    assert f"fisherlab {fl.__version__}" in page
    assert page.count("<svg") == 4  # correlation, confidence regions, eigen-spectrum, forecast triangle


def test_numbers_match_the_result(challenger: fl.FitResult, page: str) -> None:
    for kind in KINDS:
        for name, se in challenger.se(kind).items():
            assert f"{se:.6g}" in page, (kind, name)
    for name, value in zip(challenger.names, challenger.flat_params, strict=True):
        assert f"{value:.6g}" in page, name
    ci = challenger.conf_int(0.95, method="profile")
    for value in ci.to_numpy().ravel():
        assert f"{value:.6g}" in page
    assert f"{challenger.loglik:.10g}" in page
    assert f"<dd>{challenger.nobs}</dd>" in page


def test_header_and_footer_text(page: str) -> None:
    text = " ".join(_parse(page).text)
    assert "Challenger O-rings" in text
    assert "challenger.csv" in text
    assert "fisherlab fit challenger.csv" in text
    assert "converged" in text


def test_diagnostics_match_check(challenger: fl.FitResult, page: str) -> None:
    d = fl.check(challenger.model, challenger.params, challenger.data.y, challenger.data.x)
    assert html.escape(d.verdict) in page
    assert f"{d.im_test_statistic:.5g}" in page
    for v in d.empirical_vs_observed:
        assert f"{v:.4g}" in page


def test_given_check_is_used(challenger: fl.FitResult) -> None:
    d = fl.check(challenger.model, challenger.params, challenger.data.y, challenger.data.x, alpha=0.01)
    page = build_html(challenger, check=d, profile=False)
    assert "<dd>0.01</dd>" in page  # the level of this CheckResult, not the default 0.05


def test_profile_contours_drawn_only_when_asked(challenger: fl.FitResult, page: str) -> None:
    assert PROFILE_STROKE in page
    plain = build_html(challenger, profile=False)
    assert PROFILE_STROKE not in plain
    assert "profile-likelihood contours not computed" in plain
    assert "profile 95% lower" not in plain and "profile 95% lower" in page


def test_three_parameters(poisson3: fl.FitResult, page3: str) -> None:
    assert "C(group)[T.b]" in page3
    for kind in KINDS:
        for se in poisson3.se(kind).values():
            assert f"{se:.6g}" in page3
    assert PROFILE_STROKE in page3
    assert "contours skipped" not in page3


def test_unavailable_kind_and_check_shown_with_reason() -> None:
    # A model from a log-likelihood has no expected Fisher (no sampler); 8 rows are too few for check.
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(8), rng.normal(size=8), rng.normal(size=8)])
    y = rng.poisson(2.0, size=8).astype(float)

    def ll(th: dict, y: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        eta = x @ th["beta"]
        return y * eta - jnp.exp(eta)

    res = fl.fit(fl.Model.from_loglik(ll), y, x, init={"beta": jnp.zeros(3)})
    page = build_html(res, profile=False)
    assert '<td class="na">—</td>' in page
    assert "MethodUnavailableError" in page
    assert "Identity diagnostics unavailable: InvalidDataError" in page


def test_level_is_validated(challenger: fl.FitResult) -> None:
    with pytest.raises(ValueError, match="level"):
        build_html(challenger, level=1.5)


@pytest.mark.slow  # > 7 s: keeps the default suite within its budget
def test_many_parameters_pick_top_and_skip_profile_contours() -> None:
    rng = np.random.default_rng(11)
    n, k = 400, 6
    x = np.column_stack([np.ones(n), rng.normal(size=(n, k))])
    beta = np.array([0.2, 0.0, 0.5, -0.4, 0.02, 0.3, -0.6])
    y = rng.poisson(np.exp(x @ beta)).astype(float)
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
    res = fl.fit(model, y, x, init={"beta": jnp.zeros(k + 1)})
    res = res.rename(["Intercept", *(f"x{j}" for j in range(1, k + 1))])
    page = build_html(res)
    z = np.abs(res.to_pandas()["z"].drop("Intercept"))
    top = sorted(z.sort_values(ascending=False).index[:4], key=res.names.index)
    caption = page.split('<section id="regions">', 1)[1].split("</figcaption>", 1)[0]
    assert ", ".join(f"<code>{name}</code>" for name in top) in caption
    assert "profile-likelihood contours skipped (P = 7 &gt; 6)" in page
    assert PROFILE_STROKE not in page


# ---------------------------------------------------------------------------- large N
def _poisson_fit(n: int, k: int, seed: int) -> fl.FitResult:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), 0.3 * rng.normal(size=(n, k))])
    beta = np.concatenate([[0.5], 0.2 * rng.normal(size=k)])
    y = rng.poisson(np.exp(x @ beta)).astype(float)
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
    res = fl.fit(model, y, x, init={"beta": jnp.zeros(k + 1)})
    return res.rename(["Intercept", *(f"x{j}" for j in range(1, k + 1))])


def _no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("build_html ran fl.check")

    monkeypatch.setattr(fl.inference, "check", refuse)


def _assert_numbers_match(res: fl.FitResult, page: str) -> None:
    table = res.to_pandas("observed", 0.95)
    for column in ("estimate", "se", "lower 95%", "upper 95%"):
        for value in table[column]:
            assert f"{value:.6g}" in page, column
    for kind in KINDS:
        for name, se in res.se(kind).items():
            assert f"{se:.6g}" in page, (kind, name)
    assert f"{res.loglik:.10g}" in page
    assert f"<dd>{res.nobs}</dd>" in page


@pytest.fixture(scope="module")
def poisson50k() -> fl.FitResult:
    return _poisson_fit(50_000, 3, seed=21)


def test_large_n_runs_check_below_the_limit(poisson50k: fl.FitResult) -> None:
    # N·P² = 8e5 <= 2e7: the identity check runs, and the page shows its numbers
    page = build_html(poisson50k, profile=False)
    _assert_numbers_match(poisson50k, page)
    d = fl.check(poisson50k.model, poisson50k.params, poisson50k.data.y, poisson50k.data.x)
    assert html.escape(d.verdict) in page
    assert f"{d.im_test_statistic:.5g}" in page
    assert page.count("<svg") == 4  # with the forecast's triangle plot


def test_large_n_skips_check_above_the_limit(
    poisson50k: fl.FitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above the N·P² limit the O(N·P²) check is not run (it took 20 GB at 3.5 million rows); the
    # page says why, and every other number is the FitResult's.
    monkeypatch.setattr(fl.inference, "AUTO_MAX_SIZE", 1e5)
    _no_check(monkeypatch)
    page = build_html(poisson50k, profile=False)
    assert "Identity diagnostics unavailable: skipped: N·P² = 8e+05 is above 1e+05" in page
    assert "fisherlab fit --check" in page
    _assert_numbers_match(poisson50k, page)
    assert page.count("<svg") == 4  # with the forecast's triangle plot
    given = fl.check(poisson50k.model, poisson50k.params, poisson50k.data.y, poisson50k.data.x)
    assert f"{given.im_test_statistic:.5g}" in build_html(poisson50k, check=given, profile=False)


def test_check_error_is_shown_and_check_not_rerun(
    challenger: fl.FitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_check(monkeypatch)
    page = build_html(challenger, check_error=f"skipped: {EVIL}", profile=False)
    assert f"Identity diagnostics unavailable: skipped: {html.escape(EVIL)}</p>" in page
    assert "<script" not in page


def test_check_skipped_at_the_real_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _poisson_fit(200_000, 10, seed=3)  # N·P² = 2.42e7 > 2e7
    _no_check(monkeypatch)
    page = build_html(res, profile=False)
    assert "skipped: N·P² = 2.42e+07 is above 2e+07" in page
    _assert_numbers_match(res, page)


# ---------------------------------------------------------------------------- profile contours
PROFILE_RTOL = 1e-6  # Newton stops at a decrement of 1e-5 standard errors: deviance error ~1e-10


def test_profile_grid_is_the_wald_form_for_a_quadratic_likelihood() -> None:
    # Normal regression with known scale: the log-likelihood is exactly quadratic in beta, so the
    # profile deviance of a pair is the Wald quadratic form of the pair's observed covariance.
    from fisherlab.inference import profile_grid

    rng = np.random.default_rng(5)
    x = np.column_stack([np.ones(60), rng.normal(size=60), rng.normal(size=60)])
    y = x @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=60)
    model = fl.Model(lambda th, x: fl.dist.Normal(x @ th["beta"], 1.0))
    res = fl.fit(model, y, x, init={"beta": jnp.zeros(3)})
    pg = profile_grid(res, 0, 2, n=9)
    assert pg is not None
    cov = res.cov().matrix[np.ix_([0, 2], [0, 2])]
    d = np.stack([pg.x - res.flat_params[0], pg.y - res.flat_params[2]], axis=-1)
    wald = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(pg.deviance, wald, rtol=PROFILE_RTOL, atol=1e-8)


def test_profile_grid_matches_an_independent_reoptimisation(poisson3: fl.FitResult) -> None:
    import scipy.optimize

    from fisherlab.inference import profile_grid

    pg = profile_grid(poisson3, 0, 2, n=7)
    assert pg is not None
    obj, u_hat = poisson3.objective, np.asarray(poisson3.u)
    f0 = obj.value(u_hat)
    for i, j in [(0, 0), (3, 3), (1, 5), (6, 2)]:

        def f(rest: np.ndarray, i: int = i, j: int = j) -> float:
            return obj.value(np.array([pg.x[i, j], rest[0], pg.y[i, j]]))

        best = scipy.optimize.minimize(
            f, u_hat[[1]], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
        )
        np.testing.assert_allclose(pg.deviance[i, j], 2 * (best.fun - f0), rtol=PROFILE_RTOL, atol=1e-9)


# ---------------------------------------------------------------------------- safety
def test_user_strings_are_escaped(challenger: fl.FitResult) -> None:
    evil = challenger.rename([EVIL, 'a&b "q" $x$'])
    page = build_html(
        evil, title=f"t {EVIL}", command=f"fit --formula '{EVIL}'", source=f"{EVIL}.csv", profile=True
    )
    assert "<script" not in page.lower()
    assert html.escape(EVIL) in page  # the table cells
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.split("<svg", 1)[1]  # Matplotlib's SVG text
    assert "a&amp;b &quot;q&quot; $x$" in page
    parsed = _parse(page)
    assert "script" not in parsed.tags
    assert EVIL in "".join(parsed.text)  # shown as text, in the header, tables, figures and footer


def test_self_contained(page: str, page3: str) -> None:
    for p in (page, page3):
        parsed = _parse(p)
        lowered = p.lower()
        assert "http:" not in lowered and "https:" not in lowered and "//" not in lowered
        assert not {"script", "link", "iframe", "object", "embed", "img", "base"} & set(parsed.tags)
        assert not [name for name, _ in parsed.attrs if name.startswith("on")]  # no event handlers
        assert "@import" not in lowered
        assert lowered.count("url(") == lowered.count("url(#")  # only references inside the page
        refs = [v or "" for name, v in parsed.attrs if name in ("href", "xlink:href", "src")]
        assert refs and all(r.startswith(("#", "data:image/png;base64,")) for r in refs), refs[:5]


def test_import_has_no_matplotlib_side_effect() -> None:
    code = "import sys, fisherlab.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- writing
def test_write_report_atomic_and_no_overwrite(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "report.html"
    assert write_report(target, "<p>one</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>one</p>"
    with pytest.raises(fl.OutputExistsError, match="--force") as info:
        write_report(target, "<p>two</p>")
    assert "report.html" in str(info.value)
    assert target.read_text(encoding="utf-8") == "<p>one</p>"
    write_report(str(target), "<p>two ✓</p>", force=True)
    assert target.read_text(encoding="utf-8") == "<p>two ✓</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary left


def test_write_report_failure_keeps_old_file(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.html"
    target.write_text("old", encoding="utf-8")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, "new", force=True)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_write_report_missing_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fl.FisherlabError, match="does not exist"):
        write_report(tmp_path / "nope" / "r.html", "x")
    with pytest.raises(fl.FisherlabError, match="directory"):
        write_report(tmp_path, "x", force=True)


# ---------------------------------------------------------------------------- browser
def test_renders_in_headless_chromium(page3: str, tmp_path: pathlib.Path) -> None:
    report = write_report(tmp_path / "report.html", page3)
    shot = tmp_path / "shot.png"
    size = "--window-size=1280,2000"
    out = headless(report.resolve().as_uri(), f"--screenshot={shot}", size, workdir=tmp_path)
    assert console_errors(out.stderr) == []
    image = pixels(shot)
    assert image.shape[0] == 2000 and image.shape[1] == 1280
    assert float(image[..., :3].std()) > MIN_PIXEL_STD


def test_small_correlation_heatmap_shows_three_decimals(challenger: fl.FitResult, page: str) -> None:
    cov = challenger.cov().matrix
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert f">{corr:.3f}<" in page or f"{corr:.3f}" in page


def test_notebook_html_of_results_matrices_checks_and_laplace(challenger: fl.FitResult) -> None:
    # _repr_html_ for Jupyter: the same numbers as the objects, names escaped.
    res = challenger.rename(["<b>Intercept</b>", "temperature"])
    page = res._repr_html_()
    assert "&lt;b&gt;Intercept&lt;/b&gt;" in page and "<b>Intercept" not in page
    for name, se in res.se().items():
        assert f"{se:.6g}" in page, name
    J = res.information("observed")
    assert f"{J.matrix[0, 0]:.6g}" in J._repr_html_() and "&lt;b&gt;" in J._repr_html_()
    la = res.laplace()
    assert f"{np.sqrt(la.cov.matrix[1, 1]):.6g}" in la._repr_html_()
    d = fl.check(res.model, res.params, res.data.y, res.data.x, pvalue="asymptotic")
    assert d._repr_html_().startswith("<pre>") and "verdict" in d._repr_html_()
