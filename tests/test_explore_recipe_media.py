"""Recipes (JSON round trip, validation, located application), PNG metadata, GIF/MP4, sweeps."""
import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask, region_colors
from stylegan_jax.explore.latent import Direction
from stylegan_jax.explore.locate import Locator, place_mask
from stylegan_jax.explore.media import (MP4_PINS, feature_map_colors, interpolation_frames, load_png, save_gif, save_mp4,
                                        save_png, seed_amount_grid)
from stylegan_jax.explore.recipe import Recipe, apply_recipe, apply_to_seeds, recipe_deltas

LAYER = "16x8_conv1"


@pytest.fixture(scope="module")
def explorer():
    return Explorer(random_bundle(seed=2), fast_compile=True)


@pytest.fixture(scope="module")
def recipe(explorer):
    info = explorer.layer(LAYER)
    mask = box_mask((info.height, info.width), (0.5, 0.25, 0.625, 0.75))
    mask[9, 2] = -0.3  # a painted subtract/partial value must survive the round trip exactly
    direction = Direction(np.linspace(-1, 1, explorer.dlatent_size).astype(np.float32) / 3,
                          strength=0.7, layers=(0, 4), name="tilt")
    return Recipe([Edit(LAYER, {1: 1.0, 2: 1.0, 3: 1.0, 7: -0.375}, mask, amount=2.5, name="open",
                        locator="part", anchor=(0.5625, 0.5)),
                   Edit("8x4_conv", {0: 0.1}, None, amount=1.0 / 3, name="global")],
                  {"part": Locator(LAYER, {4: 1.0, 6: 0.5}, threshold=0.4, name="part"),
                   "band": Locator(LAYER, {2: 1.0}, name="band", template=(mask > 0) * 0.5,
                                   max_shift=1, offset=(1, -1))},
                  [direction], name="test")


def test_recipe_json_round_trip_is_exact(explorer, recipe):
    text = recipe.dumps()
    again = Recipe.from_json(text)
    assert again.dumps() == text
    np.testing.assert_array_equal(again.edits[0].mask, recipe.edits[0].mask)
    np.testing.assert_array_equal(again.locators["band"].template, recipe.locators["band"].template)
    assert again.locators["band"].max_shift == 1 and again.locators["part"].template is None
    assert again.locators["band"].offset == (1, -1)
    assert again.edits[1].amount == np.float64(1.0 / 3) and again.edits[0].channels == recipe.edits[0].channels
    w = explorer.w_from_seeds([5, 6])
    np.testing.assert_array_equal(apply_recipe(explorer, again, w)[0].images,
                                  apply_recipe(explorer, recipe, w)[0].images)


def _with(recipe, path, value):
    obj = recipe.to_json()
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(obj)


