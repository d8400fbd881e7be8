"""The train step as the official StyleGAN run defines it: R1 at every stage, the tracked w.

R1 is checked against an independent formulation computed by autodiff itself: the official loop
feeds D the reals nearest-upscaled to the final resolution and D box-downscales them, so its
penalty is R1 of that full-resolution D at the upscaled reals. The test builds exactly that
function (the upscale and the box-downscale written here with NumPy-style reshapes, not the
project's layers) and takes R1 of it with jax.grad.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments import config_flags
from stylegan_jax import losses
from stylegan_jax.networks import Discriminator
from stylegan_jax.training import quality, samples, state as state_lib, steps
from stylegan_jax.utils import cpu_compiler_options


def nearest_upscale(x, factor):
    """[N, H, W, C] -> [N, H*f, W*f, C], every pixel repeated in an f x f block."""
    n, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c)).reshape(
        n, h * factor, w * factor, c)


def box_downscale(x, factor):
    """[N, H, W, C] -> [N, H/f, W/f, C], the mean of each f x f block."""
    n, h, w, c = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def official_r1(D, params, reals, *, stage, alpha, gamma):
    """R1 of the full-resolution D (box-downscale to the stage, then D) at the upscaled reals."""
    factor = 2 ** (D.num_stages - 1 - stage)

    def full_resolution_d(x_full):
        return D.apply({"params": params}, box_downscale(x_full, factor), stage=stage, alpha=alpha)

    return losses.r1_penalty(full_resolution_d, nearest_upscale(reals, factor), gamma)


def loss_config(resolution="full", gamma=10.0, interval=1):
    return ml_collections.ConfigDict(dict(r1_gamma=gamma, r1_interval=interval,
                                          r1_resolution=resolution))


@pytest.mark.parametrize("base_shape", [(4, 4), (8, 4)])
@pytest.mark.parametrize("stage,alpha", [(0, 1.0), (1, 0.3), (1, 1.0), (2, 0.6), (3, 1.0)])
def test_r1_weight_per_stage_equals_r1_at_the_full_resolution(base_shape, stage, alpha):
    D = Discriminator(base_shape=base_shape, num_stages=4, fmap_base=16, fmap_max=4, mbstd_group_size=2)
    shape = (2, base_shape[0] * 2**stage, base_shape[1] * 2**stage, 3)
    reals = jax.random.uniform(jax.random.key(stage), shape, jnp.float32, -1, 1)
    params = D.init(jax.random.key(1), reals, stage=stage)["params"]
    expected = official_r1(D, params, reals, stage=stage, alpha=alpha, gamma=10.0)
    d_fn = lambda x: D.apply({"params": params}, x, stage=stage, alpha=alpha)
    got = losses.r1_penalty(d_fn, reals, steps.r1_gamma(loss_config(), stage, D.num_stages))
    assert float(expected) > 0
    assert float(got) == pytest.approx(float(expected), rel=1e-4)
    # The per-stage option keeps gamma at every stage: 4^k times the official penalty.
    stage_gamma = steps.r1_gamma(loss_config("stage"), stage, D.num_stages)
    assert stage_gamma == 10.0
    assert float(losses.r1_penalty(d_fn, reals, stage_gamma)) == pytest.approx(
        float(expected) * 4 ** (D.num_stages - 1 - stage), rel=1e-4)


def test_r1_gamma_includes_the_lazy_factor_and_rejects_unknown_modes():
    assert steps.r1_gamma(loss_config(gamma=5.0, interval=4), 1, 3) == pytest.approx(5.0)  # 5*4/4
    assert steps.r1_gamma(loss_config(gamma=5.0, interval=4), 2, 3) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="r1_resolution must be one of full, stage"):
        steps.r1_gamma(loss_config("final"), 0, 3)


@functools.lru_cache(maxsize=None)
def smoke_step(r1_resolution, stage, alpha):
    """(G, D, config, state, batch, new state, metrics) of one smoke train step."""
    config = config_flags.load_config("smoke", lock=False)
    config.loss.r1_resolution = r1_resolution
    config = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(config)
    fast = cpu_compiler_options(True)
    state = jax.jit(functools.partial(state_lib.init_train_state, G, D, config), compiler_options=fast)()
    rng = np.random.default_rng(stage)
    batch = {"image": rng.uniform(-1, 1, (8, 8 * 2**stage, 4 * 2**stage, 3)).astype(np.float32),
             "label": np.zeros((8, 0), np.float32)}
    step = jax.jit(functools.partial(steps.train_step, G=G, D=D, config=config, stage=stage,
                                     apply_r1=True), compiler_options=fast)
    new_state, metrics = step(state, batch, alpha, 2e-3, 2e-3)
    return G, D, config, state, batch, new_state, metrics


@pytest.mark.slow
@pytest.mark.parametrize("stage,alpha", [(0, 1.0), (1, 0.4)])
def test_train_step_r1_is_the_official_penalty(stage, alpha):
    """The step's r1_penalty metric, at the base stage and during the fade-in, is R1 of the
    full-resolution D at the upscaled (faded) reals; with r1_resolution="stage" it is the old
    per-stage penalty."""
    _, D, config, state, batch, _, metrics = smoke_step("full", stage, alpha)
    reals = steps.fade_reals(jnp.asarray(batch["image"]), alpha)
    expected = official_r1(D, state.d_params, reals, stage=stage, alpha=alpha, gamma=config.loss.r1_gamma)
    assert float(metrics["r1_penalty"]) == pytest.approx(float(expected), rel=1e-4)
    _, _, _, _, _, _, per_stage = smoke_step("stage", stage, alpha)
    assert float(per_stage["r1_penalty"]) == pytest.approx(
        float(expected) * 4 ** (D.num_stages - 1 - stage), rel=1e-4)


@pytest.mark.slow
def test_tracked_w_moves_toward_the_d_step_and_the_g_step_fakes():
    """w_avg <- lerp(mean w of the G-step fakes, lerp(mean w of the D-step fakes, w_avg, beta),
    beta), each mean over the batch of the unmixed w drawn from the step's documented keys."""
    G, _, config, state, batch, new_state, _ = smoke_step("full", 0, 1.0)
    step_key = jax.random.fold_in(state.rng, state.step)
    k_d, k_g = jax.random.split(step_key)
    beta = config.loss.w_avg_beta
    expected = np.asarray(state.w_avg, np.float64)
    for key, g_params in ((k_d, state.g_params), (k_g, state.g_params)):  # G-step w: before its update
        _, w = steps.generate(G, g_params, key, None, 8, stage=0, alpha=1.0,
                              mixing_prob=config.loss.style_mixing_prob)
        expected = beta * expected + (1 - beta) * np.asarray(w[:, 0], np.float64).mean(axis=0)
    np.testing.assert_allclose(np.asarray(new_state.w_avg), expected, rtol=1e-5, atol=1e-7)
    # Not the G-step fakes alone (the old behaviour): the two differ by far more than roundoff.
    _, w_g = steps.generate(G, state.g_params, k_g, None, 8, stage=0, alpha=1.0,
                            mixing_prob=config.loss.style_mixing_prob)
    g_only = beta * np.asarray(state.w_avg) + (1 - beta) * np.asarray(w_g[:, 0]).mean(axis=0)
    assert np.abs(g_only - np.asarray(new_state.w_avg)).max() > 1e-5


