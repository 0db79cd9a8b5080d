"""Assembly of the self-contained HTML report.

Every string that comes from the user (parameter names, title, command line,
source, notes, the verdict) passes through :func:`html.escape`; figures are
inline SVG whose text Matplotlib escapes. The page loads nothing: no scripts,
no style sheets, fonts or images from elsewhere.
"""

from __future__ import annotations

import datetime
import html as _html
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FisherlabError
from .._format import format_pvalue
from .._options import CovKind, values
from .._precision import float64

if TYPE_CHECKING:
    from ..inference import CheckResult, FitResult

__all__ = ["build_html"]

# Kinds of covariance shown side by side, in this order.
# every covariance kind that needs no more input, in the enum's order (cluster needs the groups)
_KINDS = tuple(v for v in values(CovKind) if v != CovKind.CLUSTER.value)
_KIND_HELP = {
    CovKind.OBSERVED.value: "J⁻¹, J = −∇²ℓ (observed information)",
    CovKind.EXPECTED.value: "F⁻¹, F the expected Fisher information",
    CovKind.EMPIRICAL.value: "K⁻¹, K = Σ sᵢsᵢᵀ (outer product of scores)",
    CovKind.SANDWICH.value: "J⁻¹ K J⁻¹ (robust to misspecification)",
    CovKind.CLUSTER.value: "J⁻¹ (G/(G−1) Σ_g S_g S_gᵀ) J⁻¹, S_g the score sum of cluster g (robust to "
    "correlation within clusters)",
}
_INTERCEPTS = {"intercept", "(intercept)", "const", "bias"}
_MAX_PAIRED = 4  # parameters in the confidence-region panels (4 → 6 panels)
_PROFILE_MAX_P = 6  # 2-D profile contours only for this many parameters or fewer
_PROFILE_CI_MAX_P = 20  # 1-D profile intervals (two root searches per parameter) only up to this P
_PROFILE_MAX_COST = 0.05  # ... and when one objective evaluation with its Hessian costs under this (s)
_ERRORS = (FisherlabError, ValueError, ArithmeticError, NotImplementedError, np.linalg.LinAlgError)

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d2330; background: #fbfbfc; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 0.4rem 0 0.2rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #d8dce3; padding-bottom: 0.2rem; }
p.meta { color: #4a5468; margin: 0.2rem 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0.6rem 0; }
dl.facts dt { color: #4a5468; } dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.92rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e3e6eb; }
thead th { background: #eef1f5; text-align: right; font-weight: 600; }
thead th:first-child, tbody th { text-align: left; }
tbody th { font-weight: 600; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88rem; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums;
         font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
td.na { text-align: center; color: #8a93a5; }
.wrap { overflow-x: auto; }
figure { margin: 0.6rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #4a5468; font-size: 0.88rem; margin-top: 0.3rem; }
.verdict { padding: 0.5rem 0.8rem; border-left: 4px solid #1f5fa8; background: #eef4fb; }
.verdict.bad { border-color: #c0392b; background: #fbeeee; }
ul.notes li { margin: 0.2rem 0; }
footer { margin-top: 2.5rem; color: #5b6578; font-size: 0.85rem; border-top: 1px solid #d8dce3;
         padding-top: 0.6rem; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88rem; background: #eef1f5;
       padding: 0 0.2rem; word-break: break-all; }
"""


def _e(text: object) -> str:
    return _html.escape(str(text), quote=True)


def _num(v: float, fmt: str = ".6g") -> str:
    """A number for a table cell (``.6g``), with the non-finite spelled out."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return format(v, fmt)


def _p(v: float) -> str:
    return "—" if v is None or math.isnan(v) else _e(format_pvalue(v))


def _table(header: list[str], rows: list[tuple[str, list[str]]], *, cls: str = "") -> str:
    """A table whose first column is a row label; other cells are already-escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for label, cells in rows:
        tds = "".join(f'<td class="na">{c}</td>' if c == "—" else f'<td class="num">{c}</td>' for c in cells)
        body.append(f"<tr><th>{_e(label)}</th>{tds}</tr>")
    return (
        f'<div class="wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _paired(result: FitResult, z: np.ndarray) -> list[int]:
    """Parameters for the confidence-region panels: all when P ≤ 4, else the largest |z| non-intercepts."""
    p = len(result.names)
    if p <= _MAX_PAIRED:
        return list(range(p))
    others = [k for k in range(p) if result.names[k].strip().lower() not in _INTERCEPTS]
    if len(others) < _MAX_PAIRED:
        others = list(range(p))
    finite = np.where(np.isfinite(z), np.abs(z), -1.0)
    top = sorted(others, key=lambda k: -finite[k])[:_MAX_PAIRED]
    return sorted(top)


def _leading(vectors: np.ndarray, names: list[str]) -> list[str]:
    return [names[int(np.argmax(np.abs(vectors[:, k])))] for k in range(vectors.shape[1])]


def _combination(vector: np.ndarray, names: list[str], threshold: float = 1e-3) -> str:
    """A direction as ``"0.894·b − 0.447·a"`` (largest loading first and positive), escaped."""
    v = vector if vector[np.argmax(np.abs(vector))] >= 0 else -vector
    parts: list[str] = []
    for j in np.argsort(-np.abs(v)):
        if abs(v[j]) < threshold:
            break
        term = f"{abs(v[j]):.3g}·{_e(names[j])}"
        parts.append(term if not parts else f"{'−' if v[j] < 0 else '+'} {term}")
    return " ".join(parts)


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{_e(title)}</h2>{body}</section>'


@float64
def build_html(
    result: FitResult,
    *,
    check: CheckResult | None = None,
    check_error: str | None = None,
    title: str = "fisherlab report",
    command: str = "",
    source: str = "",
    level: float = 0.95,
    profile: bool = True,
    hc: str | None = None,
    groups: Any = None,
) -> str:
    r"""A self-contained HTML page describing a fit and its uncertainty.

    The page shows, in order: a header (title, data source, N, P,
    log-likelihood, convergence); the estimates table (estimate, observed
    standard error, z, two-sided p, Wald interval, and profile-likelihood
    interval when ``profile`` and P ≤ 20); standard errors side by side from the
    observed, expected, empirical (OPG) and sandwich covariances (a kind that
    cannot be computed shows "—" with the reason in a note); the correlation
    matrix (observed covariance) as a heatmap; pairwise joint confidence
    regions at ``level`` for up to four parameters (all when P ≤ 4, else the
    four non-intercept parameters of largest :math:`|z|`): Wald ellipses
    (:math:`\chi^2_2` radius) overlaid with two-parameter profile-likelihood
    contours, computed on a 25 × 25 grid by re-optimising the other
    parameters, only for P ≤ 6 when the fit is cheap, within a time budget
    (otherwise skipped with a note); the eigen-spectrum of the observed
    information with its condition number; the forecast (:mod:`._forecast`: Cramér–Rao
    standard errors for N, 2N and 4N rows of the observed design, its D-efficiency against
    the D-optimal design on the observed rows, a triangle plot of the forecast regions;
    a one-line note where it cannot be computed); the identity diagnostics of
    :func:`~fisherlab.check` (verdict, information-matrix test, score mean
    test, eigenvalues of :math:`J^{-1}K`; not run for N·P² > 2e7 unless
    ``check`` is given); the fit's notes; and a footer with the command,
    library versions and the UTC time.

    The page needs no network and no JavaScript: CSS is embedded, figures are
    inline SVG. Every user-supplied string is HTML-escaped.

    Cost (2-core CPU): about 1 s for P = 2 and 3 s for a 4-parameter fit on
    N = 300 once JAX has compiled the kernels; the first page for a model also
    compiles the batched objective of the contours and :func:`~fisherlab.check`'s
    kernels (a few seconds more). The contours stop after a 6 s budget (noted).
    Beyond the check, memory is O(N·P) (the scores of the empirical information);
    at N = 3.5 million rows and P = 11 the page adds about 4 s to the fit.

    Args:
        result: a :class:`~fisherlab.FitResult` (names may come from ``rename``).
        check: the identity diagnostics; ``None`` runs :func:`~fisherlab.check`
            on the fit's model, estimate and data (a failure is reported on the page)
            when N·P² ≤ 2e7; above that the check, whose per-row Hessians take O(N·P²)
            time and memory (gigabytes at millions of rows), is not run and the page
            says so: pass ``check=fl.check(...)`` to include it anyway.
        check_error: why the caller has no check (it failed, or was skipped): shown in
            the diagnostics section instead of running :func:`~fisherlab.check` when
            ``check`` is ``None`` (the command line passes its own reason, so a check it
            skipped or saw fail is not run again here).
        title: page title.
        command: the command line that produced the fit, shown in the footer.
        source: name of the data file, shown in the header.
        level: coverage of intervals and regions, in (0, 1).
        profile: compute profile-likelihood intervals and contours.
        hc: the sandwich column's ``hc`` type (``"HC0"`` .. ``"HC3"``; ``None``: HC0), as
            :meth:`~fisherlab.FitResult.cov` takes it.
        groups: cluster labels, one per fitted row: adds a cluster-robust column
            (``cov("cluster", groups=groups)``) to the standard errors by kind.

    Returns:
        The page, a ``str`` of HTML.

    Raises:
        ValueError: ``level`` outside (0, 1).
        SingularInformationError: the observed information is singular, so
            there are no standard errors to report.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab.report import build_html
        >>> y = np.random.default_rng(0).poisson(3.0, size=200)
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
        >>> res = fl.fit(m, y, init={"rate": 1.0})
        >>> page = build_html(res, title="counts", profile=False)
        >>> page.startswith("<!DOCTYPE html>"), "<script" in page
        (True, False)
    """
    import jax
    import matplotlib

    from .. import __version__
    from ..inference import AUTO_MAX_SIZE, check as run_check
    from ._figures import correlation_svg, ellipses_svg, spectrum_svg
    from ._forecast import forecast_body

    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"build_html: level must be in (0, 1), e.g. 0.95; got {level!r}")
    level = float(level)
    pct = f"{100 * level:g}%"
    names = list(result.names)
    p = len(names)
    page_notes: list[str] = []
    sections: list[str] = []

    # ---------------------------------------------------------------- estimates
    table = result.to_pandas("observed", level)
    stat = "t" if "t" in table.columns else "z"  # t tests where the fit has R's dispersion
    est, se, z, pv = (table[c].to_numpy(dtype=float) for c in ("estimate", "se", stat, "p"))
    lo, hi = table[f"lower {pct}"].to_numpy(dtype=float), table[f"upper {pct}"].to_numpy(dtype=float)
    prof_ci = None
    cheap, cost = True, 0.0
    if profile:
        probe = np.asarray(result.u, dtype=float) * (1.0 + 1e-9) + 1e-9  # a point not cached
        t0 = time.perf_counter()
        result.objective.value_and_grad(probe)
        result.objective.hessian(probe)
        cost = time.perf_counter() - t0
        cheap = cost < _PROFILE_MAX_COST
        if p > _PROFILE_CI_MAX_P or not cheap:
            why = (
                f"P = {p} > {_PROFILE_CI_MAX_P}"
                if p > _PROFILE_CI_MAX_P
                else f"one evaluation of the objective with its Hessian takes {cost:.2g} s, above "
                f"{_PROFILE_MAX_COST:g} s"
            )
            page_notes.append(f"profile-likelihood intervals not computed ({why}); Wald intervals only")
        else:
            try:
                prof_ci = result.conf_int(level, method="profile")
            except _ERRORS as exc:
                page_notes.append(f"profile-likelihood intervals unavailable ({_reason(exc)})")
    header = ["parameter", "estimate", "se", stat, "p", f"Wald {pct} lower", f"Wald {pct} upper"]
    if prof_ci is not None:
        header += [f"profile {pct} lower", f"profile {pct} upper"]
    rows = []
    for k, name in enumerate(names):
        cells = [_num(est[k]), _num(se[k]), _num(z[k], ".4g"), _p(pv[k]), _num(lo[k]), _num(hi[k])]
        if prof_ci is not None:
            cells += [_num(float(prof_ci["lower"].iloc[k])), _num(float(prof_ci["upper"].iloc[k]))]
        rows.append((name, cells))
    sections.append(
        _section(
            "estimates",
            "Estimates",
            _table(header, rows)
            + f"<p class=meta>Standard errors from the observed information; z and p test each "
            f"parameter = 0 (two-sided Wald). Intervals at {pct}"
            + ("; profile intervals are likelihood-ratio intervals." if prof_ci is not None else ".")
            + "</p>",
        )
    )

    # ---------------------------------------------------------------- se by kind
    se_by_kind: dict[str, dict[str, float] | None] = {}
    labels: dict[str, str] = {}
    kind_notes = []
    kinds = [*_KINDS, *([CovKind.CLUSTER.value] if groups is not None else [])]
    for kind in kinds:
        options: dict[str, Any] = {"hc": hc} if kind == CovKind.SANDWICH.value and hc is not None else {}
        if kind == CovKind.CLUSTER.value:
            options = {"groups": groups}
        try:
            cov = result.cov(kind, **options)
            se_by_kind[kind], labels[kind] = cov.se(), cov.method or kind
        except _ERRORS as exc:
            se_by_kind[kind], labels[kind] = None, kind
            kind_notes.append(f"<li><b>{_e(kind)}</b>: {_e(_reason(exc))}</li>")
    rows = [
        (name, [_num(se_by_kind[k][name]) if se_by_kind[k] is not None else "—" for k in kinds])  # type: ignore[index]
        for name in names
    ]
    legend = "".join(f"<li><b>{_e(labels[k])}</b>: {_e(_KIND_HELP[k])}</li>" for k in kinds)
    sections.append(
        _section(
            "standard-errors",
            "Standard errors by information kind",
            _table(["parameter", *(labels[k] for k in kinds)], rows)
            + f"<ul class=notes>{legend}</ul>"
            + (
                f"<p class=meta>Not available:</p><ul class=notes>{''.join(kind_notes)}</ul>"
                if kind_notes
                else ""
            )
            + "<p class=meta>Large gaps between columns (sandwich vs observed especially) point to "
            "misspecification; see the identity diagnostics below.</p>",
        )
    )

    # ---------------------------------------------------------------- correlation
    corr = result.cov("observed").corr().to_numpy()
    if p >= 2:
        sections.append(
            _section(
                "correlation",
                "Correlation of the estimates",
                f"<figure>{correlation_svg(names, corr)}<figcaption>Correlation matrix from the observed "
                "covariance J⁻¹.</figcaption></figure>",
            )
        )

    # ---------------------------------------------------------------- confidence regions
    if p >= 2:
        chosen = _paired(result, z)
        numeric = not result.vectorized
        do_profile = profile and p <= _PROFILE_MAX_P and cheap and not numeric
        svg, notes = ellipses_svg(result, chosen, level=level, profile=do_profile)
        if profile and not do_profile:
            why = (
                "the model has numeric derivatives: a contour grid would re-fit it hundreds of times"
                if numeric
                else f"P = {p} > {_PROFILE_MAX_P}"
                if p > _PROFILE_MAX_P
                else f"one evaluation of the objective with its Hessian takes {cost:.2g} s, above "
                f"{_PROFILE_MAX_COST:g} s"
            )
            notes = [f"profile-likelihood contours skipped ({why}); Wald ellipses only"]
        shown = ", ".join(f"<code>{_e(names[k])}</code>" for k in chosen)
        caption = (
            f"Joint {pct} confidence regions for each pair of {shown}"
            + ("" if len(chosen) == p else f" (the {len(chosen)} non-intercept parameters of largest |z|)")
            + (
                ": Wald ellipses from the observed covariance (solid) and two-parameter profile-likelihood "
                "regions, the other parameters re-optimised on a 25 × 25 grid (dashed); both use the χ²₂ "
                "threshold. A dashed curve that departs from the ellipse shows where the quadratic "
                "approximation fails."
                if do_profile
                else ": Wald ellipses from the observed covariance, with the χ²₂ threshold."
            )
        )
        extra = "".join(f"<li>{_e(n)}</li>" for n in notes)
        sections.append(
            _section(
                "regions",
                "Confidence regions",
                f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"
                + (f"<ul class=notes>{extra}</ul>" if extra else ""),
            )
        )

    # ---------------------------------------------------------------- spectrum
    try:
        info = result.information("observed")
        eig = info.eig()
        values = np.asarray(eig.values, dtype=float)
        vectors = eig.vectors.to_numpy()
        raw_cond = float(values[-1] / values[0]) if values[0] > 0 else math.inf
        smallest = _combination(vectors[:, 0], names)
        body = (
            f"<figure>{spectrum_svg(values, _leading(vectors, names))}<figcaption>Eigenvalues of the "
            "observed information J (total over rows), ascending; a small eigenvalue is a poorly identified "
            "direction.</figcaption></figure>"
            + "<dl class=facts>"
            + f"<dt>condition number (λmax/λmin)</dt><dd>{_num(raw_cond, '.4g')}</dd>"
            + f"<dt>scaled condition number</dt><dd>{_num(info.condition_number(), '.4g')} "
            "(of the correlation-scaled J: unit-free)</dd>"
            + f"<dt>weakest direction</dt><dd><code>{smallest}</code></dd></dl>"
        )
    except _ERRORS as exc:
        body = f"<p>Eigen-spectrum unavailable: {_e(_reason(exc))}</p>"
    sections.append(_section("spectrum", "Identifiability: eigen-spectrum of the observed information", body))

    # ---------------------------------------------------------------- forecast and design
    sections.append(_section("forecast", "Forecast and design", forecast_body(result)))

    # ---------------------------------------------------------------- diagnostics
    if check is None and not check_error:
        size = result.nobs * p**2
        if size > AUTO_MAX_SIZE:
            check_error = (
                f"skipped: N·P² = {size:.3g} is above {AUTO_MAX_SIZE:.0e} (fl.check keeps every row's "
                "P × P Hessian: O(N·P²) time and memory); run fl.check(model, params, y, x) and pass "
                "check=... to build_html, or fisherlab fit --check, to include it"
            )
        else:
            try:
                check = run_check(result.model, result.params, result.data.y, result.data.x)
            except _ERRORS as exc:
                check_error = _reason(exc)
    if check is not None:
        bad = check.verdict.upper().startswith("MISSPECIFIED") or check.im_test_pvalue <= check.alpha
        ratios = " ".join(_num(float(v), ".4g") for v in check.empirical_vs_observed)
        variant = "White 1982" if check.im_test_variant == "white" else "OPG (Chesher / Lancaster)"
        conds = ", ".join(f"{_e(k)} {_num(float(v), '.4g')}" for k, v in check.condition_numbers.items())
        body = (
            f'<p class="verdict{" bad" if bad else ""}">{_e(check.verdict)}</p>'
            + _table(
                ["test", "statistic", "df", "p"],
                [
                    (
                        f"information-matrix test ({variant}), p by {check.im_test_pvalue_method}",
                        [
                            _num(check.im_test_statistic, ".5g"),
                            str(check.im_test_df),
                            _p(check.im_test_pvalue),
                        ],
                    ),
                    *(
                        []
                        if check.im_test_pvalue_method == "asymptotic"
                        else [
                            (
                                "… the same, asymptotic χ² p (over-rejects at moderate N)",
                                [
                                    _num(check.im_test_statistic, ".5g"),
                                    str(check.im_test_df),
                                    _p(check.im_test_pvalue_asymptotic),
                                ],
                            )
                        ]
                    ),
                    (
                        "score mean test (E[s] = 0)",
                        [
                            _num(check.score_mean_statistic, ".5g"),
                            str(check.score_mean_df),
                            _p(check.score_mean_pvalue),
                        ],
                    ),
                ],
            )
            + "<dl class=facts>"
            + f"<dt>eigenvalues of J⁻¹K</dt><dd><code>{ratios}</code> (all ≈ 1 for a correct model; "
            "far from 1: sandwich and observed standard errors differ)</dd>"
            + f"<dt>scaled condition numbers</dt><dd>{conds}</dd>"
            + f"<dt>significance level</dt><dd>{_num(check.alpha, 'g')}</dd></dl>"
        )
    else:
        body = f"<p>Identity diagnostics unavailable: {_e(check_error)}</p>"
    sections.append(_section("diagnostics", "Identity diagnostics", body))

    # ---------------------------------------------------------------- notes
    all_notes = [*result.notes, *page_notes]
    if all_notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in all_notes)
        sections.append(_section("notes", "Notes", f"<ul class=notes>{items}</ul>"))

    # ---------------------------------------------------------------- header, footer
    fit_kind = "maximum a posteriori" if result.prior is not None else "maximum likelihood"
    facts = [
        ("data", _e(source) if source else "—"),
        ("observations N", str(result.nobs)),
        ("parameters P", str(p)),
        ("log-likelihood", _num(result.loglik, ".10g")),
        (
            "fit",
            f"{fit_kind}, {'converged' if result.converged else 'NOT converged'} in {result.n_iter} "
            f"iterations ({_e(result.method)}, Newton decrement {result.decrement:.1e})",
        ),
    ]
    head = (
        f"<header><h1>{_e(title)}</h1><dl class=facts>"
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl></header>"
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    footer = (
        "<footer>"
        + (f"<p>command: <code>{_e(command)}</code></p>" if command else "")
        + f"<p>fisherlab {_e(__version__)} · jax {_e(jax.__version__)} · numpy {_e(np.__version__)} · "
        f"matplotlib {_e(matplotlib.__version__)} · produced {now}</p></footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{head}{''.join(sections)}{footer}</main></body></html>\n"
    )
