"""The explorer API's research tools against independent expectations: export scale and fps,
recipes along interpolation walks, truncation toward a base image or a class's average w,
seeds x amounts sweeps and locators built from one image."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import Edit, box_mask
from stylegan_jax.explore.media import decode_w, interpolation_frames
from stylegan_jax.explore.recipe import Recipe, apply_recipe
from stylegan_jax.explore.server import make_server
from stylegan_jax.networks import Generator
from stylegan_jax.serving import serving_in_background
from test_explore_server import LAYER, call, server  # noqa: F401 (the fixture)
from test_explore_server import image as pixels


@pytest.fixture(scope="module")
def conditional():
    """A server on a conditional generator (3 label columns)."""
    explorer = Explorer(random_bundle(seed=5, label_size=3), fast_compile=True)
    with serving_in_background(make_server(explorer, port=0)) as srv:
        yield srv


def ok(server, path, body):
    status, reply = call(server, path, body)
    assert status == 200, reply
    return reply


def edit_recipe(amount=2.0, **extra):
    return {"format": "stylegan_jax.recipe", "version": 1,
            "edits": [{"layer": LAYER, "channels": "0-5", "amount": amount, **extra}]}


def test_export_scale_and_fps_reach_the_gif(server):
    height, width = server.api.ex.image_shape
    reply = ok(server, "/api/export", {"kind": "gif", "seed": 1, "recipe": edit_recipe(),
                                       "frames": 4, "scale": 3, "fps": 4})
    with Image.open(io.BytesIO(base64.b64decode(reply["data"].split(",", 1)[1]))) as gif:
        assert gif.size == (3 * width, 3 * height) and gif.n_frames == 4
        assert gif.info["duration"] == 250  # 1000 ms / 4 fps
    for field, value in (("scale", 17), ("fps", 0.5)):
        status, raw = call(server, "/api/export", {"kind": "gif", "seed": 1, field: value,
                                                   "recipe": edit_recipe()})
        assert status == 422 and f"field '{field}'" in raw["error"], raw


def test_interpolation_walk_applies_the_recipe_to_every_frame(server):
    ex = server.api.ex
    recipe = Recipe.from_json(edit_recipe(amount=3.0))
    frames, ws = interpolation_frames(ex, [4, 7], 3, recipe=recipe)
    plain, _ = interpolation_frames(ex, [4, 7], 3)
    # the walk's ends are the seeds' w; every frame is its w rendered with the recipe
    np.testing.assert_array_equal(ws[[0, -1]], ex.w_from_seeds([4, 7]))
    np.testing.assert_array_equal(frames, apply_recipe(ex, recipe, ws)[0].uint8)
    # in chunks (padded batches), the same frames up to rounding
    chunked, _ = interpolation_frames(ex, [4, 7], 3, recipe=recipe, chunk=3)
    assert np.abs(chunked.astype(int) - frames).max() <= 1
    assert all(np.abs(f.astype(int) - p).max() > 10 for f, p in zip(frames, plain))
    # ... and the export job does the same (GIF frames, so compared loosely)
    body = {"kind": "gif", "animation": "interpolation", "seeds": [4, 7], "frames": 3}
    edited = ok(server, "/api/export", dict(body, recipe=edit_recipe(amount=3.0)))["data"]
    assert edited != ok(server, "/api/export", body)["data"]


def test_truncation_toward_a_base_image(server):
    ex = server.api.ex
    base = ok(server, "/api/render", {"seed": 9})
    at_base = ok(server, "/api/render", {"seed": 5, "psi": 0.0, "center": {"seed": 9}})
    assert at_base["image"] == base["image"]
    np.testing.assert_array_equal(decode_w(at_base["w"]), decode_w(base["w"]))
    half = decode_w(ok(server, "/api/render", {"seed": 5, "psi": 0.5,
                                               "center": {"w": base["w"]}})["w"])
    w5, w9 = ex.mapping(ex.z_from_seeds([5, 9]))
    np.testing.assert_allclose(half[0], w9 + 0.5 * (w5 - w9), rtol=1e-6, atol=1e-6)
    # a base image given as a seed has its own psi (toward the average w)
    quarter = decode_w(ok(server, "/api/render", {"seed": 5, "psi": 0.5,
                                                  "center": {"seed": 9, "psi": 0.5}})["w"])
    w9_half = ex.w_avg + 0.5 * (w9 - ex.w_avg)
    np.testing.assert_allclose(quarter[0], w9_half + 0.5 * (w5 - w9_half), rtol=1e-5, atol=1e-6)
    # the default center is the average w, also when named
    average = decode_w(ok(server, "/api/render", {"seed": 5, "psi": 0.0, "center": "average"})["w"])
    np.testing.assert_array_equal(average[0], np.broadcast_to(ex.w_avg, average[0].shape))
    for body, message in (({"w": base["w"], "center": "average"}, "'center' goes with 'seed'"),
                          ({"seed": 1, "psi": 0.5, "center": "class"}, "needs a conditional model"),
                          ({"seed": 1, "label": [1.0]}, "'label' is for conditional models")):
        status, raw = call(server, "/api/render", body)
        assert status in (400, 422) and message in raw["error"], raw


def test_class_average_is_the_mean_mapped_w_of_that_label(conditional):
    ex = conditional.api.ex
    label = [0.0, 1.0, 0.0]
    samples = 64
    # independently: the generator's own mapping, applied one z at a time
    module, params = ex.module, ex.params
    ws = [np.asarray(module.apply({"params": params}, ex.z_from_seeds([s]),
                                  np.asarray([label], np.float32), method=Generator.mapping))[0]
          for s in range(samples)]
    np.testing.assert_allclose(ex.class_average(label, samples=samples), np.mean(ws, axis=0),
                               rtol=1e-5, atol=1e-6)
    # the API's center "class": psi 0 lands on that label's average (CLASS_SAMPLES seeds)
    average = ex.class_average(label)
    reply = ok(conditional, "/api/render", {"seed": 3, "psi": 0.0, "label": label, "center": "class"})
    np.testing.assert_array_equal(decode_w(reply["w"])[0], average)
    other = ex.class_average([1.0, 0.0, 0.0])
    assert np.abs(other - average).max() > 1e-3  # the label matters
    status, raw = call(conditional, "/api/render", {"seed": 3})
    assert status == 400 and "send 'label', 3 numbers" in raw["error"]


def test_sweep_cells_are_the_edit_at_each_amount(server):
    ex = server.api.ex
    amounts = [0.0, 1.5, -2.0]
    reply = ok(server, "/api/sweep", {"seeds": [2, 3], "amounts": amounts, "psi": 0.7,
                                      "recipe": edit_recipe(amount=9.0)})
    assert reply["seeds"] == [2, 3] and reply["amounts"] == amounts and len(reply["images"]) == 6
    w = ex.w_from_seeds([2, 3], psi=0.7)
    for j, amount in enumerate(amounts):
        want = apply_recipe(ex, Recipe([Edit(LAYER, {c: 1.0 for c in range(6)}, amount=amount)]), w)[0].uint8
        for i in range(2):
            np.testing.assert_array_equal(pixels(reply["images"][i * len(amounts) + j]), want[i])
    np.testing.assert_array_equal(pixels(reply["images"][0]), ex.synthesize(w).uint8[0])
    for body, message in (({"seeds": [1], "amounts": [1.0]}, "add an edit first"),
                          ({"seeds": list(range(16)), "amounts": [0.0] * 5,
                            "recipe": edit_recipe()}, "more than 64 images")):
        status, raw = call(server, "/api/sweep", body)
        assert status == 400 and message in raw["error"], raw


def test_a_locator_built_on_an_image_leaves_that_image_s_edit_in_place(server):
    ex = server.api.ex
    info = ex.layer(LAYER)
    mask = box_mask((info.height, info.width), (0.25, 0.25, 0.5, 0.625)).tolist()
    reply = ok(server, "/api/locator", {"seed": 2, "psi": 0.7, "layer": LAYER, "mask": mask,
                                        "top_k": 3})
    assert reply["locator"]["layer"] == LAYER and len(reply["locator"]["channels"]) > 0
    located = dict(edit_recipe(amount=4.0, mask=mask, locator="part", anchor=reply["anchor"]),
                   locators={"part": reply["locator"]})
    plain = edit_recipe(amount=4.0, mask=mask)
    render = lambda recipe: ok(server, "/api/render", {"seed": 2, "psi": 0.7, "recipe": recipe})["image"]  # noqa: E731
    assert render(located) == render(plain)  # found where it was marked: the mask is not moved
    status, raw = call(server, "/api/locator", {"seed": 2, "layer": LAYER,
                                                "mask": np.zeros((16, 8)).tolist()})
    assert status == 400 and "paint the part" in raw["error"]


def test_sorting_by_the_unedited_maps_keeps_the_order_of_the_unedited_image(server):
    body = {"seed": 6, "layer": LAYER, "sort": "magnitude"}
    unedited = ok(server, "/api/render", body)["maps"]["order"]
    # a strong edit on channels 10-15 moves them to the front of the edited maps' ranking
    recipe = {"format": "stylegan_jax.recipe", "version": 1,
              "edits": [{"layer": LAYER, "channels": "10-15", "amount": 40.0}]}
    edited = ok(server, "/api/render", dict(body, recipe=recipe))["maps"]["order"]
    kept = ok(server, "/api/render", dict(body, recipe=recipe, sort_maps="unedited"))["maps"]
    assert sorted(edited[:6]) == list(range(10, 16)) and edited != unedited
    assert kept["order"] == unedited
