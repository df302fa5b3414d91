"""The item page's tools in a real browser: drag a crop box, pick a preset, save a new item; play
a video, capture the frame on screen and a batch through a real Celery worker; lineage links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.media.models import MediaItem
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

JOB_TIMEOUT_MS = 60_000


def drag(page: Page, selector: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at `start`, move in steps, release at `end`: fractions of the element's box."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    assert box is not None
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()


def box_fields(page: Page, form: str) -> list[int]:
    return [int(page.locator(f"{form} input[name={k}]").input_value() or -1) for k in ("x", "y", "w", "h")]


def test_drag_a_box_pick_a_preset_and_save_a_new_item(
    signed_in: Page, live_server, curator, shots_dir: Path
) -> None:
    page = signed_in
    image = make_item(size=(1200, 800), seed=5, filename="wide.png", added_by=curator)
    page.goto(f"{live_server.url}/items/{image.pk}/")
    stage = page.locator("#image-stage")
    expect(stage.locator("img")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#image-stage img').complete")
    output = page.locator("[data-output-size]")

    # A free box dragged from (10%, 10%) to (60%, 85%) of the displayed picture is stored in the
    # original's pixels (the picture is shown smaller than 1200 × 800).
    drag(page, "#image-stage [data-boxer-overlay]", (0.1, 0.1), (0.6, 0.85))
    x, y, w, h = box_fields(page, "#transform-form")
    assert abs(x - 120) <= 4
    assert abs(y - 80) <= 4
    assert abs(w - 600) <= 6
    assert abs(h - 600) <= 6
    expect(stage.locator("[data-boxer-box]")).to_be_visible()
    expect(output).to_contain_text(f"Output: {w} × {h} px")
    page.screenshot(path=str(shots_dir / "crop-free-box.png"), full_page=True)

    # 1:1 squares the box about its centre; then a new drag keeps the square.
    page.get_by_label("Aspect").select_option("1:1")
    x, y, w, h = box_fields(page, "#transform-form")
    assert w == h
    drag(page, "#image-stage [data-boxer-overlay]", (0.05, 0.1), (0.5, 0.9))
    x, y, w, h = box_fields(page, "#transform-form")
    assert w == h
    assert w > 300

    # Move the box with the keyboard: the fields follow.
    page.locator("[data-boxer-box]").focus()
    page.keyboard.press("Shift+ArrowRight")
    assert box_fields(page, "#transform-form")[0] == x + 10
    x += 10

    # Scale: the long side to 256 px, as JPEG; the live size is what the server will make.
    page.get_by_label("Scale", exact=True).select_option("long")
    page.locator("#transform-form input[name=size]").fill("256")
    page.get_by_label("Format").select_option("jpg")
    expect(page.get_by_label("Quality")).to_be_visible()
    expect(output).to_contain_text("Output: 256 × 256 px")
    # A fit never enlarges unless allowed; a bucket that needs an upscale says so.
    page.locator("#transform-form input[name=size]").fill("1000")
    expect(output).to_contain_text(f"Output: {w} × {h} px")
    expect(output).to_contain_text("not enlarged")
    page.get_by_label("Scale", exact=True).select_option("sdxl")
    expect(output).to_contain_text("upscale")
    expect(output).to_have_class(re.compile(r"\bwarn\b"))
    page.get_by_label("Scale", exact=True).select_option("long")
    page.locator("#transform-form input[name=size]").fill("256")
    expect(output).to_contain_text("Output: 256 × 256 px")
    page.screenshot(path=str(shots_dir / "crop-square-scaled.png"), full_page=True)

    # The tools sit below the tag editor now: leave the field first, so Chromium's deferred
    # scroll to the filled field does not land between Playwright's scroll and its click.
    page.locator("#transform-form input[name=size]").blur()
    page.get_by_role("button", name="Save as new item").click()
    child = _wait_for_child(page, image)
    expect(page).to_have_url(f"{live_server.url}/items/{child.pk}/")
    assert child.recipe["ops"][0] == {"op": "crop", "box": [x, y, w, h]}
    assert (child.width, child.height, child.format) == (256, 256, "jpeg")
    expect(page.locator("[data-item-size]")).to_contain_text("256 × 256 px")
    parent_link = page.locator("[data-lineage-parent]")
    expect(page.locator(".lineage")).to_contain_text("Derived from")
    expect(parent_link).to_have_attribute("href", f"/items/{image.pk}/")
    expect(page.locator(".recipe")).to_contain_text(f"Crop {w} × {h} px at ({x}, {y})")
    page.screenshot(path=str(shots_dir / "crop-result-page.png"), full_page=True)

    # The parent lists its child; an impossible box comes back as a message in the form.
    parent_link.click()
    expect(page.locator(".children a")).to_have_attribute("href", f"/items/{child.pk}/")
    page.locator("#transform-form input[name=x]").fill("1100")
    page.locator("#transform-form input[name=y]").fill("0")
    page.locator("#transform-form input[name=w]").fill("400")
    page.locator("#transform-form input[name=h]").fill("400")
    expect(page.locator("[data-output-size]")).to_have_text("The box reaches outside the 1200 × 800 picture.")
    page.get_by_role("button", name="Save as new item").click()
    expect(page.locator("#transform-form .alert")).to_contain_text("reaches outside the 1200×800 image")
    expect(page.locator("#transform-form input[name=x]")).to_have_value("1100")
    page.screenshot(path=str(shots_dir / "crop-error.png"), full_page=True)


def _wait_for_child(page: Page, parent: MediaItem) -> MediaItem:
    page.wait_for_url(re.compile(r"/items/\d+/$"))
    page.wait_for_function(f"() => !location.pathname.startsWith('/items/{parent.pk}/')")
    return MediaItem.objects.get(parent=parent)


def test_capture_the_frame_on_screen_and_a_batch(
    signed_in: Page, live_server, curator, video_dir: Path, shots_dir: Path, celery_worker_thread
) -> None:
    page = signed_in
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"), filename="clip.mp4", added_by=curator)
    page.goto(f"{live_server.url}/items/{video.pk}/")
    player = page.locator("video[data-player]")
    page.wait_for_function("() => document.querySelector('video[data-player]').readyState >= 1")
    expect(page.locator("#frame-strip")).to_contain_text("No frames captured yet")

    # Seek to 1.0 s (as the timeline or the controls would) and capture what is on screen.
    player.evaluate("v => { v.pause(); v.currentTime = 1.0; }")
    page.wait_for_function(
        "() => Math.abs(document.querySelector('video[data-player]').currentTime - 1) < 0.01"
    )
    expect(page.locator("#frames-form input[name=timestamp]")).to_have_value("1.000")
    page.get_by_role("button", name="Capture this frame").click()
    job = page.locator("#frames-tool section.job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(job.locator(".status")).to_have_text("Succeeded")
    expect(job.locator("progress.job-progress")).to_have_attribute("value", "1")
    frame = MediaItem.objects.get(kind="frame")
    assert frame.timestamp_ms == 1000
    result = job.locator(f'li.result a[href="/items/{frame.pk}/"]')
    expect(result).to_be_visible()
    # The timeline reloads with the new capture.
    expect(page.locator("#frame-strip .strip a[data-seek]")).to_have_count(1)
    page.screenshot(path=str(shots_dir / "video-captured.png"), full_page=True)

    # Clicking the capture on the timeline seeks the player back to it.
    player.evaluate("v => { v.currentTime = 0.2; }")
    page.wait_for_function(
        "() => Math.abs(document.querySelector('video[data-player]').currentTime - 0.2) < 0.01"
    )
    page.locator("#frame-strip .strip a[data-seek]").first.click()
    page.wait_for_function(
        "() => Math.abs(document.querySelector('video[data-player]').currentTime - 1) < 0.01"
    )

    # A batch every 1 s, with a box drawn over the video.
    page.get_by_label("Draw on the video").check()
    drag(page, "#video-stage [data-boxer-overlay]", (0.25, 0.25), (0.75, 0.75))
    x, y, w, h = box_fields(page, "#frames-form")
    assert abs(x - 80) <= 3
    assert abs(y - 60) <= 3
    assert abs(w - 160) <= 4
    assert abs(h - 120) <= 4
    expect(page.locator("#frames-form [data-output-size]")).to_contain_text(f"Frames will be {w} × {h} px")
    page.get_by_label("Capture", exact=True).select_option("interval")
    page.locator("#frames-form input[name=interval]").fill("1")
    page.screenshot(path=str(shots_dir / "video-box-batch.png"), full_page=True)
    page.locator("#frames-form input[name=interval]").blur()  # as for the crop tool's Save
    page.get_by_role("button", name="Capture batch").click()
    job = page.locator("#frames-tool section.job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(job.locator("li.result")).to_have_count(2)  # 0 s and 1 s of a 2 s clip
    boxed = MediaItem.objects.filter(kind="frame", box_w=w).order_by("timestamp_ms")
    assert [f.timestamp_ms for f in boxed] == [0, 1000]
    assert (boxed[0].width, boxed[0].height) == (w, h)
    expect(page.locator("#frame-strip .strip a[data-seek]")).to_have_count(3)
    page.screenshot(path=str(shots_dir / "video-batch-done.png"), full_page=True)

    # Past the end: the form says why.
    page.get_by_label("Draw on the video").uncheck()
    page.locator("#frames-form input[name=timestamp]").fill("9")
    page.locator("#frames-form input[name=timestamp]").press("Enter")
    expect(page.locator("#frames-form .alert")).to_contain_text("past the end of the video")

    # The frame's page: video link and time.
    page.goto(f"{live_server.url}/items/{frame.pk}/")
    expect(page.locator("[data-lineage-video]")).to_have_attribute("href", f"/items/{video.pk}/")
    expect(page.locator("[data-frame-time]")).to_have_text("00:01.000")
    page.screenshot(path=str(shots_dir / "frame-page.png"), full_page=True)
