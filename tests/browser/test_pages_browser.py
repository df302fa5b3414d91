"""The server-rendered pages in a real browser: login, upload with live job progress, gallery, item.

Chromium (Debian's, /usr/bin/chromium) drives Django's live server; uploads are ingested by a
real Celery worker thread (`celery_worker_thread`), so these tests cover the whole path from the
file input to thumbnails in the gallery.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import mediafiles
from tests.browser.conftest import PASSWORD, login
from tests.media.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

JOB_TIMEOUT_MS = 60_000

# Records the job partial's <progress> each time htmx swaps something under #upload-area, so the
# test sees every state the page showed rather than racing the 1 s poll.
RECORD_PROGRESS_JS = """() => {
  window.__jobStates = [];
  const area = document.getElementById("upload-area");
  const record = () => {
    const job = area.querySelector("section.job");
    const bar = job && job.querySelector("progress.job-progress");
    if (bar) window.__jobStates.push({status: job.dataset.status, value: bar.value, max: bar.max});
  };
  new MutationObserver(record).observe(area, {childList: true, subtree: true});
}"""


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def assert_images_loaded(page: Page, images: Locator, count: int) -> None:
    """Exactly `count` images, each decoded with a real size (a broken image has naturalWidth 0)."""
    expect(images).to_have_count(count)
    for i in range(count):
        image = images.nth(i)
        image.scroll_into_view_if_needed()  # thumbnails are loading="lazy"
        page.wait_for_function("img => img.complete", arg=image.element_handle())
        width = image.evaluate("img => img.naturalWidth")
        assert width > 0, f"image {image.get_attribute('src')} did not load"


def test_login_lands_on_the_empty_library_and_a_wrong_password_is_refused(
    page: Page, page_errors, live_server, curator, shots_dir: Path
) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))

    login(page, live_server.url, curator.username, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    expect(page.get_by_label("User name")).to_have_value(curator.username)

    login(page, live_server.url, curator.username, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    empty = page.locator(".empty")
    expect(empty.get_by_role("heading")).to_have_text("Your library is empty")
    expect(empty.get_by_role("link", name="Upload media")).to_have_attribute("href", "/upload/")
    expect(page.locator(".topbar")).to_contain_text(curator.username)
    page.screenshot(path=str(shots_dir / "library-empty.png"), full_page=True)


def test_upload_files_and_zip_shows_live_progress_then_thumbnails_in_the_library(
    signed_in: Page, live_server, celery_worker_thread, tmp_path: Path, shots_dir: Path
) -> None:
    page = signed_in
    files = [
        write(tmp_path, "one.jpg", mediafiles.image_bytes("jpeg", seed=11)),
        write(tmp_path, "two.png", mediafiles.image_bytes("png", seed=12)),
        write(tmp_path, "three.webp", mediafiles.image_bytes("webp", seed=13)),
    ]
    archive = write(
        tmp_path,
        "more.zip",
        mediafiles.zip_bytes(
            {
                "zipped/four.png": mediafiles.image_bytes("png", seed=14),
                "zipped/five.jpg": mediafiles.image_bytes("jpeg", seed=15),
            }
        ),
    )

    page.get_by_role("navigation").get_by_role("link", name="Upload").click()
    expect(page).to_have_url(f"{live_server.url}/upload/")
    page.set_input_files("input[name=files]", files)
    page.set_input_files("input[name=archive]", archive)
    expect(page.locator("[data-dropzone-summary]")).to_have_text("3 file(s) selected · archive: more.zip")
    page.evaluate(RECORD_PROGRESS_JS)

    page.locator("#upload-form").get_by_role("button", name="Upload").click()

    job = page.locator("#upload-area section.job")
    expect(job).to_be_visible()
    expect(job.locator("progress.job-progress")).to_have_attribute("max", "5")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(job.locator("h2 .status")).to_have_text("Succeeded")
    expect(job.locator("progress.job-progress")).to_have_attribute("value", "5")
    expect(job).to_contain_text("5 of 5 done")

    states = page.evaluate("window.__jobStates")
    values = [s["value"] for s in states]
    assert states[0] == {"status": "queued", "value": 0, "max": 5}, states
    assert states[-1] == {"status": "succeeded", "value": 5, "max": 5}, states
    assert values == sorted(values), f"progress went backwards: {states}"

    results = job.locator("ul.results > li.result")
    expect(results).to_have_count(5)
    expect(job.locator("li.result.created")).to_have_count(5)
    for name in ("one.jpg", "two.png", "three.webp", "zipped/four.png", "zipped/five.jpg"):
        expect(results.filter(has_text=name)).to_have_count(1)
    assert_images_loaded(page, results.locator("img"), 5)
    page.screenshot(path=str(shots_dir / "upload-finished.png"), full_page=True)

    job.get_by_role("link", name="Open the library").click()
    expect(page).to_have_url(f"{live_server.url}/")
    tiles = page.locator("#grid > li.tile")
    expect(tiles).to_have_count(5)
    assert_images_loaded(page, tiles.locator("img"), 5)
    page.screenshot(path=str(shots_dir / "library.png"), full_page=True)


def test_video_item_page_shows_metadata_and_a_player_with_a_poster(
    signed_in: Page, live_server, curator, video_dir: Path, shots_dir: Path
) -> None:
    page = signed_in
    item = make_item(path=mediafiles.video_file(video_dir, "mp4"), filename="clip.mp4", added_by=curator)

    page.goto(f"{live_server.url}/items/{item.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("clip.mp4")
    meta = page.locator("dl.meta")
    expect(meta).to_contain_text("Video")
    expect(meta).to_contain_text("mp4 (video/mp4)")
    expect(meta).to_contain_text("320 × 240 px")
    expect(meta).to_contain_text("2.00 s")
    expect(meta).to_contain_text("25.000 fps")
    expect(meta).to_contain_text("h264")
    expect(meta).to_contain_text(item.sha256)
    expect(page.locator("ul.origins")).to_contain_text("clip.mp4")

    video = page.locator(".preview video")
    expect(video).to_have_count(1)
    expect(video).to_have_attribute("controls", "")
    poster = video.get_attribute("poster")
    assert poster == f"/api/media/{item.pk}/thumbnail", poster
    thumb = page.request.get(f"{live_server.url}{poster}")
    assert thumb.status == 200
    assert thumb.headers["content-type"] == "image/webp"
    # The browser reads the file's metadata (Debian's Chromium plays H.264).
    page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle())
    assert video.evaluate("v => v.duration") == pytest.approx(2.0, abs=0.1)
    page.screenshot(path=str(shots_dir / "item-video.png"), full_page=True)


def test_bad_file_fails_its_row_and_an_empty_form_is_refused_with_422(
    signed_in: Page, live_server, celery_worker_thread, tmp_path: Path, shots_dir: Path
) -> None:
    page = signed_in
    page.goto(f"{live_server.url}/upload/")

    def is_upload_post(response) -> bool:  # type: ignore[no-untyped-def]
        return response.url == f"{live_server.url}/upload/" and response.request.method == "POST"

    with page.expect_response(is_upload_post) as empty:
        page.locator("#upload-form").get_by_role("button", name="Upload").click()
    assert empty.value.status == 422
    alert = page.locator("#upload-form .alert.error")
    expect(alert).to_contain_text("Choose files, a zip archive or enter URLs")
    expect(page.locator("#upload-form input[name=files]")).to_be_visible()  # the form, swapped in
    page.screenshot(path=str(shots_dir / "upload-form-error.png"), full_page=True)

    good = write(tmp_path, "good.png", mediafiles.image_bytes("png", seed=21))
    bad = write(tmp_path, "notes.jpg", b"These are my notes, not a picture.\n" * 20)
    page.set_input_files("input[name=files]", [good, bad])
    with page.expect_response(is_upload_post) as sent:
        page.locator("#upload-form").get_by_role("button", name="Upload").click()
    assert sent.value.status == 200

    job = page.locator("#upload-area section.job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    failed = job.locator("li.result.failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("notes.jpg")
    expect(failed).to_contain_text("Failed: The file is not an image or video format Baggintag reads")
    expect(failed.locator(".noimg")).to_have_count(1)
    expect(job.locator("li.result.created")).to_contain_text("good.png")
    expect(job).to_contain_text("2 of 2 done")
    page.screenshot(path=str(shots_dir / "upload-with-failure.png"), full_page=True)


def test_gallery_kind_filter_keeps_only_the_video(
    signed_in: Page, live_server, curator, video_dir: Path, shots_dir: Path
) -> None:
    page = signed_in
    make_item(fmt="jpeg", size=(320, 240), seed=31, filename="still.jpg", added_by=curator)
    make_item(size=(320, 240), seed=32, filename="other.png", added_by=curator)
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"), filename="clip.mp4", added_by=curator)

    page.goto(f"{live_server.url}/")
    tiles = page.locator("#grid > li.tile")
    expect(tiles).to_have_count(3)

    page.get_by_label("Kind").select_option("video")
    expect(tiles).to_have_count(1)
    expect(tiles.first.get_by_role("link")).to_have_attribute("href", f"/items/{video.pk}/")
    expect(tiles.first.locator(".badge")).to_have_text("▶ 2.0 s")
    expect(page).to_have_url(re.compile(r"[?&]kind=video(&|$)"))
    assert_images_loaded(page, tiles.locator("img"), 1)
    page.screenshot(path=str(shots_dir / "library-filtered.png"), full_page=True)
