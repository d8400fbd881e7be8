"""ADA's augmentations and DiffAugment against closed forms on planted images, the identity at
p = 0, R1 through the augmentations against finite differences, and the p controller."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments import config_flags
from stylegan_jax import augment as A
from stylegan_jax import losses
from stylegan_jax.training import steps, state as state_lib
from stylegan_jax.utils import ConfigError
from helpers import assert_matches_finite_differences

SHAPES = [(3, 8, 4, 3), (3, 16, 16, 3), (2, 64, 32, 3)]
# Compiled once per shape: op-by-op the resampling takes seconds.
blit = jax.jit(A.blit)
resample = jax.jit(A.resample)
recolor = jax.jit(A.recolor)
draw_bgc = jax.jit(A.draw_bgc, static_argnums=(2, 3))
apply_draws = jax.jit(A.apply_draws, static_argnums=2)
augment = jax.jit(A.augment, static_argnames="pipeline")


def images(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


def impulse(shape, row, col):
    x = np.zeros(shape, np.float32)
    x[:, row, col, :] = 1.0
    return jnp.asarray(x)


def per_image(n, value, dtype=jnp.int32):
    return jnp.full((n,), value, dtype)


def no_blit(n):
    return per_image(n, 0), per_image(n, 0), jnp.zeros((n, 2), jnp.int32)


# Pixel blits: exact.

@pytest.mark.parametrize("shape", SHAPES)
def test_integer_translation_moves_an_impulse_exactly(shape):
    n, h, w, _ = shape
    x = impulse(shape, h // 2, w // 2)
    out = blit(x, per_image(n, 0), per_image(n, 0), jnp.asarray([[1, -2]] * n, jnp.int32))
    np.testing.assert_array_equal(out, impulse(shape, h // 2 - 2, w // 2 + 1))


def test_translation_reflects_at_the_border():
    x = images((1, 8, 4, 3))
    out = blit(x, per_image(1, 0), per_image(1, 0), jnp.asarray([[2, 0]], jnp.int32))
    # Shifted right by 2: columns 2, 3 are the old 0, 1; columns 0, 1 reflect (old 2, 1).
    np.testing.assert_array_equal(out[0, :, 2:], x[0, :, :2])
    np.testing.assert_array_equal(out[0, :, 0], x[0, :, 2])
    np.testing.assert_array_equal(out[0, :, 1], x[0, :, 1])


@pytest.mark.parametrize("shape", SHAPES)
def test_x_flip_mirrors_left_right(shape):
    x = images(shape)
    n = shape[0]
    out = blit(x, per_image(n, 1), per_image(n, 0), jnp.zeros((n, 2), jnp.int32))
    np.testing.assert_array_equal(out, x[:, :, ::-1])


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_quarter_turns_of_a_square_image_are_np_rot90(turns):
    x = images((2, 16, 16, 3))
    out = blit(x, per_image(2, 0), per_image(2, turns), jnp.zeros((2, 2), jnp.int32))
    np.testing.assert_array_equal(out, np.rot90(np.asarray(x), turns, axes=(1, 2)))


def test_non_square_images_turn_by_180_degrees_only():
    x = images((1, 8, 4, 3))
    out = blit(x, per_image(1, 0), per_image(1, 2), jnp.zeros((1, 2), jnp.int32))
    np.testing.assert_array_equal(out, x[:, ::-1, ::-1])
    draws = draw_bgc(jax.random.key(0), 1.0, (4000, 8, 4, 3), "b")
    turns = np.asarray(draws.quarter_turns)
    assert set(turns) == {0, 2} and 0.45 < np.mean(turns == 2) < 0.55
    square = np.asarray(draw_bgc(jax.random.key(0), 1.0, (4000, 16, 16, 3), "b").quarter_turns)
    assert set(square) == {0, 1, 2, 3}


# General geometry: the official resampling.

@pytest.mark.parametrize("shape", SHAPES)
def test_resampling_with_the_identity_reconstructs_the_image(shape):
    """sym6 is orthogonal: upsampling then downsampling with it is the identity."""
    x = images(shape)
    out = resample(x, jnp.broadcast_to(jnp.eye(3), (shape[0], 3, 3)))
    np.testing.assert_allclose(out, x, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_resampled_integer_translation_moves_an_impulse(shape):
    n, h, w, _ = shape
    x = impulse(shape, h // 2, w // 2)
    # inverse of a translation by (dx, dy) = (1, -2)
    out = resample(x, A.translate2d(per_image(n, -1.0, jnp.float32), per_image(n, 2.0, jnp.float32)))
    np.testing.assert_allclose(out, impulse(shape, h // 2 - 2, w // 2 + 1), atol=1e-6)


def test_isotropic_scaling_of_a_ramp_is_the_scaled_ramp():
    h, w = 32, 16
    y, x = np.mgrid[0:h, 0:w]
    cx, cy = x - (w - 1) / 2, y - (h - 1) / 2
    ramp = lambda s: np.broadcast_to(((0.03 * cx - 0.02 * cy) / s)[None, :, :, None], (1, h, w, 3))  # noqa: E731
    s = 1.25   # zoom in: every sample comes from inside the image
    out = resample(jnp.asarray(ramp(1.0), jnp.float32),
                   A.scale2d(per_image(1, 1 / s, jnp.float32), per_image(1, 1 / s, jnp.float32)))
    # Away from the borders, whose filtering sees the reflection, which is no ramp.
    np.testing.assert_allclose(out[:, 4:-4, 4:-4], ramp(s)[:, 4:-4, 4:-4], atol=2e-4)


def test_geometry_is_drawn_with_the_official_probabilities():
    """Scaling, anisotropy and fractional translation each with p, pre or post rotation with p:
    an image has no geometric transform with probability (1 - p)^4."""
    p = 0.3
    draws = draw_bgc(jax.random.key(1), p, (20000, 8, 4, 3), "bgc")
    assert np.mean(np.asarray(draws.geometric)) == pytest.approx(1 - (1 - p) ** 4, abs=0.01)
    assert np.mean(np.asarray(draws.flip)) == pytest.approx(p / 2, abs=0.01)
    untouched = ~np.asarray(draws.geometric)
    np.testing.assert_array_equal(np.asarray(draws.geometry)[untouched],
                                  np.broadcast_to(np.eye(3), (untouched.sum(), 3, 3)))


# Colour.

def rgb(shape=(4, 8, 4, 3), seed=0):
    return images(shape, seed)


def test_brightness_shifts_every_channel_by_the_drawn_amount():
    x, b = rgb(), jnp.asarray([0.3, -0.2, 0.0, 1.0])
    out = recolor(x, A.translate3d(b))
    np.testing.assert_allclose(out, x + b[:, None, None, None], atol=1e-6)


def test_contrast_scales_about_mid_grey():
    x = rgb()
    x = x - jnp.mean(x, axis=(1, 2, 3), keepdims=True)   # zero-mean images keep their mean
    c = jnp.asarray([0.5, 2.0, 1.0, 1.5])
    out = recolor(x, A.scale3d(c))
    np.testing.assert_allclose(out, x * c[:, None, None, None], atol=1e-6)
    np.testing.assert_allclose(jnp.mean(out, axis=(1, 2, 3)), 0.0, atol=1e-6)


def test_hue_rotation_keeps_luma_and_a_third_turn_cycles_the_channels():
    x = rgb()
    theta = jnp.asarray([0.4, -2.0, math.pi, 2 * math.pi / 3])
    out = recolor(x, A.rotate_about_luma(theta))
    np.testing.assert_allclose(jnp.mean(out, -1), jnp.mean(x, -1), atol=1e-6)
    np.testing.assert_allclose(out[3], x[3][..., [2, 0, 1]], atol=1e-6)   # R <- B, G <- R, B <- G


def test_saturation_keeps_luma_and_scales_the_chroma():
    x = rgb()
    s = jnp.asarray([0.0, 0.5, 2.0, 1.0])
    luma = A.LUMA_PROJECTION
    out = recolor(x, luma + (jnp.eye(4) - luma) * s[:, None, None])
    mean = jnp.mean(x, -1, keepdims=True)
    np.testing.assert_allclose(out, mean + (x - mean) * s[:, None, None, None], atol=1e-6)


def test_luma_flip_negates_luma_and_keeps_the_chroma():
    x = rgb()
    out = recolor(x, jnp.broadcast_to(jnp.eye(4) - 2 * A.LUMA_PROJECTION, (4, 4, 4)))
    mean = jnp.mean(x, -1, keepdims=True)
    np.testing.assert_allclose(out, -mean + (x - mean), atol=1e-6)


def test_drawn_colour_maps_without_luma_flip_keep_grey_images_grey():
    """Hue and saturation leave grey alone; brightness and contrast keep it grey."""
    draws = draw_bgc(jax.random.key(3), 1.0, (64, 8, 4, 3), "c")
    grey = jnp.broadcast_to(images((64, 8, 4, 1)), (64, 8, 4, 3))
    out = apply_draws(grey, draws, "c")
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-5)
    np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-5)


def test_grey_images_get_the_mean_of_the_colour_map():
    x = images((4, 8, 4, 1))
    b, c = jnp.asarray([0.1, 0.2, 0.3, 0.4]), jnp.asarray([1.5, 0.5, 1.0, 2.0])
    color = A._mm(A.scale3d(c), A.translate3d(b))  # pylint: disable=protected-access
    np.testing.assert_allclose(recolor(x, color), (x + b[:, None, None, None]) * c[:, None, None, None],
                               atol=1e-6)


# The whole pipeline.

@pytest.mark.parametrize("shape, pipeline", [
    ((3, 8, 4, 3), "bgc"),
    *[pytest.param(shape, "bgc", marks=pytest.mark.slow) for shape in SHAPES[1:]],
    *[pytest.param((3, 8, 4, 3), groups, marks=pytest.mark.slow) for groups in ("b", "g", "c")]])
def test_p_zero_is_exactly_the_identity(shape, pipeline):
    x = images(shape)
    np.testing.assert_array_equal(augment(x, jax.random.key(5), jnp.float32(0.0), pipeline=pipeline), x)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_p_one_changes_every_image_and_keeps_the_shape(shape):
    x = images(shape)
    out = augment(x, jax.random.key(6), 1.0)
    assert out.shape == x.shape and out.dtype == x.dtype and np.all(np.isfinite(out))
    assert np.all(np.max(np.abs(np.asarray(out - x)), axis=(1, 2, 3)) > 1e-3)


def tiny_critic(params, x):
    """A small nonlinear D: scores [N] of images [N, H, W, C]."""
    hidden = jnp.tanh(jnp.einsum("nhwc,hwck->nk", x, params["w"]) + params["b"])
    return hidden @ params["v"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, shape", [("ada", (2, 8, 4, 3)), ("ada", (2, 8, 8, 3)),
                                         ("diffaug", (2, 8, 4, 3))])
def test_r1_through_the_augmentations_matches_finite_differences(kind, shape):
    """R1 = ||grad_x D(augment(x))||^2 with respect to the un-augmented reals; its gradient with
    respect to D's parameters is grad of grad through the augmentations."""
    cfg = ml_collections.ConfigDict(dict(kind=kind, p=1.0, pipeline="bgc"))
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, h, w, c = shape
        params = {"w": jnp.asarray(rng.normal(size=(h, w, c, 5)) * 0.3),
                  "b": jnp.asarray(rng.normal(size=5)), "v": jnp.asarray(rng.normal(size=5))}
        reals = jnp.asarray(rng.uniform(-1, 1, shape))
        key = jax.random.key(7)

        @jax.jit
        def r1(p):
            return losses.r1_penalty(lambda x: tiny_critic(p, A.for_discriminator(cfg, 1.0, key, x)),
                                     reals, 10.0)

        value, grads = jax.value_and_grad(r1)(params)
        assert float(value) > 0
        assert_matches_finite_differences(r1, params, grads, num_directions=3, h=1e-5, rel=1e-6)
        # ... and the inner gradient itself, with respect to the images.
        score = jax.jit(lambda x: jnp.sum(tiny_critic(params, A.for_discriminator(cfg, 1.0, key, x))))
        assert_matches_finite_differences(score, reals, jax.grad(score)(reals), num_directions=3,
                                          h=1e-5, rel=1e-6)


