"""What a WD step writes into tagger sets (docs/taggers.md#outputs): each batch replaces the
item's set of its slot (shared with heads: `apply.sets_replace`), a row a person removed stays
removed, an `image_masked:` step has its own slot, and a closed vocabulary's unknown names are
dropped and counted instead of failing the step; existing tags are never retyped."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.jobs.models import Job
from apps.taggers.models import SchemeRun, StepRun
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schemes import scheme_create
from apps.tags.models import Tag, TagAssignment, TagSet, Vocabulary
from apps.tags.selectors.vocabularies import vocabulary_default
from apps.tags.services.assignments import ABSENT, CURRENT, DELETED, Transition, assignments_write
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import halves_png, tagger_make, write_wd_dir
from tests.tags.factories import tags_make

pytestmark = pytest.mark.django_db

RED, BLUE = (255, 0, 0), (0, 0, 255)
TASKS = {
    "schemes.run": scheme_runs.scheme_run_plan,
    "taggers.detect": scheme_runs.step_run_execute,
    "taggers.wd": scheme_runs.step_run_execute,
}
LEFT_HALF = [[0.0, 0.0, 0.5, 1.0, "person"]]


def _drain() -> None:
    for _ in range(50):
        job = Job.objects.filter(status=Job.Status.QUEUED).order_by("pk").first()
        if job is None:
            return
        TASKS[job.params["task"]](job_id=job.pk)
    raise AssertionError("jobs kept coming")


@pytest.fixture
def world(settings, tmp_path: Path):
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    write_wd_dir(tmp_path / "models", name="wd-test")
    scheme_steps._backends.clear()
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    wd = tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test")
    items = [make_item(data=halves_png(RED, BLUE, seed=n)) for n in range(3)]
    return {"items": items, "persons": persons, "wd": wd}


def _scheme(world, *, masked: bool = False, params: dict | None = None):
    steps = [
        {"key": "persons", "tagger": "persons", "input": "image", "params": {"boxes": LEFT_HALF}},
        {"key": "picture", "tagger": "wd-test", "input": "image", "params": params or {}},
    ]
    if masked:
        steps.append({"key": "background", "tagger": "wd-test", "input": "image_masked:persons"})
    return scheme_create(name="outputs", body={"steps": steps})


def _names(slot: str, item_id: int | None = None, state: int = CURRENT) -> set[str]:
    rows = TagAssignment.objects.filter(tagset__kind=TagSet.Kind.TAGGER, tagset__slot=slot, state=state)
    if item_id is not None:
        rows = rows.filter(media_item_id=item_id)
    return set(rows.values_list("tag__name", flat=True))


def test_a_masked_step_writes_its_own_slot_and_leaves_the_unmasked_set_alone(world) -> None:
    scheme = _scheme(world, masked=True)
    run = scheme_runs.scheme_run_start(scheme=scheme)
    _drain()
    run.refresh_from_db()
    slots = set(TagSet.objects.filter(kind=TagSet.Kind.TAGGER).values_list("slot", flat=True))
    assert run.status == SchemeRun.Status.SUCCEEDED
    assert slots == {"wd-test@1", "wd-test@1:masked"}
    # The left (red) half is greyed out in the masked input: probe_r no longer fires there, and
    # the brighter mean blue fires char_b.
    assert _names("wd-test@1") == {"long_hair", "probe_b", "probe_r"}
    assert _names("wd-test@1:masked") == {"long_hair", "probe_b", "char_b"}


def test_a_forced_run_replaces_the_set_and_keeps_a_removed_row_removed(world) -> None:
    scheme = _scheme(world)
    scheme_runs.scheme_run_start(scheme=scheme)
    _drain()
    item = world["items"][0]
    tagset = TagSet.objects.get(kind=TagSet.Kind.TAGGER, slot="wd-test@1", media_item=item)
    stale = tags_make(["stale_prediction"])["stale_prediction"]
    long_hair = Tag.objects.get(name="long_hair")
    kind = TagSet.Kind.TAGGER
    assignments_write(
        [Transition(tagset.pk, stale.pk, item.pk, ABSENT, CURRENT, position=9, confidence=5000)],
        kind=kind, operation_id=None, actor_id=None,
    )  # fmt: skip
    # A person removes long_hair from the tagger set: a tombstone the next runs respect.
    assignments_write(
        [Transition(tagset.pk, long_hair.pk, item.pk, CURRENT, DELETED)],
        kind=kind, operation_id=None, actor_id=None,
    )  # fmt: skip
    scheme_runs.scheme_run_start(scheme=scheme, force=True)
    _drain()
    assert _names("wd-test@1", item.pk) == {"probe_b", "probe_r"}
    assert _names("wd-test@1", item.pk, state=DELETED) == {"long_hair"}
    tagset.refresh_from_db()
    assert tagset.assignment_count == 2


def test_a_closed_vocabulary_drops_and_counts_unknown_names(world) -> None:
    tags_make(["long_hair"])
    Vocabulary.objects.filter(pk=vocabulary_default().pk).update(policy=Vocabulary.Policy.CLOSED)
    run = scheme_runs.scheme_run_start(scheme=_scheme(world))
    _drain()
    run.refresh_from_db()
    picture = StepRun.objects.get(run=run, step_key="picture")
    assert picture.status == StepRun.Status.SUCCEEDED
    assert picture.counts["tags_unknown"] == 2 * len(world["items"])  # probe_b, probe_r per item
    assert _names("wd-test@1") == {"long_hair"}
    assert not Tag.objects.filter(name__in=["probe_b", "probe_r"]).exists()
    assert run.status == SchemeRun.Status.SUCCEEDED


def test_character_output_types_new_tags_but_never_retypes_existing_ones(world) -> None:
    tags_make(["char_a"], type_key="general")
    run = scheme_runs.scheme_run_start(scheme=_scheme(world, params={"character_threshold": 0.5}))
    _drain()
    run.refresh_from_db()
    types = dict(Tag.objects.filter(name__in=["char_a", "char_b"]).values_list("name", "type__key"))
    assert run.status == SchemeRun.Status.SUCCEEDED
    assert {"char_a", "char_b"} <= _names("wd-test@1")
    assert types == {"char_a": "general", "char_b": "character"}
