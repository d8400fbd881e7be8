"""The explorer's projection job (POST /api/jobs/project): an uploaded image comes back as a w and
a noise mode that render it, and edits, like any sample; bad uploads answer at once."""
import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background
from test_explore_server import LAYER, call, edit_recipe, image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with serving_in_background(make_server(Explorer(random_bundle(seed=3), fast_compile=True),
                                           port=0)) as srv:
        yield srv


def data_url(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def finish(server, job):
    for _ in range(600):
        status, job = call(server, f"/api/jobs/{job['id']}")
        assert status == 200
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    return call(server, f"/api/jobs/{job['id']}/result")


def test_an_upload_is_projected_and_then_edited_like_a_sample(server):
    ex = server.api.ex
    target = ex.synthesize(ex.w_from_seeds([9])).uint8[0]
    status, job = call(server, "/api/jobs/project", {"data": data_url(target), "steps": 5,
                                                     "space": "w+"})
    assert status == 202 and job["kind"] == "project"
    status, result = finish(server, job)
    assert status == 200, result
    assert result["noise_mode"].startswith("projected-") and result["steps"] == 5
    assert result["distance"] == "pixel"  # a generator without a discriminator
    np.testing.assert_array_equal(image(result["target"]), target)  # already at the model's size
    status, info = call(server, "/api/info")
    assert result["noise_mode"] in info["noise_modes"] and info["projection"]["face_crop"] is False
    # Rendering the returned w with the returned noise mode redraws the reconstruction ...
    status, render = call(server, "/api/render", {"w": result["w"], "noise_mode": result["noise_mode"]})
    assert status == 200
    np.testing.assert_array_equal(image(render["image"]), image(result["image"]))
    # ... which differs from the same w under constant noise, and edits apply to it.
    status, const = call(server, "/api/render", {"w": result["w"], "noise_mode": "const"})
    assert np.abs(image(const["image"]).astype(int) - image(render["image"])).max() > 0
    status, edited = call(server, "/api/render", {"w": result["w"], "noise_mode": result["noise_mode"],
                                                  "recipe": edit_recipe(3.0), "layer": LAYER})
    assert status == 200 and np.abs(image(edited["image"]).astype(int) - image(render["image"])).max() > 0
    # A JPEG of another size is framed at the model's aspect ratio.
    photo = np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8)
    status, job = call(server, "/api/jobs/project", {"data": data_url(photo, "JPEG"), "steps": 2})
    status, result = finish(server, job)
    assert status == 200 and image(result["target"]).shape == (*ex.image_shape, 3)


def test_bad_uploads_answer_at_once(server):
    status, reply = call(server, "/api/jobs/project", {"data": "data:image/png;base64,aGVsbG8="})
    assert status == 400 and reply["error"].startswith("field 'data': not a usable image")
    status, reply = call(server, "/api/jobs/project", {"data": data_url(np.zeros((8, 8, 3), np.uint8)),
                                                       "crop": "face"})
    assert status == 400 and "needs a face detector" in reply["error"]
    status, reply = call(server, "/api/jobs/project", {"data": "aGVsbG8=", "steps": 100000})
    assert status == 422 and reply["detail"][0]["field"] == "steps"
    status, reply = call(server, "/api/render", {"seed": 1, "noise_mode": "projected-x"})
    assert status == 422
    status, reply = call(server, "/api/render", {"seed": 1, "noise_mode": "projected-99999"})
    assert status == 400 and "unknown noise mode" in reply["error"]
