"""The mapping API: seed names, validation as 4xx with nothing half-saved, import/export."""

from __future__ import annotations

import pytest

from apps.mappings.models import MappingProfile, MappingSet, TagMapping
from apps.tags.models import Operation, Tag, TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def vocabularies():
    danbooru = vocabulary_default()
    e621 = vocabulary_make("e621")
    tags_make(["1girl", "cat_ears", "smile"], vocabulary=danbooru)
    tags_make(["female", "solo", "nekomimi"], vocabulary=e621)
    return danbooru, e621


def _create(api, rules, **extra):
    body = {
        "slug": "d2e",
        "source_vocabulary": "default",
        "target_vocabulary": "e621",
        "rules": rules,
        **extra,
    }
    return api.post("/api/tag-mappings/", body, format="json")


def test_create_lists_rules(api, vocabularies):
    response = _create(api, [{"source": "1girl", "targets": ["female", "solo"]}])
    assert response.status_code == 201, response.json()
    assert response.json()["rules"][0]["targets"] == ["female", "solo"]


def test_target_outside_vocabulary_is_400_and_saves_nothing(api, vocabularies):
    response = _create(
        api, [{"source": "1girl", "targets": ["female"]}, {"source": "smile", "targets": ["grin"]}]
    )
    assert response.status_code == 400
    assert "grin" in response.json()["message"]
    assert not MappingSet.objects.exists()


