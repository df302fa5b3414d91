"""The intake queue in Chromium: a pasted URL list with a bad line is refused line by line, the
fixed list is planned, and a query entry is processed into the dataset with its progress."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.datasets import services as dataset_services
from tests.media.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_plan_from_a_pasted_list_and_process_a_query_entry(signed_in: Page, live_server) -> None:  # type: ignore[no-untyped-def]
    make_item(seed=1)
    make_item(seed=2)
    dataset_services.dataset_create(name="Faces")
    signed_in.goto(f"{live_server.url}/intake/")
    expect(signed_in.get_by_role("heading", name="Nothing planned yet")).to_be_visible()

    signed_in.get_by_label("URLs, one per line").fill("https://example.com/a.jpg\nftp://example.com/b.jpg")
    signed_in.get_by_role("button", name="Add to the queue").click()
    expect(signed_in.locator("#urls-errors")).to_contain_text("Line 2 (ftp://example.com/b.jpg)")
    signed_in.get_by_label("URLs, one per line").fill("https://example.com/a.jpg\nhttps://example.com/b.jpg")
    signed_in.get_by_label("One entry per URL").check()
    signed_in.get_by_role("button", name="Add to the queue").click()
    expect(signed_in.locator("#entries tbody tr")).to_have_count(2)

    signed_in.get_by_label("What to add").select_option("query")
    signed_in.get_by_label("Query of library items").fill("width:>1")
    signed_in.get_by_role("button", name="Add to the queue").click()
    row = signed_in.locator("#entries tbody tr").first
    expect(row).to_contain_text("query width:>1")
    row.get_by_role("button", name="Process").click()
    row = signed_in.locator("#entries tbody tr").first
    expect(row).to_have_attribute("data-state", "added")
    expect(row).to_contain_text("2 of 2")
    expect(signed_in.locator("#dataset-progress")).to_contain_text("Faces")
