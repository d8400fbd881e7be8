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


def _squared_norms(grads):
    """Per-example sum of squares of grads [N, ...], in at least float32."""
    grads = grads.astype(jnp.promote_types(grads.dtype, jnp.float32))
    return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))


def gradient_norms_squared(d_fn: Callable, images):
    """||grad_x d_fn(x)_i||^2 per example; d_fn maps images [N, ...] to scores [N]."""
    return _squared_norms(jax.grad(lambda x: jnp.sum(d_fn(x)))(images))


def scores_and_gradient_norms(d_fn: Callable, images):
    """(scores, aux, ||grad_x scores_i||^2) from one forward pass; d_fn maps images [N, ...] to
    (scores [N], aux). The D loss on the reals and R1 then share that pass: differentiated again
    with respect to D's parameters, it is backpropagated once for both terms, where a separate
    R1 (`r1_penalty` beside the loss) would run D forward and backward a second time."""
    scores, vjp_fn, aux = jax.vjp(d_fn, images, has_aux=True)
    (grads,) = vjp_fn(jnp.ones_like(scores))
    return scores, aux, _squared_norms(grads)


def r1_from_norms(norms, gamma: float = 10.0):
    """R1 from the per-example squared gradient norms: gamma / 2 * their mean."""
    return 0.5 * gamma * jnp.mean(norms)


def r1_penalty(d_fn: Callable, reals, gamma: float = 10.0):
    """R1: gamma / 2 * mean_i ||grad_x D(x_i)||^2 at the real images."""
    return r1_from_norms(gradient_norms_squared(d_fn, reals), gamma)
