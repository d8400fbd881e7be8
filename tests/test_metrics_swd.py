"""Sliced Wasserstein distance: pyramid against scipy, descriptors against the images they came
from, the projection distance against its closed form, and the metric's ranking of image sets."""
import numpy as np
import pytest
import scipy.ndimage
import scipy.special

from stylegan_jax.data import synthetic_portraits
from stylegan_jax.metrics import swd

SHAPE = (64, 32)   # the project's 2:1 portraits: two pyramid levels, 64x32 and 32x16
GAUSS_5X5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0


@pytest.fixture(scope="module")
def portraits():
    """Two disjoint sets of 128 portraits (uint8)."""
    return (synthetic_portraits.generate(0, range(128), SHAPE)["image"],
            synthetic_portraits.generate(1, range(128), SHAPE)["image"])


def hue_rotate(images, degrees):
    """Rotate colours about the grey axis (Rodrigues' formula)."""
    axis = np.ones(3) / np.sqrt(3.0)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.deg2rad(degrees)
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    return np.clip(images.astype(np.float64) @ rotation.T, 0, 255).astype(np.uint8)


def box_blur(images, size):
    return np.round(scipy.ndimage.uniform_filter(images.astype(np.float64), size=(1, size, size, 1),
                                                 mode="reflect")).astype(np.uint8)


def test_level_shapes_stop_at_16_on_the_short_side():
    assert swd.pyramid_level_shapes((64, 32)) == [(64, 32), (32, 16)]
    assert swd.pyramid_level_shapes((128, 128)) == [(128, 128), (64, 64), (32, 32), (16, 16)]
    assert swd.pyramid_level_shapes((40, 20)) == [(40, 20)]
    with pytest.raises(ValueError, match="at least 16"):
        swd.pyramid_level_shapes((16, 8))
    with pytest.raises(ValueError, match="even"):
        swd.pyramid_level_shapes((66, 33))


def test_pyramid_matches_scipy_mirror_convolution():
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 16, 3)).astype(np.float32)
    expected_down = np.stack([[scipy.ndimage.convolve(images[n, :, :, c].astype(np.float64), GAUSS_5X5,
                                                      mode="mirror")[::2, ::2] for c in range(3)]
                              for n in range(2)]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(swd.pyr_down(images), expected_down, rtol=1e-5, atol=1e-3)

    small = images[:, ::2, ::2]
    zeros_inserted = np.zeros(images.shape, np.float64)
    zeros_inserted[:, ::2, ::2] = small
    expected_up = np.stack([[scipy.ndimage.convolve(zeros_inserted[n, :, :, c], 4 * GAUSS_5X5, mode="mirror")
                             for c in range(3)] for n in range(2)]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(swd.pyr_up(small), expected_up, rtol=1e-5, atol=1e-3)


def test_laplacian_pyramid_reconstructs_the_image():
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 32, 3)).astype(np.float32)
    levels = swd.laplacian_pyramid(images, 3)
    assert [level.shape[1:3] for level in levels] == [(64, 32), (32, 16), (16, 8)]
    rebuilt = levels[-1]
    for band in levels[-2::-1]:
        rebuilt = swd.pyr_up(rebuilt) + band
    np.testing.assert_allclose(rebuilt, images, atol=1e-3)


