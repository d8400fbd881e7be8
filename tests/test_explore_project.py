"""stylegan_jax/explore/project.py: the projector's schedules and noise regularisation against
their formulas, explicit noise maps in the synthesis path and the explorer, W / W+ shapes, the
LPIPS weights file (an independent NumPy LPIPS on a tiny file in the documented layout), and, on
the bundled trained demo generator, recovery of images generated from known w's."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore import project as P
from stylegan_jax.explore.model import DEMO_GENERATOR
from stylegan_jax.explore.synthesis_hooks import synthesize
from stylegan_jax.networks import Discriminator
from stylegan_jax.prep.crops import KnownBoxDetector


@pytest.fixture(scope="module")
def tiny():
    """An explorer on a small random generator (32x16)."""
    return Explorer(random_bundle(0), fast_compile=True)


# ---------------------------------------------------------------------------------- schedules

def official_lr(step, num_steps, initial=0.1, rampdown=0.25, rampup=0.05):
    """The StyleGAN2 projector's learning rate, written out with math."""
    t = step / num_steps
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial * ramp * min(1.0, t / rampup)


def test_learning_rate_schedule_is_the_official_formula():
    cfg = P.ProjectionConfig(num_steps=1000)
    for step in (0, 1, 25, 49, 50, 51, 300, 749, 750, 800, 875, 999):
        assert float(P.learning_rate(step, cfg)) == pytest.approx(official_lr(step, 1000), abs=1e-7)
        assert float(P.learning_rate(jnp.int32(step), cfg)) == pytest.approx(
            official_lr(step, 1000), rel=1e-5, abs=1e-7)
    # Landmarks: zero at the start, the peak from 5% to 75%, half the peak at 87.5%.
    assert float(P.learning_rate(0, cfg)) == 0.0
    assert float(P.learning_rate(500, cfg)) == pytest.approx(0.1)
    assert float(P.learning_rate(875, cfg)) == pytest.approx(0.05)


def test_w_noise_strength_falls_quadratically_to_zero_at_75_percent():
    cfg = P.ProjectionConfig(num_steps=100)
    assert float(P.w_noise_strength(0, cfg, 2.0)) == pytest.approx(2.0 * 0.05)
    assert float(P.w_noise_strength(37.5, cfg, 2.0)) == pytest.approx(2.0 * 0.05 * 0.25)
    assert float(P.w_noise_strength(75, cfg, 2.0)) == 0.0
    assert float(P.w_noise_strength(90, cfg, 2.0)) == 0.0


# ---------------------------------------------------------------------------------- noise maps

