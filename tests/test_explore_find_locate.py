"""Finding edits from two examples and locating parts, on feature maps with planted structure
(so the right answer is known) -- channel ranking, proposals, sorts, locators, mask placement."""
import numpy as np
import pytest

from stylegan_jax.explore.edits import box_mask, contrast_signs, region_colors, resize_mask
from stylegan_jax.explore.find import (propose_edit, rank_channels, region_mean, sort_by_magnitude,
                                       sort_by_similarity)
from stylegan_jax.explore.locate import Locator, build_locator, place_mask

H, W, C = 16, 8, 12


@pytest.fixture
def pair():
    """Two images' features that differ only inside a box, in channels 4 (+3), 7 (-2), 1 (+0.5)."""
    rng = np.random.default_rng(0)
    without = rng.normal(size=(H, W, C)).astype(np.float32)
    region = box_mask((H, W), (0.5, 0.25, 0.75, 0.75))
    with_ = without.copy()
    for c, d in {4: 3.0, 7: -2.0, 1: 0.5}.items():
        with_[..., c] += d * region
    return with_, without, region


def test_rank_channels_orders_by_the_planted_difference(pair):
    with_, without, region = pair
    ranked = rank_channels(with_, without, region)
    assert [c for c, _ in ranked[:3]] == [4, 7, 1]
    np.testing.assert_allclose([d for _, d in ranked[:3]], [3.0, -2.0, 0.5], atol=1e-5)
    np.testing.assert_allclose([d for _, d in ranked[3:]], 0.0, atol=1e-5)


def test_proposed_edit_moves_the_region_means_to_the_example_with_the_attribute(pair):
    with_, without, region = pair
    edit = propose_edit("16x8_conv1", with_, without, region, top_k=2)
    assert sorted(edit.channels) == [4, 7] and max(abs(m) for m in edit.channels.values()) == 1.0
    delta = edit.amount * region[..., None] * np.array([edit.channels.get(c, 0.0) for c in range(C)])
    edited = region_mean(without + delta, region)
    np.testing.assert_allclose(edited[[4, 7]], region_mean(with_, region)[[4, 7]], atol=1e-5)
    np.testing.assert_array_equal(edit.mask, region)
    with pytest.raises(ValueError, match="do not differ"):
        propose_edit("16x8_conv1", without, without, region)


def test_sort_by_magnitude_and_similarity_match_direct_computations():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(H, W, C)).astype(np.float32)
    mask = box_mask((H, W), (0.0, 0.0, 0.5, 0.5))
    features[..., 9] += 4.0 * mask  # lights up exactly on the selection
    magnitude = sort_by_magnitude(features, mask)
    inside = features[mask > 0]
    expected = np.abs(inside).mean(axis=0)
    assert [c for c, _ in magnitude] == list(np.argsort(-expected, kind="stable"))
    np.testing.assert_allclose([v for _, v in magnitude], np.sort(expected)[::-1], rtol=1e-5)
    similarity = dict(sort_by_similarity(features, mask))
    for c in range(C):
        np.testing.assert_allclose(similarity[c], np.corrcoef(features[..., c].ravel(), mask.ravel())[0, 1],
                                   atol=1e-5)
    assert sort_by_similarity(features, mask)[0][0] == 9


def test_selection_errors_are_one_line():
    features = np.zeros((H, W, C), np.float32)
    for call, message in [(lambda: region_mean(features, np.zeros((H, W))), "selection is empty"),
                          (lambda: region_mean(features, np.ones((4, 4))), "resize it"),
                          (lambda: region_mean(np.zeros((2, H, W, C)), np.ones((H, W))), "batch of 2")]:
        with pytest.raises(ValueError, match=message):
            call()


def _blob_features(centres, rng):
    """Features [N, H, W, C] with a Gaussian bump at each centre (cells) in channels 2 and 5."""
    yy, xx = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    features = 0.2 * rng.normal(size=(len(centres), H, W, C)).astype(np.float32)
    for i, (cy, cx) in enumerate(centres):
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
        features[i, ..., 2] += 3 * bump
        features[i, ..., 5] += 2 * bump
    return features


