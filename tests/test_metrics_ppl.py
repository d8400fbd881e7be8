"""Perceptual path length against hand formulas on tiny generators with known path lengths."""
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from stylegan_jax.metrics import ppl

H, W, C = 4, 3, 2
P = H * W * C                 # pixels per image = latent size, so images are reshaped latents
rng = np.random.default_rng(0)
A = rng.standard_normal((P, P)).astype(np.float32) / np.sqrt(P)


def mapping(z):               # [N, P] -> [N, 2 layers, P], like the generator's per-layer w
    return jnp.stack([jnp.tanh(z), jnp.tanh(z)], axis=1)


def sine_synthesis(w):        # nonlinear: g(w) = sin(A w_layer0) as an image
    return jnp.sin(w[:, 0] @ A.T).reshape(-1, H, W, C)


def test_w_space_sample_equals_derivative_formula():
    z0, z1 = rng.standard_normal((5, P)).astype(np.float32), rng.standard_normal((5, P)).astype(np.float32)
    t = np.array([0.0, 0.2, 0.5, 0.7, 0.95], np.float32)
    got = np.asarray(ppl.path_length_samples(mapping, sine_synthesis, z0, z1, t, space="w"))
    w0, w1 = np.tanh(z0.astype(np.float64)), np.tanh(z1.astype(np.float64))
    w_t = w0 + t[:, None] * (w1 - w0)
    derivative = np.cos(w_t @ A.T) * ((w1 - w0) @ A.T)          # d/dt sin(A w_t)
    expected = np.mean(derivative ** 2, axis=1)                  # d = mean sq diff ~ eps^2 |g'|^2 / P
    np.testing.assert_allclose(got, expected, rtol=2e-2)


def test_z_space_sample_is_angle_squared_for_a_linear_generator():
    """slerp moves a unit vector at angular speed theta = arccos(z0.z1 / |z0||z1|); with g(w) = s w
    the sample is s^2 theta^2 / P."""
    scale = 3.0
    z0, z1 = rng.standard_normal((4, P)).astype(np.float32), rng.standard_normal((4, P)).astype(np.float32)
    identity_mapping = lambda z: z[:, None, :]
    linear = lambda w: scale * w[:, 0].reshape(-1, H, W, C)
    got = np.asarray(ppl.path_length_samples(identity_mapping, linear, z0, z1, np.full(4, 0.3), space="z"))
    cos = np.sum(z0 * z1, 1) / np.linalg.norm(z0, axis=1) / np.linalg.norm(z1, axis=1)
    np.testing.assert_allclose(got, scale ** 2 * np.arccos(cos) ** 2 / P, rtol=2e-2)


def test_full_metric_equals_truncated_chi_square_mean():
    """W = z and g(w) = s w: each sample is s^2 |z1 - z0|^2 / P = 2 s^2 X / P with X ~ chi2(P), so the
    1%..99% filtered mean is 2 s^2 / P * E[X | q01 <= X <= q99]."""
    scale = 0.5
    result = ppl.perceptual_path_length(lambda z: z[:, None, :], lambda w: scale * w[:, 0].reshape(-1, H, W, C),
                                        P, num_samples=4000, batch_size=500, seed=1, progress=False)
    samples = result["samples"]
    assert samples.shape == (4000,)
    ordered = np.sort(samples)
    low, high = ordered[int(np.floor(0.01 * 3999))], ordered[int(np.ceil(0.99 * 3999))]
    assert result["ppl"] == pytest.approx(samples[(samples >= low) & (samples <= high)].mean(), rel=1e-12)
    chi2 = scipy.stats.chi2(P)
    q01, q99 = chi2.ppf(0.01), chi2.ppf(0.99)
    truncated_mean = scipy.integrate.quad(lambda x: x * chi2.pdf(x), q01, q99)[0] / 0.98
    expected = 2 * scale ** 2 / P * truncated_mean
    standard_error = samples.std() / np.sqrt(len(samples))
    assert abs(result["ppl"] - expected) < 4 * standard_error


def test_crop_downsample_and_bad_arguments():
    images = jnp.arange(2 * 16 * 16 * 1, dtype=jnp.float32).reshape(2, 16, 16, 1)
    assert ppl.ffhq_face_crop(images).shape == (2, 8, 8, 1)
    big = jnp.ones((1, 512, 256, 3))
    assert ppl.downsample_to_max_resolution(big).shape == (1, 256, 128, 3)
    with pytest.raises(ValueError, match="choose 'w' or 'z'"):
        ppl.path_length_samples(mapping, sine_synthesis, np.zeros((1, P)), np.zeros((1, P)), [0.0], space="x")
    with pytest.raises(ValueError, match="choose 'full' or 'end'"):
        ppl.perceptual_path_length(mapping, sine_synthesis, P, sampling="middle")