# DiffAugment.

def test_diffaug_translation_moves_an_impulse_within_an_eighth():
    x = impulse((500, 16, 8, 3), 8, 4)
    out = np.asarray(A.diffaug_translation(x, jax.random.key(0)))
    for image in out:
        rows, cols = np.nonzero(image[..., 0])
        assert len(rows) == 1 and image[rows[0], cols[0]].tolist() == [1, 1, 1]
        assert abs(rows[0] - 8) <= 2 and abs(cols[0] - 4) <= 1
    shifts = {(int(r) - 8, int(c) - 4) for r, c in zip(*np.nonzero(out[..., 0])[1:])}
    assert shifts == {(dy, dx) for dy in range(-2, 3) for dx in range(-1, 2)}


def test_diffaug_cutout_zeroes_a_half_size_rectangle():
    out = np.asarray(A.diffaug_cutout(jnp.ones((200, 16, 8, 3)), jax.random.key(1)))
    full = 0
    for image in out:
        rows, cols = np.nonzero(image[..., 0] == 0)
        assert rows.max() - rows.min() + 1 <= 8 and cols.max() - cols.min() + 1 <= 4
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
        full += len(rows) == 32
    assert full > 20   # often entirely inside the image


def test_diffaug_color_keeps_a_grey_image_grey_and_the_shift_in_range():
    x = jnp.zeros((300, 4, 4, 3))
    out = np.asarray(A.diffaug_color(x, jax.random.key(2)))
    # Brightness b in [-0.5, 0.5]; saturation and contrast about the (constant) mean keep it.
    assert np.all(out == out[:, :1, :1, :1]) and np.all(np.abs(out) <= 0.5)
    assert out.min() < -0.4 and out.max() > 0.4


