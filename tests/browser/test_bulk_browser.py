"""The bulk editor in Chromium: Apply cannot be pressed twice, and a refused apply says why; the
history shows what single-item edits changed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.tags.models import Operation, TagSet
from apps.tags.services import operations, tag_set_curated_get_or_create, tag_set_edit
from tests.tags.factories import assign, effective_build, items_make, tags_make

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def two_cats() -> list[int]:
    items = items_make(2)
    tag = tags_make(["cat"])["cat"]
    assign([(item.pk, TagSet.Kind.CURATED, tag.pk) for item in items])
    effective_build([item.pk for item in items])
    return [item.pk for item in items]


def preview(page: Page, base: str, ids: list[int]) -> None:
    page.goto(f"{base}/tags/bulk/?action=add&tags=dog&ids={'+'.join(map(str, ids))}")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("button", name="Apply to 2 items")).to_be_visible()


def test_apply_retires_its_button_once_applied(signed_in: Page, live_server) -> None:
    page = signed_in
    preview(page, live_server.url, two_cats())
    page.get_by_role("button", name="Apply to 2 items").click()
    expect(page.locator("#bulk-result")).to_contain_text("Applied")
    expect(page.get_by_role("button", name="Apply to 2 items")).to_have_count(0)
    expect(page.locator(".bulk-apply.applied")).to_contain_text("Applied as operation")


def test_apply_of_a_preview_applied_elsewhere_shows_the_conflict(
    signed_in: Page, live_server, curator
) -> None:
    page = signed_in
    preview(page, live_server.url, two_cats())
    operation = Operation.objects.get()
    operations.operation_apply(operation=operation, actor=curator)  # another tab got there first
    page.get_by_role("button", name="Apply to 2 items").click()
    expect(page.locator("#bulk-result [role=alert]")).to_contain_text("only a preview can be applied")
    expect(page.get_by_role("button", name="Apply to 2 items")).to_have_count(0)


def test_history_shows_what_a_single_item_edit_changed(signed_in: Page, live_server, curator) -> None:
    page = signed_in
    item = items_make(1)[0]
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, add=["cat", "sky"], actor=curator)
    tag_set_edit(tag_set=curated, add=["dog"], remove=["sky"], actor=curator)
    page.goto(f"{live_server.url}/tags/operations/")
    latest = page.locator("table.operations tbody tr").first
    expect(latest.locator("[data-delta]")).to_contain_text(f"item {item.pk}: +dog −sky")
    latest.get_by_role("link", name=re.compile(r"edit of")).click()
    expect(page.locator("dd [data-delta]")).to_contain_text("+dog −sky")
