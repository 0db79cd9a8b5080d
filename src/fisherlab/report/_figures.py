"""Matplotlib figures of the report, returned as inline SVG text.

Figures are built on :class:`matplotlib.figure.Figure` objects directly (no
``pyplot``, so no global backend or figure registry is touched) and saved as
SVG with real ``<text>`` elements (``svg.fonttype = "none"``), which
Matplotlib's SVG writer XML-escapes. Math-text parsing is switched off, so a
``$`` in a parameter name is shown as it is.
"""

from __future__ import annotations

import io
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.stats

from ..inference import profile_grid

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..inference import FitResult

__all__ = ["correlation_svg", "ellipses_svg", "spectrum_svg"]

_LABEL_CHARS = 28
_HALF_WIDTHS = (3.5, 6.0, 10.0)  # profile grid extents tried, in whitened units (the 95% radius is 2.45)
WALD_COLOR = "#1f5fa8"
PROFILE_COLOR = "#d9730d"


def _label(name: str) -> str:
    return name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"


def _rc(salt: str) -> Any:  # Matplotlib types rc keys as a Literal union
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": salt,
        "text.parse_math": False,
        "text.usetex": False,
        "font.size": 9,
        "axes.titlesize": 10,
        "font.family": "sans-serif",
    }


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE removed), sized to fit its container."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_rc(salt)):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :].strip()
    # Inline SVG in HTML needs no namespace declarations (the HTML parser supplies them, xlink:href
    # included) and no RDF metadata: dropping them leaves the page free of any URL.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)


def correlation_svg(names: list[str], corr: np.ndarray, salt: str = "corr") -> str:
    """Heatmap of a correlation matrix, annotated with the values when P ≤ 12 (3 decimals up to P = 4).

    Args:
        names: parameter names, length P.
        corr: correlation matrix ``(P, P)``.
        salt: a string making the SVG's internal ids unique on the page.

    Returns:
        SVG text.
    """
    import matplotlib

    p = len(names)
    size = min(9.0, 2.2 + 0.55 * p)
    with matplotlib.rc_context(_rc(salt)):
        fig = _figure(size + 1.2, size)
        ax = fig.add_subplot()
        image = ax.imshow(corr, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        labels = [_label(n) for n in names]
        tilt = p > 2 or max(len(label) for label in labels) > 12
        ax.set_xticks(range(p), labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
        ax.set_yticks(range(p), labels)
        if p <= 12:
            for i in range(p):
                for j in range(p):
                    v = corr[i, j]
                    ax.text(
                        j,
                        i,
                        f"{v:.3f}" if p <= 4 else f"{v:.2f}",  # small matrices: room for 3 decimals
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if abs(v) > 0.6 else "black",
                    )
        fig.colorbar(image, ax=ax, shrink=0.8, label="correlation")
    return _svg(fig, salt)


def spectrum_svg(values: np.ndarray, leading: list[str], salt: str = "spectrum") -> str:
    """Eigenvalues of the observed information on a log scale.

    Non-positive eigenvalues (a saddle, not a maximum) are drawn at their
    absolute value with a red cross.

    Args:
        values: eigenvalues, ascending.
        leading: for each eigenvalue, the parameter with the largest loading in its eigenvector.
        salt: a string making the SVG's internal ids unique on the page.

    Returns:
        SVG text.
    """
    import matplotlib

    p = values.size
    with matplotlib.rc_context(_rc(salt)):
        fig = _figure(min(10.0, 3.5 + 0.5 * p), 3.4)
        ax = fig.add_subplot()
        idx = np.arange(p)
        pos = values > 0
        mag = np.abs(values)
        floor = np.min(mag[mag > 0]) if np.any(mag > 0) else 1.0
        mag = np.where(mag > 0, mag, floor * 1e-3)
        ax.vlines(idx[pos], floor * 1e-1 if np.any(pos) else 1.0, mag[pos], color=WALD_COLOR, lw=2)
        ax.plot(idx[pos], mag[pos], "o", color=WALD_COLOR, label="eigenvalue")
        if np.any(~pos):
            ax.plot(idx[~pos], mag[~pos], "x", color="#c0392b", ms=9, mew=2, label="|negative eigenvalue|")
            ax.legend(loc="upper left", frameon=False)
        ax.set_yscale("log")
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _: f"{v:.0e}" if v < 1e-3 or v >= 1e5 else f"{v:g}")
        )
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(
            idx,
            [f"λ{k + 1}\n{_label(n)}" for k, n in enumerate(leading)],
            fontsize=8 if p <= 8 else 6,
            rotation=0 if p <= 6 else 45,
        )
        ax.set_ylabel("eigenvalue of J (log scale)")
        ax.set_xlabel("eigen-direction (parameter with the largest loading)")
        ax.grid(axis="y", which="major", alpha=0.3)
    return _svg(fig, salt)


def _padded(values: np.ndarray, pad: float = 0.08) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo if hi > lo else max(abs(lo), 1.0) * 1e-3
    return lo - pad * span, hi + pad * span


def _closed(deviance: np.ndarray, threshold: float) -> bool:
    """Whether the region ``deviance <= threshold`` stays inside the grid (every edge node is outside it)."""
    edges = np.concatenate([deviance[0], deviance[-1], deviance[:, 0], deviance[:, -1]])
    return bool(np.all(edges > threshold))


def _ellipse(center: np.ndarray, cov: np.ndarray, radius: float) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, 181)
    values, vectors = np.linalg.eigh(cov)
    circle = np.stack([np.cos(t), np.sin(t)])
    return center[:, None] + vectors @ (np.sqrt(np.maximum(values, 0.0))[:, None] * circle) * radius