@pytest.mark.parametrize("template", [True, False])
def test_build_locator_picks_the_part_channels_and_locates_the_part(template):
    rng = np.random.default_rng(2)
    train = _blob_features([(4.5, 3.5), (10.5, 4.5)], rng)
    masks = [box_mask((H, W), ((c[0] - 1.5) / H, (c[1] - 1.5) / W, (c[0] + 1.5) / H, (c[1] + 1.5) / W))
             for c in [(4.5, 3.5), (10.5, 4.5)]]
    locator = build_locator("16x8_conv1", list(train), masks, top_k=2, template=template)
    assert sorted(locator.channels) == [2, 5]
    centres = [(6.5, 2.5), (12.5, 5.5), (2.5, 4.5)]
    location = locator.locate(_blob_features(centres, rng))
    np.testing.assert_allclose(location.centroid, np.array(centres) / [H, W], atol=0.6 / W)
    for i, (cy, cx) in enumerate(centres):
        ymin, xmin, ymax, xmax = location.box[i]
        assert ymin <= cy / H <= ymax and xmin <= cx / W <= xmax
        assert location.mask[i].sum() < H * W / 4  # a part, not the whole map
        if template:  # the painted 3x3 part, moved onto the blob
            assert location.mask[i].sum() == masks[0].sum() == 9
            np.testing.assert_allclose(location.box[i], [(cy - 1.5) / H, (cx - 1.5) / W,
                                                         (cy + 1.5) / H, (cx + 1.5) / W])
    assert location.mask_at((2 * H, 2 * W)).shape == (3, 2 * H, 2 * W)


def test_template_locator_learns_where_the_part_lies_from_its_channels_peak():
    """Channels that peak 2 rows above the painted part (as the mouth's channels may peak on the
    nose) still place the part where it was painted: the offset is measured on the examples."""
    rng = np.random.default_rng(4)
    parts = [(9.5, 3.5), (11.5, 4.5)]
    train = _blob_features([(y - 2, x) for y, x in parts], rng)
    masks = [box_mask((H, W), ((y - 1.5) / H, (x - 1.5) / W, (y + 1.5) / H, (x + 1.5) / W))
             for y, x in parts]
    locator = build_locator("16x8_conv1", list(train), masks, top_k=2)
    assert sorted(locator.channels) == [2, 5] and locator.offset == (-2, 0)
    centres = [(8.5, 2.5), (12.5, 5.5)]
    location = locator.locate(_blob_features([(y - 2, x) for y, x in centres], rng))
    np.testing.assert_allclose(location.centroid, np.array(centres) / [H, W], atol=1e-6)


def test_template_locator_moves_at_most_max_shift_cells():
    """The template (painted around (4.5, 3.5)) finds a blob 4 rows lower only when allowed to
    move that far; limited to 2 cells it stops at the allowed placement nearest the blob."""
    rng = np.random.default_rng(3)
    template = box_mask((H, W), (3 / H, 2 / W, 6 / H, 5 / W))
    features = _blob_features([(8.5, 3.5)], rng)
    free = Locator("16x8_conv1", {2: 1.0, 5: 1.0}, template=template).locate(features)
    near = Locator("16x8_conv1", {2: 1.0, 5: 1.0}, template=template, max_shift=2).locate(features)
    np.testing.assert_allclose(free.centroid[0], [8.5 / H, 3.5 / W], atol=1e-6)
    np.testing.assert_allclose(near.centroid[0], [6.5 / H, 3.5 / W], atol=1e-6)


def test_place_mask_moves_by_whole_cells_and_drops_what_leaves():
    mask = np.zeros((8, 4), np.float32)
    mask[2, 1] = 1.0
    mask[7, 3] = -1.0
    placed = place_mask(mask, (2.5 / 8, 1.5 / 4), np.array([[4.5 / 8, 2.5 / 4], [2.5 / 8, 1.5 / 4]]))
    expected = np.zeros((8, 4), np.float32)
    expected[4, 2] = 1.0  # moved down 2, right 1; the -1 at (7, 3) left the map
    np.testing.assert_array_equal(placed[0], expected)
    np.testing.assert_array_equal(placed[1], mask)


def test_locator_check_errors():
    class Info:
        name, channels, height, width = "16x8_conv1", 4, 16, 8
    for locator, message in [(Locator("16x8_conv1", {}), "no channels"),
                             (Locator("16x8_conv1", {4: 1.0}), "out of range"),
                             (Locator("16x8_conv1", {0: 1.0}, threshold=1.5), "threshold"),
                             (Locator("8x4_conv", {0: 1.0}), "is for layer"),
                             (Locator("16x8_conv1", {0: 1.0}, template=np.ones((8, 4))), "template"),
                             (Locator("16x8_conv1", {0: 1.0}, max_shift=-1), "max_shift")]:
        with pytest.raises(ValueError, match=message):
            locator.check(Info)


def test_fallback_mouth_judge_agrees_with_the_synthetic_labels():
    """bench_edits' fallback judge (dark pixels in the data's mouth box), on portraits it was not
    calibrated on, against their ground-truth mouth_open labels."""
    from benchmarks.bench_edits import DarkMouthJudge  # pylint: disable=import-outside-toplevel
    from stylegan_jax.data import synthetic_portraits  # pylint: disable=import-outside-toplevel
    judge = DarkMouthJudge((64, 32))
    data = synthetic_portraits.generate(99, range(200), (64, 32))
    truth = np.array([a["mouth_open"] == "1" for a in data["attributes"]])
    judged = judge(data["image"].astype(np.float32) / 127.5 - 1)["mouth_open"] > 0.5
    assert 0.25 < truth.mean() < 0.75 and np.mean(judged == truth) >= 0.9


