"""The bulk editor in Chromium: Apply cannot be pressed twice, and a refused apply says why."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.tags.models import Operation, TagSet
from apps.tags.services import operations
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