def ellipses_svg(
    result: FitResult,
    indices: list[int],
    *,
    level: float,
    profile: bool,
    budget_s: float = 6.0,
    grid: int = 25,
    salt: str = "ellipses",
) -> tuple[str, list[str]]:
    r"""Pairwise joint confidence regions: Wald ellipses, with profile-likelihood contours.

    For each pair :math:`(a, b)` the Wald region is
    :math:`\{\theta: (\theta-\hat\theta)^\top \Sigma_{ab}^{-1} (\theta-\hat\theta)
    \le \chi^2_2(\text{level})\}`
    with :math:`\Sigma` the observed covariance; the profile region is
    :math:`\{D \le \chi^2_2(\text{level})\}` with :math:`D` the two-parameter
    profile deviance (:func:`~fisherlab.inference.profile_grid`), both
    joint regions for the pair (2 degrees of freedom). Profile contours are
    skipped, with a note, when ``profile`` is false, the parameters do not map
    one-to-one to the fitting scale, or the time budget runs out.

    Args:
        result: the fit.
        indices: parameters to pair (2 to 4 of them), indices into ``result.names``.
        level: coverage of the regions.
        profile: compute the profile contours.
        budget_s: seconds allowed for all profile grids together.
        grid: grid points per axis of a profile grid.
        salt: a string making the SVG's internal ids unique on the page.

    Returns:
        (SVG text, notes about what was skipped).
    """
    import matplotlib

    names = result.names
    theta = result.flat_params
    cov = result.cov("observed").matrix
    radius = float(np.sqrt(scipy.stats.chi2.ppf(level, df=2)))
    k = len(indices)
    side = max(k - 1, 1)
    notes: list[str] = []
    deadline = time.monotonic() + budget_s
    skipped: list[str] = []
    open_regions: list[str] = []
    extents: dict[tuple[int, int], list[np.ndarray]] = {}
    drawn_profile = False
    with matplotlib.rc_context(_rc(salt)):
        panel = 3.0 if side > 1 else 4.2
        fig = _figure(panel * side + 0.4, panel * side + 0.2)
        axes = fig.subplots(side, side, squeeze=False, sharex="col", sharey="row")
        for r in range(side):
            for c in range(side):
                ax: Axes = axes[r, c]
                if c > r:
                    ax.set_visible(False)
                    continue
                a, b = indices[c], indices[r + 1]
                pair = np.array([a, b])
                sub = cov[np.ix_(pair, pair)]
                pts = _ellipse(theta[pair], sub, radius)
                extents[(r, c)] = [pts]
                ax.plot(pts[0], pts[1], color=WALD_COLOR, lw=1.6, label="Wald (observed)")
                ax.plot([theta[a]], [theta[b]], "+", color="black", ms=8, label="estimate")
                if profile:
                    pg = None
                    for half_width in _HALF_WIDTHS:  # widen the grid until the region closes inside it
                        pg = profile_grid(result, a, b, n=grid, half_width=half_width, deadline=deadline)
                        if pg is None or _closed(pg.deviance, radius**2):
                            break
                    else:
                        open_regions.append(f"{names[a]} / {names[b]}")
                    if pg is None:
                        skipped.append(f"{names[a]} / {names[b]}")
                    else:
                        contours = ax.contour(
                            pg.x,
                            pg.y,
                            pg.deviance,
                            levels=[radius**2],
                            colors=PROFILE_COLOR,
                            linewidths=1.6,
                            linestyles="--",
                        )
                        drawn_profile = True
                        for path in contours.get_paths():
                            verts = np.asarray(path.vertices, dtype=float).reshape(-1, 2)
                            if verts.size:
                                extents[(r, c)].append(verts.T)
                if r == side - 1:
                    ax.set_xlabel(_label(names[a]))
                if c == 0:
                    ax.set_ylabel(_label(names[b]))
                ax.grid(alpha=0.25)
                ax.tick_params(labelsize=7)
        # limits from what is drawn (the profile grid may be much wider than the regions)
        for c in range(side):
            xs = np.concatenate([v[0] for (_, cc), vs in extents.items() if cc == c for v in vs])
            axes[side - 1, c].set_xlim(*_padded(xs))
        for r in range(side):
            ys = np.concatenate([v[1] for (rr, _), vs in extents.items() if rr == r for v in vs])
            axes[r, 0].set_ylim(*_padded(ys))
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if drawn_profile:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color=PROFILE_COLOR, lw=1.6, ls="--"))
            labels.append("profile likelihood")
        if side == 1:
            axes[0, 0].legend(handles, labels, loc="best", fontsize=8, framealpha=0.85)
        else:
            fig.legend(handles, labels, loc="upper right", frameon=False, fontsize=9)
    if not profile:
        notes.append(
            "profile-likelihood contours not computed (profile=False; fisherlab fit asks for them when "
            "N·P² ≤ 2e7 or with --profile)"
        )
    elif skipped:
        notes.append(
            "profile-likelihood contours skipped for "
            + ", ".join(skipped)
            + " (parameters not one-to-one with the fitting scale, or the time budget of "
            f"{budget_s:g} s ran out)"
        )
    if open_regions:
        notes.append(
            "the profile-likelihood region extends beyond the grid (10 whitened units) for "
            + ", ".join(open_regions)
            + ": its dashed contour ends at the grid's edge (a likelihood far from quadratic)"
        )
    return _svg(fig, salt), notes
