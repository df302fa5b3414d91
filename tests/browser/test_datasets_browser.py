"""The datasets pages in Chromium: from the list to a dataset whose validation report arrives
by htmx, naming the failing item, the requirement and the measured value."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.datasets import services
from tests.tags.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_dataset_list_to_validation_report(signed_in: Page, live_server) -> None:  # type: ignore[no-untyped-def]
    small, big = make_item(seed=1, size=(32, 32)), make_item(seed=2, size=(64, 64))
    dataset = services.dataset_create(name="Faces", requirements={"min_width": 48, "formats": ["png"]})
    services.members_edit(owner=dataset, action="add", item_ids=[small.pk, big.pk])
    signed_in.goto(f"{live_server.url}/datasets/")
    signed_in.get_by_role("link", name="Faces").click()
    report = signed_in.locator("#report .validation-report")
    expect(report).to_contain_text("1 of 2 members fail")
    expect(report.get_by_role("heading", name="min_width")).to_be_visible()
    expect(report.get_by_role("row").filter(has_text=f"#{small.pk}")).to_contain_text("32")
    expect(report.get_by_role("heading", name="formats")).to_contain_text("0 failing")


def test_add_to_a_dataset_from_the_library_selection(signed_in: Page, live_server) -> None:  # type: ignore[no-untyped-def]
    a, b, c = (make_item(seed=n) for n in (1, 2, 3))
    dataset = services.dataset_create(name="Faces")
    page = signed_in
    page.goto(f"{live_server.url}/")
    action = page.get_by_role("button", name="Add to dataset…")
    expect(action).to_be_disabled()
    page.locator(f'[data-item="{a.pk}"] [data-pick]').check()
    page.locator(f'[data-item="{c.pk}"] [data-pick]').check()
    expect(action).to_be_enabled()
    action.click()
    expect(page.get_by_role("heading", name="Add 2 selected items to a dataset")).to_be_visible()
    page.get_by_label("Dataset").select_option(label="Faces")
    page.get_by_role("button", name="Add 2 items").click()
    expect(page).to_have_url(f"{live_server.url}/datasets/{dataset.pk}/members")
    expect(page.locator("#gallery [data-item]")).to_have_count(2)
    expect(page.locator(f'#gallery [data-item="{b.pk}"]')).to_have_count(0)
