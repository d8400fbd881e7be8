"""Feature-map edits on a small random generator: channel lists, painting, deltas, cached
re-synthesis, locality (receptive field computed independently) and bad requests."""
import numpy as np
import pytest

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask, edit_deltas, format_channels, parse_channels, resize_mask


@pytest.fixture(scope="module")
def explorer():
    return Explorer(random_bundle(seed=1), fast_compile=True)


@pytest.fixture(scope="module")
def own_stats_explorer():
    """The same net, edits renormalized with each layer's own instance-norm statistics."""
    return Explorer(random_bundle(seed=1), fast_compile=True, frozen_norm_stats=False)


@pytest.fixture(scope="module")
def w(explorer):
    return explorer.w_from_seeds([3, 4], psi=0.8)


# ----------------------------------------------------------------------------- channel lists

def test_parse_channels_ranges_multipliers_and_overrides():
    assert parse_channels("1, 3,10-12,5*0.5,11*-2", 32) == {
        1: 1.0, 3: 1.0, 10: 1.0, 11: -2.0, 12: 1.0, 5: 0.5}
    assert parse_channels("", 4) == {}


@pytest.mark.parametrize("text, message", [
    ("1,x", "bad channel list item 'x'"), ("4-2", "first channel must not exceed"),
    ("3*", "bad channel list item"), ("32", "channel 32 out of range"), ("30-33", "out of range")])
def test_parse_channels_rejects_bad_lists(text, message):
    with pytest.raises(ValueError, match=message):
        parse_channels(text, 32)


def test_format_channels_round_trips():
    channels = {0: 1.0, 1: 1.0, 2: 1.0, 5: 0.5, 6: 0.5, 9: -1.25, 10: 1.0}
    text = format_channels(channels)
    assert text == "0-2,5-6*0.5,9*-1.25,10"
    assert parse_channels(text, 11) == channels


# ----------------------------------------------------------------------------- masks

def test_box_mask_holds_the_cells_whose_centre_is_inside():
    expected = np.zeros((4, 4), np.float32)
    expected[0:2, 0:2] = 1                                                  # centres 0.125, 0.375
    np.testing.assert_array_equal(box_mask((4, 4), (0.0, 0.0, 0.5, 0.5)), expected)
    expected = np.zeros((4, 4), np.float32)
    expected[0, 2:4] = -1
    np.testing.assert_array_equal(box_mask((4, 4), (0.0, 0.5, 0.25, 1.0), value=-1.0), expected)
    with pytest.raises(ValueError, match="bad box"):
        box_mask((4, 4), (0.5, 0.0, 0.25, 1.0))


def test_resize_mask_area_average_and_nearest():
    mask = np.arange(32, dtype=np.float32).reshape(8, 4)
    small = resize_mask(mask, (4, 2))
    np.testing.assert_allclose(small[1, 0], mask[2:4, 0:2].mean())
    np.testing.assert_array_equal(resize_mask(small, (8, 4))[2:4, 0:2], small[1, 0])
    with pytest.raises(ValueError, match="aspect ratio"):
        resize_mask(mask, (4, 4))


def test_edit_delta_is_amount_times_mask_times_multipliers(explorer):
    info = explorer.layer("16x8_conv1")
    mask = box_mask((info.height, info.width), (0.25, 0.25, 0.5, 0.75))
    delta = Edit(info.name, {2: 1.0, 5: -0.5}, mask, amount=3.0).delta(info)
    weights = np.zeros(info.channels, np.float32)
    weights[[2, 5]] = [1.0, -0.5]
    np.testing.assert_allclose(delta[0], 3.0 * np.einsum("hw,c->hwc", mask, weights))


# ----------------------------------------------------------------------------- synthesis

def _edit(explorer, layer, amount=2.0, box=(0.25, 0.25, 0.5, 0.75)):
    info = explorer.layer(layer)
    return Edit(layer, {0: 1.0, 1: -0.5, 3: 1.0}, box_mask((info.height, info.width), box), amount)


def test_amount_zero_changes_nothing(explorer, w):
    base = explorer.synthesize(w).images
    for layer in ("8x4_const", "16x8_conv1"):
        out = explorer.synthesize(w, edit_deltas([_edit(explorer, layer, amount=0.0)], explorer))
        np.testing.assert_array_equal(out.images, base)


@pytest.mark.parametrize("frozen", [True, False])
@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_cached_resynthesis_equals_full_synthesis(explorer, own_stats_explorer, w, noise_mode, frozen):
    explorer = explorer if frozen else own_stats_explorer
    edits = [_edit(explorer, "8x4_conv", 1.5), _edit(explorer, "16x8_conv1", -2.0),
             _edit(explorer, "16x8_conv1", 0.7, box=(0.5, 0.0, 1.0, 0.5))]
    deltas = edit_deltas(edits, explorer)
    kwargs = dict(noise_mode=noise_mode, noise_seed=7, return_features=True)
    explorer.synthesize(w, **kwargs)  # fills the cache
    cached = explorer.synthesize(w, deltas, **kwargs)
    full = explorer.synthesize(w, deltas, use_cache=False, **kwargs)
    np.testing.assert_allclose(cached.images, full.images, atol=1e-6)
    assert sorted(cached.features) == sorted(full.features) == sorted(l.name for l in explorer.layers)
    for name in full.features:
        np.testing.assert_allclose(cached.features[name], full.features[name], atol=1e-6)
    assert np.abs(cached.images - explorer.synthesize(w, **kwargs).images).max() > 1e-2


