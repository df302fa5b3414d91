"""Pages: tag list with charts, tag types (inline edit, 422 on errors), tag templates (settings,
CSV import, export, build), nav links, admin."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.tags.models import Tag, TagAlias, TagType, Vocabulary
from apps.tags.services.names import tags_get_or_create, vocabulary_default
from apps.tags.services.vocabularies import vocabulary_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


def rows(html: str) -> list[str]:
    """Tag names in the table, in order (the chart repeats names, so look at the rows only)."""
    return re.findall(r'<span class="tag-name"[^>]*>([^<]+)</span>', html)


def counted(vocabulary: Vocabulary, **counts: int) -> dict[str, Tag]:
    tags = tags_get_or_create(vocabulary=vocabulary, names=list(counts))
    for name, count in counts.items():
        Tag.objects.filter(pk=tags[name].pk).update(media_count=count)
    return tags


@pytest.mark.parametrize("url", ["/tags/", "/tags/types/", "/tags/templates/", "/tags/templates/1/"])
def test_tag_pages_need_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_nav_links_to_the_tag_pages(curator_client):
    html = curator_client.get("/tags/").content.decode()
    for href in ('href="/tags/"', 'href="/tags/types/"', 'href="/tags/templates/"'):
        assert href in html
    assert 'href="/tags/" aria-current="page"' in html


# --- tag list --------------------------------------------------------------------------------------


def test_tag_list_empty_state_points_to_import(curator_client):
    html = curator_client.get("/tags/").content.decode()
    assert "Default has no tags yet" in html
    assert f'href="/tags/templates/{vocabulary_default().pk}/"' in html


def test_tag_list_shows_counts_types_chart_and_distribution(curator_client, django_assert_max_num_queries):
    tags = counted(vocabulary_default(), long_hair=30, smile=50, solo=0, saber=5)
    Tag.objects.filter(pk=tags["saber"].pk).update(type=TagType.objects.get(key="character"))
    with django_assert_max_num_queries(12):
        response = curator_client.get("/tags/")
    html = response.content.decode()
    assert response.status_code == 200
    assert rows(html) == ["smile", "long_hair", "saber", "solo"]  # by count
    assert 'class="bar-chart"' in html
    assert "<rect" in html
    assert "#16a34a" in html  # character colour
    assert html.count("<title>") >= 3 + 2  # 3 used tags in the chart, 2 types in the bar
    assert "Character" in html
    assert "General" in html
    assert 'class="type-bar"' in html


def test_tag_list_filters_by_search_type_and_deprecation(curator_client):
    tags = counted(vocabulary_default(), long_hair=30, long_sleeves=3, smile=50)
    Tag.objects.filter(pk=tags["long_sleeves"].pk).update(is_deprecated=True)
    assert rows(curator_client.get("/tags/?name=Long+Hair").content.decode()) == ["long_hair"]
    html = curator_client.get("/tags/?deprecated=true").content.decode()
    assert rows(html) == ["long_sleeves"]
    assert "deprecated" in html
    assert rows(curator_client.get("/tags/?order=name").content.decode()) == [
        "long_hair",
        "long_sleeves",
        "smile",
    ]
    html = curator_client.get("/tags/?type=meta").content.decode()
    assert "No tags match" in html


def test_tag_list_pages_by_keyset_with_htmx_rows(curator_client, monkeypatch):
    from apps.tags.views import vocabularies as views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    counted(vocabulary_default(), a_tag=5, b_tag=4, c_tag=3)
    first = curator_client.get("/tags/").content.decode()
    assert rows(first) == ["a_tag", "b_tag"]
    assert "More tags" in first
    cursor = first.split("cursor=")[1].split('"')[0].replace("&amp;", "&")
    more = curator_client.get(f"/tags/?cursor={cursor}", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in more
    assert rows(more) == ["c_tag"]
    assert "More tags" not in more
    assert "bar-chart" not in more


def test_tag_list_htmx_filter_answers_with_the_results_partial(curator_client):
    counted(vocabulary_default(), smile=1)
    partial = curator_client.get("/tags/?name=smi", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert rows(partial) == ["smile"]
    assert "bar-chart" in partial


def test_tag_list_bad_cursor_is_a_422_page(curator_client):
    assert curator_client.get("/tags/?cursor=nonsense").status_code == 422


# --- tag types -------------------------------------------------------------------------------------


def test_type_list_renders_seeded_types_with_edit_controls(curator_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        html = curator_client.get("/tags/types/").content.decode()
    for text in ("Trigger word", "Character", "General", "New tag type", 'hx-get="/tags/types/'):
        assert text in html
    assert html.count('<tr id="type-') == TagType.objects.count()


def test_viewer_sees_types_without_edit_controls_and_cannot_edit(viewer_client):
    html = viewer_client.get("/tags/types/").content.decode()
    assert "New tag type" not in html
    assert ">Edit<" not in html
    general = TagType.objects.get(key="general")
    assert viewer_client.get(f"/tags/types/{general.pk}/edit").status_code == 403
    assert viewer_client.post(f"/tags/types/{general.pk}/delete").status_code == 403


def test_type_inline_edit_saves_and_answers_with_the_row(curator_client):
    meta = TagType.objects.get(key="meta")
    form = curator_client.get(f"/tags/types/{meta.pk}/edit", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in form
    assert f'name="type-{meta.pk}-key"' in form
    data = {
        f"type-{meta.pk}-{k}": v
        for k, v in {
            "key": "meta",
            "name": "Meta tags",
            "color": "#123456",
            "display_order": "60",
            "caption_order": "60",
            "caption_zone": "suffix",
            "droppable": "on",
            "default_dropout": "12.5",
            "max_per_item": "",
            "short_keys": "",
        }.items()
    }
    row = curator_client.post(f"/tags/types/{meta.pk}/edit", data, HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert "Meta tags" in row.content.decode()
    assert '<form class="tool' not in row.content.decode()
    meta.refresh_from_db()
    assert (meta.name, meta.color, meta.default_dropout, meta.exported, meta.shuffleable) == (
        "Meta tags",
        "#123456",
        1250,
        False,
        False,
    )


def test_type_edit_with_errors_is_422_with_the_form(curator_client):
    meta = TagType.objects.get(key="meta")
    data = {f"type-{meta.pk}-key": "width", f"type-{meta.pk}-name": "", f"type-{meta.pk}-color": "#123456"}
    response = curator_client.post(f"/tags/types/{meta.pk}/edit", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" not in html
    assert 'class="alert error"' in html
    assert "This field is required" in html
    data.update(
        {
            f"type-{meta.pk}-name": "Meta",
            f"type-{meta.pk}-display_order": "1",
            f"type-{meta.pk}-caption_order": "1",
            f"type-{meta.pk}-caption_zone": "suffix",
            f"type-{meta.pk}-default_dropout": "0",
        }
    )
    qualifier = curator_client.post(f"/tags/types/{meta.pk}/edit", data, HTTP_HX_REQUEST="true")
    assert qualifier.status_code == 422
    assert "search qualifier" in qualifier.content.decode()
    full = curator_client.post(f"/tags/types/{meta.pk}/edit", data)
    assert full.status_code == 422
    assert "<html" in full.content.decode()


def test_type_create_and_delete(curator_client):
    data = {
        "key": "pose",
        "name": "Pose",
        "color": "#00aa00",
        "display_order": "95",
        "caption_order": "95",
        "caption_zone": "flex",
        "droppable": "on",
        "shuffleable": "on",
        "exported": "on",
        "default_dropout": "5",
    }
    created = curator_client.post("/tags/types/new", data, HTTP_HX_REQUEST="true")
    assert created.status_code == 200
    assert created["HX-Redirect"] == "/tags/types/"
    pose = TagType.objects.get(key="pose")
    assert pose.default_dropout == 500
    again = curator_client.post("/tags/types/new", data, HTTP_HX_REQUEST="true")
    assert again.status_code == 422
    assert "taken" in again.content.decode()
    deleted = curator_client.post(f"/tags/types/{pose.pk}/delete", HTTP_HX_REQUEST="true")
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert not TagType.objects.filter(key="pose").exists()


def test_type_delete_in_use_shows_the_reason_in_its_row(curator_client):
    meta = TagType.objects.get(key="meta")
    tag = tags_get_or_create(vocabulary=vocabulary_default(), names=["highres"])["highres"]
    Tag.objects.filter(pk=tag.pk).update(type=meta)
    response = curator_client.post(f"/tags/types/{meta.pk}/delete", HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "used by 1 tag" in response.content.decode()
    assert TagType.objects.filter(pk=meta.pk).exists()


# --- tag templates ----------------------------------------------------------------------------------


def test_template_list_and_create(curator_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        html = curator_client.get("/tags/templates/").content.decode()
    assert "Default" in html
    assert "New template" in html
    data = {
        "slug": "danbooru",
        "name": "Danbooru",
        "kind": "booru",
        "policy": "closed",
        "case": "lower",
        "word_separator": "_",
        "max_length": "170",
        "default_type": str(TagType.objects.get(key="general").pk),
        "default_tagger_threshold": "35",
    }
    created = curator_client.post("/tags/templates/", data)
    vocab = Vocabulary.objects.get(slug="danbooru")
    assert created.status_code == 303
    assert created["Location"] == f"/tags/templates/{vocab.pk}/"
    assert vocab.policy == "closed"
    assert vocab.default_tagger_threshold == 3500
    again = curator_client.post("/tags/templates/", data, HTTP_HX_REQUEST="true")
    assert again.status_code == 422
    assert "slug is taken" in again.content.decode()


def test_template_detail_empty_state_and_settings(curator_client, django_assert_max_num_queries):
    vocab = vocabulary_create(slug="mine", name="Mine")
    with django_assert_max_num_queries(12):
        html = curator_client.get(f"/tags/templates/{vocab.pk}/").content.decode()
    assert "has no tags yet" in html
    assert "Import a tag list" in html
    assert "Build from the tags in use" in html
    assert f'href="/tags/templates/{vocab.pk}/export.csv"' in html
    data = {
        "slug": "mine",
        "name": "Mine again",
        "kind": "booru",
        "policy": "open",
        "case": "lower",
        "word_separator": " ",
        "max_length": "100",
        "default_type": "",
        "default_tagger_threshold": "50",
    }
    saved = curator_client.post(f"/tags/templates/{vocab.pk}/", data, HTTP_HX_REQUEST="true")
    assert saved.status_code == 200
    assert "Saved." in saved.content.decode()
    vocab.refresh_from_db()
    assert (vocab.name, vocab.word_separator, vocab.max_length) == ("Mine again", " ", 100)
    bad = curator_client.post(
        f"/tags/templates/{vocab.pk}/", {**data, "max_length": "0"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 422
    assert "alert error" in bad.content.decode()


def test_template_import_shows_counts_and_line_errors(curator_client):
    vocab = vocabulary_create(slug="danbooru", name="Danbooru")
    upload = SimpleUploadedFile("t.csv", b'1girl,0,10,"1girls"\nkantoku,1,2,\nwidth:3,0,1,\nx,77,1,\n')
    response = curator_client.post(
        f"/tags/templates/{vocab.pk}/import", {"file": upload, "scheme": "auto"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "<strong>2</strong> new" in html
    assert "<strong>2</strong> error" in html
    assert "search qualifier" in html
    assert "category 77" in html
    assert set(Tag.objects.filter(vocabulary=vocab).values_list("name", flat=True)) == {
        "1girl",
        "1girls",
        "kantoku",
    }
    assert TagAlias.objects.filter(vocabulary=vocab).count() == 1
    missing = curator_client.post(
        f"/tags/templates/{vocab.pk}/import", {"scheme": "auto"}, HTTP_HX_REQUEST="true"
    )
    assert missing.status_code == 422
    assert "This field is required" in missing.content.decode()


def test_template_import_needs_permission(viewer_client):
    vocab = vocabulary_default()
    upload = SimpleUploadedFile("t.csv", b"a,0\n")
    response = viewer_client.post(f"/tags/templates/{vocab.pk}/import", {"file": upload, "scheme": "auto"})
    assert response.status_code == 422
    assert "permission" in response.content.decode()
    assert not Tag.objects.exists()


def test_template_export_streams_csv(curator_client):
    counted(vocabulary_default(), smile=3)
    response = curator_client.get(f"/tags/templates/{vocabulary_default().pk}/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "name,type,count,aliases",
        "smile,general,3,",
    ]


def test_template_build_from_usage_button(curator_client):
    counted(vocabulary_default(), used=2, unused=0)
    vocab = vocabulary_create(slug="mine", name="Mine")
    data = {"source": str(vocabulary_default().pk), "scope": "effective", "min_count": "1"}
    response = curator_client.post(f"/tags/templates/{vocab.pk}/build", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<strong>1</strong> added" in response.content.decode()
    assert list(Tag.objects.filter(vocabulary=vocab).values_list("name", flat=True)) == ["used"]
    bad = curator_client.post(
        f"/tags/templates/{vocab.pk}/build", {**data, "min_count": "0"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 422


def test_template_delete_refuses_a_template_with_tags(curator_client):
    vocab = vocabulary_create(slug="full", name="Full")
    tags_get_or_create(vocabulary=vocab, names=["a"])
    assert curator_client.post(f"/tags/templates/{vocab.pk}/delete").status_code == 409
    empty = vocabulary_create(slug="empty", name="Empty")
    assert curator_client.post(f"/tags/templates/{empty.pk}/delete").status_code == 303
    assert not Vocabulary.objects.filter(pk=empty.pk).exists()


def test_unknown_template_is_404(curator_client):
    assert curator_client.get("/tags/templates/999999/").status_code == 404


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def test_admin_pages_for_tag_models(staff_client):
    tag = counted(vocabulary_default(), smile=1)["smile"]
    for url in (
        "/admin/tags/tagtype/",
        "/admin/tags/vocabulary/",
        "/admin/tags/tag/",
        f"/admin/tags/tag/{tag.pk}/change/",
        "/admin/tags/tag/add/",
        "/admin/tags/tagset/",
        "/admin/tags/tagalias/",
        "/admin/tags/tagimplication/",
        "/admin/tags/aliasresolution/",
        "/admin/tags/description/",
        "/admin/tags/operation/",
    ):
        assert staff_client.get(url).status_code == 200, url


def test_admin_actions_deprecate_and_recount(staff_client):
    tag = counted(vocabulary_default(), smile=5)["smile"]
    response = staff_client.post(
        "/admin/tags/tag/", {"action": "deprecate", "_selected_action": [tag.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "1 tag deprecated" in response.content.decode()
    staff_client.post("/admin/tags/tag/", {"action": "recount", "_selected_action": [tag.pk]})
    tag.refresh_from_db()
    assert tag.is_deprecated
    assert tag.media_count == 0


def test_admin_tag_type_form_uses_service_rules(staff_client):
    data = {
        "key": "order",
        "name": "Order",
        "color": "#123456",
        "display_order": 1,
        "caption_order": 1,
        "caption_zone": "flex",
        "default_dropout": 0,
    }
    refused = staff_client.post("/admin/tags/tagtype/add/", data)
    assert refused.status_code == 200
    assert "search qualifier" in refused.content.decode()
    staff_client.post("/admin/tags/tagtype/add/", {**data, "key": "pose", "color": "#ABCDEF"})
    assert TagType.objects.get(key="pose").color == "#abcdef"


def test_admin_adds_tags_through_the_service(staff_client):
    data = {
        "vocabulary": vocabulary_default().pk,
        "name": "Long Hair",
        "display_name": "",
        "type": TagType.objects.get(key="general").pk,
    }
    staff_client.post("/admin/tags/tag/add/", data)
    tag = Tag.objects.get(name="long_hair")
    assert tag.words.filter(word="hair").exists()
    again = staff_client.post("/admin/tags/tag/add/", {**data, "name": "long_hair"})
    assert again.status_code == 200
    assert Tag.objects.filter(name="long_hair").count() == 1


def test_tag_list_shows_alias_antecedents_with_their_ideal(curator_client):
    from apps.tags.services import rules

    counted(vocabulary_default(), cat=3)
    rules.alias_activate(alias=rules.alias_create(antecedent="kitty", consequent="cat"))
    html = curator_client.get("/tags/?order=name").content.decode()
    assert rows(html) == ["cat", "kitty"]
    assert "→ cat" in html
