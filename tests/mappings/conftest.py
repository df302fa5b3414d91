"""Fixtures shared by the mapping tests."""

from __future__ import annotations

import pytest

from apps.tags.models import TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make


@pytest.fixture
def world(client, curator):  # type: ignore[no-untyped-def]
    """A logged-in curator's client, a danbooru → e621 mapping set (a → x), a profile on it and
    two items whose curated sets hold `a` (a module may define its own `world` instead)."""
    client.force_login(curator)
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["a", "b"], vocabulary=danbooru)
    tags_make(["x", "b"], vocabulary=e621)
    items = items_make(2)
    assign([(i.pk, TagSet.Kind.CURATED, src["a"].pk) for i in items])
    mapping = set_make(danbooru, e621, [("a", "x")], slug="d2e")
    profile = profile_make(e621, [mapping], slug="e6", input_scope="curated")
    return {"client": client, "set": mapping, "profile": profile, "items": items}
