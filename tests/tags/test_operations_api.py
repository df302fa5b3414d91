"""Bulk operation API: POST /api/tags/bulk and /api/tag-operations/ (list, apply, undo, cancel, items)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.jobs.models import Job
from apps.tags.models import Operation, TagAssignment, TagSet
from apps.tags.services import operations as ops
from tests.tags.factories import library
from tests.tags.snapshots import assert_no_drift, curated_names

pytestmark = pytest.mark.django_db

BULK = "/api/tags/bulk"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    return body


def test_dry_run_previews_without_changing_anything(api):
    items = library(3, curated=["cat", "sky"])
    items[0].thumbnail_key = "thumbs/x.webp"
    items[0].save(update_fields=["thumbnail_key"])
    response = api.post(
        BULK,
        {"action": "add", "tags": "dog, cat", "ids": [i.pk for i in items], "dry_run": True},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["operation"]["status"] == "previewed"
    assert body["mode"] == "sync"
    assert (body["matched_items"], body["items_changing"], body["changes"]) == (3, 3, 3)
    assert body["tags"]["dog"]["added"] == 3
    assert body["tags"]["cat"]["unchanged"] == 3
    sample = body["samples"][0]
    assert sample["thumbnail_url"] == f"/api/media/{items[0].pk}/thumbnail"
    assert sample["before"] == ["cat", "sky"]
    assert sample["after"] == ["cat", "sky", "dog"]
    assert sample["added"] == ["dog"]
    assert not TagAssignment.objects.filter(tag__name="dog").exists()
    applied = api.post(f"/api/tag-operations/{body['operation']['id']}/apply")
    assert applied.status_code == 200
    operation = applied.json()["operation"]
    assert operation["status"] == "applied"
    assert operation["can_undo"]
    for key in ("matched_items", "items_changing", "changes", "tags"):
        assert operation["counters"][key] == operation["preview"][key]  # check 22
    assert curated_names(items[0]) == ["cat", "sky", "dog"]
    again = api.post(f"/api/tag-operations/{body['operation']['id']}/apply")
    assert again.status_code == 409
    assert error_of(again)["code"] == "tags.operation_not_previewed"


def test_bulk_without_dry_run_applies_at_once_and_undo_redo_work(api):
    items = library(2, curated=["cat"])
    response = api.post(
        BULK, {"action": "remove", "tags": ["cat"], "ids": [i.pk for i in items]}, format="json"
    )
    assert response.status_code == 200
    operation = response.json()["operation"]
    assert operation["status"] == "applied"
    assert operation["counters"]["tags"]["cat"]["removed"] == 2
    assert curated_names(items[0]) == []
    undo = api.post(f"/api/tag-operations/{operation['id']}/undo")
    assert undo.status_code == 200
    undo_op = undo.json()["operation"]
    assert undo_op["kind"] == "undo"
    assert undo_op["counters"]["restored"] == 2
    assert undo_op["counters"]["conflicts"] == 0
    assert curated_names(items[0]) == ["cat"]
    refused = api.post(f"/api/tag-operations/{operation['id']}/undo")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "tags.already_undone"
    redo = api.post(f"/api/tag-operations/{undo_op['id']}/undo")
    assert redo.status_code == 200
    assert curated_names(items[0]) == []
    detail = api.get(f"/api/tag-operations/{operation['id']}").json()
    assert detail["status"] == "undone"
    assert detail["undone_by"] == undo_op["id"]
    assert detail["redone_by"] == redo.json()["operation"]["id"]
    assert_no_drift()


def test_large_operation_answers_202_with_a_job(
    api, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.jobs import services as job_services

    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        job_services.current_app, "send_task", lambda name, kwargs: sent.append((name, kwargs))
    )
    settings.BULK_SYNC_MAX_CHANGES = 2
    items = library(5, curated=["cat"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            BULK, {"action": "add", "tags": ["dog"], "ids": [i.pk for i in items]}, format="json"
        )
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["job"]["url"] == f"/api/jobs/{body['job']['id']}"
    assert body["operation"]["status"] == "queued"
    assert body["matched_items"] == 5
    assert sent == [("tags.operation_run", {"job_id": body["job"]["id"]})]
    ops.operation_run(job_id=body["job"]["id"])
    detail = api.get(f"/api/tag-operations/{body['operation']['id']}").json()
    assert detail["status"] == "applied"
    assert detail["counters"]["changes"] == 5
    assert detail["job"]["status"] == Job.Status.SUCCEEDED
    cancel = api.post(f"/api/tag-operations/{body['operation']['id']}/cancel")
    assert cancel.status_code == 409
    assert error_of(cancel)["code"] == "tags.operation_not_running"


def test_cancel_stops_a_queued_operation(api, settings, monkeypatch):
    from apps.jobs import services as job_services

    monkeypatch.setattr(job_services.current_app, "send_task", lambda name, kwargs: None)
    settings.BULK_SYNC_MAX_CHANGES = 0
    items = library(2, curated=["cat"])
    body = api.post(
        BULK, {"action": "add", "tags": ["dog"], "ids": [i.pk for i in items]}, format="json"
    ).json()
    response = api.post(f"/api/tag-operations/{body['operation']['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Job.objects.get(pk=body["job"]["id"]).status == "cancelled"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"action": "paint", "tags": ["x"], "ids": [1]}, 400, "invalid"),
        ({"action": "add", "tags": ["x"]}, 400, "tags.bulk_no_target"),
        ({"action": "add", "ids": [1]}, 400, "tags.bulk_invalid"),
        ({"action": "add", "tags": ["x"], "ids": [1], "set_kind": "tagger"}, 400, "tags.set_read_only"),
        ({"action": "add", "tags": ["-bad"], "ids": [1]}, 400, "tags.invalid_name"),
        ({"action": "add", "tags": ["x"], "q": "(unclosed"}, 400, "search.unbalanced_parenthesis"),
        ({"action": "rename", "from": ["a", "b"], "to": ["c"], "ids": [1]}, 400, "tags.bulk_invalid"),
    ],
)
def test_bad_requests_are_domain_errors(api, payload, status, code):
    library(1, curated=["cat"])
    response = api.post(BULK, payload, format="json")
    assert response.status_code == status
    assert error_of(response)["code"] == code


def test_target_by_query(api):
    items = library(2, curated=["cat"])
    library(2, curated=["dog"])
    body = api.post(
        BULK, {"action": "add", "tags": ["pet"], "q": "cat", "dry_run": True}, format="json"
    ).json()
    assert body["matched_items"] == 2
    assert body["operation"]["target_kind"] == "query"
    assert body["operation"]["request"]["input"]["q"] == "cat"
    ids = api.get(f"/api/tag-operations/{body['operation']['id']}/items").json()
    assert ids == {"ids": [i.pk for i in items], "next_after": None}


def test_permissions(viewer, curator):
    client = APIClient()
    client.force_authenticate(viewer)
    items = library(1, curated=["cat"])
    denied = client.post(BULK, {"action": "add", "tags": ["x"], "ids": [items[0].pk]}, format="json")
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "permission_denied"
    assert client.get("/api/tag-operations").status_code == 200  # reading the log is open to members
    library_rename = APIClient()
    library_rename.force_authenticate(curator)
    from django.contrib.auth.models import Permission

    curator.groups.first().permissions.remove(Permission.objects.get(codename="approve_rules"))
    from django.contrib.auth.models import User

    library_rename.force_authenticate(User.objects.get(pk=curator.pk))
    forbidden = library_rename.post(
        BULK, {"action": "rename", "from": ["cat"], "to": ["kitty"], "scope": "library"}, format="json"
    )
    assert forbidden.status_code == 403
    assert error_of(forbidden)["code"] == "tags.approve_rules_required"


def test_list_is_cursor_paged_filterable_and_cheap(api, django_assert_max_num_queries):
    items = library(2, curated=["cat"])
    for name in ("a", "b", "c"):
        api.post(BULK, {"action": "add", "tags": [name], "ids": [i.pk for i in items]}, format="json")
    with django_assert_max_num_queries(8):
        page = api.get("/api/tag-operations?page_size=2").json()
    assert [r["summary"][:5] for r in page["results"]] == ["add c", "add b"]
    assert page["next"]
    assert "cursor=" in page["next"]
    rest = api.get(page["next"]).json()
    assert [r["summary"][:5] for r in rest["results"]] == ["add a"]
    assert len(api.get("/api/tag-operations?kind=add").json()["results"]) == 3
    assert api.get("/api/tag-operations?kind=undo").json()["results"] == []
    missing = api.get("/api/tag-operations/999999")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "tags.operation_not_found"


def test_set_type_over_the_api(api):
    library(1, curated=["saber"])
    response = api.post(BULK, {"action": "set_type", "tags": ["saber"], "type": "character"}, format="json")
    assert response.status_code == 200
    assert response.json()["operation"]["counters"]["tags_changing"] == 1
    undo = api.post(f"/api/tag-operations/{response.json()['operation']['id']}/undo")
    assert undo.status_code == 200
    from apps.tags.models import Tag

    assert Tag.objects.get(name="saber").type.key == "general"


def test_tags_bulk_path_is_not_taken_for_a_tag_id(api):
    assert api.get("/api/tags/bulk").status_code == 405
    assert TagSet.objects.count() == 0
    assert Operation.objects.count() == 0


def test_bulk_remove_of_an_unknown_name_creates_no_tag(api):
    from apps.tags.models import Tag

    items = library(2, curated=["cat"])
    response = api.post(
        BULK, {"action": "remove", "tags": "ghost_tag", "ids": [i.pk for i in items]}, format="json"
    )
    assert response.status_code == 200
    assert not Tag.objects.filter(name="ghost_tag").exists()
    assert curated_names(items[0]) == ["cat"]


def test_changing_tag_types_needs_change_tag_at_preview_and_at_apply(api, curator):
    from django.contrib.auth.models import Permission, User

    library(1, curated=["saber"])
    preview = api.post(
        BULK, {"action": "set_type", "tags": ["saber"], "type": "character", "dry_run": True}, format="json"
    )
    assert preview.status_code == 200
    curator.groups.first().permissions.remove(Permission.objects.get(codename="change_tag"))
    weaker = APIClient()
    weaker.force_authenticate(User.objects.get(pk=curator.pk))
    refused_preview = weaker.post(
        BULK, {"action": "set_type", "tags": ["saber"], "type": "character", "dry_run": True}, format="json"
    )
    assert refused_preview.status_code == 403
    assert error_of(refused_preview)["code"] == "tags.change_tag_required"
    refused_apply = weaker.post(f"/api/tag-operations/{preview.json()['operation']['id']}/apply")
    assert refused_apply.status_code == 403
    assert error_of(refused_apply)["code"] == "tags.change_tag_required"
    from apps.tags.models import Tag

    assert Tag.objects.get(name="saber").type.key == "general"


def test_undoing_a_type_change_needs_the_same_permission_as_making_it(api, curator):
    from django.contrib.auth.models import Permission, User

    from apps.tags.models import Tag

    library(1, curated=["saber"])
    applied = api.post(BULK, {"action": "set_type", "tags": ["saber"], "type": "character"}, format="json")
    assert applied.status_code == 200
    curator.groups.first().permissions.remove(Permission.objects.get(codename="change_tag"))
    weaker = APIClient()
    weaker.force_authenticate(User.objects.get(pk=curator.pk))
    refused = weaker.post(f"/api/tag-operations/{applied.json()['operation']['id']}/undo")
    assert refused.status_code == 403
    assert Tag.objects.get(name="saber").type.key == "character"
