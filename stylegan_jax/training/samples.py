"""Fixed-latent sample grids: the same z's at every snapshot, so progress is comparable."""
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from stylegan_jax.atomic import atomic_write
from stylegan_jax.networks import Generator
from stylegan_jax.utils import tile, to_uint8

GRID_SEED_OFFSET = 12345  # grid latents come from seed + this, independent of training draws


def grid_latents(seed: int, num: int, latent_size: int) -> np.ndarray:
    """The fixed latents of the sample grid: float32 [num, latent_size]."""
    return np.asarray(jax.random.normal(jax.random.PRNGKey(seed + GRID_SEED_OFFSET),
                                        (num, latent_size), jnp.float32))


def make_sampler(G: Generator, out_sharding, compiler_options=None, noise_mode: str = "const"):
    """jitted (g_params, z, labels, w_avg, alpha, psi, noise_rng; stage static) -> images in [-1, 1].

    noise_mode "const" (the sample grids): the per-layer constant noise, so a grid changes only
    when the weights do, and noise_rng is unused (None). "random" (the quality metrics, as the
    official run measures them): new noise for every image, drawn from noise_rng. All processes
    must call it (it is one SPMD program); only process 0 needs to write the result.
    """
    def sample(g_params, z, labels, w_avg, alpha, psi, noise_rng, *, stage):
        rngs = {"noise": noise_rng} if noise_mode == "random" else None
        return G.apply({"params": g_params}, z, labels, stage=stage, alpha=alpha, w_avg=w_avg,
                       psi=psi, noise_mode=noise_mode, rngs=rngs)
    return jax.jit(sample, static_argnames=("stage",), out_shardings=out_sharding,
                   compiler_options=compiler_options)


def save_grid(images, path: str, rows: int, cols: int, upscale_to: Optional[int] = None) -> str:
    """Writes images in [-1, 1] as a PNG grid, atomically (temp file + os.replace).

    Early-stage images are small; `upscale_to` enlarges each cell (nearest neighbour) to that
    height so grids of all stages have the same size.
    """
    images = to_uint8(images)
    if upscale_to and images.shape[1] < upscale_to:
        factor = upscale_to // images.shape[1]
        images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    grid = Image.fromarray(tile(images, rows, cols))
    return atomic_write(path, lambda temp: grid.save(temp, format="PNG"))


def sample_grid(sampler, g_params, z, labels, w_avg, *, stage: int, alpha: float,
                psi: float) -> np.ndarray:
    """Runs the sampler and returns host images (the result is replicated on every device)."""
    images = sampler(g_params, z, labels, w_avg, jnp.float32(alpha), jnp.float32(psi), None,
                     stage=stage)
    return np.asarray(images.addressable_data(0))