@pytest.mark.parametrize("change, message", [
    (None, "not valid JSON"),
    ((("version",), 2), "version 2 is not supported"),
    ((("format",), "other"), "'format' must be"),
    ((("colour",), 1), r"unknown recipe field\(s\) \['colour'\]"),
    ((("edits", 0, "channels"), "1,,x"), r"edits\[0\].channels: bad channel list item 'x'"),
    ((("edits", 0, "amount"), "lots"), r"edits\[0\].amount must be a finite number"),
    ((("edits", 0, "mask"), [1, 2]), r"edits\[0\].mask must be a 2-d list"),
    ((("edits", 1, "enabled"), "yes"), r"edits\[1\].enabled must be a bool"),
    ((("locators", "part", "layer"), 3), r"locators.part.layer must be a str"),
    ((("locators", "band", "template"), [[1], [2, 3]]), r"locators.band.template must be a 2-d"),
    ((("locators", "band", "max_shift"), 1.5), r"locators.band.max_shift must be null or an integer in"),
    ((("locators", "band", "offset"), [0.5, 1]), r"locators.band.offset must be \[dy, dx\]"),
    ((("directions", 0, "vector"), [[1], [2, 3]]), r"directions\[0\] has a malformed vector"),
    ((("edits", 0, "contrast"), [[0, 0, 0]]), r"edits\[0\].contrast must be \[\[r, g, b\], \[r, g, b\]\]"),
    ((("edits", 0, "contrast"), [[0, 0, 0], [0, "x", 0]]), r"edits\[0\].contrast must be a finite"),
])
def test_malformed_recipes_raise_one_line_errors(recipe, change, message):
    text = "{not json" if change is None else _with(recipe, *change)
    with pytest.raises(ValueError, match=message) as error:
        Recipe.from_json(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("change, message", [
    ((("edits", 0, "layer"), "64x32_conv1"), "unknown layer '64x32_conv1'"),
    ((("edits", 0, "channels"), "0-99"), "channel 16 out of range"),
    ((("edits", 0, "locator"), "nose"), "uses locator 'nose'"),
    ((("locators", "part", "channels"), "40"), "channel 40 out of range"),
    ((("locators", "band", "template"), [[1.0] * 4] * 8), "template must be a non-empty 16x8"),
    ((("directions", 0, "layers"), [0, 99]), "layers"),
])
def test_recipes_that_do_not_fit_the_model_are_rejected(explorer, recipe, change, message):
    with pytest.raises(ValueError, match=message):
        apply_recipe(explorer, Recipe.from_json(_with(recipe, *change)), explorer.w_from_seeds([1]))


def test_recipe_lands_on_the_located_part_of_every_seed(explorer, recipe):
    seeds = [11, 12, 13, 14]
    w = explorer.w_from_seeds(seeds)
    located = recipe.locators["part"].locate(explorer.features(w, LAYER))
    deltas = recipe_deltas(explorer, Recipe([recipe.edits[0]], recipe.locators), w)
    info = explorer.layer(LAYER)
    painted = recipe.edits[0].mask
    for i in range(len(seeds)):
        # The delta's mask is the painted one moved by (located centre - anchor), in whole cells.
        dy = int(round((located.centroid[i, 0] - recipe.edits[0].anchor[0]) * info.height))
        dx = int(round((located.centroid[i, 1] - recipe.edits[0].anchor[1]) * info.width))
        ys, xs = np.nonzero(deltas[LAYER][i, ..., 1])
        src_y, src_x = np.nonzero(painted)
        keep = (src_y + dy >= 0) & (src_y + dy < info.height) & (src_x + dx >= 0) & (src_x + dx < info.width)
        assert sorted(zip(ys, xs)) == sorted(zip(src_y[keep] + dy, src_x[keep] + dx))
    unedited = explorer.synthesize(w).images
    np.testing.assert_array_equal(apply_to_seeds(explorer, recipe, seeds, amount_scale=0.0)[0].images, unedited)
    assert np.abs(apply_to_seeds(explorer, recipe, seeds)[0].images - unedited).max() > 1e-2


def test_png_metadata_restores_w_and_recipe_exactly(explorer, recipe, tmp_path):
    rendering, w = apply_recipe(explorer, recipe, explorer.w_from_seeds([21], psi=0.7))
    path = save_png(str(tmp_path / "a.png"), rendering.images[0], w=w[0], recipe=recipe,
                    settings={"seed": 21, "psi": 0.7})
    loaded = load_png(path)
    assert loaded["w"].dtype == np.float32 and np.array_equal(loaded["w"], w[0])
    assert loaded["recipe"].dumps() == recipe.dumps() and loaded["settings"] == {"seed": 21, "psi": 0.7}
    np.testing.assert_array_equal(loaded["image"], rendering.uint8[0])
    with open(path, "rb") as f:  # bytes (a dropped file) work too, and re-rendering matches
        again = load_png(f.read())
    np.testing.assert_array_equal(explorer.synthesize(again["w"]).uint8[0],
                                  explorer.synthesize(w).uint8[0])
    assert [p for p in os.listdir(tmp_path) if "partial" in p] == []


def test_png_without_metadata_and_unreadable_files(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 2, 3), np.uint8)).save(plain)
    assert load_png(str(plain))["w"] is None
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        load_png(str(tmp_path / "bad.png"))
    with pytest.raises(FileNotFoundError):
        load_png(str(tmp_path / "missing.png"))


