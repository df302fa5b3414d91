"""Tag-set, rule and description API: PUT/append/remove with versions, promote, rules, captions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from apps.tags.models import EffectiveTag, TagSet
from apps.tags.services.effective import effective_rebuild_stale
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def item():
    return make_item(["cat", "sky"])


def names(body) -> list[str]:
    return [t["name"] for t in body["tags"]]


def test_curated_set_put_append_remove_with_versions(api, item):
    created = api.post(f"/api/media/{item.pk}/tag-sets", {"kind": "curated", "tags": ["dog"]}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["kind"] == "curated"
    assert names(body) == ["cat", "sky", "dog"]
    url = f"/api/tag-sets/{body['id']}"
    put = api.put(url, {"tags": ["Blue Sky", "cat"], "row_version": body["row_version"]}, format="json")
    assert put.status_code == 200
    assert sorted(names(put.json())) == ["blue_sky", "cat"]
    stale = api.put(url, {"tags": ["x"], "row_version": body["row_version"]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "tags.stale_version"
    appended = api.post(f"{url}/append-tags", {"tags": ["smile"]}, format="json").json()
    assert "smile" in names(appended)
    removed = api.post(f"{url}/remove-tags", {"tags": ["cat"]}, format="json").json()
    assert "cat" not in names(removed)
    effective = set(EffectiveTag.objects.filter(media_item=item).values_list("tag__name", flat=True))
    assert effective == {"blue_sky", "smile"}
    assert [
        s["id"] for s in api.get(f"/api/tag-sets/?media_item={item.pk}&kind=curated").json()["results"]
    ] == [body["id"]]
    assert api.get("/api/tag-sets/search?tag=smile").json()["results"][0]["id"] == body["id"]


def test_source_sets_refuse_edits_with_a_clear_message(api, item):
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    response = api.post(f"/api/tag-sets/{source.pk}/append-tags", {"tags": ["x"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "tags.set_read_only"
    assert "curated" in response.json()["message"]


def test_promote_copies_into_curated(api, item):
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    response = api.post(f"/api/tag-sets/{source.pk}/promote", {"tags": ["cat"]}, format="json")
    assert response.status_code == 200
    curated = TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED)
    assert curated.assignments.filter(tag__name="cat", state=1).exists()


def test_delete_set_and_its_effect(api, item):
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    assert api.delete(f"/api/tag-sets/{source.pk}").status_code == 204
    assert not EffectiveTag.objects.filter(media_item=item).exists()


def test_rules_need_approval_to_activate(item):
    editor = User.objects.create_user("editor", password="pw-editor-123")
    editor.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="tags").exclude(codename="approve_rules")
    )
    client = APIClient()
    client.force_authenticate(editor)
    proposed = client.post(
        "/api/tag-aliases/", {"antecedent": "kitty", "consequent": "cat", "activate": True}, format="json"
    )
    assert proposed.status_code == 201
    assert proposed.json()["status"] == "pending"
    denied = client.post(f"/api/tag-aliases/{proposed.json()['id']}/activate")
    assert denied.status_code == 403
    approver = APIClient()
    approver.force_authenticate(User.objects.create_superuser("root", password="pw-root-123"))
    activated = approver.post(f"/api/tag-aliases/{proposed.json()['id']}/activate")
    assert activated.status_code == 200
    assert activated.json()["status"] == "active"


def test_implication_api_reports_cycles_with_the_path(api, item):
    first = api.post(
        "/api/tag-implications/", {"child": "cat", "parent": "animal", "activate": True}, format="json"
    )
    assert first.status_code == 201
    assert first.json()["status"] == "active"
    effective_rebuild_stale()
    assert set(EffectiveTag.objects.filter(media_item=item).values_list("tag__name", flat=True)) == {
        "cat",
        "sky",
        "animal",
    }
    cycle = api.post(
        "/api/tag-implications/", {"child": "animal", "parent": "cat", "activate": True}, format="json"
    )
    assert cycle.status_code == 400
    assert cycle.json()["code"] == "tags.implication_cycle"
    assert cycle.json()["details"]["path"] == ["animal", "cat", "animal"]
    listed = api.get("/api/tag-implications/?tag=cat").json()["results"]
    assert [r["parent"] for r in listed] == ["animal"]


def test_descriptions_crud_with_regions_and_versions(api, item):
    created = api.post(
        "/api/descriptions/",
        {"media_item": item.pk, "text": "A cat under a blue sky.", "kind": "whole"},
        format="json",
    )
    assert created.status_code == 201
    region = api.post(
        "/api/descriptions/",
        {"media_item": item.pk, "text": "tabby", "kind": "character", "box": [0, 0, 32, 24]},
        format="json",
    )
    assert region.status_code == 201
    assert region.json()["box"] == [0, 0, 32, 24]
    outside = api.post(
        "/api/descriptions/", {"media_item": item.pk, "text": "x", "box": [60, 0, 10, 10]}, format="json"
    )
    assert outside.status_code == 400
    assert outside.json()["code"] == "media.box_outside"
    url = f"/api/descriptions/{created.json()['id']}"
    updated = api.patch(url, {"text": "A cat.", "row_version": 1}, format="json")
    assert updated.status_code == 200
    assert updated.json()["row_version"] == 2
    stale = api.patch(url, {"text": "Old.", "row_version": 1}, format="json")
    assert stale.status_code == 409
    assert len(api.get(f"/api/descriptions/?media_item={item.pk}").json()["results"]) == 2
    assert api.delete(url).status_code == 204


def test_removing_a_tag_name_that_never_existed_creates_no_tag(api, item):
    from apps.tags.models import Tag

    created = api.post(f"/api/media/{item.pk}/tag-sets", {"kind": "curated", "tags": []}, format="json")
    url = f"/api/tag-sets/{created.json()['id']}"
    response = api.post(f"{url}/remove-tags", {"tags": ["never_seen_before", "cat"]}, format="json")
    assert response.status_code == 200
    assert names(response.json()) == ["sky"]
    assert not Tag.objects.filter(name="never_seen_before").exists()


def test_description_without_media_item_is_400_naming_the_field(api):
    response = api.post("/api/descriptions/", {"text": "A cat."}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "media_item" in body["message"]
    assert "media_item" in body["details"]["fields"]


def test_api_curated_add_refused_leaves_no_curated_set_behind(api, item):
    response = api.post(
        f"/api/media/{item.pk}/tag-sets", {"kind": "curated", "tags": ["ok_tag", "-bad"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "tags.invalid_name"
    assert not TagSet.objects.filter(media_item=item, kind=TagSet.Kind.CURATED).exists()


def test_aliases_and_implications_in_any_tag_template_through_the_api(api):
    from apps.tags.services.vocabularies import vocabulary_create

    e621 = vocabulary_create(slug="e621", name="e621")
    alias = api.post(
        "/api/tag-aliases/",
        {"vocabulary": "e621", "antecedent": "kitty", "consequent": "domestic_cat"},
        format="json",
    )
    assert alias.status_code == 201
    assert alias.json()["vocabulary"] == "e621"
    implication = api.post(
        "/api/tag-implications/",
        {"vocabulary": "e621", "child": "domestic_cat", "parent": "felid"},
        format="json",
    )
    assert implication.status_code == 201
    from apps.tags.models import TagImplication

    assert TagImplication.objects.get().parent.vocabulary == e621
    listed = api.get("/api/tag-aliases/?vocabulary=e621").json()["results"]
    assert [a["antecedent"] for a in listed] == ["kitty"]
    assert api.get("/api/tag-aliases/?vocabulary=default").json()["results"] == []
    unknown = api.post(
        "/api/tag-aliases/", {"vocabulary": "nope", "antecedent": "a", "consequent": "b"}, format="json"
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "tags.vocabulary_not_found"
