"""Rich tables and JSON documents for the command line's results (the faces print, the core never does)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fisherlab._format import format_pvalue
from fisherlab._options import IMTestVariant

__all__ = ["check_dict", "check_table", "dump_json", "info_table", "stdout_console"]


# The papers each information-matrix test variant comes from.
_IM_TEST_SOURCES = {
    IMTestVariant.WHITE: "White 1982",
    IMTestVariant.OPG: "OPG (Chesher 1983, Lancaster 1984)",
}


def stdout_console() -> Console:
    """The console for results: the terminal's width, or 200 columns when piped (no truncation)."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, NaN/inf to ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def dump_json(doc: dict[str, Any]) -> str:
    """One JSON object on one line (NaN and infinities become ``null``)."""
    return json.dumps(_clean(doc), allow_nan=False)


def check_dict(chk: Any) -> dict[str, Any]:
    """The identity diagnostics of ``fl.check`` as plain data."""

    def eig(v: Any) -> Any:
        return None if v is None else np.asarray(v).tolist()

    return {
        "verdict": chk.verdict,
        "n": chk.n,
        "score_mean_statistic": chk.score_mean_statistic,
        "score_mean_df": chk.score_mean_df,
        "score_mean_pvalue": chk.score_mean_pvalue,
        "im_test_statistic": chk.im_test_statistic,
        "im_test_df": chk.im_test_df,
        "im_test_pvalue": chk.im_test_pvalue,
        "im_test_pvalue_asymptotic": chk.im_test_pvalue_asymptotic,
        "im_test_pvalue_method": chk.im_test_pvalue_method,
        "im_test_pvalue_se": chk.im_test_pvalue_se,
        "im_test_pvalue_note": chk.im_test_pvalue_note,
        "at_mle": chk.at_mle,
        "im_test_variant": chk.im_test_variant,
        "im_test_dropped": [list(p) for p in chk.im_test_dropped],
        "eig_empirical_vs_observed": eig(chk.empirical_vs_observed),
        "eig_empirical_vs_expected": eig(chk.empirical_vs_expected),
        "eig_observed_vs_expected": eig(chk.observed_vs_expected),
        "condition_numbers": dict(chk.condition_numbers),
    }


def check_table(chk: Any, console: Console) -> None:
    """Print the identity diagnostics in full: tests, eigenvalue ratios, condition numbers, verdict."""
    tests = Table(title=f"identity diagnostics: N = {chk.n}, P = {len(chk.names)}", title_justify="left")
    for col in ("test", "statistic", "df", "p-value", "note"):
        tests.add_column(col, justify="left" if col in ("test", "note") else "right")
    tests.add_row(
        escape("score mean (E[s] = 0)"),
        f"{chk.score_mean_statistic:.4g}",
        str(chk.score_mean_df),
        format_pvalue(chk.score_mean_pvalue),
        "Hotelling-type, chi2(P)",
    )
    variant = _IM_TEST_SOURCES[IMTestVariant(chk.im_test_variant)]
    dropped = (
        f"; left out: {', '.join(f'({a}, {b})' for a, b in chk.im_test_dropped)}"
        if chk.im_test_dropped
        else ""
    )
    se = f", Monte-Carlo se {chk.im_test_pvalue_se:.2g}" if chk.im_test_pvalue_se is not None else ""
    tests.add_row(
        escape("information matrix (E[ss' + H] = 0)"),
        f"{chk.im_test_statistic:.4g}",
        str(chk.im_test_df),
        format_pvalue(chk.im_test_pvalue),
        escape(f"{variant}; p-value: {chk.im_test_pvalue_method}{se}{dropped}"),
    )
    if chk.im_test_pvalue_method != "asymptotic":
        tests.add_row(
            escape("  same, asymptotic chi2 p-value"),
            "",
            "",
            format_pvalue(chk.im_test_pvalue_asymptotic),
            escape("White's chi2(df); over-rejects below N≈10,000 (not used for the verdict)"),
        )
    console.print(tests)
    if chk.im_test_pvalue_note:
        console.print(f"note: {chk.im_test_pvalue_note}", markup=False, highlight=False)
    eig = Table(
        title="curvature gap: generalised eigenvalues (all near 1 for a correct model)", title_justify="left"
    )
    eig.add_column("ratio")
    eig.add_column("eigenvalues (ascending)")
    for label, values in (
        ("J⁻¹K  empirical / observed", chk.empirical_vs_observed),
        ("F⁻¹K  empirical / expected", chk.empirical_vs_expected),
        ("F⁻¹J  observed / expected", chk.observed_vs_expected),
    ):
        eig.add_row(
            label, "n/a (no expected Fisher)" if values is None else " ".join(f"{v:.4g}" for v in values)
        )
    console.print(eig)
    numbers = ", ".join(f"{k} {v:.3g}" for k, v in chk.condition_numbers.items())
    console.print(f"condition numbers (scaled): {numbers}", markup=False, highlight=False)
    console.print(f"[bold]verdict:[/bold] {escape(chk.verdict)}", highlight=False)


def info_table(matrix: np.ndarray, names: list[str], title: str) -> Table:
    """A labelled symmetric matrix as a Rich table."""
    out = Table(title=escape(title), title_justify="left")
    out.add_column("", style="bold")
    for n in names:
        out.add_column(escape(n), justify="right")
    for n, row in zip(names, matrix, strict=True):
        out.add_row(escape(n), *(f"{v:.6g}" for v in row))
    return out