def test_tabs_on_one_layer_sum(explorer, w):
    a, b = _edit(explorer, "16x8_conv0_up", 1.0), _edit(explorer, "16x8_conv0_up", -0.4, (0, 0, 1, 1))
    summed = {a.layer: a.delta(explorer.layer(a.layer)) + b.delta(explorer.layer(b.layer))}
    np.testing.assert_allclose(explorer.synthesize(w, edit_deltas([a, b], explorer)).images,
                               explorer.synthesize(w, summed).images, atol=1e-6)


def _receptive_field(explorer, layer, rows, cols):
    """Image cells a change in layer cells [rows) x [cols) can reach, ignoring instance norm's
    global statistics: each later 3x3 conv widens by 1, each up-layer doubles then its conv and
    [1,2,1] blur widen by 1 each; toRGB is 1x1."""
    (y0, y1), (x0, x1) = rows, cols
    for info in explorer.layers[explorer.layer(layer).index + 1:]:
        if info.name.endswith("_up"):
            y0, y1, x0, x1 = 2 * y0 - 2, 2 * y1 + 2, 2 * x0 - 2, 2 * x1 + 2
        else:
            y0, y1, x0, x1 = y0 - 1, y1 + 1, x0 - 1, x1 + 1
    inside = np.zeros(explorer.image_shape, bool)
    inside[max(y0, 0):y1, max(x0, 0):x1] = True
    return inside


def _change(explorer, w, edit):
    return np.abs(explorer.synthesize(w, edit_deltas([edit], explorer)).images
                  - explorer.synthesize(w).images).sum(-1)


@pytest.mark.parametrize("layer", ["8x4_conv", "16x8_conv0_up", "16x8_conv1", "32x16_conv0_up",
                                   "32x16_conv1"])
def test_edits_with_frozen_norm_stats_stay_inside_the_receptive_field(explorer, w, layer):
    """With the unedited image's instance-norm statistics every later layer is local, so nothing
    outside the receptive field changes (up to float rounding between two compiled programs)."""
    edit = _edit(explorer, layer, 2.0, box=(0.25, 0.25, 0.5, 0.5))
    ys, xs = np.nonzero(edit.mask)
    inside = _receptive_field(explorer, layer, (ys.min(), ys.max() + 1), (xs.min(), xs.max() + 1))
    assert not inside.all()
    change = _change(explorer, w, edit)
    assert change[:, inside].max() > 1e-2
    assert change[:, ~inside].max() < 1e-5, change[:, ~inside].max()


@pytest.mark.parametrize("layer", ["16x8_conv0_up", "16x8_conv1", "32x16_conv0_up", "32x16_conv1"])
def test_edits_with_their_own_norm_stats_change_pixels_mostly_inside_the_receptive_field(
        own_stats_explorer, w, layer):
    explorer = own_stats_explorer
    edit = _edit(explorer, layer, 2.0)
    ys, xs = np.nonzero(edit.mask)
    inside = _receptive_field(explorer, layer, (ys.min(), ys.max() + 1), (xs.min(), xs.max() + 1))
    change = _change(explorer, w, edit)
    fraction = change[:, inside].sum(1) / change.sum((1, 2))
    if layer == "32x16_conv1":  # only the 1x1 toRGB follows: strictly local
        np.testing.assert_allclose(fraction, 1.0, rtol=1e-5)
        return
    assert np.all(fraction < 0.99), fraction  # what freezing the statistics is for
    # Instance norm's per-channel statistics spread a faint change over the whole image (a random
    # net shows ~50-80% of the change inside the bound, checked over 16 images, two nets). So:
    # about half or more of the change is inside, a pixel inside changes on average well over
    # one outside, and the strongest changes are nearly all inside.
    assert np.all(fraction > 0.45), fraction
    density_in, density_out = change[:, inside].mean(1), change[:, ~inside].mean(1)
    assert np.all(density_in > 1.5 * density_out), (density_in, density_out)
    for c in change:
        strongest = np.argsort(-c.ravel(), kind="stable")[:inside.sum() // 4]
        assert inside.ravel()[strongest].mean() >= 0.7


# ----------------------------------------------------------------------------- bad requests

def test_bad_requests_raise_one_line_value_errors(explorer, w):
    info = explorer.layer("16x8_conv1")
    cases = [
        (lambda: explorer.layer("9x9_conv"), "unknown layer '9x9_conv'"),
        (lambda: edit_deltas([Edit("16x8_conv1", {info.channels: 1.0})], explorer), "out of range"),
        (lambda: edit_deltas([Edit("16x8_conv1", {0: 1.0}, np.ones((4, 4)))], explorer), "mask of edit"),
        (lambda: explorer.synthesize(w, {"16x8_conv1": np.ones((3, 16, 8, info.channels))}), "delta for"),
        (lambda: explorer.synthesize(w[:, :3]), "w must have shape"),
        (lambda: explorer.synthesize(w, noise_mode="loud"), "unknown noise mode"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_describe_is_json_friendly_and_matches_features(explorer, w):
    import json  # pylint: disable=import-outside-toplevel
    description = json.loads(json.dumps(explorer.describe()))
    features = explorer.features(w)
    assert [l["name"] for l in description["layers"]] == list(features)
    for layer in description["layers"]:
        assert list(features[layer["name"]].shape) == [2, layer["height"], layer["width"], layer["channels"]]
