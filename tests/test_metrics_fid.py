"""Fréchet distance against an independent eigenvalue formula and closed forms; KID's U-statistic
against a pairwise loop and its unbiasedness against an exact population MMD."""
import numpy as np
import pytest

from stylegan_jax.metrics import fid


def frechet_by_eigenvalues(mu1, s1, mu2, s2):
    """Tr((S1 S2)^1/2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1))), with sqrt(S1) from eigh."""
    values, vectors = np.linalg.eigh(s1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))


def test_frechet_distance_matches_independent_computation():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 32)) @ rng.standard_normal((32, 32))
    b = rng.standard_normal((400, 32)) @ rng.standard_normal((32, 32)) + 0.3
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    expected = frechet_by_eigenvalues(mu1, s1, mu2, s2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert fid.fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-9)
    assert fid.frechet_distance(mu1, np.diag(var1), mu1, np.diag(var1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_handles_singular_covariances_and_bad_shapes():
    rng = np.random.default_rng(1)
    few = rng.standard_normal((10, 64))            # rank 9 covariance in 64 dims
    value = fid.fid_from_features(few, rng.standard_normal((10, 64)))
    assert np.isfinite(value) and value > 0
    with pytest.raises(ValueError, match="shapes do not match"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="num >= 2"):
        fid.feature_statistics(np.zeros((1, 3)))


def test_unbiased_mmd_matches_pairwise_loop():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((6, 5)) + 0.5
    k = lambda a, b: (a @ b / 5 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(6)) / (7 * 6)
    assert fid.polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_unbiased_against_exact_population_mmd():
    """P, Q uniform on two finite point sets: the population MMD^2 is an exact finite mean."""
    rng = np.random.default_rng(3)
    points_p, points_q = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) * 1.3 + 0.2
    k = lambda a, b: (a @ b.T / 4 + 1) ** 3
    exact = k(points_p, points_p).mean() + k(points_q, points_q).mean() - 2 * k(points_p, points_q).mean()
    estimates, biased = [], []
    for _ in range(3000):
        x, y = points_p[rng.integers(6, size=8)], points_q[rng.integers(6, size=8)]
        estimates.append(fid.polynomial_mmd2_unbiased(x, y))
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - exact) < 4 * standard_error
    assert abs(np.mean(biased) - exact) > 10 * standard_error     # the V-statistic would fail this


def test_kid_of_identical_distributions_is_about_zero():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((600, 16)), rng.standard_normal((600, 16))
    same = fid.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted = fid.kernel_inception_distance(a, b + 0.5, num_subsets=20, subset_size=200)
    assert abs(same) < 0.02 * shifted
    with pytest.raises(ValueError, match="equal dim"):
        fid.kernel_inception_distance(a, b[:, :3])
