"""The explorer's page end to end in headless Chromium (Playwright, the system's /usr/bin/chromium).

CI installs both (pip: playwright; apt: chromium); elsewhere these tests skip when either is missing.
"""
import base64
import io
import json
import os
import urllib.request

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.explore import Explorer, random_bundle
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAYER = "16x8_conv1"
TIMEOUT_MS = 120_000  # the first call of each kind compiles (slow on a loaded CPU)

# .ci/run installs both and sets STYLEGAN_JAX_REQUIRE_BROWSER=1: there a missing browser fails.
if os.environ.get("STYLEGAN_JAX_REQUIRE_BROWSER") == "1":
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium"
    from playwright import sync_api  # pylint: disable=ungrouped-imports
else:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def server():
    with serving_in_background(make_server(Explorer(random_bundle(seed=4), fast_compile=True),
                                           port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def idle(page):
    """Waits until no request is in flight and no debounced render is pending."""
    page.wait_for_function("document.querySelector('#status').textContent === 'ready'")


def src(page, selector):
    return page.eval_on_selector(selector, "e => e.src")


def pixels(data_url) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def post(server, path, body):
    request = urllib.request.Request(server.url + path.lstrip("/"), json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def test_pick_edit_export_recipe_and_reapply(page, server, tmp_path):
    page.wait_for_selector("#gallery img")
    idle(page)
    page.locator("#gallery img").nth(2).click()
    page.select_option("#layer-select", LAYER)
    idle(page)
    assert page.locator("#current-label").inner_text() == "seed 2"
    before = src(page, "#result-image")
    assert before.startswith("data:image/png")
    assert src(page, "#maps-image").startswith("data:image/png")

    # Clicking the first map adds channel 0; a typed list replaces the channels.
    page.click("#maps-image", position={"x": 3, "y": 3})
    idle(page)
    assert page.input_value("#channels") == "0"
    assert page.inner_text("#focus-label").startswith("channel 0")
    page.fill("#channels", "3,0-2")
    page.press("#channels", "Enter")
    idle(page)
    assert page.input_value("#channels") == "0-3"  # canonical form from the server
    page.fill("#amount-value", "6")
    page.press("#amount-value", "Enter")
    # Paint a region on the image: the edit now acts there only.
    box = page.locator("#paint-image").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    idle(page)
    assert page.inner_text("#mask-info") == "region painted"
    after = src(page, "#result-image")
    assert np.abs(pixels(after).astype(int) - pixels(before)).max() > 10
    assert page.inner_text("#error") == ""

    # Save the recipe, load it back, and apply it to other seeds.
    with page.expect_download() as download:
        page.click("#export-recipe")
    path = str(tmp_path / "recipe.json")
    download.value.save_as(path)
    with open(path, encoding="utf-8") as f:
        recipe = json.load(f)
    edit, = recipe["edits"]
    assert (edit["layer"], edit["channels"], edit["amount"]) == (LAYER, "0-3", 6)
    assert np.asarray(edit["mask"]).shape == (16, 8) and np.asarray(edit["mask"]).any()
    page.set_input_files("#import-recipe", path)
    idle(page)
    assert src(page, "#result-image") == after
    page.fill("#apply-seeds", "11-12")
    page.click("#apply-button")
    page.wait_for_function("document.querySelectorAll('#seed-grid img').length === 2")
    idle(page)
    grid = [src(page, f"#seed-grid img >> nth={i}") for i in range(2)]
    psi = float(page.input_value("#psi"))
    assert grid == post(server, "/api/apply_to_seeds", {"recipe": recipe, "seeds": [11, 12], "psi": psi})["images"]
    unedited = post(server, "/api/gallery", {"seeds": [11, 12], "psi": psi})["images"]
    assert grid[0] != unedited[0] and grid[1] != unedited[1]

    # PNG export downloads the image with its metadata.
    with page.expect_download() as download:
        page.click("#export-png")
    assert download.value.suggested_filename == "seed2.png"
    # A GIF export runs as a job (progress shown while it runs) and downloads the animation.
    page.fill("#frames", "4")
    with page.expect_download() as download:
        page.click("#export-gif")
    assert download.value.suggested_filename == "oscillation.gif"
    gif = str(tmp_path / "animation.gif")
    download.value.save_as(gif)
    with Image.open(gif) as im:
        assert im.n_frames == 4
    idle(page)
    assert page.is_hidden("#job-progress")

    # A bad channel list shows the server's message; the page keeps working.
    page.fill("#channels", "99")
    page.press("#channels", "Enter")
    idle(page)
    assert "channel 99 out of range" in page.inner_text("#error")
    page.locator("#gallery img").nth(1).click()
    idle(page)
    assert page.inner_text("#error") == "" and src(page, "#result-image") != after


def test_two_images_interpolate_and_mix(page):
    page.wait_for_selector("#gallery img")
    idle(page)
    for i, slot in ((0, "a"), (1, "b")):
        page.locator("#gallery img").nth(i).click()
        idle(page)
        page.click(f"#set-{slot}")
    page.fill("#interp-t", "0.5")
    idle(page)
    middle = src(page, "#latent-image")
    assert middle.startswith("data:image/png")
    page.fill("#mix-crossover", "2")
    idle(page)
    assert src(page, "#latent-image") not in ("", middle)
    page.click("#latent-edit")
    idle(page)
    assert page.inner_text("#current-label") == "from A and B"
    assert src(page, "#result-image") == src(page, "#latent-image")


@pytest.mark.slow
def test_project_an_upload_then_edit_it(page, server, tmp_path):
    """An uploaded PNG is projected as a job; the page then shows it as the current image, with
    its projected noise selected, and edits it."""
    ex = server.api.ex
    path = str(tmp_path / "mine.png")
    Image.fromarray(ex.synthesize(ex.w_from_seeds([21])).uint8[0]).save(path)
    page.wait_for_selector("#gallery img")
    idle(page)
    page.fill("#project-steps", "3")
    page.set_input_files("#project-file", path)
    page.wait_for_selector("#project-result:not([hidden])")
    idle(page)
    noise = page.input_value("#noise-mode")
    assert noise.startswith("projected-")
    assert page.inner_text("#current-label").startswith("mine.png in W")
    projected = src(page, "#project-image")
    page.wait_for_function("document.querySelector('#result-image').src.startsWith('data:')")
    idle(page)
    np.testing.assert_array_equal(pixels(src(page, "#result-image")), pixels(projected))
    page.select_option("#layer-select", LAYER)
    idle(page)
    page.fill("#channels", "0-3")
    page.press("#channels", "Enter")
    page.fill("#amount-value", "6")
    page.press("#amount-value", "Enter")
    idle(page)
    assert np.abs(pixels(src(page, "#result-image")).astype(int) - pixels(projected)).max() > 10
    assert page.inner_text("#error") == ""
