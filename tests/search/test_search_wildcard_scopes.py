"""Wildcards are tag terms in every scope: each matched tag searches as its alias ideal and, outside
in:effective, expands to its antecedents and implied-by descendants (docs/query-language.md#wildcards).
Runs on SQLite and, with TEST_DATABASE_URL, on MariaDB."""

from __future__ import annotations

import pytest

from apps.search.query import QueryError, search_ids
from apps.tags.models import TagSet
from tests.tags.factories import alias_make, assign, closure_make, effective_build, items_make, tags_make

pytestmark = pytest.mark.django_db

C, S = TagSet.Kind.CURATED, TagSet.Kind.SOURCE


@pytest.fixture
def hair(db):
    """long_hair ⇒ hair; item 0 curated [long_hair], 1 curated [hair], 2 source [long_hair],
    3 curated [hairs] (an alias of hair, stored before the rule), 4 curated [dog]."""
    items = items_make(5)
    t = tags_make(["long_hair", "hair", "hairs", "dog"])
    closure_make([(t["long_hair"], t["hair"], 1)])
    i = [item.pk for item in items]
    assign([(i[0], C, t["long_hair"].pk), (i[1], C, t["hair"].pk), (i[2], S, t["long_hair"].pk)])
    assign([(i[3], C, t["hairs"].pk), (i[4], C, t["dog"].pk)])
    alias_make(t["hairs"], t["hair"])
    effective_build(i)
    return items


def found(items, q: str) -> set[int]:
    index = {item.pk: n for n, item in enumerate(items)}
    return {index[pk] for pk in search_ids(q=q, viewer=None)}


def test_in_curated_wildcard_finds_items_whose_tag_implies_a_match(hair):
    """The issue's case: `in:curated hai*` finds item 0 (curated long_hair ⇒ hair) as `hair` does."""
    assert found(hair, "in:curated hair") == {0, 1, 3}
    assert found(hair, "in:curated hai*") == {0, 1, 3}


def test_in_source_wildcard_expands_implications(hair):
    assert found(hair, "in:source hai*") == {2}


def test_in_any_wildcard_expands_implications(hair):
    assert found(hair, "in:any h*r") == {0, 1, 2, 3}


def test_wildcard_matching_an_alias_searches_its_ideal(hair):
    """`hairs` matches only the alias antecedent; like the plain term it searches `hair`."""
    assert found(hair, "in:curated hairs*") == found(hair, "in:curated hairs")


def test_wildcard_matching_an_alias_searches_its_ideal_in_effective(hair):
    assert found(hair, "hairs*") == found(hair, "hairs") == {0, 1, 2, 3}


def test_direct_wildcard_leaves_out_implying_tags(hair):
    assert found(hair, "in:curated direct:hai*") == {1, 3}


def test_negated_wildcard_in_curated_excludes_the_expansion(hair):
    assert found(hair, "in:curated -hai*") == {2, 4}


def test_unaliased_wildcard_stays_literal(hair):
    assert found(hair, "unaliased:hai*") == {1, 3}


def test_wildcard_expansion_is_bounded_like_a_term(hair, settings):
    settings.SEARCH_TERM_EXPANSION_MAX = 2
    with pytest.raises(QueryError) as info:
        search_ids(q="in:curated hai*", viewer=None)
    assert info.value.code == "search.term_too_broad"
