"""Hooks into one synthesis pass (explore/synthesis_hooks.py): feature maps, edits, resuming from a
layer, instance-norm statistics; the plain pass is exactly Generator.synthesis."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import layers
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.networks import Generator, layer_names
from stylegan_jax.utils import cpu_compiler_options

FAST = cpu_compiler_options(True)  # these programs run once: skip LLVM's optimizations

SMALL = dict(base_shape=(8, 4), num_stages=3, fmap_base=64, fmap_max=32, latent_size=16,
             dlatent_size=16, mapping_fmaps=16, mapping_layers=2)


@functools.lru_cache(maxsize=None)
def net():
    G = Generator.create(**SMALL)
    z = jax.random.normal(jax.random.key(0), (3, 16))
    variables = jax.jit(lambda z: G.init({"params": jax.random.key(1), "noise": jax.random.key(2)},
                                         z, stage=2), compiler_options=FAST)(z)
    # Non-zero biases and noise strengths, so that every path matters.
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32),
                          variables["params"])
    w = jax.jit(lambda p, z: G.apply({"params": p}, z, method=Generator.mapping),
                compiler_options=FAST)(params, z)
    return G, params, w


def run(**kwargs):
    """synthesize(G, params, w, **kwargs), jitted as the explorer runs it."""
    G, params, w = net()
    return jax.jit(lambda p, w: synthesize(G, p, w, **kwargs), compiler_options=FAST)(params, w)


@pytest.mark.slow
@pytest.mark.parametrize("noise_mode", ["const", "none", "random"])
def test_plain_pass_is_the_generator_and_records_every_layer(noise_mode):
    G, params, w = net()
    key = jax.random.key(3)
    out = run(noise_mode=noise_mode, rng=key)
    plain = jax.jit(lambda p, w: G.apply({"params": p}, w, stage=2, noise_mode=noise_mode,
                                         rngs={"noise": key}, method=Generator.synthesis),
                    compiler_options=FAST)(params, w)
    np.testing.assert_array_equal(out.images, plain)
    # (a jitted pass returns its dicts with sorted keys)
    assert sorted(out.features) == sorted(layer_names((8, 4), 3)) == sorted(out.norm_stats)
    for spec in G.layer_specs:
        assert out.features[spec.name].shape == (3, spec.height, spec.width, spec.channels)
    # The last layer's output is what toRGB (a 1x1 conv) turns into the images.
    torgb = layers.EqualizedConv(3, 1, gain=1.0)
    np.testing.assert_allclose(
        torgb.apply({"params": params["synthesis_network"]["torgb_32x16"]}, out.features["32x16_conv1"]),
        out.images, rtol=1e-5, atol=1e-6)


def test_norm_stats_are_those_of_each_layer_before_its_normalization():
    """A layer's recorded (mean, inverse RMS) normalize its own pre-norm activation: applying the
    style's inverse to the layer's output must give zero mean and unit RMS."""
    G, params, w = net()
    out = run(noise_mode="none")
    name, c = "16x8_conv1", G.layer_specs[3].channels
    style = layers.EqualizedDense(2 * c, gain=1.0).apply(
        {"params": params["synthesis_network"][name]["style"]["dense"]}, w[:, 3])
    scale, bias = style[:, None, None, :c], style[:, None, None, c:]
    normalized = (out.features[name] - bias) / (scale + 1.0)
    np.testing.assert_allclose(normalized.mean(axis=(1, 2)), 0.0, atol=2e-4)
    np.testing.assert_allclose(np.sqrt((normalized ** 2).mean(axis=(1, 2))), 1.0, rtol=2e-3)
    mean, inverse_rms = out.norm_stats[name]
    assert mean.shape == inverse_rms.shape == (3, 1, 1, c)
    # Given back as frozen statistics, the pass is unchanged.
    np.testing.assert_array_equal(run(noise_mode="none", norm_stats=out.norm_stats).images, out.images)


def test_an_edit_adds_to_its_layer_and_equals_resuming_from_the_edited_activation():
    plain = run(noise_mode="none")
    delta = jnp.zeros_like(plain.features["16x8_conv1"]).at[:, 2:4, 1:3, 0].set(3.0)
    edited = run(noise_mode="none", edits={"16x8_conv1": delta})
    np.testing.assert_allclose(edited.features["16x8_conv1"], plain.features["16x8_conv1"] + delta)
    for name in ("8x4_const", "8x4_conv", "16x8_conv0_up"):  # earlier layers are untouched
        np.testing.assert_array_equal(edited.features[name], plain.features[name])
    assert np.abs(edited.images - plain.images).max() > 1e-3
    resumed = run(noise_mode="none", resume=("16x8_conv1", plain.features["16x8_conv1"] + delta))
    assert sorted(resumed.features) == ["16x8_conv1", "32x16_conv0_up", "32x16_conv1"]
    np.testing.assert_allclose(resumed.images, edited.images, rtol=1e-5, atol=1e-6)
    zero = run(noise_mode="none", edits={"16x8_conv1": 0 * delta})
    np.testing.assert_allclose(zero.images, plain.images, atol=1e-6)


def test_frozen_statistics_keep_the_unedited_normalization_after_an_edit():
    plain = run(noise_mode="none")
    delta = jnp.zeros_like(plain.features["8x4_conv"]).at[:, 0:2, 0:2, :].set(2.0)
    own = run(noise_mode="none", edits={"8x4_conv": delta})
    frozen = run(noise_mode="none", edits={"8x4_conv": delta}, norm_stats=plain.norm_stats)
    for name in ("16x8_conv0_up", "32x16_conv1"):
        np.testing.assert_array_equal(frozen.norm_stats[name][0], plain.norm_stats[name][0])
        assert np.abs(own.norm_stats[name][0] - plain.norm_stats[name][0]).max() > 1e-4


def test_unknown_layers_are_a_one_line_error():
    _, _, w = net()
    delta = jnp.zeros((3, 64, 32, 32))
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['64x32_conv1'\]"):
        run(noise_mode="none", edits={"64x32_conv1": delta})
    with pytest.raises(ValueError, match="unknown layer"):
        run(noise_mode="none", resume=("nope", delta))
