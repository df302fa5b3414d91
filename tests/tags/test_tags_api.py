"""API: tag types, tag templates (import, export, build) and tags (list, edit, autocomplete)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.services.names import tags_get_or_create, vocabulary_default
from apps.tags.services.vocabularies import vocabulary_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def viewer_api(viewer) -> APIClient:
    client = APIClient()
    client.force_authenticate(viewer)
    return client


def csv_upload(text: str, name: str = "tags.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def set_counts(vocabulary: Vocabulary, **counts: int) -> dict[str, Tag]:
    tags = tags_get_or_create(vocabulary=vocabulary, names=list(counts))
    for name, count in counts.items():
        Tag.objects.filter(pk=tags[name].pk).update(media_count=count)
    return tags


# --- tag types --------------------------------------------------------------------------------------


def test_tag_types_list_is_seeded_and_ordered(api, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        response = api.get("/api/tag-types/")
    assert response.status_code == 200
    keys = [row["key"] for row in response.json()["results"]]
    assert keys[:3] == ["trigger", "description", "character"]
    assert "general" in keys
    general = next(r for r in response.json()["results"] if r["key"] == "general")
    assert general["is_default"] is True
    assert general["caption_zone"] == "flex"


def test_tag_type_crud(api):
    created = api.post(
        "/api/tag-types/",
        {
            "key": "pose",
            "name": "Pose",
            "color": "#112233",
            "caption_zone": "suffix",
            "default_dropout": 1500,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["default_dropout_rate"] == 0.15
    assert body["exported"] is True
    url = f"/api/tag-types/{body['id']}"
    patched = api.patch(url, {"exported": False, "shuffleable": False}, format="json")
    assert patched.status_code == 200
    assert patched.json()["exported"] is False
    assert api.get(url).json()["shuffleable"] is False
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_tag_type_errors_use_the_error_shape(api):
    qualifier = api.post("/api/tag-types/", {"key": "width", "name": "Width"}, format="json")
    assert qualifier.status_code == 400
    assert qualifier.json()["code"] == "tags.reserved_key"
    assert "key" in qualifier.json()["details"]["fields"]
    duplicate = api.post("/api/tag-types/", {"key": "general", "name": "Again"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "tags.duplicate_type"
    general = TagType.objects.get(key="meta")
    tags_get_or_create(vocabulary=vocabulary_default(), names=["x"])
    Tag.objects.filter(name="x").update(type=general)
    in_use = api.delete(f"/api/tag-types/{general.pk}")
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "tags.type_in_use"
    assert "1 tag" in in_use.json()["message"]


def test_viewers_read_but_cannot_write(viewer_api):
    assert viewer_api.get("/api/tag-types/").status_code == 200
    assert viewer_api.get("/api/tag-templates/").status_code == 200
    assert viewer_api.get("/api/tags/").status_code == 200
    general = TagType.objects.get(key="general")
    vocab = vocabulary_default()
    tag = tags_get_or_create(vocabulary=vocab, names=["x"])["x"]
    for method, url, data in (
        ("post", "/api/tag-types/", {"key": "pose", "name": "Pose"}),
        ("patch", f"/api/tag-types/{general.pk}", {"name": "G"}),
        ("delete", f"/api/tag-types/{general.pk}", None),
        ("post", "/api/tag-templates/", {"slug": "x", "name": "X"}),
        ("patch", f"/api/tag-templates/{vocab.pk}", {"name": "X"}),
        ("post", f"/api/tag-templates/{vocab.pk}/import", {"file": csv_upload("a,0")}),
        ("post", f"/api/tag-templates/{vocab.pk}/build", {}),
        ("post", "/api/tags/", {"name": "new"}),
        ("patch", f"/api/tags/{tag.pk}", {"is_deprecated": True}),
    ):
        kwargs = {"format": "multipart"} if "import" in url else {"format": "json"}
        response = getattr(viewer_api, method)(url, data, **kwargs)
        assert response.status_code == 403, (method, url)
        assert response.json()["code"] == "permission_denied"
    assert APIClient().get("/api/tags/").status_code == 401


# --- tag templates -----------------------------------------------------------------------------------


def test_tag_template_crud_and_rules(api):
    created = api.post(
        "/api/tag-templates/",
        {
            "slug": "e621",
            "name": "e621",
            "policy": "closed",
            "default_type": "general",
            "word_separator": "_",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["policy"] == "closed"
    assert body["default_type"] == "general"
    assert body["is_default"] is False
    url = f"/api/tag-templates/{body['id']}"
    assert (
        api.patch(url, {"default_tagger_threshold": 5000}, format="json").json()["default_tagger_threshold"]
        == 5000
    )
    duplicate = api.post("/api/tag-templates/", {"slug": "e621", "name": "Again"}, format="json")
    assert duplicate.status_code == 409
    bad = api.patch(url, {"max_length": 900}, format="json")
    assert bad.status_code == 400
    assert "max_length" in bad.json()["details"]["fields"]
    assert api.delete(url).status_code == 204
    default = api.delete(f"/api/tag-templates/{vocabulary_default().pk}")
    assert default.status_code == 409
    assert default.json()["code"] == "tags.vocabulary_default"


def test_import_export_round_trip(api):
    vocab = vocabulary_create(slug="danbooru", name="Danbooru")
    text = 'name,type,count,aliases\n1girl,0,100,"1girls,sole_female"\nkantoku,1,5,\nwidth:3,0,1,\n'
    response = api.post(
        f"/api/tag-templates/{vocab.pk}/import", {"file": csv_upload(text)}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["lines"], body["created"], body["aliases_created"]) == (3, 2, 2)
    assert body["errors"] == [{"line": 4, "reason": body["errors"][0]["reason"], "value": "width:3"}]
    assert "qualifier" in body["errors"][0]["reason"]
    # Curators may approve rules, so their imported aliases are active at once.
    assert body["aliases_activated"] == 2
    assert body["aliases_pending"] == 0
    exported = api.get(f"/api/tag-templates/{vocab.pk}/export")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    assert 'filename="danbooru.csv"' in exported["Content-Disposition"]
    csv_text = b"".join(exported.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0] == ["name", "type", "count", "aliases"]
    assert ["1girl", "general", "0", "1girls,sole_female"] in rows
    assert ["kantoku", "artist", "0", ""] in rows
    copy = vocabulary_create(slug="copy", name="Copy")
    again = api.post(
        f"/api/tag-templates/{copy.pk}/import", {"file": csv_upload(csv_text)}, format="multipart"
    ).json()
    assert (again["created"], again["aliases_created"], again["errors"]) == (2, 2, [])
    assert b"".join(api.get(f"/api/tag-templates/{copy.pk}/export").streaming_content).decode() == csv_text


def test_import_rejects_missing_file_and_oversized_upload(api, settings):
    vocab = vocabulary_default()
    missing = api.post(f"/api/tag-templates/{vocab.pk}/import", {}, format="multipart")
    assert missing.status_code == 400
    assert "file" in missing.json()["details"]["fields"]
    settings.BAGGINTAG_VOCAB_IMPORT_MAX_BYTES = 5
    big = api.post(
        f"/api/tag-templates/{vocab.pk}/import", {"file": csv_upload("abcdefgh,0")}, format="multipart"
    )
    assert big.status_code == 413
    assert big.json()["code"] == "tags.import_too_large"


def test_build_from_usage_endpoint(api):
    default = vocabulary_default()
    set_counts(default, used=2, unused=0)
    target = vocabulary_create(slug="mine", name="Mine")
    response = api.post(f"/api/tag-templates/{target.pk}/build", {"source": "default"}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 1
    assert list(Tag.objects.filter(vocabulary=target).values_list("name", flat=True)) == ["used"]
    same = api.post(f"/api/tag-templates/{default.pk}/build", {}, format="json")
    assert same.status_code == 422
    assert same.json()["code"] == "tags.build_same_vocabulary"


# --- tags ---------------------------------------------------------------------------------------------


def test_tag_list_filters_orders_and_pages_by_keyset(api, django_assert_max_num_queries):
    vocab = vocabulary_default()
    tags = set_counts(vocab, long_hair=30, long_sleeves=30, short_hair=10, smile=50, solo=0)
    Tag.objects.filter(pk=tags["solo"].pk).update(is_deprecated=True, type=TagType.objects.get(key="meta"))
    with django_assert_max_num_queries(5):
        first = api.get("/api/tags/?page_size=2")
    body = first.json()
    assert [r["name"] for r in body["results"]] == ["smile", "long_hair"]
    assert body["results"][0]["type"] == "general"
    assert body["results"][0]["vocabulary"] == "default"
    second = api.get(body["next"]).json()
    assert [r["name"] for r in second["results"]] == ["long_sleeves", "short_hair"]
    third = api.get(second["next"]).json()
    assert [r["name"] for r in third["results"]] == ["solo"]
    assert third["next"] is None
    by_name = api.get("/api/tags/?order=name&name=Long Hair").json()["results"]
    assert [r["name"] for r in by_name] == ["long_hair"]
    assert [r["name"] for r in api.get("/api/tags/?name=long&order=name").json()["results"]] == [
        "long_hair",
        "long_sleeves",
    ]
    assert [r["name"] for r in api.get("/api/tags/?deprecated=true").json()["results"]] == ["solo"]
    assert [r["name"] for r in api.get("/api/tags/?type=meta&vocab=default").json()["results"]] == ["solo"]
    unknown = api.get("/api/tags/?vocab=nope")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "invalid"
    assert api.get("/api/tags/?cursor=garbage").json()["code"] == "tags.invalid_cursor"


def test_tag_create_normalises_and_refuses_duplicates(api):
    created = api.post("/api/tags/", {"name": "  Long Hair ", "type": "character"}, format="json")
    assert created.status_code == 201
    assert created.json()["name"] == "long_hair"
    assert created.json()["type"] == "character"
    duplicate = api.post("/api/tags/", {"name": "long hair"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "tags.duplicate"
    assert duplicate.json()["details"]["id"] == created.json()["id"]
    reserved = api.post("/api/tags/", {"name": "width:100"}, format="json")
    assert reserved.status_code == 400
    assert reserved.json()["code"] == "tags.reserved_prefix"


def test_tag_patch_changes_type_deprecation_and_display_name(api):
    tag = tags_get_or_create(vocabulary=vocabulary_default(), names=["smile"])["smile"]
    response = api.patch(
        f"/api/tags/{tag.pk}", {"type": "meta", "is_deprecated": True, "display_name": "Smile"}, format="json"
    )
    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("type", "is_deprecated", "display_name")} == {
        "type": "meta",
        "is_deprecated": True,
        "display_name": "Smile",
    }
    assert api.patch(f"/api/tags/{tag.pk}", {"type": "nope"}, format="json").status_code == 400
    assert api.put(f"/api/tags/{tag.pk}", {}, format="json").status_code == 405
    assert api.delete(f"/api/tags/{tag.pk}").status_code == 405
    assert api.get("/api/tags/999999").status_code == 404


def test_autocomplete_ranks_by_count_and_shows_antecedents(api, django_assert_max_num_queries):
    from apps.tags.services import rules

    vocab = vocabulary_default()
    set_counts(vocab, long_hair=50, long_sleeves=80, blonde_hair=200, longcat=1, **{"1girl": 900})
    rules.alias_activate(alias=rules.alias_create(antecedent="long_haired", consequent="long_hair"))
    with django_assert_max_num_queries(5):
        response = api.get("/api/tags/autocomplete?q=Long ")
    body = response.json()
    assert response.status_code == 200
    assert body["q"] == "long_"
    assert [r["label"] for r in body["results"]] == ["long_sleeves", "long_hair"]
    assert [r["name"] for r in api.get("/api/tags/autocomplete?q=long").json()["results"]][-1] == "longcat"
    antecedent = api.get("/api/tags/autocomplete?q=long_haire").json()["results"]
    assert antecedent[0]["label"] == "long_haired → long_hair"
    assert antecedent[0]["media_count"] == 50
    assert antecedent[0]["antecedent"] is True
    assert antecedent[0]["ideal"]["name"] == "long_hair"
    words = api.get("/api/tags/autocomplete?q=hair&limit=1").json()["results"]
    assert [r["name"] for r in words] == ["blonde_hair"]
    assert words[0]["match"] == "word"
    typo = api.get("/api/tags/autocomplete?q=blomde").json()["results"]
    assert [r["name"] for r in typo] == ["blonde_hair"]
    assert typo[0]["match"] == "fuzzy"
    assert api.get("/api/tags/autocomplete?q=1g&type=general").json()["results"][0]["name"] == "1girl"
    assert api.get("/api/tags/autocomplete?q=1g&type=artist").json()["results"] == []
    assert api.get("/api/tags/autocomplete?q=x&type=nope").status_code == 400
    assert api.get("/api/tags/autocomplete?q=x&vocab=nope").status_code == 404
    assert api.get("/api/tags/autocomplete?q=").json()["results"] == []


def test_schema_includes_the_tag_endpoints(api):
    schema = api.get("/api/schema/").content.decode()
    for path in ("/api/tag-types/", "/api/tag-templates/{id}/import", "/api/tags/autocomplete"):
        assert path in schema


def test_tag_list_marks_alias_antecedents(api, curator):
    from apps.tags.services import rules

    set_counts(vocabulary_default(), cat=3)
    rules.alias_activate(alias=rules.alias_create(antecedent="kitty", consequent="cat"), actor=curator)
    rows = {r["name"]: r for r in api.get("/api/tags/?order=name").json()["results"]}
    assert rows["kitty"]["alias_of"] == "cat"
    assert rows["cat"]["alias_of"] is None
    client = api.get(f"/api/tags/{rows['kitty']['id']}").json()
    assert client["alias_of"] == "cat"


def test_tag_list_defaults_to_the_default_template_and_ids_are_numeric(api):
    other = vocabulary_create(slug="other", name="Other")
    tags_get_or_create(vocabulary=other, names=["elsewhere"])
    tags_get_or_create(vocabulary=vocabulary_default(), names=["here"])
    assert [r["name"] for r in api.get("/api/tags/").json()["results"]] == ["here"]
    assert [r["name"] for r in api.get("/api/tags/?vocab=other").json()["results"]] == ["elsewhere"]
    assert api.get("/api/tags/abc").status_code == 404
    assert api.get("/api/tag-templates/abc").status_code == 404
