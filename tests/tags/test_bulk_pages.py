"""Bulk editor and operation history pages (htmx partials, 422 on form errors, empty states)."""

from __future__ import annotations

import pytest

from apps.tags.models import Operation
from apps.tags.services import operations as ops
from tests.tags.factories import library
from tests.tags.snapshots import curated_names

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def page(client, curator):
    client.force_login(curator)
    return client


def preview_post(page, items, **fields):
    data = {
        "action": "add",
        "tags": "dog",
        "set_kind": "curated",
        "scope": "items",
        "revive_tombstones": "on",
    }
    data.update({"ids": " ".join(str(i.pk) for i in items)}, **fields)
    return page.post("/tags/bulk/preview", data, **HX)


def test_bulk_page_renders_full_and_prefilled(page):
    html = page.get("/tags/bulk/?q=1girl+-smile&action=remove").content.decode()
    assert "<html" in html
    assert "Bulk edit tags" in html
    assert 'value="1girl -smile"' in html
    partial = page.get("/tags/bulk/", **HX).content.decode()
    assert "<html" not in partial
    assert "Preview" in partial


def test_preview_shows_counts_and_sample_thumbnails(page):
    items = library(3, curated=["cat", "sky"])
    items[0].thumbnail_key = "thumbs/1.webp"
    items[0].save(update_fields=["thumbnail_key"])
    response = preview_post(page, items)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "3</strong> items matched" in html
    assert "3</strong> would change" in html
    assert f'src="/api/media/{items[0].pk}/thumbnail"' in html
    assert 'class="chip added">dog' in html
    assert "Apply to 3 items" in html
    assert Operation.objects.get().status == "previewed"


def test_form_errors_are_422_with_the_reason(page):
    library(1, curated=["cat"])
    missing_target = page.post(
        "/tags/bulk/preview", {"action": "add", "tags": "x", "set_kind": "curated"}, **HX
    )
    assert missing_target.status_code == 422
    assert "Choose the items" in missing_target.content.decode()
    bad_ids = page.post(
        "/tags/bulk/preview", {"action": "add", "tags": "x", "ids": "1 two", "set_kind": "curated"}, **HX
    )
    assert bad_ids.status_code == 422
    assert "Not item ids: two" in bad_ids.content.decode()
    no_tags = page.post(
        "/tags/bulk/preview",
        {"action": "replace", "from_tags": "cat", "ids": "1", "set_kind": "curated"},
        **HX,
    )
    assert no_tags.status_code == 422
    assert "in &#x27;to&#x27;" in no_tags.content.decode()
    assert Operation.objects.count() == 0


def test_apply_then_undo_then_redo_from_the_page(page):
    items = library(2, curated=["cat"])
    preview_post(page, items)
    operation = Operation.objects.get()
    applied = page.post(f"/tags/bulk/{operation.pk}/apply", **HX)
    html = applied.content.decode()
    assert applied.status_code == 200
    assert "Applied" in html
    assert ">Undo</button>" in html
    assert curated_names(items[0]) == ["cat", "dog"]
    undone = page.post(f"/tags/operations/{operation.pk}/undo", **HX).content.decode()
    assert "assignments restored" in undone
    assert ">Redo</button>" in undone
    assert curated_names(items[0]) == ["cat"]
    undo = Operation.objects.get(kind="undo")
    page.post(f"/tags/operations/{undo.pk}/undo", **HX)
    assert curated_names(items[0]) == ["cat", "dog"]
    refused = page.post(f"/tags/operations/{operation.pk}/undo", **HX)
    assert refused.status_code == 409
    assert "already undone" in refused.content.decode()


def test_large_apply_shows_the_job_progress(page, settings, monkeypatch):
    from apps.jobs import services as job_services

    monkeypatch.setattr(job_services.current_app, "send_task", lambda name, kwargs: None)
    settings.BULK_SYNC_MAX_CHANGES = 1
    items = library(3, curated=["cat"])
    assert "runs in the background" in preview_post(page, items).content.decode()
    operation = Operation.objects.get()
    html = page.post(f"/tags/bulk/{operation.pk}/apply", **HX).content.decode()
    assert f'id="job-{Operation.objects.get().job_id}"' in html
    assert "every 1s" in html


def test_history_empty_state_list_filters_and_keyset_paging(page, django_assert_max_num_queries):
    assert "No tag operations yet" in page.get("/tags/operations/").content.decode()
    items = library(1, curated=["cat"])
    for n in range(55):
        ops.operation_apply(
            operation=ops.operation_preview(action="add", tags=[f"t{n}"], ids=[items[0].pk]).operation
        )
    with django_assert_max_num_queries(10):
        html = page.get("/tags/operations/").content.decode()
    assert html.count('<tr id="op-row-') == 50
    assert "Older operations" in html
    oldest = Operation.objects.order_by("pk").first()
    assert oldest is not None
    rows = page.get(f"/tags/operations/?rows=1&before={oldest.pk + 5}", **HX).content.decode()
    assert rows.count('<tr id="op-row-') == 5
    assert "Older operations" not in rows
    assert "<table" not in rows
    none = page.get("/tags/operations/?kind=undo", **HX).content.decode()
    assert "No operations match these filters" in none


def test_undo_from_a_history_row_rerenders_the_row(page):
    items = library(1, curated=["cat"])
    operation = ops.operation_apply(
        operation=ops.operation_preview(action="add", tags=["dog"], ids=[items[0].pk]).operation
    ).operation
    html = page.post(f"/tags/operations/{operation.pk}/undo?view=row", **HX).content.decode()
    assert html.startswith(f'<tr id="op-row-{operation.pk}"')
    assert "Undone by" in html
    assert "1 restored" in html


def test_operation_detail_lists_affected_items(page):
    items = library(2, curated=["cat"])
    operation = ops.operation_apply(
        operation=ops.operation_preview(action="remove", tags=["cat"], ids=[i.pk for i in items]).operation
    ).operation
    html = page.get(f"/tags/operations/{operation.pk}/").content.decode()
    assert f"Operation #{operation.pk}" in html
    assert html.count('class="tile"') == 2
    assert page.get("/tags/operations/999999/").status_code == 404


def test_viewers_see_but_cannot_change(client, viewer):
    client.force_login(viewer)
    assert "needs the curators" in client.get("/tags/bulk/").content.decode()
    assert (
        client.post("/tags/bulk/preview", {"action": "add", "tags": "x", "ids": "1"}, **HX).status_code == 403
    )
    assert client.get("/tags/operations/").status_code == 200


def test_without_htmx_the_preview_is_a_full_page(page):
    items = library(1, curated=["cat"])
    response = page.post(
        "/tags/bulk/preview",
        {"action": "add", "tags": "dog", "ids": str(items[0].pk), "set_kind": "curated", "scope": "items"},
    )
    assert response.status_code == 200
    assert "<html" in response.content.decode()