def test_bench_edits_picks_the_locator_layer_whose_channels_follow_the_part():
    """Of three candidate layers, only 16x8 has channels (2 and 5) that light up on the marked
    part; 8x4 (1/8 of the height) has noise only and 64x32 is outside the 1/8..1/2 range."""
    from benchmarks.bench_edits import choose_locator_layer  # pylint: disable=import-outside-toplevel
    from stylegan_jax.networks import LayerSpec  # pylint: disable=import-outside-toplevel

    class Stub:
        image_shape = (64, 32)
        layers = [LayerSpec("8x4_conv", 1, 8, 4, C, 0, "conv"), LayerSpec("16x8_conv1", 3, H, W, C, 1, "conv"),
                  LayerSpec("64x32_conv1", 7, 64, 32, C, 3, "conv")]

    rng = np.random.default_rng(5)
    centres = [(4.5, 3.5), (4.5, 3.5)]  # the part where it was painted on both examples
    part = box_mask((H, W), (3 / H, 2 / W, 6 / H, 5 / W))
    blobs = _blob_features(centres, rng)
    features = {"8x4_conv": rng.normal(size=(2, 8, 4, C)), "16x8_conv1": blobs,
                "64x32_conv1": np.repeat(np.repeat(blobs, 4, 1), 4, 2)}
    masks = {"8x4_conv": resize_mask(part, (8, 4)) >= 0.25, "16x8_conv1": part,
             "64x32_conv1": resize_mask(part, (64, 32))}
    assert choose_locator_layer(Stub(), features, masks.__getitem__, top_k=2) == "16x8_conv1"


def test_contrast_reverses_the_edit_only_beyond_the_with_colour():
    # Region colours placed at known t on the line from the WITHOUT colour (t = 0) to the WITH
    # colour (t = 1); colours outside the mask must not count.
    c0, c1 = np.array([0.2, -0.4, 0.1]), np.array([-0.5, 0.3, 0.6])
    mask = box_mask((8, 4), (0.25, 0.25, 0.75, 0.75))       # at a layer's resolution
    ts = np.array([-0.5, 0.0, 0.9, 1.2, 2.0])
    images = np.full((len(ts), 32, 16, 3), 0.9, np.float32)  # outside: far off the line
    inside = resize_mask(mask, (32, 16)) > 0
    for i, t in enumerate(ts):
        images[i][inside] = c0 + t * (c1 - c0)
    np.testing.assert_allclose(region_colors(images, mask), (c0 + ts[:, None] * (c1 - c0)), atol=1e-5)
    np.testing.assert_array_equal(contrast_signs((c0, c1), images, mask), [1, 1, 1, -1, -1])
    # Off the line: reversed while within 45 degrees of the change (off-line distance < t |d|).
    d = c1 - c0
    normal = np.cross(d, [1.0, 0.0, 0.0])
    normal *= np.linalg.norm(d) / np.linalg.norm(normal)   # perpendicular to d, as long as d
    for t, off, sign in [(1.5, 1.4, -1), (1.5, 1.6, 1), (3.0, 2.9, -1), (0.5, 0.1, 1)]:
        images[0][inside] = c0 + t * d + off * normal
        assert contrast_signs((c0, c1), images[:1], mask)[0] == sign, (t, off)
    assert contrast_signs((c0, c0), images, mask).tolist() == [1] * len(ts)  # no difference: no flip
    empty = np.stack([mask, np.zeros_like(mask)])   # a located mask moved off the map: no edit
    assert np.isnan(region_colors(images[:2], empty)[1]).all()
    assert contrast_signs((c0, c1), images[3:5], empty).tolist() == [-1, 1]


def test_proposed_edit_records_the_examples_colours_in_their_masks(pair):
    with_, without, region = pair
    rng = np.random.default_rng(1)
    image_with, image_without = rng.uniform(-1, 1, size=(2, 2 * H, 2 * W, 3)).astype(np.float32)
    edit = propose_edit("16x8_conv1", with_, without, region, top_k=2,
                        images=(image_with, image_without))
    big = resize_mask(region, (2 * H, 2 * W)) > 0
    np.testing.assert_allclose(edit.contrast[0], image_without[big].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(edit.contrast[1], image_with[big].mean(axis=0), atol=1e-6)
    assert propose_edit("16x8_conv1", with_, without, region).contrast is None
