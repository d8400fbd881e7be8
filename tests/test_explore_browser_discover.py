"""The explorer page's "find directions" block (SeFa / GANSpace sliders) and the feature maps'
statistics table, in headless Chromium (fixtures and helpers of test_explore_browser)."""
import numpy as np

from test_explore_browser import LAYER, browser, idle, page, pixels, server, src  # noqa: F401  pylint: disable=unused-import


def test_find_sefa_directions_then_move_one(page):
    page.wait_for_selector("#gallery img")
    idle(page)
    page.locator("#gallery img").nth(1).click()
    page.select_option("#layer-select", LAYER)
    idle(page)
    assert page.locator("#map-stats td").first.inner_text() == "unedited"
    assert "all channels" in page.inner_text("#map-stats caption")
    before = src(page, "#result-image")
    page.select_option("#discover-method", "sefa")
    page.fill("#discover-first", "0")
    page.fill("#discover-last", "3")
    page.fill("#discover-k", "2")
    page.click("#discover-find")
    page.wait_for_selector("#direction-1")
    idle(page)
    rows = page.locator("#directions .direction")
    assert rows.count() == 2 and "sefa 0 (layers 0-3)" in rows.nth(0).inner_text()
    assert src(page, "#result-image") == before  # found directions start at strength 0
    page.fill("#direction-0", "4")  # sets the range input's value and fires "input"
    idle(page)
    after = src(page, "#result-image")
    assert np.abs(pixels(after).astype(int) - pixels(before)).max() > 10
    # With the current edit on this layer, the statistics cover its channels.
    page.fill("#channels", "2,5")
    page.press("#channels", "Enter")
    idle(page)
    assert page.inner_text("#map-stats caption") == f"{LAYER}, channels 2,5"
    assert page.inner_text("#error") == ""
