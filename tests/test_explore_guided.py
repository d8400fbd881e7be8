"""The page's "Make a character" panel (static/guide.js) end to end in headless Chromium, on the
bundled demo model with its ready-made edits: pick a character, move sliders, make a talking GIF
and a walking MP4, download and decode them; errors show beside the control that caused them.

Skips like tests/test_explore_browser.py (Chromium or Playwright missing) unless
STYLEGAN_JAX_REQUIRE_BROWSER=1. With STYLEGAN_JAX_GUIDE_SCREENSHOTS=DIR the panel's screenshots
after each step are written there (docs/images/guided_*.png come from this).
"""
import base64
import io
import os

import numpy as np
import pytest
from PIL import Image, ImageSequence

from stylegan_jax.explore import Explorer
from stylegan_jax.explore.model import DEMO_GENERATOR
from stylegan_jax.explore.recipe import load_ready_edits
from stylegan_jax.explore.server import make_server
from stylegan_jax.serving import serving_in_background
# The browser, its page (on this module's server) and the skip rules of test_explore_browser.
from test_explore_browser import browser, page  # noqa: F401  pylint: disable=unused-import

SCREENSHOTS = os.environ.get("STYLEGAN_JAX_GUIDE_SCREENSHOTS")


@pytest.fixture(scope="module")
def server():
    explorer = Explorer.open(DEMO_GENERATOR, fast_compile=True)
    with serving_in_background(make_server(explorer, port=0,
                                           ready_edits=load_ready_edits(DEMO_GENERATOR, explorer))) as srv:
        yield srv


def idle(page):
    """Waits until no request is in flight and no throttled or debounced render is pending."""
    page.wait_for_function("document.querySelector('#status').textContent === 'ready'")


def pixels(data_url) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def preview(page) -> np.ndarray:
    return pixels(page.eval_on_selector("#guide-preview img", "e => e.src"))


def no_broken_images(page):
    """Every <img> of the panel has content: a src, loaded, with pixels."""
    return page.evaluate("""() => [...document.querySelectorAll('#guide img')].filter(
        (i) => !i.getAttribute('src') || (i.complete && i.naturalWidth === 0)).length""") == 0


def broken_images_on_page(page) -> int:
    """Images anywhere on the page that a person would see as broken: shown (not hidden) with no
    src, or a src that failed to load."""
    return page.evaluate("""() => [...document.querySelectorAll('img')].filter((i) =>
        i.offsetParent !== null && getComputedStyle(i).visibility !== 'hidden' &&
        (!i.getAttribute('src') || (i.complete && i.naturalWidth === 0))).length""")


def screenshot(page, name):
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.locator("#guide").screenshot(path=os.path.join(SCREENSHOTS, f"guided_{name}.png"))


def download(page, tmp_path, name):
    page.wait_for_selector("#guide-download:not([hidden])")
    idle(page)
    with page.expect_download() as info:
        page.click("#guide-download")
    path = str(tmp_path / name)
    info.value.save_as(path)
    return info.value.suggested_filename, path


def decode_mp4(path) -> np.ndarray:
    """uint8 [T, H, W, 3] of an MP4 (imageio-ffmpeg's decoder)."""
    import imageio_ffmpeg  # pylint: disable=import-outside-toplevel
    reader = imageio_ffmpeg.read_frames(path)
    width, height = next(reader)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])


def in_viewport(page, selector):
    return page.evaluate(f"""() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }}""")


