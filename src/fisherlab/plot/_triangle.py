r"""Triangle plots of Fisher forecasts: 1-D marginals on the diagonal, 2-D confidence ellipses below.

An information matrix :math:`F` forecasts the Gaussian :math:`\mathcal N(\theta_0, F^{-1})` around
the fiducial point :math:`\theta_0`. Marginalising a Gaussian over the other parameters keeps the
block of its covariance, so every panel is read off :math:`\Sigma = F^{-1}`: a 1-D marginal of
standard deviation :math:`\sqrt{\Sigma_{ii}}`, and a 2-D ellipse
:math:`\delta^\top \Sigma_{[ij]}^{-1} \delta = \Delta\chi^2` for the 2×2 block :math:`\Sigma_{[ij]}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.stats

from .._errors import FisherlabArgumentError, InvalidOptionError, InvalidParameterError
from .._options import positive_number
from .._precision import float64
from ..information import InfoMatrix
from ..information._getdist import fiducial_vector, label_list, selected_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["delta_chi2", "triangle"]

#: Half-width of each axis, in units of the largest marginal standard deviation among the matrices:
#: the 2σ joint ellipse reaches sqrt(6.18) = 2.49 σ, so 3.5 σ leaves a margin around it.
HALF_WIDTH_SIGMAS = 3.5
#: Opacity of the filled innermost region (the outlines are opaque).
FILL_ALPHA = 0.3
#: Points of each 1-D marginal curve.
CURVE_POINTS = 241


def delta_chi2(sigma: float) -> float:
    r"""The :math:`\Delta\chi^2` of the joint 2-parameter region holding the probability of ±``sigma`` in 1-D.

    The coverage of :math:`\pm k\sigma` of a 1-D Gaussian is :math:`\operatorname{erf}(k/\sqrt2)`; the
    2-D region of that coverage is :math:`\delta^\top\Sigma^{-1}\delta \le \chi^2_2{}^{-1}(\text{coverage})`
    (:math:`= -2\log(1 - \text{coverage})`): 2.30 for :math:`k = 1` (68.3%), 6.18 for :math:`k = 2` (95.4%).
    Computed as ``chi2.isf(erfc(k / sqrt 2), 2)``, which equals ``chi2.ppf(erf(k / sqrt 2), 2)`` and
    stays accurate for large ``k``.

    Examples:
        >>> from fisherlab.plot._triangle import delta_chi2
        >>> round(delta_chi2(1), 3), round(delta_chi2(2), 3), round(delta_chi2(3), 3)
        (2.296, 6.18, 11.829)
    """
    return float(scipy.stats.chi2.isf(math.erfc(sigma / math.sqrt(2.0)), 2))


def _matrices(infos: Any) -> list[InfoMatrix]:
    if isinstance(infos, InfoMatrix):
        return [infos]
    if isinstance(infos, (str, Mapping)) or not isinstance(infos, Sequence):
        raise FisherlabArgumentError(
            f"triangle needs an InfoMatrix or a list of them, got {type(infos).__name__}; "
            "pass fl.fisher(...) results, e.g. triangle([F, G, F + G])"
        )
    matrices = list(infos)
    if not matrices:
        raise FisherlabArgumentError("triangle got an empty list of information matrices; pass at least one")
    for pos, item in enumerate(matrices):
        if not isinstance(item, InfoMatrix):
            raise FisherlabArgumentError(
                f"infos[{pos}] is a {type(item).__name__}, not an InfoMatrix; pass information matrices "
                "(fl.fisher, fl.InfoMatrix(...)), not their covariances or raw arrays"
            )
    return matrices


def _sigma_levels(sigmas: Any) -> list[float]:
    values = [sigmas] if not isinstance(sigmas, (Sequence, np.ndarray)) or isinstance(sigmas, str) else sigmas
    levels = [positive_number(s, f"sigmas[{pos}]") for pos, s in enumerate(values)]
    if not levels:
        raise InvalidOptionError("sigmas is empty: give the levels to draw in σ units, e.g. sigmas=(1, 2)")
    for pos, k in enumerate(levels):
        if not math.isfinite(delta_chi2(k)):
            raise InvalidOptionError(
                f"sigmas[{pos}] = {k} is beyond what float64 resolves (its tail probability underflows); "
                "use levels below 30"
            )
    return sorted(set(levels))


def _strings(value: Any, count: int, what: str, default: list[str]) -> list[str]:
    if value is None:
        return default
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise FisherlabArgumentError(f"{what} must be a list of strings, got {type(value).__name__}")
    items = list(items)
    if len(items) != count:
        raise InvalidOptionError(
            f"{what} has {len(items)} entries for {count} information matrices; give one per matrix, in order"
        )
    for pos, item in enumerate(items):
        if not isinstance(item, str):
            raise FisherlabArgumentError(
                f"{what}[{pos}] must be a string, got {type(item).__name__} {item!r:.40}"
            )
    return items


def _figsize(figsize: Any, p: int) -> tuple[float, float]:
    if figsize is None:
        side = min(max(2.0 * p + 0.8, 3.0), 14.0)
        return side, side
    if isinstance(figsize, str) or not isinstance(figsize, Sequence) or len(figsize) != 2:
        raise FisherlabArgumentError(f"figsize must be (width, height) in inches, got {figsize!r:.40}")
    return positive_number(figsize[0], "figsize width"), positive_number(figsize[1], "figsize height")


@float64
def triangle(
    infos: InfoMatrix | Sequence[InfoMatrix],
    center: Any = None,
    *,
    names: Sequence[str] | None = None,
    labels: Mapping[str, str] | Sequence[str] | None = None,
    legend: Sequence[str] | None = None,
    sigmas: float | Sequence[float] = (1, 2),
    colors: Sequence[Any] | None = None,
    filled: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    r"""Triangle plot of the forecast confidence regions of one or more information matrices.

    Each matrix :math:`F` is inverted, :math:`\Sigma = F^{-1}`, and marginalising over every
    parameter not plotted keeps the block of :math:`\Sigma` (not of :math:`F`: fixing the others
    would be :math:`F`'s block). On the diagonal, parameter :math:`i` is the peak-normalised
    Gaussian :math:`\exp(-(x - \theta_{0,i})^2 / 2\Sigma_{ii})`; below it, panel :math:`(i, j)`
    (:math:`x = \theta_j`, :math:`y = \theta_i`) shows the ellipses

    .. math:: \delta^\top \Sigma_{[ji]}^{-1} \delta = \Delta\chi^2_k, \qquad
        \Delta\chi^2_k = \chi^2_2{}^{-1}\big(\operatorname{erf}(k/\sqrt2)\big),

    the joint 2-parameter regions with the probability of :math:`\pm k\sigma` in 1-D (2.30 for 68.3%,
    6.18 for 95.4%; :func:`delta_chi2`). Their semi-axes are :math:`\sqrt{\Delta\chi^2_k\lambda}` along
    the eigenvectors of the 2×2 block, and their extent along :math:`\theta_j` is
    :math:`\theta_{0,j} \pm \sqrt{\Delta\chi^2_k \Sigma_{jj}}` (Coe 2009). Each axis spans
    :math:`\theta_0 \pm 3.5` times the largest marginal :math:`\sigma` among the matrices. The upper
    triangle is left empty; the legend (drawn when there are several matrices or ``legend`` is
    given) sits there.

    Args:
        infos: an :class:`~fisherlab.InfoMatrix` or a list of them (two experiments and their sum, say).
        center: the fiducial point :math:`\theta_0`: a dict name -> value, a parameter pytree
            (flattened to :func:`fisherlab.param_names` names), or ``None``: the first matrix's
            :attr:`~fisherlab.InfoMatrix.center` (``fl.fisher`` records it), else zeros. Values of
            parameters not plotted are ignored.
        names: the parameters to plot, in order (default: those of the first matrix); every matrix
            must hold them all.
        labels: axis labels (Matplotlib math text allowed, ``r"$\Omega_m$"``): a dict name -> label
            (others keep their name) or a list in ``names`` order. Names are shown as they are.
        legend: one legend entry per matrix (default ``"F1"``, ``"F2"``, ...).
        sigmas: the levels to draw, in σ units: any positive numbers (default 1 and 2). The
            innermost is filled when ``filled``.
        colors: one Matplotlib colour per matrix (default the colour cycle ``"C0"``, ``"C1"``, ...).
        filled: fill the innermost region with a translucent colour.
        figsize: ``(width, height)`` in inches (default about 2 inches per parameter).

    Returns:
        A :class:`matplotlib.figure.Figure` (no ``pyplot``: save it with ``fig.savefig``, or show it
        in a notebook) with :math:`P(P+1)/2` axes, row by row; each ellipse is a
        :class:`matplotlib.patches.Ellipse` whose ``gid`` is ``"<legend entry>:<k>sigma"``.

    Raises:
        FisherlabArgumentError: ``infos`` empty or holding something that is not an InfoMatrix (its
            position is named), or an argument of the wrong kind.
        InvalidParameterError: a plotted name missing from a matrix (named, with the matrix's
            position) or from ``center``, labels keyed by unknown names or of the wrong length.
        InvalidOptionError: a level in ``sigmas`` that is not a finite number > 0, a ``legend`` or
            ``colors`` of the wrong length, a colour Matplotlib does not know.
        SingularInformationError: a matrix is singular (the unidentified direction is named).

    Examples:
        >>> import fisherlab as fl
        >>> from fisherlab.plot import triangle
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["a", "b"])
        >>> G = fl.InfoMatrix([[1.0, 0.0], [0.0, 5.0]], ["a", "b"])
        >>> fig = triangle([F, G, F + G], {"a": 1.0, "b": -0.5}, labels={"a": r"$\alpha$"},
        ...                legend=["F", "G", "F + G"])
        >>> len(fig.axes)  # the panels a, (a, b) and b
        3
        >>> fig.axes[1].get_xlabel(), fig.axes[1].get_ylabel()
        ('$\\alpha$', 'b')

    References:
        D. Coe (2009), *Fisher matrices and confidence ellipses: a quick-start guide*, arXiv:0906.4123.
    """
    matrices = _matrices(infos)
    keep = selected_names(names, matrices[0].names)
    for pos, info in enumerate(matrices):
        missing = [n for n in keep if n not in set(info.names)]
        if missing:
            raise InvalidParameterError(
                f"infos[{pos}] has no parameter(s) {missing} (it holds {info.names}); plot names that "
                "every matrix holds (names=[...]), or add them to that matrix (with_prior, a wider model)"
            )
    levels = _sigma_levels(sigmas)
    if not isinstance(filled, (bool, np.bool_)):
        raise FisherlabArgumentError(f"filled must be True or False, got {filled!r:.40}")
    entries = _strings(legend, len(matrices), "legend", [f"F{m + 1}" for m in range(len(matrices))])
    axis_labels = label_list(labels, keep)
    user_label = [labels is not None and (not isinstance(labels, Mapping) or n in labels) for n in keep]
    palette = _colors(colors, len(matrices))
    size = _figsize(figsize, len(keep))
    theta0 = fiducial_vector(matrices[0].center if center is None else center, keep)

    covs = []
    for info in matrices:
        idx = info.index(keep)
        covs.append(info.cov().matrix[np.ix_(idx, idx)])
    sd = np.sqrt(np.array([np.diag(c) for c in covs]))
    half = HALF_WIDTH_SIGMAS * sd.max(axis=0)
    chi2 = [delta_chi2(k) for k in levels]

    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse
    from matplotlib.ticker import MaxNLocator

    p = len(keep)
    fig = Figure(figsize=size)
    grid = fig.add_gridspec(p, p, left=0.13, right=0.97, bottom=0.13, top=0.97, hspace=0.06, wspace=0.06)
    for i in range(p):
        for j in range(i + 1):
            ax: Axes = fig.add_subplot(grid[i, j])
            ax.set_xlim(theta0[j] - half[j], theta0[j] + half[j])
            ax.xaxis.set_major_locator(MaxNLocator(4))
            if i == j:
                x = np.linspace(theta0[j] - half[j], theta0[j] + half[j], CURVE_POINTS)
                for m, c in enumerate(covs):
                    ax.plot(x, np.exp(-0.5 * (x - theta0[j]) ** 2 / c[j, j]), color=palette[m], lw=1.5)
                ax.set_ylim(0.0, 1.08)
                ax.set_yticks([])
            else:
                ax.set_ylim(theta0[i] - half[i], theta0[i] + half[i])
                ax.yaxis.set_major_locator(MaxNLocator(4))
                for m, c in enumerate(covs):
                    block = c[np.ix_([j, i], [j, i])]
                    values, vectors = np.linalg.eigh(block)
                    angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
                    for n, (k, level) in enumerate(zip(levels, chi2, strict=True)):
                        inner = filled and n == 0
                        ax.add_patch(
                            Ellipse(
                                (theta0[j], theta0[i]),
                                2.0 * math.sqrt(level * values[1]),
                                2.0 * math.sqrt(level * values[0]),
                                angle=angle,
                                facecolor=_with_alpha(palette[m], FILL_ALPHA) if inner else "none",
                                edgecolor=palette[m],
                                fill=inner,
                                lw=1.3,
                                gid=f"{entries[m]}:{k:g}sigma",
                                zorder=2 + len(levels) - n,
                            )
                        )
            ax.tick_params(labelbottom=i == p - 1, labelleft=j == 0 and i > 0, labelsize=8)
            if i == p - 1:
                ax.set_xlabel(axis_labels[j], parse_math=user_label[j])
                ax.tick_params(axis="x", labelrotation=45)
            if j == 0 and i > 0:
                ax.set_ylabel(axis_labels[i], parse_math=user_label[i])
    if len(matrices) > 1 or legend is not None:
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=_with_alpha(c, FILL_ALPHA) if filled else "none", edgecolor=c, lw=1.3)
            for c in palette
        ]
        fig.legend(handles, entries, loc="upper right", bbox_to_anchor=(0.97, 0.97), frameon=False)
    return fig


def _colors(colors: Any, count: int) -> list[Any]:
    if colors is None:
        return [f"C{m % 10}" for m in range(count)]
    from matplotlib.colors import is_color_like

    items = [colors] if isinstance(colors, str) or (count == 1 and isinstance(colors, tuple)) else colors
    if not isinstance(items, Sequence):
        raise FisherlabArgumentError(
            f"colors must be a list of Matplotlib colours, got {type(colors).__name__}"
        )
    items = list(items)
    if len(items) != count:
        raise InvalidOptionError(
            f"colors has {len(items)} entries for {count} information matrices; give one colour per matrix"
        )
    for pos, item in enumerate(items):
        if not is_color_like(item):
            raise InvalidOptionError(
                f"colors[{pos}] = {item!r:.40} is not a Matplotlib colour; use a name ('tab:red'), "
                "'#1f77b4' or an RGB tuple"
            )
    return items


def _with_alpha(color: Any, alpha: float) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(color, alpha)
