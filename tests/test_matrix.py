"""InfoMatrix algebra against dense numpy references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fisherlab as fl

# Inversions of well-conditioned (cond < 1e3) 3x3 to 6x6 matrices: float64 round-off.
TOL = 1e-12


@pytest.fixture
def F(rng: np.random.Generator) -> fl.InfoMatrix:
    a = rng.normal(size=(6, 4))
    return fl.InfoMatrix(a.T @ a + 0.5 * np.eye(4), ["a", "b", "c", "d"], method="exact")


def test_cov_se_and_pandas(F) -> None:
    cov = F.cov()
    np.testing.assert_allclose(cov.matrix, np.linalg.inv(F.matrix), rtol=TOL, atol=TOL)
    se = F.se()
    assert list(se) == F.names
    np.testing.assert_allclose(list(se.values()), np.sqrt(np.diag(np.linalg.inv(F.matrix))), rtol=TOL)
    df = F.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.index) == F.names
    corr = cov.corr().to_numpy()
    np.testing.assert_allclose(np.diag(corr), 1.0, rtol=TOL)


def test_marginalize_equals_inverse_of_covariance_block(F) -> None:
    m = F.marginalize(["b", "d"])
    inv = np.linalg.inv(F.matrix)
    expected = np.linalg.inv(inv[np.ix_([1, 3], [1, 3])])
    np.testing.assert_allclose(m.matrix, expected, rtol=1e-11)
    assert m.names == ["b", "d"]
    assert F.marginalize(F.names).matrix.tolist() == F.matrix.tolist()


def test_fix_drops_rows(F) -> None:
    f = F.fix(["a", "c"])
    np.testing.assert_array_equal(f.matrix, F.matrix[np.ix_([1, 3], [1, 3])])
    with pytest.raises(fl.InvalidParameterError, match=r"unknown parameter name\(s\) \['zzz'\]"):
        F.fix(["zzz"])


def test_add_and_scale(F) -> None:
    perm = fl.InfoMatrix(F.matrix[np.ix_([3, 2, 1, 0], [3, 2, 1, 0])], ["d", "c", "b", "a"])
    np.testing.assert_allclose((F + perm).matrix, 2 * F.matrix, rtol=TOL)
    np.testing.assert_allclose((3 * F).matrix, 3 * F.matrix, rtol=TOL)
    with pytest.raises(fl.InvalidParameterError, match="different parameters"):
        F + fl.InfoMatrix(np.eye(2), ["a", "b"])


def test_eig(F) -> None:
    e = F.eig()
    np.testing.assert_allclose(e.values, np.linalg.eigvalsh(F.matrix), rtol=TOL)
    v = e.vectors.to_numpy()
    np.testing.assert_allclose(v @ np.diag(e.values) @ v.T, F.matrix, rtol=1e-11, atol=1e-11)


def test_singular_names_direction() -> None:
    # Column 1 is twice column 2: X (0, -1, 2) = 0, so 0.894*beta[2] - 0.447*beta[1] is not identified.
    x = np.array([[1.0, 2.0, 1.0], [1.0, -2.0, -1.0], [1.0, 1.0, 0.5], [1.0, 6.0, 3.0]])
    F = fl.InfoMatrix(x.T @ x, ["beta[0]", "beta[1]", "beta[2]"])
    with pytest.raises(
        fl.SingularInformationError, match=r"0.894·beta\[2\] − 0.447·beta\[1\] is not identified"
    ) as err:
        F.cov()
    assert err.value.direction["beta[2]"] == pytest.approx(-2 * err.value.direction["beta[1]"], rel=1e-9)
    assert err.value.condition_number > 1e12
    pinv = F.cov(pinv=True).matrix
    np.testing.assert_allclose(pinv, np.linalg.pinv(x.T @ x), rtol=1e-8, atol=1e-10)


def test_near_singular_and_indefinite() -> None:
    near = fl.InfoMatrix([[1.0, 1.0 - 1e-14], [1.0 - 1e-14, 1.0]], ["a", "b"])
    with pytest.raises(fl.SingularInformationError, match="condition number"):
        near.cov()
    indefinite = fl.InfoMatrix([[1.0, 2.0], [2.0, 1.0]], ["a", "b"], method="observed")
    with pytest.raises(fl.SingularInformationError, match="not positive definite"):
        indefinite.cov()
    zero = fl.InfoMatrix([[1.0, 0.0], [0.0, 0.0]], ["a", "b"])
    with pytest.raises(fl.SingularInformationError, match="b is not identified"):
        zero.cov()


def test_scale_invariance_of_singularity_test() -> None:
    # Wildly different units are fine: the test is on the diagonally scaled matrix.
    m = np.array([[1e12, 1e3], [1e3, 1e-4]])
    cov = fl.InfoMatrix(m, ["big", "small"]).cov().matrix
    np.testing.assert_allclose(cov, np.linalg.inv(m), rtol=TOL)


def test_validation() -> None:
    with pytest.raises(fl.InvalidDataError, match=r"square matrix \(P, P\), got shape \(2, 3\)"):
        fl.InfoMatrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(fl.InvalidParameterError, match=r"1 names \['a'\] for a 2x2 matrix"):
        fl.InfoMatrix(np.eye(2), ["a"])
    with pytest.raises(fl.InvalidParameterError, match=r"names repeat \['a'\]"):
        fl.InfoMatrix(np.eye(2), ["a", "a"])