def test_descriptors_are_7x7_crops_inside_the_image():
    n, height, width = 3, 20, 18
    # pixel value encodes (image, row, column, channel), so every sampled value says where it came from
    coords = np.meshgrid(np.arange(n), np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    level = (coords[0] * 1e6 + coords[1] * 1e4 + coords[2] * 1e2 + coords[3]).astype(np.float64)
    patches = swd.sample_descriptors(level, np.random.default_rng(0), patches_per_image=50)
    assert patches.shape == (n * 50, 7, 7, 3)
    image, row, col, channel = (patches // 1e6, patches // 1e4 % 100, patches // 1e2 % 100, patches % 100)
    np.testing.assert_array_equal(image[:, 0, 0, 0], np.repeat(np.arange(n), 50))
    assert (image == image[:, :1, :1, :1]).all()
    assert (row - row[:, :1, :1] == np.arange(7)[:, None, None]).all()
    assert (col - col[:, :1, :1] == np.arange(7)[None, :, None]).all()
    assert (channel == np.arange(3)).all()
    assert row.min() == 0 and row.max() == height - 1 and col.min() == 0 and col.max() == width - 1

    flat = swd.normalize_descriptors(patches)
    per_channel = flat.reshape(-1, 7 * 7, 3)
    np.testing.assert_allclose(per_channel.mean(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(per_channel.std(axis=(0, 1)), 1, rtol=1e-6)


def test_projected_distance_of_a_translated_cloud_matches_closed_form():
    """B = A + v: each direction u moves every sorted projection by v.u, so the distance is
    E|v.u| over unit u, which is |v| Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2))."""
    dim = 147
    rng = np.random.default_rng(0)
    cloud = rng.standard_normal((3000, dim)).astype(np.float32)
    shift = rng.standard_normal(dim)
    shift *= 2.0 / np.linalg.norm(shift)
    got = swd.sliced_wasserstein(cloud, cloud + shift.astype(np.float32), np.random.default_rng(1))
    expected = 2.0 * np.exp(scipy.special.gammaln(dim / 2) - scipy.special.gammaln((dim + 1) / 2)) / np.sqrt(np.pi)
    assert got == pytest.approx(expected, rel=0.15)   # 512 random directions: ~3% standard error


def test_identical_sets_score_zero_and_per_channel_affine_is_ignored(portraits):
    real, _ = portraits
    result = swd.sliced_wasserstein_distance(real, real)
    assert set(result) == {"64x32", "32x16", "avg"}
    assert all(value == 0.0 for value in result.values())
    # each set is standardised per channel on its own (PGGAN), so a per-channel gain + offset is invisible
    as_float = real.astype(np.float32) / 127.5 - 1.0
    affine = as_float * np.float32([0.5, 0.8, 0.6]) + np.float32([0.2, -0.1, 0.3])
    assert swd.sliced_wasserstein_distance(as_float, affine)["avg"] < 1e-2


def test_uint8_and_float_inputs_agree_and_seed_is_reproducible(portraits):
    real, fake = portraits[0][:32], portraits[1][:32]
    from_uint8 = swd.sliced_wasserstein_distance(real, fake, seed=3)
    from_float = swd.sliced_wasserstein_distance(real / 127.5 - 1.0, fake / 127.5 - 1.0, seed=3)
    assert from_float == pytest.approx(from_uint8, rel=1e-4)
    assert swd.sliced_wasserstein_distance(real, fake, seed=3) == from_uint8
    assert swd.sliced_wasserstein_distance(real, fake, seed=4) != from_uint8


@pytest.mark.slow
def test_colour_shift_and_blur_rank_above_a_real_split(portraits):
    real, other_real = portraits
    split = swd.sliced_wasserstein_distance(real, other_real)["avg"]
    hue = [swd.sliced_wasserstein_distance(real, hue_rotate(real, angle))["avg"] for angle in (30, 60, 120)]
    assert 0 < hue[0] < hue[1] < hue[2]                       # more colour shift -> higher
    assert swd.sliced_wasserstein_distance(real, hue_rotate(other_real, 120))["avg"] > 1.4 * split
    blurred = [swd.sliced_wasserstein_distance(real, box_blur(other_real, size))["avg"] for size in (2, 3, 5)]
    assert split < blurred[0] < blurred[1] < blurred[2]      # more blur -> higher
    assert blurred[1] > 2 * split


@pytest.mark.slow
def test_noise_scores_far_above_a_real_split(portraits):
    real, other_real = portraits
    noise = np.random.default_rng(0).integers(0, 256, real.shape).astype(np.uint8)
    split = swd.sliced_wasserstein_distance(real, other_real)
    noisy = swd.sliced_wasserstein_distance(real, noise)
    assert noisy["avg"] > 4 * split["avg"]
    assert all(noisy[level] > 2 * split[level] for level in ("64x32", "32x16"))


def test_bad_inputs_raise_clear_errors(portraits):
    real, _ = portraits
    with pytest.raises(ValueError, match="same shape"):
        swd.sliced_wasserstein_distance(real, real[:10])
    with pytest.raises(ValueError, match="NHWC"):
        swd.sliced_wasserstein_distance(real[0], real[0])
    with pytest.raises(ValueError, match="uint8"):
        swd.sliced_wasserstein_distance(real.astype(np.int32), real.astype(np.int32))
    descriptor_set = swd.DescriptorSet(SHAPE)
    with pytest.raises(ValueError, match="expects 64x32"):
        descriptor_set.add(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        descriptor_set.finalize()
