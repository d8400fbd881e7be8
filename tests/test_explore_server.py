"""The explorer's HTTP API (stylegan_jax/explore/server.py) against a tiny random generator."""
import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.edits import box_mask, region_colors
from stylegan_jax.explore.recipe import Recipe, apply_to_seeds
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import JobQueue, serving_in_background

LAYER = "16x8_conv1"  # 16x8, 16 channels in random_bundle's default generator


@pytest.fixture(scope="module")
def server():
    with serving_in_background(make_server(Explorer(random_bundle(seed=3), fast_compile=True),
                                           port=0)) as srv:
        yield srv


def call(server, path, body=None, *, raw=None, method=None):
    """(status, decoded JSON) of one request; body is sent as JSON (POST) unless raw is given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def image(data_url) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def edit_recipe(amount, channels="1,3,5*-0.5", mask=True):
    mask = box_mask((16, 8), (0.25, 0.0, 0.75, 1.0)).tolist() if mask else None
    return {"format": "stylegan_jax.recipe", "version": 1, "name": "t",
            "edits": [{"layer": LAYER, "channels": channels, "amount": amount, "mask": mask}]}


def test_page_info_and_gallery(server):
    ex = server.api.ex
    status, info = call(server, "/api/info")
    assert status == 200 and info["latent_size"] == ex.latent_size
    assert [(l["name"], l["height"], l["width"], l["channels"]) for l in info["layers"]] == \
        [(l.name, l.height, l.width, l.channels) for l in ex.layers]
    for path, marker in (("/", b'id="result-image"'), ("/static/core.js", b'"/api/" + name'),
                         ("/static/app.js", b"import")):
        with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=30) as response:
            assert response.status == 200 and marker in response.read()
    status, reply = call(server, "/api/gallery", {"seeds": [1, 2], "psi": 0.7})
    assert status == 200
    want = ex.synthesize(ex.w_from_seeds([1, 2], psi=0.7)).uint8
    np.testing.assert_array_equal(np.stack([image(u) for u in reply["images"]]), want)


def test_render_edit_at_zero_is_no_edit_and_an_edit_changes_the_image(server):
    plain = call(server, "/api/render", {"seed": 5, "psi": 0.7})[1]
    zero = call(server, "/api/render", {"seed": 5, "psi": 0.7, "recipe": edit_recipe(0.0)})[1]
    np.testing.assert_array_equal(image(zero["image"]), image(plain["image"]))
    status, edited = call(server, "/api/render", {"seed": 5, "psi": 0.7, "recipe": edit_recipe(3.0),
                                                  "layer": LAYER, "sort": "magnitude",
                                                  "selection": edit_recipe(1)["edits"][0]["mask"]})
    assert status == 200
    assert np.abs(image(edited["image"]).astype(int) - image(plain["image"])).max() > 10
    maps = edited["maps"]
    assert sorted(maps["order"]) == list(range(16)) and maps["rows"] * maps["cols"] >= 16
    assert maps["values"] == sorted(maps["values"], reverse=True)
    grid = image(maps["grid"])
    assert grid.shape == (maps["rows"] * 17 - 1, maps["cols"] * 9 - 1, 3)
    # The same image from its returned w.
    again = call(server, "/api/render", {"w": edited["w"], "recipe": edit_recipe(3.0)})[1]
    assert again["image"] == edited["image"]


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/render", {"seed": 1, "layer": "nope"}, 400, "unknown layer 'nope'"),
    ("/api/render", {"seed": 1, "recipe": edit_recipe(1.0, "3,99")}, 400, "channel 99 out of range"),
    ("/api/render", {"seed": 1, "recipe": {"format": "x", "version": 1}}, 422,
     "field 'recipe.format': Input should be 'stylegan_jax.recipe'"),
    ("/api/render", {"seed": 1, "recipe": "{not json"}, 422, "field 'recipe': recipe is not valid JSON"),
    ("/api/render", b"{oops", 400, "request body is not valid JSON"),
    ("/api/render", {"seed": 1, "colour": 2}, 422, "field 'colour': unknown field"),
    ("/api/render", {"seed": 1, "w": "x"}, 422, "field 'w': Input should be a valid dictionary"),
    ("/api/render", {"psi": 0.5}, 422, "exactly one of 'seed' or 'w'"),
    ("/api/render", {"seed": 1, "layer": LAYER, "selection": [[1]]}, 400, "must be a 16x8 list"),
    ("/api/channels", {"layer": LAYER, "text": "1,x"}, 400, "bad channel list item 'x'"),
    ("/api/gallery", {"seeds": []}, 422, "field 'seeds': List should have at least 1 item"),
    ("/api/gallery", [1, 2], 422, "request body: Input should be a valid dictionary"),
    ("/api/nope", {}, 404, "unknown endpoint /api/nope"),
    ("/api/render", None, 405, "use POST"),
    ("/nope.html", None, 404, "no page at /nope.html"),
])
def test_bad_requests_answer_4xx_and_the_server_keeps_running(server, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got, reply = call(server, path, None if raw else body, raw=raw)
    assert got == status and message in reply["error"], reply
    assert "\n" not in reply["error"]
    assert call(server, "/api/info")[0] == 200


def test_channels_are_parsed_and_toggled_on_the_server(server):
    assert call(server, "/api/channels", {"layer": LAYER, "text": "3,1", "toggle": 2})[1]["text"] == "1-3"
    assert call(server, "/api/channels", {"layer": LAYER, "text": "1-3*0.5", "toggle": 3})[1]["text"] == "1-2*0.5"
    assert "out of range" in call(server, "/api/channels", {"layer": LAYER, "text": "", "toggle": 16})[1]["error"]


def test_saved_recipe_reapplies_to_other_seeds_and_png_round_trips(server):
    ex = server.api.ex
    status, saved = call(server, "/api/recipe", {"recipe": json.dumps(edit_recipe(2.5))})
    assert status == 200 and saved["recipe"]["edits"][0]["channels"] == "1,3,5*-0.5"
    status, grid = call(server, "/api/apply_to_seeds", {"recipe": saved["recipe"], "seeds": [7, 8],
                                                        "psi": 0.7})
    assert status == 200
    want = apply_to_seeds(ex, Recipe.from_json(saved["recipe"]), [7, 8], psi=0.7)[0].uint8
    np.testing.assert_array_equal(np.stack([image(u) for u in grid["images"]]), want)
    unedited = call(server, "/api/gallery", {"seeds": [7, 8], "psi": 0.7})[1]["images"]
    assert grid["images"] != unedited
    # A PNG export carries w + recipe; loading it renders the same image.
    status, png = call(server, "/api/export", {"kind": "png", "seed": 7, "psi": 0.7,
                                               "recipe": saved["recipe"]})
    assert status == 200 and png["filename"] == "seed7.png"
    loaded = call(server, "/api/load_png", {"data": png["data"]})[1]
    rerendered = call(server, "/api/render", {"w": loaded["w"], "recipe": loaded["recipe"]})[1]
    np.testing.assert_array_equal(image(rerendered["image"]), image(png["data"]))
    # The grid ran as a batch of 8 (padded), the export as one image: float32 rounding may move
    # a pixel by a level.
    assert np.abs(image(png["data"]).astype(int) - want[0]).max() <= 1


def test_two_image_tools(server):
    a, b = {"seed": 1, "psi": 0.7}, {"seed": 2, "psi": 0.7}
    plain_a = call(server, "/api/render", a)[1]["image"]
    assert call(server, "/api/interpolate", {"a": a, "b": b, "t": 0.0})[1]["image"] == plain_a
    assert call(server, "/api/interpolate", {"a": a, "b": b, "t": 0.0, "space": "z"})[1]["image"] == plain_a
    mixed = call(server, "/api/mix", {"a": a, "b": b, "crossover": 6})[1]
    assert mixed["image"] == plain_a
    w_a = call(server, "/api/render", a)[1]["w"]
    status, reply = call(server, "/api/interpolate", {"a": {"w": w_a}, "b": b, "t": 0.5, "space": "z"})
    assert status == 400 and "needs two seeds" in reply["error"]
    mask = box_mask((16, 8), (0.25, 0.0, 0.75, 1.0)).tolist()
    status, reply = call(server, "/api/propose", {"a": a, "b": b, "layer": LAYER, "mask_a": mask,
                                                  "top_k": 4})
    assert status == 200 and reply["edit"]["layer"] == LAYER and reply["edit"]["mask"] == mask
    assert len(reply["edit"]["channels"].split(",")) >= 1
    ex = server.api.ex  # the proposal records the examples' colours in the mask: WITHOUT (b), WITH (a)
    images = [ex.synthesize(ex.w_from_seeds([s["seed"]], psi=0.7)).images for s in (b, a)]
    np.testing.assert_allclose(reply["edit"]["contrast"],
                               [region_colors(i, np.asarray(mask))[0] for i in images], atol=1e-6)
    status, reply = call(server, "/api/direction", {"with": [a], "without": [b], "name": "x"})
    assert status == 200 and len(reply["direction"]["vector"]) == server.api.ex.dlatent_size


def test_gif_export(server):
    status, gif = call(server, "/api/export", {"kind": "gif", "animation": "oscillation", "seed": 3,
                                               "recipe": edit_recipe(2.0), "frames": 4})
    assert status == 200 and gif["mime"] == "image/gif"
    with Image.open(io.BytesIO(base64.b64decode(gif["data"].split(",", 1)[1]))) as im:
        assert im.n_frames == 4
    status, walk = call(server, "/api/export", {"kind": "gif", "animation": "interpolation",
                                                "seeds": [1, 2], "frames": 2, "psi": 0.7})
    assert status == 200
    with Image.open(io.BytesIO(base64.b64decode(walk["data"].split(",", 1)[1]))) as im:
        assert im.n_frames == 3


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # imageio-ffmpeg's subprocess
def test_mp4_export(server):
    status, mp4 = call(server, "/api/export", {"kind": "mp4", "animation": "interpolation",
                                               "seeds": [1, 2], "frames": 2, "psi": 0.7})
    try:
        import imageio_ffmpeg  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        assert status == 400 and "imageio" in mp4["error"]
        return
    assert status == 200 and base64.b64decode(mp4["data"].split(",", 1)[1])[4:8] == b"ftyp"


def test_job_queue_cancels_between_progress_reports_and_drops_unreported_results():
    """JobQueue.cancel: a job whose work reports progress stops at its next report (no more items
    run); one that never reports runs to its end, but its result is not kept."""
    queue, items, release = JobQueue(), [], threading.Event()

    def wait_for(condition):
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, "the job queue did not get there in 10 s"
            time.sleep(0.005)

    def reporting(progress):
        for i in range(1000):
            items.append(i)
            progress(i + 1, 1000)
            release.wait(10)  # the first item waits until the test has cancelled
        return "finished"

    def silent(progress):
        release.wait(10)
        return "finished"
    try:
        job = queue.submit("reporting", reporting)
        wait_for(lambda: job.done == 1)  # item 0 reported, waiting
        queue.cancel(job.id)
        release.set()
        wait_for(lambda: job.status != "running")
        assert job.status == "cancelled" and items == [0, 1] and job.result is None
        release.clear()
        quiet = queue.submit("silent", silent)
        wait_for(lambda: quiet.status == "running")
        queue.cancel(quiet.id)
        release.set()
        wait_for(lambda: quiet.status != "running")
        assert quiet.status == "cancelled" and quiet.result is None
    finally:
        release.set()
        queue.close()
