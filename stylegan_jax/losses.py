"""GAN losses, by phase: generator, discriminator, and the discriminator's regularizers.

* Non-saturating logistic loss (Goodfellow et al. 2014), the StyleGAN default.
* R1 (Mescheder et al., arXiv 1801.04406): gamma/2 * E_x ||grad_x D(x)||^2 on real images. It is
  plain `jax.grad` of D with respect to the images; differentiating the penalty again with respect
  to D's parameters goes straight through the depthwise blur, no custom gradients needed.
"""
from typing import Callable

import jax
import jax.numpy as jnp


def g_nonsaturating_loss(fake_scores):
    """Generator: mean softplus(-D(G(z)))."""
    return jnp.mean(jax.nn.softplus(-fake_scores))


def d_logistic_loss(real_scores, fake_scores):
    """Discriminator: mean softplus(D(G(z))) + mean softplus(-D(x))."""
    return jnp.mean(jax.nn.softplus(fake_scores)) + jnp.mean(jax.nn.softplus(-real_scores))


def gradient_norms_squared(d_fn: Callable, images):
    """||grad_x d_fn(x)_i||^2 per example; d_fn maps images [N, ...] to scores [N]."""
    grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(images)
    return jnp.sum(jnp.square(grads.astype(jnp.promote_types(grads.dtype, jnp.float32))), axis=tuple(range(1, grads.ndim)))


def r1_penalty(d_fn: Callable, reals, gamma: float = 10.0):
    """R1: gamma / 2 * mean_i ||grad_x D(x_i)||^2 at the real images."""
    return 0.5 * gamma * jnp.mean(gradient_norms_squared(d_fn, reals))