@pytest.mark.slow
def test_metrics_draw_random_noise_per_image_and_grids_constant_noise():
    """The official metrics draw every image with its own noise; the grids for people keep the
    constant noise, so they change only when the weights do."""
    G, _, config, state, _, _, _ = smoke_step("full", 0, 1.0)
    z = np.repeat(np.asarray(jax.random.normal(jax.random.key(3), (1, G.latent_size))), 4, axis=0)
    # Noise strengths start at zero (official init): give each a weight so noise shows.
    g_params = jax.tree_util.tree_map_with_path(
        lambda path, p: p + 0.5 if "noise" in jax.tree_util.keystr(path) else p, state.g_ema_params)
    args = (g_params, z, None, state.w_avg, jnp.float32(1.0), jnp.float32(1.0))
    grid = np.asarray(samples.make_sampler(G, None, noise_mode="const")(*args, None, stage=1))
    np.testing.assert_array_equal(grid, np.broadcast_to(grid[:1], grid.shape))
    metrics_sampler = samples.make_sampler(G, None, noise_mode="random")
    drawn = np.asarray(metrics_sampler(*args, jax.random.key(0), stage=1))
    assert np.abs(drawn[1:] - drawn[:1]).max() > 1e-3  # same z, new noise per image
    # quality.measure hands the sampler a new noise key for every batch.
    keys = []

    def recording_sampler(*a, stage):
        keys.append(np.asarray(jax.random.key_data(a[6])))
        return metrics_sampler(*a, stage=stage)

    def reals(resolution, batch_size, seed):
        for _ in range(2):
            yield {"image": np.zeros((batch_size, *resolution, 3), np.float32)}

    metrics_config = ml_collections.ConfigDict(dict(names="swd", batch_size=8, num_images=16,
                                                    inception=None))
    quality.measure(metrics_config, sampler=recording_sampler, g_params=g_params,
                    w_avg=state.w_avg, latent_size=G.latent_size, stage=1, alpha=1.0,
                    make_source=reals, resolution=(16, 8), labels=None, seed=0)
    assert len(keys) >= 2 and not np.array_equal(keys[0], keys[1])
