"""The library grid's selection and what acts on it, the result count and filters, the item page's
order and prompts, and the upload form's errors, in Chromium (issue 10's page papercuts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.jobs.models import Job
from apps.media.models import MediaItem
from tests import mediafiles
from tests.tags.factories import items_make

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def library(page: Page, base: str, query: str = "") -> None:
    page.goto(f"{base}/{query}")
    expect(page.locator("#grid")).to_be_visible()


def tick(page: Page, item: MediaItem, *, shift: bool = False) -> None:
    page.locator(f'[data-pick][value="{item.pk}"]').click(modifiers=["Shift"] if shift else [])


def test_click_and_shift_click_select_a_range_and_edit_their_tags(signed_in: Page, live_server) -> None:
    page = signed_in
    items = items_make(4)  # shown newest first: 3, 2, 1, 0
    library(page, live_server.url)
    tick(page, items[3])
    tick(page, items[1], shift=True)
    expect(page.locator("[data-selection-count]")).to_have_text("3 selected")
    expect(page.locator(".tile.selected")).to_have_count(3)
    page.get_by_role("button", name="Edit tags…").click()
    expect(page).to_have_url(f"{live_server.url}/tags/bulk/")
    ids = page.get_by_label("or these item ids").input_value().split()
    assert sorted(map(int, ids)) == sorted(i.pk for i in items[1:])


def test_select_all_matching_the_filters_and_the_count(signed_in: Page, live_server) -> None:
    page = signed_in
    items_make(2, format="png", mime_type="image/png")
    items_make(3)  # jpeg
    library(page, live_server.url)
    expect(page.locator("[data-result-count]")).to_have_text("5 items")
    page.locator("details[data-multi] summary").click()
    page.get_by_label("png").check()
    expect(page.locator("[data-result-count]")).to_have_text("2 items")
    expect(page.locator("[data-multi-summary]")).to_have_text("png")
    page.get_by_role("button", name="Select all matching").click()
    expect(page.locator("[data-selection-count]")).to_have_text("2 selected (all matching)")


def test_select_all_matching_a_query(signed_in: Page, live_server) -> None:
    page = signed_in
    wide = items_make(2, width=2000, height=1000)
    items_make(2, width=100, height=100)
    library(page, live_server.url, "?q=width:>=1000")
    expect(page.locator("[data-result-count]")).to_have_text("2 items")
    page.get_by_role("button", name="Select all matching").click()
    expect(page.locator("[data-selection-count]")).to_have_text("2 selected (all matching)")
    value = page.locator("[data-selection-ids]").input_value()
    assert sorted(map(int, value.split())) == [i.pk for i in wide]


def test_filters_have_no_dashes_choice(signed_in: Page, live_server) -> None:
    page = signed_in
    items_make(1)
    library(page, live_server.url)
    assert "---------" not in page.content()


def test_delete_a_selection_after_confirming(signed_in: Page, live_server) -> None:
    page = signed_in
    items = items_make(3)
    library(page, live_server.url)
    tick(page, items[0])
    tick(page, items[2])
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete 2 selected items?")
    page.get_by_role("button", name="Delete 2 items").click()
    expect(page).to_have_url(f"{live_server.url}/")
    assert list(MediaItem.objects.values_list("pk", flat=True)) == [items[1].pk]


def test_deleting_a_selected_video_says_its_frames_stay(signed_in: Page, live_server) -> None:
    page = signed_in
    video = items_make(1, kind="video", format="mp4", mime_type="video/mp4", duration_ms=5000)[0]
    items_make(2, kind="frame", video=video)
    library(page, live_server.url, "?kind=video")
    tick(page, video)
    page.get_by_role("button", name="Delete…").click()
    expect(page.locator("[data-frames-note]")).to_contain_text("The 2 frames captured from it stay")


def test_transform_a_selection_starts_one_job(signed_in: Page, live_server) -> None:
    page = signed_in
    items = items_make(2)
    library(page, live_server.url)
    tick(page, items[0])
    tick(page, items[1])
    page.get_by_role("button", name="Transform…").click()
    page.get_by_label("Format").select_option("webp")
    page.get_by_role("button", name="Transform 2 items").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    assert sorted(job.params["ids"]) == sorted(i.pk for i in items)


def test_item_page_puts_the_tag_editor_before_the_tools(signed_in: Page, live_server, curator) -> None:
    page = signed_in
    item = items_make(1, width=64, height=64)[0]
    page.goto(f"{live_server.url}/items/{item.pk}/")
    order = page.evaluate(
        """() => {
          const editor = document.querySelector(".tag-editor-wrap, #tag-editor");
          const tool = document.getElementById("transform-form");
          return editor.compareDocumentPosition(tool) & Node.DOCUMENT_POSITION_FOLLOWING;
        }"""
    )
    assert order


def test_deleting_a_video_from_its_page_says_what_happens_to_its_frames(signed_in: Page, live_server) -> None:
    page = signed_in
    video = items_make(1, kind="video", format="mp4", mime_type="video/mp4", duration_ms=5000)[0]
    items_make(3, kind="frame", video=video)
    page.goto(f"{live_server.url}/items/{video.pk}/")
    prompts: list[str] = []
    page.on("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert "Its 3 captured frames stay in the library" in prompts[0]


def test_upload_error_keeps_the_files_and_the_open_section(
    signed_in: Page, live_server, tmp_path: Path
) -> None:
    page = signed_in
    picture = tmp_path / "one.jpg"
    picture.write_bytes(mediafiles.image_bytes("jpeg", seed=3))
    page.goto(f"{live_server.url}/upload/")
    page.set_input_files("input[name=files]", picture)
    page.get_by_text("Artist, source and original tags").click()
    page.get_by_label("Tags (comma-separated)").fill("cat, dog")
    page.locator("#upload-form").get_by_role("button", name="Upload").click()
    error = page.locator("#upload-errors [role=alert]")
    expect(error).to_contain_text("Where the tags came from")
    assert page.locator("input[name=files]").evaluate("input => input.files.length") == 1
    expect(page.locator("#upload-form details")).to_have_attribute("open", "")
    assert Job.objects.count() == 0


def test_upload_results_list_failed_inputs_first(
    signed_in: Page, live_server, celery_worker_thread, tmp_path: Path
) -> None:
    page = signed_in
    good = tmp_path / "a-good.png"
    good.write_bytes(mediafiles.image_bytes("png", seed=8))
    bad = tmp_path / "b-bad.jpg"
    bad.write_bytes(b"this is not a picture at all")
    page.goto(f"{live_server.url}/upload/")
    page.set_input_files("input[name=files]", [good, bad])
    page.locator("#upload-form").get_by_role("button", name="Upload").click()
    job = page.locator("#upload-area section.job")
    expect(job.locator("li.result")).to_have_count(2, timeout=60_000)
    expect(job.locator("li.result").first).to_have_class(re.compile(r"\bfailed\b"))
    expect(job.locator("li.result").first).to_contain_text("b-bad.jpg")
