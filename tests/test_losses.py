"""Losses against formulas; R1's parameter gradient through the blur against finite differences."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import layers, losses
from stylegan_jax.networks import Discriminator
from helpers import assert_matches_finite_differences


def softplus(x):
    return np.log1p(np.exp(x))


def test_logistic_losses_match_formulas():
    real, fake = np.array([0.5, -1.0, 2.0]), np.array([-0.3, 1.5, 0.0])
    assert float(losses.d_logistic_loss(real, fake)) == pytest.approx(softplus(fake).mean() + softplus(-real).mean(), rel=1e-6)
    assert float(losses.g_nonsaturating_loss(fake)) == pytest.approx(softplus(-fake).mean(), rel=1e-6)


def test_r1_on_a_linear_critic():
    # D(x) = <a, x>: grad_x D = a for every example, so R1 = gamma/2 * ||a||^2.
    a = jnp.arange(12.0).reshape(1, 2, 2, 3) / 10
    d_fn = lambda x: jnp.sum(x * a, axis=(1, 2, 3))
    x = jax.random.normal(jax.random.key(0), (4, 2, 2, 3))
    assert float(losses.r1_penalty(d_fn, x, gamma=10.0)) == pytest.approx(5.0 * float(jnp.sum(a**2)), rel=1e-5)


def tiny_float64_discriminator():
    """(D, images, params): a two-stage 8x4 D in float64 (call inside jax.enable_x64)."""
    D = Discriminator(base_shape=(4, 2), num_stages=2, fmap_base=16, fmap_max=4, mbstd_group_size=2,
                      dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(0), (2, 8, 4, 3), jnp.float64)
    params = D.init(jax.random.key(1), x, stage=1)["params"]
    return D, x, jax.tree_util.tree_map(lambda p: p.astype(jnp.float64) + 0.1, params)


@pytest.mark.slow
@pytest.mark.parametrize("blur_impl", ["depthwise", "shift"])
def test_r1_parameter_gradient_through_blur_matches_finite_differences(blur_impl, monkeypatch):
    """grad of grad through the depthwise blur (no custom gradients), float64, tiny D, fade-in on."""
    monkeypatch.setattr(layers, "blur", functools.partial(layers.blur, impl=blur_impl))
    with jax.enable_x64(True):
        D, x, params = tiny_float64_discriminator()

        def penalty(p):
            return losses.r1_penalty(lambda imgs: D.apply({"params": p}, imgs, stage=1, alpha=0.7), x)

        grads = jax.jit(jax.grad(penalty))(params)
        penalty = jax.jit(penalty)
        assert_matches_finite_differences(penalty, params, grads, num_directions=3)
        # The conv that follows the blur really receives gradient.
        assert float(jnp.abs(grads["8x4_conv1_down"]["kernel"]).sum()) > 0


@pytest.mark.slow
def test_d_loss_and_r1_from_one_forward_pass_match_finite_differences():
    """The D step's form: the reals' loss, R1 and an auxiliary output (ACGAN's logits) all from
    one forward pass (scores_and_gradient_norms). Its parameter gradient matches finite
    differences and the gradient of the same terms written separately (loss + r1_penalty)."""
    with jax.enable_x64(True):
        D, x, params = tiny_float64_discriminator()

        def critic(p, imgs):
            scores = D.apply({"params": p}, imgs, stage=1, alpha=0.7)
            return scores, jnp.tanh(scores)  # an auxiliary output that is differentiated too

        def shared(p):
            scores, aux, norms = losses.scores_and_gradient_norms(functools.partial(critic, p), x)
            return (jnp.mean(jax.nn.softplus(-scores)) + losses.r1_from_norms(norms, 10.0)
                    + jnp.mean(aux ** 2))

        def separate(p):
            scores, aux = critic(p, x)
            return (jnp.mean(jax.nn.softplus(-scores)) + jnp.mean(aux ** 2)
                    + losses.r1_penalty(lambda imgs: critic(p, imgs)[0], x, 10.0))

        grads = jax.jit(jax.grad(shared))(params)
        assert float(jax.jit(shared)(params)) == pytest.approx(float(jax.jit(separate)(params)), rel=1e-12)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(jax.jit(jax.grad(separate))(params))):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        assert_matches_finite_differences(jax.jit(shared), params, grads, num_directions=3)
