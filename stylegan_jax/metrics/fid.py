"""Fréchet distance (FID) and kernel distance (KID) between two sets of feature vectors.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule"): fit a Gaussian to each
feature set (2048-d Inception pool3 features, see inception.py) and take the Fréchet distance
    d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the squared MMD
with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.
Both take plain numpy arrays [num, dim]; nothing here depends on how the features were made.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [dim] and (unbiased, N-1) covariance [dim, dim] of features [num, dim], in float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [num >= 2, dim], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    The matrix square root of sigma1 @ sigma2 comes from scipy.linalg.sqrtm. With few samples the
    product is singular and sqrtm can return non-finite values: then `eps` is added to both
    diagonals (as the reference TTUR / pytorch-fid code does). Round-off leaves tiny imaginary
    parts, which are dropped; a large imaginary part means the statistics are broken -> ValueError.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"statistics shapes do not match: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest_imaginary = np.max(np.abs(np.diagonal(covmean).imag))
        if largest_imaginary > 1e-3:
            raise ValueError(f"Fréchet distance: sqrtm has imaginary component {largest_imaginary:.3g}; "
                             "the covariances are not valid (use more samples)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(features1, features2) -> float:
    """FID between two feature sets [num, dim] (any sizes, same dim)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of samples x [m, d], y [n, d] under k(a, b) = (a.b / d + 1)^3.

    U-statistic: the within-set kernel means leave out the diagonal (k(x_i, x_i)), which is what
    makes the estimate unbiased; its expectation is 0 when x and y share a distribution.
    """
    m, n, dim = x.shape[0], y.shape[0], x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    mean_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    mean_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(mean_xx + mean_yy - 2.0 * k_xy.mean())


def kernel_inception_distance(features1, features2, *, num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """KID: mean unbiased polynomial-kernel MMD^2 over `num_subsets` random subsets of each set.

    Subsets are drawn without replacement within a subset; a set smaller than `subset_size`
    uses subsets of its whole size (as StyleGAN2-ADA's KID does).
    """
    features1, features2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"features must be [num, dim] with equal dim, got {features1.shape} and {features2.shape}")
    size = min(subset_size, features1.shape[0], features2.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 features per set, got {features1.shape[0]} and {features2.shape[0]}")
    rng = np.random.default_rng(seed)
    estimates = [polynomial_mmd2_unbiased(features1[rng.choice(features1.shape[0], size, replace=False)],
                                          features2[rng.choice(features2.shape[0], size, replace=False)])
                 for _ in range(num_subsets)]
    return float(np.mean(estimates))
