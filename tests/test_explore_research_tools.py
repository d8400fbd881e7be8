"""The explorer page's research tools in headless Chromium: channel numbers on the maps,
before/after and hide-region toggles, throttled live slider renders, export scale and fps, the
seeds x amounts sweep, truncation toward a base image, locators, and errors shown next to the
control that caused them, a running export cancelled from its progress bar. Server, browser and
page fixtures are test_explore_browser's."""
import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background
from test_explore_browser import (LAYER, TIMEOUT_MS, browser, idle, page, pixels,  # noqa: F401 (fixtures)
                                  post, server, src)


@pytest.fixture
def conditional_page(browser):
    """The page on a conditional generator (3 label columns), and its server."""
    explorer = Explorer(random_bundle(seed=5, label_size=3), fast_compile=True)
    with serving_in_background(make_server(explorer, port=0)) as srv:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(srv.url)
        yield page, srv
        context.close()
        assert not errors, f"JavaScript errors: {errors}"


def pick_and_edit(page, seed=2, channels="0-3", amount="6"):
    page.wait_for_selector("#gallery img")
    idle(page)
    page.locator("#gallery img").nth(seed).click()
    page.select_option("#layer-select", LAYER)
    idle(page)
    page.fill("#channels", channels)
    page.press("#channels", "Enter")
    page.fill("#amount-value", amount)
    page.press("#amount-value", "Enter")
    idle(page)


def test_numbers_before_after_live_slider_and_errors(page, server):
    pick_and_edit(page)
    psi = float(page.input_value("#psi"))
    unedited = post(server, "/api/gallery", {"seeds": [2], "psi": psi})["images"][0]
    edited = src(page, "#result-image")
    assert np.abs(pixels(edited).astype(int) - pixels(unedited)).max() > 10
    # every cell carries its channel number, in the grid's order
    order = page.evaluate("fetch('/api/info').then(r => r.json()).then(i => i.layers)")
    channels = next(l["channels"] for l in order if l["name"] == LAYER)
    assert page.eval_on_selector("#maps-overlay", "e => e.dataset.numbers") == ",".join(
        map(str, range(channels)))
    assert page.eval_on_selector("#maps-overlay", "c => c.getContext('2d').getImageData(2, 2, 1, 1).data[3]") > 0
    assert page.inner_text("#channels-readable") == "0-3 ×1"
    assert "amount 6" in page.inner_text("#in-effect")

    # before/after: checked or held, the image is the unedited one
    page.check("#show-before")
    page.wait_for_function(f"document.querySelector('#result-image').src === {unedited!r}")
    page.uncheck("#show-before")
    assert src(page, "#result-image") == edited
    page.hover("#hold-before")
    page.mouse.down()
    page.wait_for_function(f"document.querySelector('#result-image').src === {unedited!r}")
    page.mouse.up()
    page.wait_for_function(f"document.querySelector('#result-image').src === {edited!r}")

    # dragging the amount slider renders while it moves (throttled), not only on release
    renders = []
    page.on("request", lambda r: renders.append(r.url) if r.url.endswith("/api/render") else None)
    box = page.locator("#amount").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for k in range(14):
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.03 * k), y)
        page.wait_for_timeout(50)
    during = len(renders)
    page.mouse.up()
    idle(page)
    assert during >= 2, renders
    assert float(page.input_value("#amount-value")) == float(page.input_value("#amount")) > 6

    # a refused channel list: the message sits next to the field, which shows what is in effect
    page.fill("#channels", "99")
    page.press("#channels", "Enter")
    idle(page)
    assert "channel 99 out of range" in page.inner_text("#channels-error")
    assert page.input_value("#channels") == "0-3"
    page.fill("#channels", "1")
    page.press("#channels", "Enter")
    idle(page)
    assert page.inner_text("#channels-error") == ""