def test_pick_change_animate_download(page, tmp_path):
    # Before content: placeholders, not empty images; nowhere on the page a broken image.
    assert no_broken_images(page) and broken_images_on_page(page) == 0
    page.wait_for_function("document.querySelectorAll('#guide-row img').length === 8")
    idle(page)
    assert no_broken_images(page) and broken_images_on_page(page) == 0
    page.locator(".guide-seed").nth(2).click()
    page.wait_for_selector("#guide-preview img")
    idle(page)
    assert page.inner_text("#guide-caption") == "character 2, ψ 0.70: no changes"
    original = preview(page)
    assert original.shape == (64, 32, 3)
    screenshot(page, "1_pick")

    # Step 2: a local edit and an attribute slider change the image; captions say what is shown.
    page.fill('input[data-name="open mouth"]', "1")
    idle(page)
    mouthed = preview(page)
    changed = np.abs(mouthed.astype(int) - original).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    assert len(ys) and (np.ptp(ys) + 1) * (np.ptp(xs) + 1) < changed.size / 8  # a local change
    page.fill('input[data-name="pink hair"]', "1.5")
    idle(page)
    edited = preview(page)
    assert np.abs(edited.astype(int) - mouthed).max() > 30
    assert page.inner_text("#guide-caption") == "character 2, ψ 0.70: pink hair +1.50, open mouth +1.00"
    assert page.inner_text('label:has(input[data-name="pink hair"]) output') == "1.50"
    screenshot(page, "2_edit")

    # Step 3: talk (8 frames, 4x, GIF): the mouth opens and closes, the hair stays pink.
    page.fill("#guide-frames", "8")
    assert page.input_value("#guide-size") == "4" and page.input_value("#guide-format") == "gif"
    page.click("#guide-animate")
    name, path = download(page, tmp_path, "talk.gif")
    assert name == "character2_talk.gif"
    assert page.is_hidden("#guide-progress") and no_broken_images(page)
    with Image.open(path) as gif:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 8 and frames[0].shape == (256, 128, 3)
    # Frame 4 is the mouth at its slider's amount: the edited preview, 4x (up to GIF palette error).
    peak = edited.repeat(4, 0).repeat(4, 1).astype(int)
    assert np.abs(frames[4].astype(int) - peak).mean() < 6  # 256-colour palette: ~4 on these colours
    assert np.abs(frames[0].astype(int) - frames[4]).sum(-1).max() > 60
    screenshot(page, "3_animate")

    # Walk to character 5 and back (MP4): the sliders are applied along the walk.
    page.check("#guide-walk")
    page.locator(".guide-walk-seed[data-seed='5']").click()
    assert page.input_value("#guide-walk-seed") == "5"
    page.fill("#guide-frames", "3")
    page.select_option("#guide-format", "mp4")
    page.click("#guide-animate")
    name, path = download(page, tmp_path, "walk.mp4")
    assert name == "character2_walk_to_5.mp4"
    video = decode_mp4(path)
    assert video.shape == (2 * 3 + 1, 256, 128, 3)
    assert np.abs(video[0].astype(int) - peak).mean() < 8  # H.264 is lossy
    assert np.abs(video[3].astype(int) - video[0]).mean() > 8
    assert page.inner_text("#guide-animate-error") == ""


def test_errors_show_beside_their_control(page):
    page.wait_for_function("document.querySelectorAll('#guide-row img').length === 8")
    idle(page)
    page.click("#guide-animate")  # nothing picked yet
    assert "pick a character" in page.inner_text("#guide-animate-error")
    page.locator(".guide-seed").nth(0).click()
    idle(page)
    # The server refuses 500 frames: its message shows by the frames field, not elsewhere.
    page.fill("#guide-frames", "500")
    page.click("#guide-animate")
    page.wait_for_function("document.querySelector('#guide-frames-error').textContent !== ''")
    idle(page)
    assert "240" in page.inner_text("#guide-frames-error")
    assert page.inner_text("#guide-animate-error") == "" and page.inner_text("#error") == ""
    assert in_viewport(page, "#guide-frames-error")
    frames_box = page.locator("#guide-frames").bounding_box()
    error_box = page.locator("#guide-frames-error").bounding_box()
    assert abs(error_box["y"] - frames_box["y"]) < 60
    # A walk to a seed the server refuses: beside the walk's seed field; the frames error clears.
    page.fill("#guide-frames", "4")
    page.check("#guide-walk")
    page.fill("#guide-walk-seed", str(2 ** 33))
    page.click("#guide-animate")
    page.wait_for_function("document.querySelector('#guide-walk-error').textContent !== ''")
    idle(page)
    assert "seeds" in page.inner_text("#guide-walk-error")
    assert page.inner_text("#guide-frames-error") == ""
    assert in_viewport(page, "#guide-walk-error")
    assert page.is_hidden("#guide-download")
