"""Perceptual path length (PPL), StyleGAN paper (Karras et al. 2018) section 4.2 and appendix.

For random latent pairs (z0, z1) and t ~ U(0, 1) (or t = 0 for 'end' sampling):
    in W:  w_t = lerp(f(z0), f(z1), t)        (f = mapping; all per-layer w's interpolated)
    in Z:  z_t = slerp(z0, z1, t), w_t = f(z_t)
    sample = d(g(w_t), g(w_{t+eps})) / eps^2,   eps = 1e-4, g = synthesis,
where d is a perceptual distance on (optionally cropped) images. PPL is the mean of the samples
that lie between their 1st and 99th percentiles (outliers rejected as in the official code).

The paper's d is LPIPS (VGG16 features) on the face crop, downsampled to 256 px; pass such a
network as `distance_fn`. The default, `pixel_mse_distance`, is the mean squared pixel difference:
it needs no weights and behaves the same way (quadratic in the step, hence the 1/eps^2), but its
numbers are not comparable to published PPL values.

The synthesis function must be deterministic (fixed noise, e.g. noise_mode="const"), otherwise
the distance measures the noise, not the path.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

EPSILON = 1e-4
MAX_DISTANCE_RESOLUTION = 256   # official code: images larger than this are box-downsampled first


def pixel_mse_distance(images_a, images_b):
    """Mean squared difference per image pair of [N, H, W, C] images in [-1, 1] -> [N]."""
    return jnp.mean(jnp.square(images_a - images_b), axis=(1, 2, 3))


def ffhq_face_crop(images):
    """The official crop for square face images: rows 3/8..7/8 and columns 2/8..6/8 of the frame."""
    unit = images.shape[1] // 8
    return images[:, 3 * unit:7 * unit, 2 * unit:6 * unit]


def downsample_to_max_resolution(images, max_resolution: int = MAX_DISTANCE_RESOLUTION):
    """Box-filter by an integer factor so the height is at most about `max_resolution` (official code)."""
    n, height, width, channels = images.shape
    if height <= max_resolution:
        return images
    factor = height // max_resolution
    images = images[:, :height // factor * factor, :width // factor * factor]
    return images.reshape(n, height // factor, factor, width // factor, factor, channels).mean(axis=(2, 4))


def _normalize(v):
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def slerp(a, b, t):
    """Spherical interpolation between the directions of a and b [N, D] at fractions t [N, 1] (unit output)."""
    a, b = _normalize(a), _normalize(b)
    cos_angle = jnp.sum(a * b, axis=-1, keepdims=True)
    angle = t * jnp.arccos(jnp.clip(cos_angle, -1.0, 1.0))
    orthogonal = _normalize(b - cos_angle * a)
    return _normalize(a * jnp.cos(angle) + orthogonal * jnp.sin(angle))


def path_length_samples(mapping_fn: Callable, synthesis_fn: Callable, z0, z1, t, *, space: str = "w",
                        epsilon: float = EPSILON, distance_fn: Callable = pixel_mse_distance,
                        crop_fn: Callable | None = None):
    """Per-pair path-length samples d(g(x_t), g(x_{t+eps})) / eps^2 for latents z0, z1 [N, D] and t [N].

    mapping_fn: z [N, D] -> w [N, L, D_w] (or [N, D_w]); synthesis_fn: w -> images [N, H, W, C].
    """
    if space not in ("w", "z"):
        raise ValueError(f"unknown PPL space '{space}': choose 'w' or 'z'")
    t = jnp.asarray(t, jnp.float32)
    if space == "w":
        w0, w1 = mapping_fn(z0), mapping_fn(z1)
        t_w = t.reshape((-1,) + (1,) * (w0.ndim - 1))
        w_a = w0 + (w1 - w0) * t_w
        w_b = w0 + (w1 - w0) * (t_w + epsilon)
    else:
        w_a = mapping_fn(slerp(z0, z1, t[:, None]))
        w_b = mapping_fn(slerp(z0, z1, t[:, None] + epsilon))
    # One synthesis call for both ends keeps batch-dependent layers consistent between them.
    images = synthesis_fn(jnp.concatenate([w_a, w_b], axis=0))
    if crop_fn is not None:
        images = crop_fn(images)
    images = downsample_to_max_resolution(images)
    count = z0.shape[0]
    return distance_fn(images[:count], images[count:]) / epsilon ** 2


def filtered_mean(samples: np.ndarray) -> float:
    """Mean of the samples between the 1st ('lower') and 99th ('higher') percentiles, inclusive."""
    low = np.percentile(samples, 1, method="lower")
    high = np.percentile(samples, 99, method="higher")
    return float(np.mean(samples[(samples >= low) & (samples <= high)]))


def perceptual_path_length(mapping_fn: Callable, synthesis_fn: Callable, latent_size: int, *,
                           num_samples: int = 100_000, batch_size: int = 64, space: str = "w",
                           sampling: str = "full", epsilon: float = EPSILON,
                           distance_fn: Callable = pixel_mse_distance, crop_fn: Callable | None = None,
                           seed: int = 0, progress: bool = True) -> dict:
    """PPL of a generator: {'ppl': filtered mean, 'samples': all per-pair values [num_samples]}.

    Latents are standard normal [batch, latent_size]; sampling 'full' draws t ~ U(0, 1), 'end' uses
    t = 0. The batch computation is jitted once (mapping_fn/synthesis_fn/distance_fn must be
    jax-traceable); the last batch is cut to `num_samples`.
    """
    if sampling not in ("full", "end"):
        raise ValueError(f"unknown PPL sampling '{sampling}': choose 'full' or 'end'")
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")

    @jax.jit
    def batch_samples(key):
        key_z0, key_z1, key_t = jax.random.split(key, 3)
        z0 = jax.random.normal(key_z0, (batch_size, latent_size))
        z1 = jax.random.normal(key_z1, (batch_size, latent_size))
        t = jax.random.uniform(key_t, (batch_size,)) if sampling == "full" else jnp.zeros((batch_size,))
        return path_length_samples(mapping_fn, synthesis_fn, z0, z1, t, space=space, epsilon=epsilon,
                                   distance_fn=distance_fn, crop_fn=crop_fn)

    num_batches = -(-num_samples // batch_size)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_batches)
    samples = [np.asarray(batch_samples(key), np.float64)
               for key in tqdm(keys, desc="PPL", unit="batch", disable=not progress)]
    samples = np.concatenate(samples)[:num_samples]
    return {"ppl": filtered_mean(samples), "samples": samples}
