"""Mapping suggestions by the text vectors of tag names (docs/taggers.md#mapping-suggestions)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from apps.mappings.services.suggestions import mapping_suggestions
from apps.taggers.models import EmbeddingSpace, TextQuery
from apps.taggers.services.tag_suggestions import tag_text, text_queries_encode
from apps.tags.models import Tag
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import tags_make

pytestmark = pytest.mark.django_db


def _store(space: EmbeddingSpace, text: str, vector: np.ndarray) -> None:
    unit = (vector / np.linalg.norm(vector)).astype("<f2").tobytes()
    TextQuery.objects.create(
        space=space, text=text, text_sha256=hashlib.sha256(text.encode()).hexdigest(), vector=unit
    )


@pytest.fixture
def world(space):  # type: ignore[no-untyped-def]
    EmbeddingSpace.objects.filter(pk=space.pk).update(embedding_count=1)  # a text space in use
    space.refresh_from_db()
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["feline_ears"], vocabulary=danbooru)
    Tag.objects.filter(pk=src["feline_ears"].pk).update(media_count=5)
    tgt = tags_make(["cat_ears", "dog"], vocabulary=e621)
    profile = profile_make(e621, [set_make(danbooru, e621, [])])
    return space, profile, tgt


def test_the_nearest_target_name_is_proposed_with_its_cosine(world) -> None:  # type: ignore[no-untyped-def]
    space, profile, _tgt = world
    base = np.zeros(space.dim, dtype=np.float32)
    base[0] = 1.0
    near = base.copy()
    near[1] = 0.2
    far = np.zeros(space.dim, dtype=np.float32)
    far[2] = 1.0
    _store(space, "feline ears", base)
    _store(space, "cat ears", near)
    _store(space, "dog", far)
    suggestion = next(s for s in mapping_suggestions(profile=profile) if s["source"] == "feline_ears")
    by_target = {c["target"]: c for c in suggestion["candidates"]}
    assert "cat_ears" in by_target
    assert "dog" not in by_target  # cosine 0: not a candidate
    evidence = [e for e in by_target["cat_ears"]["evidence"] if e["kind"] == "text_embedding"]
    assert evidence[0]["cosine"] == pytest.approx(0.98, abs=0.01)
    assert evidence[0]["space"] == space.name


def test_names_without_vectors_are_queued_then_encoded(world, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    space, profile, _tgt = world
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mapping_suggestions(profile=profile)
    pending = TextQuery.objects.filter(space=space, vector__isnull=True)
    assert sorted(pending.values_list("text", flat=True)) == ["cat ears", "dog", "feline ears"]
    assert len(callbacks) == 1  # one batch sent to an ml_cpu worker
    assert text_queries_encode(text_query_ids=list(pending.values_list("pk", flat=True))) == 3
    vectors = [bytes(v) for v in TextQuery.objects.filter(space=space).values_list("vector", flat=True)]
    assert all(len(v) == space.dim * 2 for v in vectors)


def test_no_text_space_means_no_text_suggestions(db) -> None:  # type: ignore[no-untyped-def]
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    tags_make(["feline_ears"], vocabulary=danbooru)
    tags_make(["cat_ears"], vocabulary=e621)
    profile = profile_make(e621, [set_make(danbooru, e621, [])])
    mapping_suggestions(profile=profile)
    assert not TextQuery.objects.exists()


def test_tag_text_reads_underscores_as_spaces() -> None:
    assert tag_text("long_hair") == "long hair"
