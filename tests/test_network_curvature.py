"""The network-curvature tutorial (examples/network_curvature.py): its claims, checked.

Theorems where there are ones: the softmax head's GGN is its Fisher; the Fisher is positive
semi-definite; a per-layer block approximation is never further from the matrix than its
diagonal; the Gaussian head's Fisher is PSD while its GGN and Hessian are not away from a fit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "examples" / "network_curvature.py"
_spec = importlib.util.spec_from_file_location("network_curvature_example", _PATH)
assert _spec is not None and _spec.loader is not None
nc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = nc
_spec.loader.exec_module(nc)


@pytest.mark.slow
def test_tutorial_claims(tmp_path: Path) -> None:
    pytest.importorskip("equinox")
    out = nc.main(["--out", str(tmp_path), "--steps", "300"])
    cls, het = out["classifier"], out["heteroscedastic"]
    spectra = cls["spectra"]
    top = spectra["fisher"][0]
    np.testing.assert_allclose(spectra["ggn"], spectra["fisher"], atol=1e-10 * top)  # softmax: GGN = F
    assert spectra["fisher"][-1] > -1e-12 * top and spectra["empirical"][-1] > -1e-12 * top
    assert spectra["hessian"][-1] < -1e-3 * top  # not at a minimum of every direction
    errors = cls["structures"]
    assert errors["block"] <= errors["diagonal"] + 1e-12  # a block keeps the diagonal and more
    assert errors["lowrank"] < 0.1  # ten eigenpairs of a spectrum that falls fast
    cosine_untrained, gap_untrained = cls["untrained"]
    assert gap_untrained > 0.3 and cosine_untrained < 0.5  # the empirical Fisher misleads there
    for when in ("initial", "trained"):
        ratio, negative = het[f"{when} fisher"]
        assert negative == 0 and ratio > -1e-12
    assert het["initial ggn"][1] > 0 and het["initial ggn"][0] < -1e-4
    assert het["initial hessian"][1] > 0
    svg = (tmp_path / "spectra.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
