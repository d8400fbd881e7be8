"""Generator / discriminator: exact parameter counts, shapes, fade-in, truncation, style mixing."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylegan_jax import layers
from stylegan_jax.networks import (Discriminator, Generator, layer_names, stage_shape, style_mixing,
                                   truncate, update_w_avg)


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def init_shapes(G, D, batch=4):
    """Parameter shapes without running the networks (cheap even for 1024x1024)."""
    top = G.num_stages - 1
    g = jax.eval_shape(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)},
                                      jnp.zeros((batch, G.latent_size)), stage=top))
    shape = stage_shape(D.base_shape, top)
    d = jax.eval_shape(lambda: D.init(jax.random.key(0), jnp.zeros((batch, *shape, 3)), stage=top))
    return g, d


def test_official_ffhq_1024_parameter_counts():
    # NVlabs/stylegan, FFHQ 1024x1024: G 26,219,627 (mapping 2,101,248), D 23,087,249.
    g, d = init_shapes(Generator.create(num_stages=9), Discriminator(num_stages=9))
    assert count(g["params"]) == 26_219_627
    assert count(g["params"]["mapping_network"]) == 2_101_248
    assert count(d["params"]) == 23_087_249


@pytest.mark.parametrize("base,num_stages", [((4, 4), 9), ((8, 4), 7)])
def test_output_shapes_at_every_stage(base, num_stages):
    G, D = Generator.create(base_shape=base, num_stages=num_stages), Discriminator(base_shape=base, num_stages=num_stages)
    g, d = init_shapes(G, D)
    z = jnp.zeros((4, 512))
    for stage in range(num_stages):
        h, w = base[0] * 2**stage, base[1] * 2**stage
        img = jax.eval_shape(lambda p, z: G.apply(p, z, stage=stage, alpha=0.5, rngs={"noise": jax.random.key(0)}), g, z)
        assert img.shape == (4, h, w, 3)
        scores = jax.eval_shape(lambda p, x: D.apply(p, x, stage=stage, alpha=0.5), d, jnp.zeros((4, h, w, 3)))
        assert scores.shape == (4,)
    assert stage_shape(base, num_stages - 1) == ((1024, 1024) if base == (4, 4) else (512, 256))


SMALL = dict(base_shape=(8, 4), num_stages=3, fmap_base=64, fmap_max=32)


def generator_apply(G, gv, *args, traced_alpha=None, **kwargs):
    """Jitted G.apply (eager flax runs op by op and is slow on CPU); traced_alpha is a jit argument."""
    if traced_alpha is None:
        return jax.jit(lambda v, *a: G.apply(v, *a, **kwargs))(gv, *args)
    return jax.jit(lambda v, alpha, *a: G.apply(v, *a, alpha=alpha, **kwargs))(gv, traced_alpha, *args)


@functools.lru_cache(maxsize=None)
def small_nets():
    G = Generator.create(latent_size=16, dlatent_size=16, mapping_fmaps=16, mapping_layers=2, **SMALL)
    D = Discriminator(**SMALL)
    z = jax.random.normal(jax.random.key(0), (4, 16))
    gv = jax.jit(lambda z: G.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, z, stage=2))(z)
    # Non-zero biases and noise weights so that every path matters.
    rng = np.random.default_rng(0)
    perturb = lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32)
    gv = jax.tree_util.tree_map(perturb, gv)
    dv = jax.jit(lambda x: D.init(jax.random.key(4), x, stage=2))(jnp.zeros((4, 32, 16, 3)))
    dv = jax.tree_util.tree_map(perturb, dv)
    return G, D, gv, dv, z


@pytest.mark.slow
def test_parameters_exist_for_every_stage_from_init():
    G, D, gv, dv, z = small_nets()
    synth = gv["params"]["synthesis_network"]
    for name in layer_names((8, 4), 3):
        assert name in synth
    for h, w in [(8, 4), (16, 8), (32, 16)]:
        assert f"torgb_{h}x{w}" in synth and f"fromrgb_{h}x{w}" in dv["params"]
    # Init at a lower stage creates exactly the same tree.
    g0 = jax.eval_shape(lambda: G.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, z, stage=0))
    assert jax.tree_util.tree_map(jnp.shape, g0) == jax.tree_util.tree_map(jnp.shape, gv)
    d0 = jax.eval_shape(lambda: D.init(jax.random.key(4), jnp.zeros((4, 8, 4, 3)), stage=0))
    assert jax.tree_util.tree_map(jnp.shape, d0) == jax.tree_util.tree_map(jnp.shape, dv)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2])
def test_generator_fade_in_is_continuous(stage):
    G, _, gv, _, z = small_nets()
    rngs = {"noise": jax.random.key(7)}
    previous = generator_apply(G, gv, z, stage=stage - 1, alpha=1.0, rngs=rngs)
    faded_out = generator_apply(G, gv, z, stage=stage, alpha=0.0, rngs=rngs)
    np.testing.assert_allclose(faded_out, layers.upscale(previous), rtol=1e-5, atol=1e-5)
    # At alpha = 1 the previous toRGB has no effect.
    prev_rgb = f"torgb_{8 * 2 ** (stage - 1)}x{4 * 2 ** (stage - 1)}"
    zeroed = jax.tree_util.tree_map(lambda x: x, gv)
    zeroed["params"]["synthesis_network"][prev_rgb] = jax.tree_util.tree_map(
        lambda p: p * 0 + 3.0, gv["params"]["synthesis_network"][prev_rgb])
    a = generator_apply(G, gv, z, traced_alpha=1.0, stage=stage, rngs=rngs)
    b = generator_apply(G, zeroed, z, traced_alpha=1.0, stage=stage, rngs=rngs)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    mid = generator_apply(G, gv, z, stage=stage, alpha=0.3, rngs=rngs)
    np.testing.assert_allclose(mid, 0.7 * faded_out + 0.3 * a, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2])
def test_discriminator_fade_in_is_continuous(stage):
    _, D, _, dv, _ = small_nets()
    h, w = stage_shape((8, 4), stage)
    x = jax.random.normal(jax.random.key(8), (4, h, w, 3))
    faded_out = generator_apply(D, dv, x, stage=stage, alpha=0.0)
    previous = generator_apply(D, dv, layers.downscale(x), stage=stage - 1, alpha=1.0)
    np.testing.assert_allclose(faded_out, previous, rtol=1e-5, atol=1e-5)
    prev_rgb = f"fromrgb_{h // 2}x{w // 2}"
    changed = jax.tree_util.tree_map(lambda p: p, dv)
    changed["params"][prev_rgb] = jax.tree_util.tree_map(lambda p: p * 0 + 3.0, dv["params"][prev_rgb])
    np.testing.assert_allclose(generator_apply(D, dv, x, traced_alpha=1.0, stage=stage),
                               generator_apply(D, changed, x, traced_alpha=1.0, stage=stage), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_truncation_and_w_avg():
    G, _, gv, _, z = small_nets()
    w = generator_apply(G, gv, z, method=Generator.mapping)
    assert w.shape == (4, 6, 16)
    w_avg = jnp.linspace(-1, 1, 16)
    np.testing.assert_allclose(truncate(w, w_avg, 0.0), jnp.broadcast_to(w_avg, w.shape), atol=1e-7)
    np.testing.assert_array_equal(truncate(w, w_avg, 1.0), w)
    cut = truncate(w, w_avg, 0.0, cutoff=2)
    np.testing.assert_allclose(cut[:, :2], jnp.broadcast_to(w_avg, (4, 2, 16)), atol=1e-7)
    np.testing.assert_array_equal(cut[:, 2:], w[:, 2:])
    # psi = 0 through the generator equals synthesizing w_avg itself.
    img = generator_apply(G, gv, z, stage=2, w_avg=w_avg, psi=0.0, truncation_cutoff=None, noise_mode="const")
    ref = generator_apply(G, gv, jnp.broadcast_to(w_avg, w.shape), stage=2, noise_mode="const", method=Generator.synthesis)
    np.testing.assert_allclose(img, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(update_w_avg(w_avg, w, 0.995), 0.995 * w_avg + 0.005 * w[:, 0].mean(0), rtol=1e-5, atol=1e-7)


def test_style_mixing_uses_w2_from_the_crossover_layer():
    w = jnp.zeros((2, 6, 3))
    w2 = jnp.ones((2, 6, 3))
    cutoffs = set()
    for seed in range(40):
        mixed = np.asarray(style_mixing(jax.random.key(seed), w, w2, prob=1.0, num_active_layers=4))
        cutoff = int(np.argmax(mixed[0, :, 0] == 1))
        assert 1 <= cutoff < 4
        assert (mixed[:, :cutoff] == 0).all() and (mixed[:, cutoff:] == 1).all()
        cutoffs.add(cutoff)
    assert cutoffs == {1, 2, 3}
    np.testing.assert_array_equal(style_mixing(jax.random.key(0), w, w2, prob=0.0, num_active_layers=4), w)


@pytest.mark.slow
def test_noise_modes():
    G, _, gv, _, z = small_nets()
    w = generator_apply(G, gv, z, method=Generator.mapping)
    synth = lambda key, mode: generator_apply(G, gv, w, stage=2, noise_mode=mode, rngs={"noise": key},
                                              method=Generator.synthesis)
    a, b = synth(jax.random.key(0), "random"), synth(jax.random.key(1), "random")
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_array_equal(synth(jax.random.key(0), "const"), synth(jax.random.key(1), "const"))
    # Without noise the noise strengths do not matter.
    quiet = jax.tree_util.tree_map_with_path(
        lambda path, p: p * 0 if "noise" in jax.tree_util.keystr(path) else p, gv)
    np.testing.assert_array_equal(synth(jax.random.key(0), "none"),
                                  generator_apply(G, quiet, w, stage=2, noise_mode="random",
                                                  rngs={"noise": jax.random.key(0)},
                                                  method=Generator.synthesis))


@pytest.mark.slow
def test_layer_specs_list_every_synthesis_layer_with_its_output_shape():
    G, _, gv, _, _ = small_nets()
    specs = G.layer_specs
    assert [s.name for s in specs] == layer_names((8, 4), 3) == [
        "8x4_const", "8x4_conv", "16x8_conv0_up", "16x8_conv1", "32x16_conv0_up", "32x16_conv1"]
    assert [s.index for s in specs] == list(range(G.num_layers))
    assert [s.kind for s in specs] == ["const", "conv", "up", "conv", "up", "conv"]
    synth = gv["params"]["synthesis_network"]
    for spec in specs:  # the channel count is the layer's bias size; the shape doubles per stage
        assert synth[spec.name]["bias"].shape == (spec.channels,)
        assert (spec.height, spec.width) == stage_shape((8, 4), spec.stage)


def test_create_splits_options_between_the_networks_and_gives_them_back():
    options = dict(latent_size=16, dlatent_size=16, mapping_fmaps=16, mapping_layers=2, label_size=3,
                   dtype=jnp.bfloat16, **SMALL)
    G = Generator.create(**options)
    assert G.mapping_network.dlatent_size == G.synthesis_network.dlatent_size == 16
    assert G.mapping_network.dtype == G.synthesis_network.dtype == jnp.bfloat16
    assert {k: G.options()[k] for k in options} == options
    assert G.replace(dtype=jnp.float32).options() == {**G.options(), "dtype": jnp.float32}
    assert Generator.create(**G.options()) == G and hash(Generator.create(**G.options())) == hash(G)
    with pytest.raises(TypeError, match="unknown generator option.*fmap_bass"):
        Generator.create(fmap_bass=3)


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_params():
    G, D, gv, dv, z = small_nets()
    Gb = Generator.create(latent_size=16, dlatent_size=16, mapping_fmaps=16, mapping_layers=2, dtype=jnp.bfloat16, **SMALL)
    img32 = generator_apply(G, gv, z, stage=2, noise_mode="none")
    img16 = generator_apply(Gb, gv, z, stage=2, noise_mode="none")
    assert img16.dtype == jnp.float32
    assert jax.tree_util.tree_leaves(gv)[0].dtype == jnp.float32
    # bfloat16 keeps ~3 significant digits; a few layers with instance norm stay within ~10%.
    assert np.abs(img16 - img32).mean() < 0.1 * np.abs(img32).mean()


def test_labels_shape_errors():
    G = Generator.create(latent_size=16, dlatent_size=16, mapping_fmaps=16, mapping_layers=2, label_size=5, **SMALL)
    z = jnp.zeros((2, 16))
    gv = jax.eval_shape(lambda: G.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, z, jnp.zeros((2, 5)), stage=0))
    assert gv["params"]["mapping_network"]["label_embedding"].shape == (5, 16)
    with pytest.raises(ValueError, match="labels must have shape"):
        jax.eval_shape(lambda v: G.apply(v, z, jnp.zeros((2, 4)), stage=0, noise_mode="none"), gv)
