"""The item page's Datasets panel (docs/datasets.md#pages): it probes at most
ITEM_PANEL_QUERY_CHECKS saved queries per view and says how many it left unchecked."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.datasets import services
from apps.datasets.selectors import pages
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


def test_panel_says_how_many_saved_queries_were_not_checked(
    client: Client,
    curator,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pages, "ITEM_PANEL_QUERY_CHECKS", 2)
    item = make_item(["smile"], seed=1)
    for name in ("A", "B", "C", "D", "E"):
        services.dataset_create(name=name, query="smile")
    client.force_login(curator)
    panel = client.get(f"/items/{item.pk}/").content.decode()
    assert panel.count('data-membership="') == 2
    assert "and 3 more datasets with saved queries not checked" in panel


def test_no_note_when_every_saved_query_was_checked(client: Client, curator) -> None:  # type: ignore[no-untyped-def]
    item = make_item(["smile"], seed=1)
    services.dataset_create(name="A", query="smile")
    client.force_login(curator)
    panel = client.get(f"/items/{item.pk}/").content.decode()
    assert "not checked" not in panel


def test_probes_stop_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "ITEM_PANEL_QUERY_CHECKS", 3)
    item = make_item(["smile"], seed=1)
    for n in range(5):
        services.dataset_create(name=f"D{n}", query="smile")
    panel = pages.item_memberships(item=item)
    assert (len(panel.memberships), panel.unchecked) == (3, 2)