# The controller.

def ada_cfg(**overrides):
    return ml_collections.ConfigDict(dict(dict(kind="ada", p=0.0, target=0.6, speed_kimg=500.0,
                                               interval=4, pipeline="bgc"), **overrides))


@pytest.mark.parametrize("sign, direction", [(1.0, 1), (0.8, 1), (0.2, -1), (-1.0, -1)])
def test_p_moves_toward_the_target_by_the_formula_step(sign, direction):
    cfg = ada_cfg()
    p, stats = jnp.float32(0.5), jnp.zeros(2, jnp.float32)
    batch = 16
    for step in range(4):
        new_p, stats = A.next_p(cfg, p, stats, jnp.float32(sign), batch, jnp.int32(step))
        if step < 3:   # statistics gather for `interval` steps, then p moves once
            assert float(new_p) == 0.5
            np.testing.assert_allclose(stats, [sign * batch * (step + 1), batch * (step + 1)])
        p = new_p
    # official: adjust = sign(r_t - target) * batch * interval / (ada_kimg * 1000)
    assert float(p) == pytest.approx(0.5 + direction * batch * 4 / 500000, rel=1e-6)
    np.testing.assert_array_equal(stats, [0.0, 0.0])


def test_p_is_clamped_to_zero_and_one():
    assert float(A.adjust_p(jnp.float32(0.001), -40.0, 64.0, target=0.6, speed_kimg=0.01)) == 0.0
    assert float(A.adjust_p(jnp.float32(0.999), 64.0, 64.0, target=0.6, speed_kimg=0.01)) == 1.0


