"""stylegan_jax: StyleGAN with progressive growing in pure functional JAX/Flax."""

__version__ = "0.1.0"
