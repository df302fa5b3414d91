"""Tag-name syntax: search prefixes are never tag names, type prefixes type tags."""

from __future__ import annotations

import pytest

from apps.core.exceptions import DomainError
from apps.media.services import metadata_clean
from apps.search.query import search_ids
from apps.search.query.qualifiers import QUALIFIER_NAMES, SPECS, TERM_MODES
from apps.tags import syntax
from apps.tags.models import Tag, TagAssignment, TagSet, TagType
from apps.tags.services import tags_get_or_create, vocabulary_default
from apps.tags.services.names import tag_name_normalise
from apps.tags.services.vocabularies import vocabulary_create
from apps.tags.services.vocabulary_io import vocabulary_import_csv
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
REGISTERED = sorted(QUALIFIER_NAMES | set(SPECS) | TERM_MODES)


def test_every_search_qualifier_and_term_mode_is_a_reserved_prefix():
    assert set(REGISTERED) <= syntax.RESERVED_PREFIXES
    assert TERM_MODES <= syntax.RESERVED_PREFIXES


@pytest.mark.parametrize("prefix", REGISTERED)
def test_a_name_starting_with_a_search_prefix_is_refused(prefix):
    with pytest.raises(DomainError) as err:
        tag_name_normalise(raw=f"{prefix}:x", vocabulary=vocabulary_default())
    assert err.value.code == "tags.reserved_prefix"
    assert err.value.status_code == 400
    assert f"'{prefix}:'" in err.value.message


def test_the_syntax_module_imports_no_django():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(syntax.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.startswith(("django", "apps"))}


@pytest.fixture
def signed_in(client, curator):
    client.force_login(curator)
    return client


def test_a_type_prefix_typed_in_the_editor_types_the_tag_and_search_finds_it(signed_in):
    thing = make_item(["1girl"])
    response = signed_in.post(
        f"/tags/editor/items/{thing.pk}/add", {"name": "char:Hatsune Miku", "row_version": 0}, **HTMX
    )
    assert response.status_code == 200
    tag = Tag.objects.get(name="hatsune_miku")
    assert tag.type.key == "character"
    assert not Tag.objects.filter(name__contains=":").exists()
    assert search_ids(q="char:hatsune_miku", viewer=None) == [thing.pk]
    assert search_ids(q="hatsune_miku", viewer=None) == [thing.pk]


@pytest.mark.parametrize(
    "typed", ["artist:ann", "kind:video", "format:png", "conf:x", "tag:x", "unaliased:x"]
)
def test_a_reserved_prefix_in_the_editor_is_refused_with_the_reason(signed_in, typed):
    thing = make_item(["1girl"])
    response = signed_in.post(f"/tags/editor/items/{thing.pk}/add", {"name": typed, "row_version": 0}, **HTMX)
    assert response.status_code == 422
    assert "search qualifier" in response.content.decode()
    assert not Tag.objects.filter(name__contains=":").exists()
    assert not TagSet.objects.filter(media_item=thing, kind=TagSet.Kind.CURATED).exists()


def test_artist_prefix_names_the_short_key_that_types_an_artist_tag():
    with pytest.raises(DomainError) as err:
        tag_name_normalise(raw="artist:ann", vocabulary=vocabulary_default())
    assert "art:ann" in err.value.message
    assert err.value.details["type_prefix"] == "art"


def test_the_api_types_prefixed_tags_and_refuses_reserved_ones(api):
    thing = make_item(["1girl"])
    created = api.post(f"/api/media/{thing.pk}/tag-sets", {"kind": "curated", "tags": []}, format="json")
    url = f"/api/tag-sets/{created.json()['id']}"
    refused = api.post(f"{url}/append-tags", {"tags": ["kind:video"]}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "tags.reserved_prefix"
    added = api.post(f"{url}/append-tags", {"tags": ["copy:vocaloid", "art:ann"]}, format="json")
    assert added.status_code == 200
    assert dict(Tag.objects.filter(name__in=["vocaloid", "ann"]).values_list("name", "type__key")) == {
        "vocaloid": "copyright",
        "ann": "artist",
    }
    assert search_ids(q="copy:vocaloid art:ann", viewer=None) == [thing.pk]


def test_a_prefix_retypes_a_general_tag_but_never_another_type(api):
    vocabulary = vocabulary_default()
    tags_get_or_create(vocabulary=vocabulary, names=["miku", "vocaloid"])
    Tag.objects.filter(name="vocaloid").update(type=TagType.objects.get(key="copyright"))
    thing = make_item(["1girl"])
    created = api.post(f"/api/media/{thing.pk}/tag-sets", {"kind": "curated", "tags": []}, format="json")
    url = f"/api/tag-sets/{created.json()['id']}"
    assert api.post(f"{url}/append-tags", {"tags": ["char:miku"]}, format="json").status_code == 200
    assert Tag.objects.get(name="miku").type.key == "character"
    clash = api.post(f"{url}/append-tags", {"tags": ["char:vocaloid"]}, format="json")
    assert clash.status_code == 400
    assert clash.json()["code"] == "tags.type_conflict"
    assert Tag.objects.get(name="vocaloid").type.key == "copyright"


def test_upload_source_tags_read_type_prefixes_and_refuse_search_prefixes():
    thing = make_item(["char:Miku", "1girl", "miku"])
    rows = TagAssignment.objects.filter(media_item=thing, kind=TagSet.Kind.SOURCE).select_related("tag__type")
    assert {(r.tag.name, r.tag.type.key) for r in rows} == {("miku", "character"), ("1girl", "general")}
    assert {r.entered_tag for r in rows} == {"character:miku", "1girl"}
    with pytest.raises(DomainError) as err:
        metadata_clean(tags=["width:100"], tag_source="booru")
    assert err.value.code == "tags.reserved_prefix"


def test_csv_import_reads_type_prefixes_and_reports_search_prefixes_per_line():
    vocab = vocabulary_create(slug="danbooru", name="Danbooru")
    data = b"char:saber,,10,\nkind:video,,1,\nart:ann,4,1,\nplain,,1,\n"
    result = vocabulary_import_csv(vocabulary=vocab, data=data)
    got = dict(Tag.objects.filter(vocabulary=vocab).values_list("name", "type__key"))
    assert got == {"saber": "character", "plain": "general"}
    assert [e["line"] for e in result.errors] == [2, 3]
    assert "search qualifier" in result.errors[0]["reason"]
    assert "type column" in result.errors[1]["reason"]