def test_sweep_export_scale_base_image_and_locator(page, server, tmp_path):
    pick_and_edit(page, seed=1)
    psi = float(page.input_value("#psi"))
    # sweep: rows = seeds, columns = amounts of the active edit; amount 0 is the unedited seed
    page.fill("#sweep-seeds", "4-5")
    page.fill("#sweep-amounts", "0, 3")
    page.click("#sweep-button")
    page.wait_for_function("document.querySelectorAll('#sweep-grid img').length === 4")
    idle(page)
    cells = [src(page, f"#sweep-grid img >> nth={i}") for i in range(4)]
    gallery = post(server, "/api/gallery", {"seeds": [4, 5], "psi": psi})["images"]
    assert cells[0] == gallery[0] and cells[2] == gallery[1] and cells[1] != gallery[0]

    # a GIF at scale 2 and 5 fps
    height, width = server.api.ex.image_shape
    page.fill("#frames", "4")
    page.fill("#export-scale", "2")
    page.fill("#export-fps", "5")
    with page.expect_download() as download:
        page.click("#export-gif")
    path = str(tmp_path / "scaled.gif")
    download.value.save_as(path)
    with Image.open(path) as gif:
        assert gif.size == (2 * width, 2 * height) and gif.info["duration"] == 200

    # truncation toward a base image: at psi 0 every seed is A, as picked (its own psi)
    page.click("#set-a")
    a_image = src(page, "#pick-a")
    page.select_option("#center", "base")
    assert "toward A (seed 1)" in page.inner_text("#center-info")
    page.locator("#gallery img").nth(3).click()
    page.fill("#psi", "0")
    idle(page)
    assert page.inner_text("#current-label") == "seed 3"
    page.wait_for_function(f"document.querySelector('#result-image').src === {a_image!r}")

    # a locator from the painted part: the edit now follows the part
    box = page.locator("#paint-image").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
    idle(page)
    page.click("#locate-button")
    idle(page)
    assert page.input_value("#tab-locator") == "part"
    assert 'placed by locator "part"' in page.inner_text("#in-effect")
    page.check("#hide-mask")
    assert page.eval_on_selector("#paint-image", "e => getComputedStyle(e).opacity") == "0"
    # errors next to their control: a sweep with no amounts
    page.fill("#sweep-amounts", "")
    page.click("#sweep-button")
    assert "amounts" in page.inner_text("#sweep-button-error")
    assert page.inner_text("#error") == page.inner_text("#sweep-button-error")


def test_a_running_export_is_cancelled_from_beside_its_progress_bar(page, server):
    """The "cancel" button appears beside the job's progress bar while an export runs; a click
    cancels the job on the server (no download), says so in the header and hides both."""
    pick_and_edit(page, seed=1)
    page.fill("#frames", "120")
    page.fill("#export-scale", "16")  # 120 frames of 1024x512: seconds of GIF encoding
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#export-gif")
    page.wait_for_selector("#job-progress-cancel", state="visible")
    assert page.is_visible("#job-progress")
    page.click("#job-progress-cancel")
    page.wait_for_function("document.querySelector('#error').textContent.includes('export cancelled')")
    assert page.is_hidden("#job-progress") and page.is_hidden("#job-progress-cancel")
    kinds = [job.status for job in server.jobs._jobs.values() if job.kind == "export"]  # pylint: disable=protected-access
    assert kinds[-1] == "cancelled" and not downloads


def test_conditional_model_label_and_class_average_center(conditional_page):
    page, srv = conditional_page
    page.wait_for_selector("#gallery img")
    idle(page)
    assert page.is_visible("#label-control")
    page.locator("#gallery img").nth(1).click()
    page.fill("#label", "2")
    page.dispatch_event("#label", "change")
    page.select_option("#center", "class")
    page.fill("#psi", "0")
    idle(page)
    assert "class average of label 2" in page.inner_text("#center-info")
    want = post(srv, "/api/render", {"seed": 1, "psi": 0.0, "label": [0, 0, 1], "center": "class"})
    page.wait_for_function(f"document.querySelector('#result-image').src === {want['image']!r}")
    other = post(srv, "/api/render", {"seed": 1, "psi": 0.0, "label": [1, 0, 0], "center": "class"})
    assert other["image"] != want["image"]
