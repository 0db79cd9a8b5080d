"""Forecast plots (``fisherlab.plot.triangle``) and the GetDist export, against closed forms.

Oracles: the covariance of a forecast is ``numpy.linalg.inv`` of the information matrix; the
:math:`k\\sigma` joint 2-parameter region is :math:`\\delta^\\top\\Sigma^{-1}\\delta = -2\\log(1 -
\\operatorname{erf}(k/\\sqrt2))` (the :math:`\\chi^2_2` quantile in closed form); the 1-D marginal is
:math:`\\exp(-\\delta^2/2\\Sigma_{ii})`. The figure is rendered with Agg and its pixels read back.
"""

from __future__ import annotations

import io
import math
import sys

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

import fisherlab as fl
from fisherlab._precision import is_float64
from fisherlab.information._getdist import getdist_names, to_getdist
from fisherlab.plot import triangle

# Covariances of well-conditioned 3x3 / 4x4 matrices and ellipse geometry from a 2x2 eigh:
# float64 round-off.
TOL = 1e-12
# Matplotlib draws an ellipse as cubic Bézier arcs: its drawn extent is within ~3e-4 of the true one.
BEZIER_RTOL = 1e-3

NAMES = ["a", "b", "c"]
CENTER = {"a": 1.0, "b": -2.0, "c": 0.5, "unused": 7.0}


def _chi2_level(k: float) -> float:
    """-2 log(1 - coverage): the chi-square(2) quantile in closed form."""
    return -2.0 * math.log1p(-math.erf(k / math.sqrt(2.0)))


@pytest.fixture
def F(rng: np.random.Generator) -> fl.InfoMatrix:
    a = rng.normal(size=(8, 3))
    return fl.InfoMatrix(a.T @ a + 0.5 * np.eye(3), NAMES)


@pytest.fixture
def G(rng: np.random.Generator) -> fl.InfoMatrix:
    a = rng.normal(size=(5, 3))
    return fl.InfoMatrix(4.0 * (a.T @ a) + np.eye(3), NAMES)


def _cell(ax: Axes) -> tuple[int, int]:
    spec = ax.get_subplotspec()
    assert spec is not None
    return spec.rowspan.start, spec.colspan.start


def _panel(fig: Figure, i: int, j: int) -> Axes:
    (ax,) = [ax for ax in fig.axes if _cell(ax) == (i, j)]
    return ax


def _ellipses(ax: Axes, gid: str) -> list[Ellipse]:
    return [p for p in ax.patches if isinstance(p, Ellipse) and p.get_gid() == gid]