def reference_regularization(v):
    """The noise regularisation of one map [h, w] by loops: at each pyramid level, the squared
    mean of v[y, x] * v[y, x - 1] (wrapping) plus that of v[y, x] * v[y - 1, x]."""
    total = 0.0
    while True:
        h, w = v.shape
        horizontal = sum(v[y, x] * v[y, (x - 1) % w] for y in range(h) for x in range(w)) / (h * w)
        vertical = sum(v[y, x] * v[(y - 1) % h, x] for y in range(h) for x in range(w)) / (h * w)
        total += horizontal ** 2 + vertical ** 2
        if min(h, w) <= 8:
            return total
        v = np.array([[v[2 * y:2 * y + 2, 2 * x:2 * x + 2].mean() for x in range(w // 2)]
                      for y in range(h // 2)])


def as_map(a):
    return jnp.asarray(np.asarray(a, np.float32)[None, :, :, None])


@pytest.mark.slow
def test_noise_regularization_on_planted_maps():
    ones = np.ones((16, 16))
    checker = np.indices((16, 16)).sum(0) % 2 * 2.0 - 1.0
    stripes = np.tile([1.0, -1.0], (32, 8))  # 32x16, columns alternate
    # ones: autocorrelation 1 both ways at 16x16 and at the pooled 8x8: 4 in all.
    assert float(P.noise_regularization({"a": as_map(ones)})[0]) == pytest.approx(4.0)
    # a checkerboard: -1 both ways (squared: 2); pooled it is all zero.
    assert float(P.noise_regularization({"a": as_map(checker)})[0]) == pytest.approx(2.0)
    # vertical stripes: -1 horizontally, +1 vertically; pooled to 16x8 all zero.
    assert float(P.noise_regularization({"a": as_map(stripes)})[0]) == pytest.approx(2.0)
    # the maps' terms add up, per image of the batch.
    both = P.noise_regularization({"a": as_map(ones), "b": as_map(checker)})
    assert float(both[0]) == pytest.approx(6.0)
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((32, 16)), rng.standard_normal((8, 4)), rng.standard_normal((20, 20))]
    got = P.noise_regularization({str(i): as_map(m) for i, m in enumerate(maps)})
    assert float(got[0]) == pytest.approx(sum(reference_regularization(m) for m in maps), rel=1e-5)
    batch = jnp.concatenate([as_map(maps[0]), as_map(ones[:16, :16].repeat(2, 0))])
    np.testing.assert_allclose(P.noise_regularization({"a": batch}),
                               [reference_regularization(maps[0]), 4.0], rtol=1e-5)


def test_normalize_noise_per_image():
    rng = np.random.default_rng(1)
    maps = {"a": jnp.asarray(3.0 + 5.0 * rng.standard_normal((2, 8, 4, 1)), jnp.float32)}
    out = np.asarray(P.normalize_noise(maps)["a"])
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1.0, rtol=1e-5)


def const_maps(ex):
    """The noise of noise_mode "const", as explicit maps (SynthesisNetwork's fixed keys)."""
    return {l.name: np.asarray(jax.random.normal(jax.random.key(1000 + l.index),
                                                 (1, l.height, l.width, 1)))
            for l in ex.noise_layers}


@pytest.mark.slow
def test_explicit_noise_maps_replace_the_noise_input(tiny):
    w = tiny.w_from_seeds([1, 2])
    const = synthesize(tiny.module, tiny.params, w, noise_mode="const").images
    given = synthesize(tiny.module, tiny.params, w, noise_mode="none", noise=const_maps(tiny)).images
    np.testing.assert_allclose(given, const, atol=1e-6)
    other = {k: -v for k, v in const_maps(tiny).items()}
    changed = synthesize(tiny.module, tiny.params, w, noise_mode="const", noise=other).images
    assert np.abs(np.asarray(changed) - np.asarray(const)).max() > 1e-3
    with pytest.raises(ValueError, match="unknown layer"):
        synthesize(tiny.module, tiny.params, w, noise={"nope": other[tiny.layers[0].name]})


@pytest.mark.slow
def test_registered_noise_maps_are_a_noise_mode_of_the_explorer(tiny):
    w = tiny.w_from_seeds([3])
    rng = np.random.default_rng(2)
    maps = {l.name: rng.standard_normal((l.height, l.width)) for l in tiny.noise_layers}
    tiny.add_noise_maps("mine", maps)
    assert "mine" in tiny.noise_modes
    want = synthesize(tiny.module, tiny.params, w, noise_mode="const",
                      noise={k: v[None, :, :, None] for k, v in maps.items()}).images
    got = tiny.synthesize(w, noise_mode="mine")
    np.testing.assert_allclose(got.images, want, atol=2e-5)  # jitted against eager
    assert np.abs(got.images - tiny.synthesize(w, noise_mode="const").images).max() > 1e-3
    # Edits on the projected noise: the cached re-synthesis equals the full pass.
    layer = tiny.layers[2]
    delta = {layer.name: np.full((1, layer.height, layer.width, layer.channels), 0.5, np.float32)}
    cached = tiny.synthesize(w, delta, noise_mode="mine").images
    full = tiny.synthesize(w, delta, noise_mode="mine", use_cache=False).images
    np.testing.assert_allclose(cached, full, atol=1e-5)
    # Re-registering the name with other maps changes the rendering (no stale cache).
    tiny.add_noise_maps("mine", {k: -v for k, v in maps.items()})
    assert np.abs(tiny.synthesize(w, noise_mode="mine").images - got.images).max() > 1e-3
    tiny.remove_noise_maps("mine")
    with pytest.raises(ValueError, match="unknown noise mode"):
        tiny.synthesize(w, noise_mode="mine")
    with pytest.raises(ValueError, match="exactly the noise layers"):
        tiny.add_noise_maps("bad", {tiny.layers[0].name: maps[tiny.layers[0].name]})
    with pytest.raises(ValueError, match="other than"):
        tiny.add_noise_maps("const", maps)
    bad = dict(maps, **{tiny.layers[0].name: np.zeros((3, 3))})
    with pytest.raises(ValueError, match="shape"):
        tiny.add_noise_maps("bad", bad)


# ---------------------------------------------------------------------------------- projector

@pytest.mark.slow
def test_w_and_w_plus_shapes_and_a_stop_from_the_callback(tiny):
    w_true = tiny.w_from_seeds([4, 5])
    target = tiny.synthesize(w_true).images
    seen = []
    for space in P.SPACES:
        cfg = P.ProjectionConfig(num_steps=4, space=space, w_avg_samples=64, frame_every=2)
        result = P.Projector(tiny, P.pixel_distance(), cfg).project(
            target, lambda step, total, d: seen.append((step, total, d.shape)))
        assert result.w.shape == (2, tiny.num_layers, tiny.dlatent_size)
        rows_equal = np.all(result.w == result.w[:, :1], axis=(1, 2))
        assert rows_equal.all() if space == "w" else not rows_equal.any()
        assert set(result.noise) == {l.name for l in tiny.noise_layers}
        assert all(result.noise[l.name].shape == (2, l.height, l.width, 1) for l in tiny.noise_layers)
        assert result.images.shape == target.shape and result.psnr.shape == (2,)
        assert result.losses.shape == result.distances.shape == (4, 2)
        assert [s for s, _ in result.frames] == [0, 2, 4]
    assert seen[:4] == [(1, 4, (2,)), (2, 4, (2,)), (3, 4, (2,)), (4, 4, (2,))]
    stopped = P.Projector(tiny, P.pixel_distance(), P.ProjectionConfig(
        num_steps=10, w_avg_samples=64)).project(target[:1], lambda step, total, d: step == 3)
    assert stopped.losses.shape == (3, 1)
    with pytest.raises(ValueError, match="targets must have shape"):
        P.Projector(tiny, P.pixel_distance(), P.ProjectionConfig(num_steps=1, w_avg_samples=64)
                    ).project(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="unknown space"):
        P.ProjectionConfig(space="z").check()


def test_w_statistics_match_numpy(tiny):
    mean, std = P.w_statistics(tiny, num_samples=300, batch_size=128)
    z = np.random.RandomState(123).randn(300, tiny.latent_size).astype(np.float32)
    w = tiny.mapping(z)[:, 0].astype(np.float64)
    np.testing.assert_allclose(mean, w.mean(0), rtol=1e-5, atol=1e-6)
    assert std == pytest.approx(np.sqrt(((w - w.mean(0)) ** 2).sum(1).mean()), rel=1e-5)


@pytest.mark.slow
def test_discriminator_distance_is_zero_on_equal_images_and_uses_every_block():
    D = Discriminator(base_shape=(8, 4), num_stages=3, fmap_base=64, fmap_max=16)
    x = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (2, 32, 16, 3)), jnp.float32)
    params = D.init(jax.random.key(0), x, stage=2)["params"]
    features = P.discriminator_features(D, params, x)
    # fromRGB at 32x16, then conv0 and conv1_down of the 32x16 and 16x8 blocks.
    assert [f.shape[1:3] for f in features] == [(32, 16), (32, 16), (16, 8), (16, 8), (8, 4)]
    dist = P.discriminator_distance(D, params, pixel_weight=1.0)
    np.testing.assert_allclose(dist(x, x), 0.0, atol=1e-6)
    y = x.at[:, 10:20].set(0.0)
    d_xy = np.asarray(dist(x, y))
    assert (d_xy > 0).all()
    # The pixel term adds exactly multiscale_pixel_distance.
    no_pixels = P.discriminator_distance(D, params, pixel_weight=0.0)
    np.testing.assert_allclose(d_xy - np.asarray(no_pixels(x, y)),
                               P.multiscale_pixel_distance(x, y), rtol=1e-5)


def test_multiscale_pixel_distance():
    x = jnp.zeros((1, 16, 8, 3))
    y = jnp.ones((1, 16, 8, 3))
    assert float(P.multiscale_pixel_distance(x, y)[0]) == pytest.approx(1.0)
    # A checkerboard of +-1 against zero: 1 at full resolution, 0 once pooled (3 levels to 4 px).
    checker = jnp.asarray(np.indices((16, 8)).sum(0) % 2 * 2.0 - 1.0)[None, :, :, None] * jnp.ones(3)
    assert float(P.multiscale_pixel_distance(checker, x)[0]) == pytest.approx(1.0 / 2)


# ---------------------------------------------------------------------------------- LPIPS file

def tiny_lpips_arrays(widths=(3, 4, 5, 4, 3), seed=0):
    rng = np.random.default_rng(seed)
    arrays, channels, i = {}, 3, 0
    for block, size in enumerate(P.LPIPS_BLOCKS):
        for _ in range(size):
            arrays[f"conv{i}/kernel"] = (0.3 * rng.standard_normal((3, 3, channels, widths[block]))).astype(np.float32)
            arrays[f"conv{i}/bias"] = (0.1 * rng.standard_normal(widths[block])).astype(np.float32)
            channels, i = widths[block], i + 1
        arrays[f"lin{block}"] = rng.uniform(0, 1, widths[block]).astype(np.float32)
    return arrays


def numpy_lpips(arrays, x, y):
    """LPIPS by NumPy loops: 3x3 convolutions with zero padding, ReLU, 2x2 max pooling."""
    def conv(a, kernel, bias):
        h, w, _ = a.shape
        padded = np.pad(a, ((1, 1), (1, 1), (0, 0)))
        out = np.zeros((h, w, kernel.shape[3]))
        for dy in range(3):
            for dx in range(3):
                out += padded[dy:dy + h, dx:dx + w] @ kernel[dy, dx]
        return np.maximum(out + bias, 0.0)

    def taps(a):
        a = (a - P.LPIPS_SHIFT) / P.LPIPS_SCALE
        out, i = [], 0
        for block, size in enumerate(P.LPIPS_BLOCKS):
            if block:
                h, w, c = a.shape
                a = a[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
            for _ in range(size):
                a = conv(a, arrays[f"conv{i}/kernel"], arrays[f"conv{i}/bias"])
                i += 1
            out.append(a)
        return out

    total = 0.0
    for k, (fx, fy) in enumerate(zip(taps(x), taps(y))):
        nx = fx / (np.sqrt((fx ** 2).sum(-1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy ** 2).sum(-1, keepdims=True)) + 1e-10)
        total += (((nx - ny) ** 2) * arrays[f"lin{k}"]).sum(-1).mean()
    return total


@pytest.mark.slow
def test_lpips_from_a_file_in_the_documented_layout(tmp_path):
    arrays = tiny_lpips_arrays()
    path = str(tmp_path / "lpips.npz")
    np.savez(path, **arrays)
    dist = P.make_distance("lpips", lpips_path=path)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (2, 32, 16, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)
    got = np.asarray(dist(jnp.asarray(x), jnp.asarray(y)))
    want = [numpy_lpips(arrays, x[i].astype(np.float64), y[i].astype(np.float64)) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=2e-4)
    np.testing.assert_allclose(dist(jnp.asarray(x), jnp.asarray(x)), 0.0, atol=1e-6)


def test_lpips_file_in_a_wrong_layout_is_refused_with_the_layout(tmp_path):
    arrays = tiny_lpips_arrays()
    missing = dict(arrays)
    del missing["lin3"]
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match=r"not in the LPIPS layout \(missing \['lin3'\]"):
        P.load_lpips(str(tmp_path / "missing.npz"))
    chain = dict(arrays, **{"conv5/kernel": np.zeros((3, 3, 7, 5), np.float32)})
    np.savez(tmp_path / "chain.npz", **chain)
    with pytest.raises(ValueError, match=r"conv5/kernel has shape \[3, 3, 7, 5\].*expected \[3, 3, 5, C\]"):
        P.load_lpips(str(tmp_path / "chain.npz"))
    lin = dict(arrays, lin1=np.ones(9, np.float32))
    np.savez(tmp_path / "lin.npz", **lin)
    with pytest.raises(ValueError, match="lin1 has 9 weights, conv3 has 4 channels"):
        P.load_lpips(str(tmp_path / "lin.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="not an .npz file"):
        P.load_lpips(str(tmp_path / "text.npz"))
    with pytest.raises(FileNotFoundError, match="conv\\{i\\}/kernel"):
        P.load_lpips(str(tmp_path / "absent.npz"))
    with pytest.raises(ValueError, match="needs a weights file"):
        P.make_distance("lpips")
    with pytest.raises(ValueError, match="needs a checkpoint with a discriminator"):
        P.make_distance("discriminator")
    assert P.make_distance(None).name == "pixel"


# ---------------------------------------------------------------------------------- targets

def test_targets_are_framed_at_the_model_aspect_ratio(tmp_path):
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, 150:250] = 255  # a white band in the middle third of the width
    path = str(tmp_path / "band.png")
    Image.fromarray(image).save(path)
    target = P.load_target(path, (64, 32))
    assert target.shape == (64, 32, 3) and target.dtype == np.uint8
    # centre crop: 150 px wide around the centre -> the band (100 px) fills the middle 2/3.
    assert target[:, 8:24].min() > 240 and target[:, :3].max() < 15
    boxes = KnownBoxDetector({"band.png": [[170, 20, 60, 60, 1.0]]})
    face = P.load_target(path, (64, 32), crop="face", detector=boxes)
    assert face.shape == (64, 32, 3)
    with pytest.raises(ValueError, match="no face detected.*centre crop"):
        P.load_target(path, (64, 32), crop="face", detector=KnownBoxDetector({}))
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ValueError, match="not a usable image"):
        P.load_target(str(tmp_path / "text.png"), (64, 32))
    with pytest.raises(FileNotFoundError, match="no image at"):
        P.load_target(str(tmp_path / "none.png"), (64, 32))
    with pytest.raises(ValueError, match="exceeds max_pixels"):
        P.load_target(path, (64, 32), max_pixels=1000)


# ---------------------------------------------------------------------------------- recovery

@pytest.mark.slow
def test_projection_recovers_images_of_known_w_on_the_demo_generator():
    """Images drawn from known w's (seeds, const noise) by the trained demo generator (64x32) are
    redrawn at > 28 dB in 200 steps, from about 13 dB at the average w: the PSNR of the average
    w's image against each target is measured too, and the projection must gain > 12 dB on it.
    (28 dB is an RMS error of 10/255 per channel: the same face, visibly; the noise maps of the
    projection are not the targets' and absorb part of the fine detail.) The distance falls."""
    ex = Explorer.open(DEMO_GENERATOR)
    w_true = ex.w_from_seeds([11, 12])
    target = ex.synthesize(w_true).images
    cfg = P.ProjectionConfig(num_steps=200, w_avg_samples=2000)
    projector = P.Projector(ex, P.pixel_distance(), cfg)
    start = ex.synthesize(np.broadcast_to(projector.w_mean, (1, ex.num_layers, ex.dlatent_size))).uint8
    baseline = P.psnr(np.repeat(start, 2, 0), ex.synthesize(w_true).uint8)
    result = projector.project(target)
    assert (result.psnr > 28).all() and (result.psnr > baseline + 12).all(), (result.psnr, baseline)
    assert (result.distances[-10:].mean(0) < 0.1 * result.distances[:10].mean(0)).all()
    # The explorer, given the projected noise maps, draws exactly the reconstruction.
    for i in range(2):
        ex.add_noise_maps(f"p{i}", result.noise_maps(i))
        np.testing.assert_allclose(ex.synthesize(result.w[i], noise_mode=f"p{i}").images[0],
                                   result.images[i], atol=1e-5)
