"""TIFF and HEIC item pages in Chromium: the preview shows (no broken image, no collapsed crop
tool) and a box drawn on it is in the original's pixels, down to the saved crop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.media.models import MediaItem
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.mark.parametrize("fmt", ["tiff", "heic"])
def test_preview_shows_and_the_crop_tool_works_in_original_pixels(
    fmt: str, signed_in: Page, live_server, curator, shots_dir
) -> None:
    page = signed_in
    # Larger than the preview's 2048 px, so a box in preview pixels would be visibly wrong.
    image = make_item(
        data=mediafiles.image_bytes(fmt, size=(3000, 2000), seed=5), filename=f"scan.{fmt}", added_by=curator
    )
    page.goto(f"{live_server.url}/items/{image.pk}/")
    page.wait_for_function("() => document.querySelector('#image-stage img').complete")
    assert page.evaluate("() => document.querySelector('#image-stage img').naturalWidth") == 2048
    stage = page.locator("#image-stage").bounding_box()
    assert stage is not None
    assert stage["width"] > 300  # a broken image collapsed it to ~76 px
    overlay = page.locator("#image-stage [data-boxer-overlay]").bounding_box()
    assert overlay is not None
    page.mouse.move(overlay["x"] + 0.1 * overlay["width"], overlay["y"] + 0.1 * overlay["height"])
    page.mouse.down()
    page.mouse.move(overlay["x"] + 0.6 * overlay["width"], overlay["y"] + 0.85 * overlay["height"], steps=8)
    page.mouse.up()
    x, y, w, h = (int(page.locator(f"#transform-form input[name={k}]").input_value()) for k in "xywh")
    assert abs(x - 300) <= 10
    assert abs(y - 200) <= 10
    assert abs(w - 1500) <= 15
    assert abs(h - 1500) <= 15
    page.screenshot(path=str(shots_dir / f"preview-{fmt}-box.png"), full_page=True)
    page.get_by_role("button", name="Save as new item").click()
    page.wait_for_url(re.compile(r"/items/\d+/$"))
    page.wait_for_function(f"() => !location.pathname.startsWith('/items/{image.pk}/')")
    child = MediaItem.objects.get(parent=image)
    assert child.recipe["ops"][0] == {"op": "crop", "box": [x, y, w, h]}
    assert (child.width, child.height) == (w, h)


def test_animated_gif_page_plays_the_animation_and_captures_frames_by_time(
    signed_in: Page, live_server, curator, celery_worker_thread, shots_dir
) -> None:
    page = signed_in
    gif = make_item(
        data=mediafiles.animation_bytes("gif", [100] * 10, size=(320, 240)),
        filename="loop.gif",
        added_by=curator,
    )
    page.goto(f"{live_server.url}/items/{gif.pk}/")
    page.wait_for_function("() => document.querySelector('#video-stage img[data-animation]').complete")
    assert page.evaluate("() => document.querySelector('#video-stage img').naturalWidth") == 320
    expect(page.locator("[data-animation-note]")).to_contain_text("10 frames in 1.000 s")
    # The animation fills the stage, so a box drawn on it is in the GIF's pixels.
    picture = page.locator("#video-stage img").bounding_box()
    stage = page.locator("#video-stage").bounding_box()
    assert picture is not None
    assert stage is not None
    assert abs(picture["width"] - stage["width"]) < 1
    assert abs(picture["height"] - stage["height"]) < 1
    page.get_by_label("Draw on the video").check()
    page.locator("#video-stage [data-boxer-overlay]").scroll_into_view_if_needed()
    overlay = page.locator("#video-stage [data-boxer-overlay]").bounding_box()
    assert overlay is not None
    page.mouse.move(overlay["x"] + 0.25 * overlay["width"], overlay["y"] + 0.25 * overlay["height"])
    page.mouse.down()
    page.mouse.move(overlay["x"] + 0.75 * overlay["width"], overlay["y"] + 0.75 * overlay["height"], steps=8)
    page.mouse.up()
    x, y, w, h = (int(page.locator(f"#frames-form input[name={k}]").input_value()) for k in "xywh")
    assert abs(x - 80) <= 3
    assert abs(y - 60) <= 3
    assert abs(w - 160) <= 4
    assert abs(h - 120) <= 4
    page.locator("#frames-form input[name=timestamp]").fill("0.35")
    page.get_by_role("button", name="Capture this frame").click()
    job = page.locator("#frames-tool section.job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=60_000)
    page.screenshot(path=str(shots_dir / "animation-captured.png"), full_page=True)
    frame = MediaItem.objects.get(kind="frame", video=gif)
    assert (frame.timestamp_ms, frame.frame_index) == (400, 4)
    assert (frame.box_x, frame.box_y, frame.box_w, frame.box_h) == (x, y, w, h)
