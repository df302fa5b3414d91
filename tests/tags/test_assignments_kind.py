"""The one writer refuses transitions into sets of another kind (docs/architecture.md#one-writer):
a tagger write can never touch a curated set, and nothing of the write is left behind."""

from __future__ import annotations

import pytest

from apps.core.exceptions import DomainError
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write
from tests.media.factories import make_item
from tests.tags.factories import assign, tagger_set_make, tags_make

pytestmark = pytest.mark.django_db


def test_a_tagger_write_into_a_curated_set_is_refused_and_leaves_nothing() -> None:
    item = make_item()
    tags = tags_make(["kept", "intruder", "predicted"])
    assign([(item.pk, TagSet.Kind.CURATED, tags["kept"].pk)])
    curated = TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED)
    tagger = tagger_set_make(item, {"predicted": 9000}, model="wd", version="1")
    before = list(
        TagAssignment.objects.order_by("tagset_id", "tag_id").values_list("tagset_id", "tag_id", "state")
    )
    versions = dict(TagSet.objects.values_list("pk", "row_version"))
    transitions = [
        Transition(tagger.pk, tags["intruder"].pk, item.pk, ABSENT, CURRENT, position=1, confidence=5000),
        Transition(curated.pk, tags["intruder"].pk, item.pk, ABSENT, CURRENT, position=1, confidence=5000),
    ]
    with pytest.raises(DomainError) as caught:
        assignments_write(transitions, kind=TagSet.Kind.TAGGER, operation_id=None, actor_id=None)
    after = list(
        TagAssignment.objects.order_by("tagset_id", "tag_id").values_list("tagset_id", "tag_id", "state")
    )
    assert caught.value.code == "tags.set_kind_mismatch"
    assert caught.value.details["sets"] == [curated.pk]
    assert after == before
    assert dict(TagSet.objects.values_list("pk", "row_version")) == versions


def test_a_write_of_the_sets_own_kind_goes_through() -> None:
    item = make_item()
    tags = tags_make(["a"])
    tagger = tagger_set_make(item, {}, model="wd", version="1")
    written = assignments_write(
        [Transition(tagger.pk, tags["a"].pk, item.pk, ABSENT, CURRENT, position=0, confidence=5000)],
        kind=TagSet.Kind.TAGGER, operation_id=None, actor_id=None,
    )  # fmt: skip
    assert written.changes == 1
