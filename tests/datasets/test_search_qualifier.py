"""`dataset:` and `subset:` in the query language (docs/query-language.md#datasets-and-subsets):
results equal the membership, combined with tags, negated and in OR; unknown values are the
query language's clear error; the planner drives by a dataset's explicit rows. SQLite and MariaDB."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.exceptions import DomainError
from apps.datasets import selectors, services
from apps.datasets.models import Dataset
from apps.search.query import QueryError, search_ids, search_media
from apps.tags.models import TagSet
from tests.tags.factories import assign, effective_build, items_make, tags_make

pytestmark = pytest.mark.django_db
C = TagSet.Kind.CURATED


@pytest.fixture
def library() -> dict[str, list[int]]:
    items = [i.pk for i in items_make(40)]
    tags = tags_make(["cat", "dog"])
    rows = [(pk, C, tags["cat"].pk) for pk in items[:20]] + [(pk, C, tags["dog"].pk) for pk in items[10:30]]
    assign(rows)
    effective_build(items)
    return {"all": items, "cat": items[:20], "dog": items[10:30]}


def _members(dataset: Dataset) -> list[int]:
    return sorted(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))


def _search(q: str) -> list[int]:
    return sorted(search_ids(q=q, viewer=None))


def _dataset(library: dict[str, list[int]]) -> Dataset:
    """cat ∪ two explicit items − one cat item and one explicit item."""
    dataset = services.dataset_create(name="Pets", query="cat")
    extra = library["all"][35:38]
    services.members_edit(owner=dataset, action="add", item_ids=extra)
    services.members_edit(owner=dataset, action="exclude", item_ids=[library["cat"][0], extra[0]])
    return dataset


def test_results_equal_the_membership(library: dict[str, list[int]]) -> None:
    dataset = _dataset(library)
    assert _search("dataset:pets") == _members(dataset)
    assert len(_members(dataset)) == 19 + 2


def test_combined_with_tags_negation_and_or(library: dict[str, list[int]]) -> None:
    dataset = _dataset(library)
    members = set(_members(dataset))
    dog, everything = set(library["dog"]), set(library["all"])
    assert _search("dataset:pets dog") == sorted(members & dog)
    assert _search("-dataset:pets") == sorted(everything - members)
    assert _search("dataset:pets or dog") == sorted(members | dog)


def test_explicit_only_dataset_drives_the_plan(library: dict[str, list[int]]) -> None:
    dataset = services.dataset_create(name="Picked")
    services.members_edit(owner=dataset, action="add", item_ids=library["all"][:5])
    with CaptureQueriesContext(connection) as queries:
        page = search_media(q="dataset:picked dog", viewer=None, limit=10)
    assert page.plan == "postings"
    main = next(q["sql"] for q in queries.captured_queries if "LIMIT 11" in q["sql"])
    assert main.split(" FROM ")[1].lstrip('"`').startswith("datasets_datasetitem")
    assert sorted(page.ids) == sorted(set(library["all"][:5]) & set(library["dog"]))


def test_paging_through_a_dataset(library: dict[str, list[int]]) -> None:
    dataset = services.dataset_create(name="Picked")
    services.members_edit(owner=dataset, action="add", item_ids=library["all"][:25])
    first = search_media(q="dataset:picked", viewer=None, limit=10)
    seen, cursor = list(first.ids), first.next_cursor
    while cursor:
        page = search_media(q="dataset:picked", viewer=None, limit=10, cursor=cursor)
        seen += page.ids
        cursor = page.next_cursor
    assert seen == sorted(library["all"][:25], reverse=True)


def test_subset_qualifier(library: dict[str, list[int]]) -> None:
    dataset = services.dataset_create(name="Pets")
    subset = services.subset_create(dataset=dataset, name="Dogs", query="dog")
    services.members_edit(owner=subset, action="exclude", item_ids=[library["dog"][0]])
    assert _search("subset:pets/dogs") == sorted(library["dog"][1:])


@pytest.mark.parametrize(
    ("q", "needle"),
    [
        ("dataset:nope", "no dataset 'nope'"),
        ("subset:pets/nope", "no subset 'nope'"),
        ("subset:nope/dogs", "no dataset 'nope'"),
        ("subset:pets", "is not <dataset>/<subset>"),
        ("dataset:", "missing"),
    ],
)
def test_unknown_values_are_query_errors(library: dict[str, list[int]], q: str, needle: str) -> None:
    services.dataset_create(name="Pets")
    with pytest.raises(QueryError) as err:
        search_ids(q=q, viewer=None)
    assert err.value.code == "search.invalid_value"
    assert needle in err.value.message


def test_saved_query_may_name_another_dataset_but_not_itself(library: dict[str, list[int]]) -> None:
    cats = services.dataset_create(name="Cats", query="cat")
    services.dataset_create(name="Both", query="dataset:cats dog")
    assert _search("dataset:both") == sorted(set(_members(cats)) & set(library["dog"]))
    with pytest.raises(DomainError) as err:
        services.dataset_update(dataset=cats, query="dataset:both")
    assert err.value.code == "datasets.bad_query"
    assert Dataset.objects.get(pk=cats.pk).query == "cat"


def test_the_api_answers_an_unknown_dataset_with_400(api, library: dict[str, list[int]]) -> None:  # type: ignore[no-untyped-def]
    response = api.get("/api/media/search", {"q": "dataset:nope"})
    assert response.status_code == 400
    assert response.json()["code"] == "search.invalid_value"


def test_registered_qualifiers_are_reserved_tag_prefixes() -> None:
    from apps.search import extensions
    from apps.tags import syntax

    assert {"dataset", "subset"} <= extensions.qualifier_names() <= syntax.RESERVED_PREFIXES


def test_a_query_only_dataset_is_planned_like_its_query(library: dict[str, list[int]]) -> None:
    services.dataset_create(name="Cats", query="cat")
    page = search_media(q="dataset:cats", viewer=None, limit=10)
    assert page.plan == search_media(q="cat", viewer=None, limit=10).plan == "postings"
    assert sorted(search_ids(q="dataset:cats", viewer=None)) == sorted(library["cat"])