def _rgb(fig: Figure) -> np.ndarray:
    """The figure rendered by Agg to PNG and read back: (H, W, 3) floats in [0, 1]."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    buf.seek(0)
    return np.asarray(matplotlib.image.imread(buf, format="png"))[..., :3]


def _coloured_fraction(fig: Figure, pixels: np.ndarray, bbox_fig: tuple[float, float, float, float]) -> float:
    """Share of coloured (not grey/black/white) pixels in a box given in figure fractions, 4 px inset."""
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = bbox_fig
    cols = slice(int(x0 * w) + 4, int(x1 * w) - 4)
    rows = slice(int((1 - y1) * h) + 4, int((1 - y0) * h) - 4)
    box = pixels[rows, cols]
    coloured = box.max(axis=-1) - box.min(axis=-1) > 0.1
    return float(coloured.mean())


# --------------------------------------------------------------------------- triangle: layout


def test_triangle_is_float64_and_a_figure(F: fl.InfoMatrix) -> None:
    assert is_float64(triangle)
    fig = triangle(F)
    assert isinstance(fig, Figure)
    assert fig.canvas is not None  # a Figure of its own, no pyplot figure manager


def test_panels_labels_and_inner_ticks(F: fl.InfoMatrix) -> None:
    labels = {"a": r"$\Omega_m$", "c": r"$\sigma_8$"}
    fig = triangle(F, CENTER, labels=labels)
    FigureCanvasAgg(fig).draw()
    p = len(NAMES)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == p * (p + 1) // 2 == len(fig.axes)
    assert sorted(_cell(ax) for ax in fig.axes) == [(i, j) for i in range(p) for j in range(i + 1)]
    want = [r"$\Omega_m$", "b", r"$\sigma_8$"]
    for ax in fig.axes:
        i, j = _cell(ax)
        assert ax.get_xlabel() == (want[j] if i == p - 1 else "")
        assert ax.get_ylabel() == (want[i] if j == 0 and i > 0 else "")
        x_shown = [t.label1.get_visible() for t in ax.xaxis.get_major_ticks()]
        y_shown = [t.label1.get_visible() for t in ax.yaxis.get_major_ticks()]
        assert all(x_shown) if i == p - 1 else not any(x_shown)
        assert all(y_shown) if (j == 0 and i > 0) else not any(y_shown)
    # a list in names order gives the same labels
    fig2 = triangle(F, CENTER, labels=want)
    assert [_panel(fig2, 2, j).get_xlabel() for j in range(3)] == want


def test_rendered_panels_are_drawn_and_upper_triangle_empty(F: fl.InfoMatrix) -> None:
    fig = triangle(F, CENTER)
    pixels = _rgb(fig)
    for ax in fig.axes:
        x0, y0, x1, y1 = ax.get_position().extents
        # the filled 1σ ellipse alone covers several percent of a lower panel; a 1-D curve less
        assert _coloured_fraction(fig, pixels, (x0, y0, x1, y1)) > 0.005, _cell(ax)
    spec = fig.axes[0].get_subplotspec()
    assert spec is not None
    grid = spec.get_gridspec()
    for i, j in [(0, 1), (0, 2), (1, 2)]:  # one matrix: no legend, the upper triangle is white
        x0, y0, x1, y1 = grid[i, j].get_position(fig).extents
        h, w = pixels.shape[:2]
        box = pixels[int((1 - y1) * h) : int((1 - y0) * h), int(x0 * w) : int(x1 * w)]
        assert box.min() > 0.99


# --------------------------------------------------------------------------- triangle: geometry


def _check_ellipse(e: Ellipse, center: tuple[float, float], block: np.ndarray, level: float) -> None:
    """The patch is {δ : δᵀ block⁻¹ δ = level} around center: points, extents, drawn path."""
    np.testing.assert_allclose(e.get_center(), center, rtol=TOL, atol=TOL)
    t = np.linspace(0.0, 2 * np.pi, 37)
    rot = np.radians(e.get_angle())
    r = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    pts = r @ np.vstack([e.get_width() / 2 * np.cos(t), e.get_height() / 2 * np.sin(t)])
    quad = np.einsum("in,ij,jn->n", pts, np.linalg.inv(block), pts)
    np.testing.assert_allclose(quad, level, rtol=TOL)
    # closed-form extents: x0 ± sqrt(level Σ_xx), y0 ± sqrt(level Σ_yy)
    half = np.sqrt(level * np.diag(block))
    np.testing.assert_allclose(np.abs(pts).max(axis=1), half, rtol=1e-2)  # 37 samples of the curve
    ext = e.get_patch_transform().transform_path(e.get_path()).get_extents()
    np.testing.assert_allclose([ext.x1 - center[0], center[0] - ext.x0], half[0], rtol=BEZIER_RTOL)
    np.testing.assert_allclose([ext.y1 - center[1], center[1] - ext.y0], half[1], rtol=BEZIER_RTOL)


def test_ellipses_are_the_joint_confidence_regions_of_the_inverse(F: fl.InfoMatrix) -> None:
    fig = triangle(F, CENTER)
    sigma = np.linalg.inv(F.matrix)
    assert _chi2_level(1) == pytest.approx(2.2957, abs=1e-4)
    assert _chi2_level(2) == pytest.approx(6.1801, abs=1e-4)
    c = np.array([CENTER[n] for n in NAMES])
    for i in range(3):
        for j in range(i):
            ax = _panel(fig, i, j)
            block = sigma[np.ix_([j, i], [j, i])]
            for k in (1, 2):
                (e,) = _ellipses(ax, f"F1:{k}sigma")
                _check_ellipse(e, (c[j], c[i]), block, _chi2_level(k))
    # the x-extent of the 1σ ellipse of (a, c) is a0 ± sqrt(2.30 Σ_aa), stated once more directly
    (e,) = _ellipses(_panel(fig, 2, 0), "F1:1sigma")
    ext = e.get_patch_transform().transform_path(e.get_path()).get_extents()
    assert ext.x1 == pytest.approx(1.0 + math.sqrt(_chi2_level(1) * sigma[0, 0]), rel=BEZIER_RTOL)


def test_marginals_and_axis_limits(F: fl.InfoMatrix, G: fl.InfoMatrix) -> None:
    fig = triangle([F, G], CENTER)
    sd = np.sqrt([np.diag(np.linalg.inv(F.matrix)), np.diag(np.linalg.inv(G.matrix))])
    for i, name in enumerate(NAMES):
        ax = _panel(fig, i, i)
        lines = ax.get_lines()
        assert len(lines) == 2
        for line, s in zip(lines, sd[:, i], strict=True):
            x, y = (np.asarray(v, dtype=float) for v in line.get_data())
            np.testing.assert_allclose(y, np.exp(-0.5 * ((x - CENTER[name]) / s) ** 2), rtol=TOL)
            assert y.max() == pytest.approx(1.0, abs=1e-3)  # peak-normalised
        half = 3.5 * sd[:, i].max()
        np.testing.assert_allclose(ax.get_xlim(), (CENTER[name] - half, CENTER[name] + half), rtol=TOL)
        for j in range(i):
            np.testing.assert_allclose(_panel(fig, i, j).get_ylim(), ax.get_xlim(), rtol=TOL)


def test_two_matrices_give_two_sets_of_contours_and_a_legend(F: fl.InfoMatrix, G: fl.InfoMatrix) -> None:
    fig = triangle([F, G], CENTER, legend=["CMB", "LSS"], colors=["tab:red", "#00aa00"])
    for i in range(3):
        for j in range(i):
            ax = _panel(fig, i, j)
            assert len(ax.patches) == 4
            for entry, colour, info in (("CMB", "tab:red", F), ("LSS", "#00aa00", G)):
                es = [e for k in (1, 2) for e in _ellipses(ax, f"{entry}:{k}sigma")]
                assert len(es) == 2
                assert all(e.get_edgecolor() == to_rgba(colour) for e in es)
                block = np.linalg.inv(info.matrix)[np.ix_([j, i], [j, i])]
                _check_ellipse(es[0], (CENTER[NAMES[j]], CENTER[NAMES[i]]), block, _chi2_level(1))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["CMB", "LSS"]
    pixels = _rgb(fig)
    red = (pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.45)
    green = (pixels[..., 1] > 0.5) & (pixels[..., 0] < 0.4) & (pixels[..., 2] < 0.4)
    assert red.sum() > 500 and green.sum() > 500  # both sets are drawn
    # the default legend numbers the matrices
    (default,) = triangle([F, G, F + G]).legends
    assert [t.get_text() for t in default.get_texts()] == ["F1", "F2", "F3"]


def test_filled_and_arbitrary_levels(F: fl.InfoMatrix) -> None:
    fig = triangle(F, sigmas=(3, 0.5, 1.5))
    ax = _panel(fig, 1, 0)
    block = np.linalg.inv(F.matrix)[:2, :2]
    for k in (0.5, 1.5, 3):
        (e,) = _ellipses(ax, f"F1:{k:g}sigma")
        _check_ellipse(e, (0.0, 0.0), block, _chi2_level(k))
        assert e.get_fill() is (k == 0.5)  # the innermost level is filled, translucent
    (inner,) = _ellipses(ax, "F1:0.5sigma")
    assert inner.get_facecolor()[3] == pytest.approx(0.3)
    assert not any(p.get_fill() for p in _panel(triangle(F, filled=False), 1, 0).patches)


def test_marginalises_over_parameters_not_plotted(rng: np.random.Generator) -> None:
    a = rng.normal(size=(9, 4))
    H = fl.InfoMatrix(a.T @ a + np.eye(4), ["w", "x", "y", "z"])
    fig = triangle(H, names=["z", "x"])
    assert len(fig.axes) == 3
    (e,) = _ellipses(_panel(fig, 1, 0), "F1:1sigma")  # x against z
    marginal = H.marginalize(["z", "x"]).cov().matrix
    np.testing.assert_allclose(marginal, np.linalg.inv(H.matrix)[np.ix_([3, 1], [3, 1])], rtol=1e-11)
    _check_ellipse(e, (0.0, 0.0), marginal, _chi2_level(1))
    assert [ax.get_xlabel() for ax in fig.axes if _cell(ax)[0] == 1] == ["z", "x"]


def test_center_from_a_parameter_pytree() -> None:
    names = ["beta[0]", "beta[1]", "sigma"]
    info = fl.InfoMatrix(np.diag([4.0, 1.0, 9.0]), names)
    fig = triangle(info, {"beta": np.array([1.0, 2.0]), "sigma": 0.5, "extra": np.zeros(3)})
    (e,) = _ellipses(_panel(fig, 2, 1), "F1:1sigma")
    np.testing.assert_allclose(e.get_center(), (2.0, 0.5), rtol=TOL)
    np.testing.assert_allclose(_panel(fig, 0, 0).get_xlim(), (1.0 - 3.5 * 0.5, 1.0 + 3.5 * 0.5), rtol=TOL)
    assert _panel(fig, 2, 0).get_xlabel() == "beta[0]"


# --------------------------------------------------------------------------- triangle: hostile input


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda F, G: triangle([]), fl.FisherlabArgumentError, "empty list"),
        (lambda F, G: triangle([F, F.cov()]), fl.FisherlabArgumentError, r"infos\[1\] is a Covariance"),
        (lambda F, G: triangle(F.matrix), fl.FisherlabArgumentError, "got ndarray"),
        (lambda F, G: triangle([F, G.fix(["c"])]), fl.InvalidParameterError, r"infos\[1\] has no .*\['c'\]"),
        (
            lambda F, G: triangle(F, names=["a", "q"]),
            fl.InvalidParameterError,
            r"infos\[0\] has no .*\['q'\]",
        ),
        (lambda F, G: triangle(F, names=[]), fl.InvalidParameterError, "empty"),
        (lambda F, G: triangle(F, names=["a", "a"]), fl.InvalidParameterError, "repeat"),
        (lambda F, G: triangle(F, sigmas=(1, 0)), fl.InvalidOptionError, r"sigmas\[1\] must be .* > 0"),
        (lambda F, G: triangle(F, sigmas=-1), fl.InvalidOptionError, r"sigmas\[0\]"),
        (lambda F, G: triangle(F, sigmas=(float("nan"),)), fl.InvalidOptionError, "> 0, got nan"),
        (lambda F, G: triangle(F, sigmas=(float("inf"),)), fl.InvalidOptionError, "> 0, got inf"),
        (lambda F, G: triangle(F, sigmas=(50,)), fl.InvalidOptionError, "below 30"),
        (lambda F, G: triangle(F, sigmas=()), fl.InvalidOptionError, "sigmas is empty"),
        (lambda F, G: triangle(F, sigmas=("1",)), fl.FisherlabArgumentError, "real number"),
        (lambda F, G: triangle(F, labels=["x", "y"]), fl.InvalidParameterError, "2 entries for 3 param"),
        (lambda F, G: triangle(F, labels={"zz": "Z"}), fl.InvalidParameterError, r"\['zz'\]"),
        (lambda F, G: triangle(F, labels="abc"), fl.FisherlabArgumentError, "dict name -> label"),
        (lambda F, G: triangle(F, labels={"a": 3}), fl.FisherlabArgumentError, "label of a must be a str"),
        (lambda F, G: triangle([F, G], legend=["one"]), fl.InvalidOptionError, "1 entries for 2 info"),
        (lambda F, G: triangle([F, G], legend=["one", 2]), fl.FisherlabArgumentError, r"legend\[1\]"),
        (lambda F, G: triangle([F, G], colors=["red"]), fl.InvalidOptionError, "one colour per matrix"),
        (lambda F, G: triangle(F, colors=["notacolour"]), fl.InvalidOptionError, r"colors\[0\]"),
        (lambda F, G: triangle(F, filled="yes"), fl.FisherlabArgumentError, "filled must be True or False"),
        (lambda F, G: triangle(F, figsize=(4, -1)), fl.InvalidOptionError, "figsize height"),
        (lambda F, G: triangle(F, {"a": 1.0, "b": 2.0}), fl.InvalidParameterError, r"no value for \['c'\]"),
        (lambda F, G: triangle(F, {"a": 1.0, "b": 2.0, "c": np.nan}), fl.InvalidParameterError, "finite"),
        (lambda F, G: triangle(F, {"a": "x", "b": 2.0, "c": 1.0}), fl.FisherlabArgumentError, "real num"),
    ],
)
def test_triangle_hostile_input(F: fl.InfoMatrix, G: fl.InfoMatrix, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(F, G)


def test_singular_matrix_names_the_direction(F: fl.InfoMatrix) -> None:
    singular = fl.InfoMatrix([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], NAMES)
    with pytest.raises(fl.SingularInformationError, match=r"0\.707·a − 0\.707·b|0\.707·b − 0\.707·a") as info:
        triangle([F, singular])
    assert set(info.value.direction) == set(NAMES)


# --------------------------------------------------------------------------- GetDist export


def test_getdist_round_trip(F: fl.InfoMatrix) -> None:
    info = fl.InfoMatrix(F.matrix, ["beta[0]", "layers[0].W", "sigma"])
    center = {"beta": [0.3], "layers": [{"W": -1.0}], "sigma": 2.0}
    g = to_getdist(info, center, label="survey")
    np.testing.assert_allclose(g.covs[0], np.linalg.inv(F.matrix), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(g.covs[0], info.cov().matrix, rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(g.means[0], [0.3, -1.0, 2.0])
    assert g.names == ["beta_0", "layers_0_W", "sigma"]
    assert [p.label for p in g.paramNames.names] == info.names  # original names kept as labels
    assert g.label == "survey"
    # GetDist's own density is the Gaussian N(center, F^-1)
    x = np.array([0.5, -0.7, 1.6])
    want = scipy.stats.multivariate_normal(g.means[0], np.linalg.inv(F.matrix)).pdf(x)
    assert g.pdf(x) == pytest.approx(want, rel=1e-10)


def test_getdist_marginalised_export_and_labels(rng: np.random.Generator) -> None:
    a = rng.normal(size=(9, 4))
    H = fl.InfoMatrix(a.T @ a + np.eye(4), ["w", "x", "y", "z"])
    g = to_getdist(H, names=["z", "x"], labels={"x": r"\Omega_m"})
    np.testing.assert_allclose(g.covs[0], H.marginalize(["z", "x"]).cov().matrix, rtol=1e-11, atol=TOL)
    np.testing.assert_array_equal(g.means[0], [0.0, 0.0])
    assert g.names == ["z", "x"]
    assert [p.label for p in g.paramNames.names] == ["z", r"\Omega_m"]
    g2 = to_getdist(H, {"w": 1, "x": 2, "y": 3, "z": 4}, labels=["W", "X", "Y", "Z"])
    assert [p.label for p in g2.paramNames.names] == ["W", "X", "Y", "Z"]
    np.testing.assert_array_equal(g2.means[0], [1.0, 2.0, 3.0, 4.0])
    assert g2.label == ""


def test_getdist_names_are_identifiers_and_unique() -> None:
    assert getdist_names(["beta[0]", "W[1,2]", "layers[0].W", "0x", "a b*"]) == [
        "beta_0",
        "W_1_2",
        "layers_0_W",
        "p_0x",
        "a_b",
    ]
    with pytest.raises(fl.InvalidParameterError, match=r"'a\.b' and 'a_b' both become 'a_b'"):
        to_getdist(fl.InfoMatrix(np.eye(2), ["a.b", "a_b"]))


def test_getdist_hostile_input(F: fl.InfoMatrix, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(fl.FisherlabArgumentError, match="needs an InfoMatrix"):
        to_getdist(F.cov())  # type: ignore[arg-type]
    with pytest.raises(fl.InvalidParameterError, match=r"unknown parameter name\(s\) \['q'\]"):
        to_getdist(F, names=["a", "q"])
    with pytest.raises(fl.InvalidParameterError, match=r"no value for \['b'\]"):
        to_getdist(F, {"a": 1.0, "c": 1.0})
    with pytest.raises(fl.FisherlabArgumentError, match="label must be a string"):
        to_getdist(F, label=3)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "getdist.gaussian_mixtures", None)
    with pytest.raises(fl.MethodUnavailableError, match=r"pip install 'fisherlab\[forecast\]' \(getdist\)"):
        to_getdist(F)


def test_center_defaults_to_the_matrix_center() -> None:
    """Without center=, the first matrix's fiducial point (fl.fisher records it) centres the plot."""
    info = fl.InfoMatrix(np.diag([4.0, 1.0]), ["a", "b"], center={"a": 3.0, "b": -1.0})
    fig = triangle(info)
    (e,) = _ellipses(_panel(fig, 1, 0), "F1:1sigma")
    np.testing.assert_allclose(e.get_center(), (3.0, -1.0), rtol=TOL)
    bare = triangle(fl.InfoMatrix(np.diag([4.0, 1.0]), ["a", "b"]))
    (e0,) = _ellipses(_panel(bare, 1, 0), "F1:1sigma")
    np.testing.assert_allclose(e0.get_center(), (0.0, 0.0), atol=TOL)
