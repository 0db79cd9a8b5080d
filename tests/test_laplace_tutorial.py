"""The network-Laplace tutorial (examples/laplace_network.py): its claims, checked.

What must hold: the marginal-likelihood prior precision has a higher evidence than the one the
network was trained under (it maximises it); the evidence of a logistic regression is the same
number through FitResult.laplace() and fl.laplace (one formula); on the shifted test set the
Laplace predictive (K-FAC GGN, optimised prior) has a lower negative log-likelihood and a lower
expected calibration error than the MAP network, while in distribution it predicts the same
classes; the figure is written. ``test_kfac_claims`` checks these on the K-FAC posterior;
``test_tutorial_claims`` (slow) runs ``main`` with fewer steps and checks every claim.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "examples" / "laplace_network.py"
_spec = importlib.util.spec_from_file_location("laplace_network_example", _PATH)
assert _spec is not None and _spec.loader is not None
ln = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ln
_spec.loader.exec_module(ln)

STEPS = 1500


def test_ece() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    sure = np.eye(2)[y]
    assert ln.ece(sure, y) == 0.0  # confidence 1, all right
    # confidence 0.8 in one bin, 8 of 10 right: calibrated
    probs = np.tile([0.2, 0.8], (10, 1))
    labels = np.array([1] * 8 + [0] * 2)
    assert ln.ece(probs, labels) == pytest.approx(0.0, abs=1e-12)
    # confidence 0.9 (bin 14 of 15) all wrong, 0.6 (bin 9) all right: (0.9 + 0.4) / 2
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert ln.ece(probs, np.array([1, 1])) == pytest.approx(0.65)
    assert ln.scores(probs, np.array([1, 1]))["acc"] == 0.5


def test_datasets() -> None:
    data = ln.datasets(0)
    assert [len(data[k][1]) for k in ("train", "val", "test", "shifted")] == [200, 200, 1000, 1000]
    (xt, yt), (xs, ys) = data["test"], data["shifted"]
    np.testing.assert_array_equal(yt, ys)
    np.testing.assert_allclose(np.linalg.norm(xs, axis=1), np.linalg.norm(xt, axis=1))  # a rotation
    x, y = data["train"]
    assert abs(float(np.mean(y)) - 0.5) < 1e-12 and np.all(np.abs(x.mean(axis=0)) < 0.2)


def test_kfac_claims(tmp_path: Path) -> None:
    """The K-FAC part of ``main`` (about 10 s): a higher evidence at the optimised prior, the same
    classes in distribution, a lower NLL and ECE than the MAP network under the shift, the figure."""
    pytest.importorskip("equinox")
    pytest.importorskip("optax")
    data = ln.datasets(0)
    model, params = ln.network(STEPS, 0, data)
    fit = ln.fit_laplace(model, params, data, "kfac")
    la = fit["laplace"]
    assert fit["lml"] > fit["lml0"] + 1.0 and la.prior_precision != ln.PRIOR_PRECISION
    for method in ("probit", "glm"):
        for split in ("test", "shifted"):
            x, y = data[split]
            base = ln.scores(ln.map_probs(model, params, x), y)
            lap = ln.scores(la.predictive(x, method=method).probs, y)
            if split == "test":
                assert abs(lap["acc"] - base["acc"]) <= 0.005, (method, lap, base)
            else:
                assert lap["nll"] < base["nll"] - 0.03, (method, lap, base)
                assert lap["ece"] < base["ece"] - 0.01, (method, lap, base)
    svg, png = ln.figure(model, params, la, data, tmp_path, n=21)
    assert svg.read_text().lstrip().startswith("<?xml") and "</svg>" in svg.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_tutorial_claims(tmp_path: Path) -> None:
    """``main`` with fewer steps (20 to 40 s on two cores): every claim of the tutorial."""
    pytest.importorskip("equinox")
    pytest.importorskip("optax")
    out = ln.main(["--out", str(tmp_path), "--steps", str(STEPS)])
    fits, table = out["fits"], out["table"]
    assert out["train_accuracy"] > 0.95 and out["grad_norm"] < 0.1  # near the mode of the posterior
    for name, fit in fits.items():
        assert fit["lml"] > fit["lml0"], name
    # Hadamard: log det(H + L) <= the sum of the logs of its diagonal, so the diagonal posterior's
    # evidence is below the full one's at every prior, and so at the optima; K-FAC lies between here
    assert fits["full"]["lml0"] > fits["kfac"]["lml0"] > fits["diagonal"]["lml0"]
    assert fits["full"]["lml"] > fits["kfac"]["lml"] > fits["diagonal"]["lml"]
    ev_fit, ev_la = out["evidence"]
    assert ev_la == pytest.approx(ev_fit, rel=1e-8)
    test, shifted = table["test"], table["shifted"]
    for name in ("kfac probit", "kfac glm", "full probit", "diagonal probit", "last_layer probit"):
        assert abs(test[name]["acc"] - test["MAP"]["acc"]) <= 0.005, name
        assert shifted[name]["nll"] < shifted["MAP"]["nll"] - 0.03, name
    for name in ("kfac probit", "kfac glm"):
        assert shifted[name]["ece"] < shifted["MAP"]["ece"] - 0.01, name
    # the two logits are positively correlated: their difference varies less than each
    logit_var, diff_var = out["logit_variance"]
    assert diff_var < logit_var
    # sampled weights of the whole network: the predictive forgets the data (NLL near log 2)
    assert test["kfac mc"]["nll"] > 0.6
    # on the last layer the network is linear in the weights: sampling works
    assert abs(test["last_layer mc"]["acc"] - test["MAP"]["acc"]) <= 0.005
    # cross-validation on in-distribution data picks a tight prior: no help under the shift
    assert out["cv"].prior_precision > 100 * fits["kfac"]["laplace"].prior_precision
    assert shifted["kfac probit, cv prior"]["nll"] > shifted["kfac probit"]["nll"]
    svg, png = out["figures"]
    assert svg.read_text().lstrip().startswith("<?xml") and "</svg>" in svg.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