def test_fixed_and_none_keep_p():
    stats = jnp.asarray([3.0, 8.0])
    for kind, want in (("fixed", 0.25), ("none", 0.7)):
        p, new_stats = A.next_p(ada_cfg(kind=kind, p=0.25), jnp.float32(0.7), stats,
                                jnp.float32(1.0), 8, jnp.int32(3))
        assert float(p) == float(np.float32(want))
        np.testing.assert_array_equal(new_stats, stats)


# The configuration and the train step.

@pytest.mark.parametrize("field, value, message", [
    ("kind", "adaptive", "config.augment.kind is 'adaptive': choose one of none, ada, fixed, diffaug"),
    ("pipeline", "bgx", "config.augment.pipeline is 'bgx'"),
    ("p", 1.5, "config.augment.p is 1.5"),
])
def test_bad_augment_config_is_one_config_error(field, value, message):
    config = config_flags.load_config("smoke", lock=False)
    config.augment.kind = "ada"
    config.augment[field] = value
    config = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(config)
    with pytest.raises(ConfigError) as error:
        steps.check_step_config(G, D, config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_base_config_leaves_augmentation_off():
    config = config_flags.load_config("demo")
    assert config.augment.kind == "none"
    assert (config.augment.target, config.augment.speed_kimg, config.augment.interval,
            config.augment.pipeline) == (0.6, 500.0, 4, "bgc")


FOR_DISCRIMINATOR = A.for_discriminator


def lowered_step(kind, monkeypatch, calls, apply_r1=True):
    """Traces (lowers, no compile) the smoke train step with config.augment.kind = kind,
    recording each call of the augmentation."""
    config = config_flags.load_config("smoke", lock=False)
    config.augment.kind = kind
    config = ml_collections.FrozenConfigDict(config)
    G, D = state_lib.build_networks(config)
    def recording(cfg, p, rng, x):
        calls.append((x.shape, rng))
        return FOR_DISCRIMINATOR(cfg, p, rng, x)

    monkeypatch.setattr(A, "for_discriminator", recording)
    state = jax.eval_shape(lambda: state_lib.init_train_state(G, D, config))
    batch = {"image": jax.ShapeDtypeStruct((8, 8, 4, 3), jnp.float32),
             "label": jax.ShapeDtypeStruct((8, 0), jnp.float32)}
    step = jax.jit(lambda s, b: steps.train_step(s, b, 1.0, 1e-3, 1e-3, G=G, D=D, config=config,
                                                 stage=0, apply_r1=apply_r1))
    return step.lower(state, batch)


def test_every_image_d_sees_is_augmented_with_its_own_randomness(monkeypatch):
    calls = []
    lowered_step("ada", monkeypatch, calls)
    # reals (their loss and R1 share one augmentation), fakes, G's fakes
    assert [shape for shape, _ in calls] == [(8, 8, 4, 3)] * 3
    calls.clear()
    lowered_step("ada", monkeypatch, calls, apply_r1=False)
    assert len(calls) == 3


def test_kind_none_never_augments(monkeypatch):
    calls = []
    lowered_step("none", monkeypatch, calls)
    assert calls == []