def test_gif_and_mp4_export(tmp_path):
    frames = np.zeros((5, 8, 4, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(5) * 50)[:, None, None]
    path = save_gif(str(tmp_path / "a.gif"), frames, fps=10, scale=2)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (8, 16)
        im.seek(3)
        assert np.asarray(im.convert("RGB"))[0, 0, 0] == 150
    # A hold (frames 1-3 the same): stored once for 3 frames' time, so it plays as long.
    held = frames[[0, 1, 1, 1, 4]]
    with Image.open(save_gif(str(tmp_path / "held.gif"), held, fps=10)) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert durations == [100, 300, 100]
    try:
        import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        with pytest.raises(RuntimeError, match=MP4_PINS):
            save_mp4(str(tmp_path / "a.mp4"), frames)
    else:
        assert os.path.getsize(save_mp4(str(tmp_path / "a.mp4"), frames)) > 0


def test_seed_amount_grid_writes_cells_and_settings(explorer, recipe, tmp_path):
    out = str(tmp_path / "grid")
    cells = seed_amount_grid(explorer, recipe, [3, 4], [0.0, 1.0], out)
    np.testing.assert_array_equal(cells[:, 0], explorer.synthesize(explorer.w_from_seeds([3, 4])).uint8)
    np.testing.assert_array_equal(cells[:, 1], apply_to_seeds(explorer, recipe, [3, 4])[0].uint8)
    with open(os.path.join(out, "settings.json"), encoding="utf-8") as f:
        settings = json.load(f)
    assert settings["seeds"] == [3, 4] and settings["amounts"] == [0.0, 1.0]
    assert sorted(os.listdir(out)) == sorted(["grid.png", "settings.json"] + [
        f"seed{s}_amount{j:02d}.png" for s in (3, 4) for j in (0, 1)])
    saved = load_png(os.path.join(out, "seed4_amount01.png"))
    assert np.array_equal(saved["image"], cells[1, 1])
    # The PNG's w and recipe re-render it: w is the seed's, before the recipe (scale 1 here).
    # (A batch of 2 and one of 1 may round the mapping's last bits differently.)
    np.testing.assert_allclose(saved["w"], explorer.w_from_seeds([4])[0], rtol=1e-5, atol=1e-6)
    again = apply_recipe(explorer, saved["recipe"], saved["w"][None])[0].uint8[0]
    assert np.abs(again.astype(int) - cells[1, 1]).max() <= 1
    with pytest.raises(ValueError, match="already holds a sweep"):
        seed_amount_grid(explorer, recipe, [3], [0.0], out)


@pytest.mark.slow
@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_endpoints_equal_the_inputs(explorer, space, tmp_path):
    seeds = [30, 31, 32]
    frames, ws = interpolation_frames(explorer, seeds, 4, str(tmp_path / space), space=space, psi=0.8)
    assert frames.shape[0] == ws.shape[0] == 2 * 4 + 1
    ends = explorer.w_from_seeds(seeds, psi=0.8)
    if space == "w":
        np.testing.assert_array_equal(ws[[0, 4, 8]], ends)
    else:  # z endpoints are exact; the mapping of a batch of 9 vs 3 may round differently
        np.testing.assert_allclose(ws[[0, 4, 8]], ends, rtol=1e-5, atol=1e-6)
    # Same w; XLA may round a batch of 9 and one of 3 differently by a last bit (1/255 here).
    images = explorer.synthesize(ends).uint8.astype(int)
    assert np.abs(frames[[0, 4, 8]].astype(int) - images).max() <= 1
    assert np.abs(frames[1].astype(int) - images[0]).max() > 1
    assert len([p for p in os.listdir(tmp_path / space) if p.startswith("frame_")]) == 9


def test_feature_map_colors_white_zero_green_positive_red_negative():
    features = np.array([[[0.0, 2.0]], [[-1.0, -2.0]]], np.float32)  # [h=2, w=1, c=2]
    colors = feature_map_colors(features)
    assert colors.shape == (2, 2, 1, 3)
    np.testing.assert_array_equal(colors[0, 0, 0], [255, 255, 255])  # 0 -> white
    np.testing.assert_array_equal(colors[1, 0, 0], [0, 255, 0])      # +max -> green
    np.testing.assert_array_equal(colors[1, 1, 0], [255, 0, 0])      # -max -> red
    np.testing.assert_array_equal(colors[0, 1, 0], [255, 128, 128])  # -max/2 -> light red
    np.testing.assert_array_equal(feature_map_colors(features, scale=0.5)[0, 1, 0], [255, 0, 0])


def test_contrast_reverses_the_edit_on_images_that_already_have_the_with_colour(explorer, recipe):
    seeds = [11, 12, 13, 14]
    w = explorer.w_from_seeds(seeds)
    edit, locator = recipe.edits[0], recipe.locators["part"]
    placed = place_mask(edit.mask, edit.anchor, locator.locate(explorer.features(w, LAYER)).centroid)
    colours = region_colors(explorer.synthesize(w).images, placed)
    # Colours WITHOUT and WITH 50 units apart along d, the WITH one between the 2nd and 3rd
    # images' projections: exactly the images above it lie beyond it (and, so far from the
    # WITHOUT colour, within 45 degrees of d), so they get the edit reversed.
    d = np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)
    projections = colours @ d
    mid = np.sort(projections)[1:3].mean()
    contrasted = dataclasses.replace(edit, contrast=(tuple((mid - 50) * d), tuple(mid * d)))
    sign = np.where(projections > mid, -1.0, 1.0)
    assert sorted(sign.tolist()) == [-1, -1, 1, 1]
    plain = recipe_deltas(explorer, Recipe([edit], recipe.locators), w)[LAYER]
    again = Recipe.from_json(Recipe([contrasted], recipe.locators).dumps())
    np.testing.assert_allclose(again.edits[0].contrast, contrasted.contrast, rtol=1e-15)
    np.testing.assert_allclose(recipe_deltas(explorer, again, w)[LAYER], plain * sign[:, None, None, None])
    # Rendered: the reversed images equal the plain recipe's at amount -1, the others at +1.
    plain_recipe = Recipe([edit], recipe.locators)
    expected = np.where(sign[:, None, None, None] < 0,
                        apply_recipe(explorer, plain_recipe, w, amount_scale=-1.0)[0].images,
                        apply_recipe(explorer, plain_recipe, w)[0].images)
    np.testing.assert_allclose(apply_recipe(explorer, again, w)[0].images, expected, atol=1e-6)