def test_unknown_vocabulary_is_400(api, vocabularies):
    response = api.post(
        "/api/tag-mappings/",
        {"slug": "x", "source_vocabulary": "nope", "target_vocabulary": "e621"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "mappings.unknown_vocabulary"


def test_cycle_in_cleanup_set_is_400(api, vocabularies):
    body = {"slug": "c", "source_vocabulary": "default", "target_vocabulary": "default"}
    rules = [{"source": "1girl", "targets": ["smile"]}, {"source": "smile", "targets": ["1girl"]}]
    response = api.post("/api/tag-mappings/", {**body, "rules": rules}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "mappings.rule_cycle"


def test_append_remove_and_version(api, vocabularies):
    set_id = _create(api, [{"source": "1girl", "targets": ["female"]}]).json()["id"]
    appended = api.post(
        f"/api/tag-mappings/{set_id}/append-mapping",
        {"rules": [{"source": "cat_ears", "targets": ["nekomimi"], "requires": "1girl"}]},
        format="json",
    )
    assert appended.json() == {"changed": 1, "version": 2}
    removed = api.post(
        f"/api/tag-mappings/{set_id}/remove-mapping",
        {"rules": [{"source": "cat_ears", "requires": "1girl"}]},
        format="json",
    )
    assert removed.json() == {"changed": 1, "version": 3}


def test_put_overwrites_rules(api, vocabularies):
    set_id = _create(api, [{"source": "1girl", "targets": ["female"]}]).json()["id"]
    response = api.put(
        f"/api/tag-mappings/{set_id}/", {"rules": [{"source": "smile", "action": "drop"}]}, format="json"
    )
    assert [r["source"] for r in response.json()["rules"]] == ["smile"]


def test_csv_import_reports_each_bad_line_and_saves_nothing(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    text = "source,targets,action,requires,unless\n1girl,female,map,,\nsmile,grin\ncat_ears,a,b,c\n"
    response = api.post(f"/api/tag-mappings/{set_id}/import", {"text": text}, format="json")
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["details"]["errors"]] == [4]
    assert not TagMapping.objects.exists()


def test_csv_import_is_idempotent(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    text = "1girl,female,solo,map,,\ncat_ears,nekomimi\nsmile,,drop,,\n"
    first = api.post(f"/api/tag-mappings/{set_id}/import", {"text": text}, format="json").json()
    again = api.post(f"/api/tag-mappings/{set_id}/import", {"text": text}, format="json").json()
    assert (first["changed"], again["changed"], again["version"]) == (3, 0, 2)


def test_kohya_round_trip(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    response = api.post(
        f"/api/tag-mappings/{set_id}/import",
        {"text": "1girl,female;cat_ears,nekomimi", "format": "kohya"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    exported = api.get(f"/api/tag-mappings/{set_id}/export?format=kohya")
    assert exported.content.decode() == "1girl,female;cat_ears,nekomimi"


def test_csv_export_round_trip(api, vocabularies):
    set_id = _create(
        api, [{"source": "1girl", "targets": ["female", "solo"]}, {"source": "smile", "action": "drop"}]
    ).json()["id"]
    text = api.get(f"/api/tag-mappings/{set_id}/export").content.decode()
    other = api.post(
        "/api/tag-mappings/",
        {"slug": "copy", "source_vocabulary": "default", "target_vocabulary": "e621"},
        format="json",
    ).json()["id"]
    api.post(f"/api/tag-mappings/{other}/import", {"text": text}, format="json")
    assert api.get(f"/api/tag-mappings/{other}/export").content.decode() == text


def test_search_by_tag(api, vocabularies):
    _create(api, [{"source": "1girl", "targets": ["female"]}])
    found = api.get("/api/tag-mappings/search?tag=female").json()
    assert [s["slug"] for s in found] == ["d2e"]


def test_profile_without_steps_is_400(api, vocabularies):
    response = api.post(
        "/api/mapping-profiles/", {"slug": "p", "target_vocabulary": "e621", "steps": []}, format="json"
    )
    assert response.status_code == 400
    assert not MappingProfile.objects.exists()


def test_profile_preview_apply_undo(api, vocabularies, curator):
    danbooru, _e621 = vocabularies
    _create(api, [{"source": "1girl", "targets": ["female", "solo"]}])
    profile = api.post(
        "/api/mapping-profiles/",
        {
            "slug": "e6",
            "target_vocabulary": "e621",
            "steps": ["d2e"],
            "input_scope": "curated",
            "separator": ",",
        },
        format="json",
    ).json()
    items = items_make(2)
    girl = Tag.objects.get(vocabulary=danbooru, name="1girl")
    assign([(i.pk, TagSet.Kind.CURATED, girl.pk) for i in items])
    ids = [i.pk for i in items]
    preview = api.post(f"/api/mapping-profiles/{profile['id']}/preview", {"ids": ids}, format="json").json()
    assert preview["sample"][0]["caption"] == "female,solo"
    applied = api.post(f"/api/mapping-profiles/{profile['id']}/apply", {"ids": ids}, format="json")
    assert applied.status_code == 200
    operation = applied.json()["operation"]["id"]
    undone = api.post(f"/api/mapping-profiles/{profile['id']}/undo", {"operation": operation}, format="json")
    assert undone.status_code == 200
    assert Operation.objects.get(pk=operation).status == Operation.Status.UNDONE


def test_suggestions_name_and_cooccurrence(api, vocabularies):
    danbooru, _e621 = vocabularies
    extra = tags_make(["solo"], vocabulary=danbooru)["solo"]
    Tag.objects.filter(pk=extra.pk).update(media_count=5)
    _create(api, [])
    profile = api.post(
        "/api/mapping-profiles/", {"slug": "e6", "target_vocabulary": "e621", "steps": ["d2e"]}, format="json"
    ).json()
    found = api.get(f"/api/mapping-profiles/{profile['id']}/suggestions").json()["results"]
    assert found[0]["source"] == "solo"
    assert found[0]["candidates"][0]["evidence"][0]["kind"] == "name"


def test_viewer_cannot_write(client, viewer, vocabularies):
    from rest_framework.test import APIClient

    reader = APIClient()
    reader.force_authenticate(viewer)
    response = reader.post(
        "/api/tag-mappings/",
        {"slug": "x", "source_vocabulary": "default", "target_vocabulary": "e621"},
        format="json",
    )
    assert response.status_code == 403


def test_keep_across_vocabularies_is_400(api, vocabularies):
    response = _create(api, [{"source": "smile", "action": "keep"}])
    assert response.status_code == 400
    assert "keep is only allowed" in response.json()["message"]


def test_duplicate_rule_key_is_400(api, vocabularies):
    response = _create(
        api, [{"source": "1girl", "targets": ["female"]}, {"source": "1girl", "targets": ["solo"]}]
    )
    assert response.status_code == 400
    assert response.json()["details"]["errors"][0]["line"] == 2


def test_profile_step_into_another_vocabulary_is_400(api, vocabularies):
    _create(api, [])
    body = {"slug": "p", "target_vocabulary": "default", "steps": ["d2e"]}
    response = api.post("/api/mapping-profiles/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "mappings.target_mismatch"


def test_deleting_a_set_a_profile_uses_is_409(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    api.post(
        "/api/mapping-profiles/", {"slug": "p", "target_vocabulary": "e621", "steps": ["d2e"]}, format="json"
    )
    assert api.delete(f"/api/tag-mappings/{set_id}/").status_code == 409


def test_stale_version_is_409(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    body = {"rules": [{"source": "smile", "action": "drop"}], "version": 7}
    assert api.post(f"/api/tag-mappings/{set_id}/append-mapping", body, format="json").status_code == 409


def test_kohya_escapes_and_an_empty_target_drops(api, vocabularies):
    danbooru, e621 = vocabularies
    tags_make(["a;b"], vocabulary=danbooru)
    tags_make(["x;y"], vocabulary=e621)
    set_id = _create(api, []).json()["id"]
    text = "a\\;b,x\\;y;smile,"
    response = api.post(
        f"/api/tag-mappings/{set_id}/import", {"text": text, "format": "kohya"}, format="json"
    )
    assert response.status_code == 200, response.json()
    rules = {
        r["source"]: (r["action"], r["targets"])
        for r in api.get(f"/api/tag-mappings/{set_id}/").json()["rules"]
    }
    assert rules == {"a;b": ("map", ["x;y"]), "smile": ("drop", [])}
    assert api.get(f"/api/tag-mappings/{set_id}/export?format=kohya").content.decode() == text


def test_profile_crud_through_the_api(api, vocabularies):
    set_id = _create(api, []).json()["id"]
    created = api.post(
        "/api/mapping-profiles/", {"slug": "p", "target_vocabulary": "e621", "steps": ["d2e"]}, format="json"
    ).json()
    assert [p["slug"] for p in api.get("/api/mapping-profiles/").json()["results"]] == ["p"]
    assert [m["slug"] for m in api.get("/api/tag-mappings/").json()["results"]] == ["d2e"]
    patched = api.patch(
        f"/api/mapping-profiles/{created['id']}/", {"max_tags": 5, "version": 1}, format="json"
    ).json()
    assert (patched["max_tags"], patched["version"]) == (5, 2)
    assert api.get(f"/api/mapping-profiles/{created['id']}/").json()["max_tags"] == 5
    assert api.delete(f"/api/mapping-profiles/{created['id']}/").status_code == 204
    assert api.delete(f"/api/tag-mappings/{set_id}/").status_code == 204
    assert not MappingSet.objects.exists()


def test_a_cycle_through_an_existing_rule_is_400_on_append_and_import_and_saves_nothing(api, vocabularies):
    body = {"slug": "c", "source_vocabulary": "default", "target_vocabulary": "default"}
    rules = [{"source": "1girl", "targets": ["smile"]}]
    set_id = api.post("/api/tag-mappings/", {**body, "rules": rules}, format="json").json()["id"]
    back = {
        "rules": [{"source": "smile", "targets": ["cat_ears"]}, {"source": "cat_ears", "targets": ["1girl"]}]
    }
    appended = api.post(f"/api/tag-mappings/{set_id}/append-mapping", back, format="json")
    assert appended.status_code == 400
    assert appended.json()["code"] == "mappings.rule_cycle"
    assert "1girl → smile → cat_ears → 1girl" in appended.json()["message"]
    imported = api.post(f"/api/tag-mappings/{set_id}/import", {"text": "smile,1girl\n"}, format="json")
    assert imported.status_code == 400
    assert imported.json()["code"] == "mappings.rule_cycle"
    assert TagMapping.objects.count() == 1
    assert MappingSet.objects.get().version == 1
