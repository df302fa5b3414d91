"""Scheme runs end to end in-process (docs/taggers.md#tagging-schemes; TAGGERS §10 items 28–29).

Jobs are run here one after another by `_drain` (what a worker would do), with the fixed-box
detector, the hand-built WD graph and the echo captioner: real backends, no mocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from apps.jobs.models import Job
from apps.taggers.models import Caption, Region, SchemeRun, StepOutput, StepRun
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schemes import scheme_create
from apps.tags.models import TagAssignment, TagSet
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import example_steps, halves_png, tagger_make, write_wd_dir
from tests.tags.factories import assign, tags_make

pytestmark = pytest.mark.django_db

RED, BLUE = (255, 0, 0), (0, 0, 255)
TASKS = {
    "schemes.run": scheme_runs.scheme_run_plan,
    "taggers.detect": scheme_runs.step_run_execute,
    "taggers.wd": scheme_runs.step_run_execute,
    "taggers.caption": scheme_runs.step_run_execute,
}


def _drain(limit: int = 100) -> int:
    """Run queued jobs oldest first until none is left; returns how many ran."""
    ran = 0
    while ran < limit:
        job = Job.objects.filter(status=Job.Status.QUEUED).order_by("pk").first()
        if job is None:
            return ran
        TASKS[job.params["task"]](job_id=job.pk)
        ran += 1
    raise AssertionError("jobs kept coming")


@pytest.fixture
def world(settings, tmp_path: Path):
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    write_wd_dir(tmp_path / "models", name="wd-test")
    scheme_steps._backends.clear()
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    wd = tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test")
    captioner = tagger_make("echo", "captioner", params={"backend": "echo"})
    items = [make_item(data=halves_png(RED, BLUE, seed=n)) for n in range(10)]
    scheme = scheme_create(name="example", body={"steps": example_steps(persons, wd, captioner)})
    return {"items": items, "scheme": scheme, "wd": wd, "persons": persons, "captioner": captioner}


def _curated_hash() -> str:
    rows = TagAssignment.objects.filter(kind=TagSet.Kind.CURATED).order_by("tagset_id", "tag_id")
    return hashlib.sha256(repr(list(rows.values_list("tagset_id", "tag_id", "state"))).encode()).hexdigest()


def _sent(run: SchemeRun) -> int:
    return sum(int(r.counts.get("sent", 0)) for r in StepRun.objects.filter(run=run))


def test_the_example_scheme_writes_regions_captions_and_tags(world) -> None:
    tags = tags_make(["kept"])
    assign([(i.pk, TagSet.Kind.CURATED, tags["kept"].pk) for i in world["items"]])
    before = _curated_hash()
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], batch_size=4)
    _drain()
    run.refresh_from_db()
    persons_v = world["persons"].active_version
    echo_v = world["captioner"].active_version
    region_captions = list(Caption.objects.filter(tagger_version=echo_v).exclude(region_key=0))
    assert run.status == SchemeRun.Status.SUCCEEDED
    assert Region.objects.filter(tagger_version=persons_v).count() == 20
    assert len(region_captions) == 20
    assert Caption.objects.filter(tagger_version=echo_v, region_key=0).count() == 10
    assert _curated_hash() == before


def test_region_captions_carry_each_region_s_character(world) -> None:
    scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    echo_v = world["captioner"].active_version
    texts = {
        (c.region.x0, c.text)
        for c in Caption.objects.filter(tagger_version=echo_v).exclude(region_key=0).select_related("region")
    }
    left = {t for x0, t in texts if x0 == 0}
    right = {t for x0, t in texts if x0 == 5000}
    assert left == {"Describe char a. Context: long hair, probe b, probe r"}
    assert right == {"Describe char b. Context: long hair, probe b, probe r"}


def test_wd_output_goes_to_one_tagger_set_per_item_with_ratings_marked(world) -> None:
    scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    wd_v = world["wd"].active_version
    sets = TagSet.objects.filter(kind=TagSet.Kind.TAGGER, slot="wd-test@1")
    names = set(
        TagAssignment.objects.filter(tagset__in=sets, state=TagAssignment.State.CURRENT).values_list(
            "tag__name", flat=True
        )
    )
    conf = TagAssignment.objects.filter(tagset__in=sets, tag__name="long_hair").values_list(
        "confidence", flat=True
    )
    marker = StepOutput.objects.filter(
        tagger_version=wd_v, item=world["items"][0], detail__has_key="rating"
    ).get()
    assert sets.count() == 10
    assert names == {"long_hair", "probe_b", "probe_r"}
    assert set(conf) == {9500}
    assert marker.detail["rating"] == "general"
    assert sorted(marker.detail["ratings"]) == ["explicit", "general", "questionable", "sensitive"]


def test_a_second_run_sends_nothing_and_keeps_row_counts(world) -> None:
    first = scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    counts = (Region.objects.count(), Caption.objects.count(), TagAssignment.objects.count())
    second = scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    second.refresh_from_db()
    assert _sent(first) > 0
    assert _sent(second) == 0
    assert second.status == SchemeRun.Status.SUCCEEDED
    assert (Region.objects.count(), Caption.objects.count(), TagAssignment.objects.count()) == counts


class WorkerDied(BaseException):
    """What a killed worker looks like to the code after it: nothing more runs."""


def test_a_step_killed_mid_batch_resumes_without_resending_committed_items(world, monkeypatch) -> None:
    from apps.taggers.engine.captioner import EchoCaptioner

    real = EchoCaptioner.run
    calls: list[int] = []

    def dying(self, images, prompts, params=None):
        calls.append(len(images))
        if len(calls) == 2:
            raise WorkerDied
        return real(self, images, prompts, params)

    monkeypatch.setattr(EchoCaptioner, "run", dying)
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], batch_size=4)
    with pytest.raises(WorkerDied):
        _drain()
    # The worker is gone: its job stays running until the sweeper sees a stale heartbeat.
    stuck = Job.objects.get(status=Job.Status.RUNNING)
    Job.objects.filter(pk=stuck.pk).update(status=Job.Status.QUEUED)  # what the sweeper does
    _drain()
    run.refresh_from_db()
    echo_v = world["captioner"].active_version
    assert run.status == SchemeRun.Status.SUCCEEDED
    assert Caption.objects.filter(tagger_version=echo_v).exclude(region_key=0).count() == 20
    assert Caption.objects.filter(tagger_version=echo_v, region_key=0).count() == 10
    # 20 region prompts + 10 background prompts; only the dead batch (call 2) was sent again.
    assert sum(calls) - calls[1] == 30


def test_a_missing_model_fails_its_step_and_skips_dependants(world, tmp_path: Path) -> None:
    (tmp_path / "models" / "wd" / "wd-test" / "model.onnx").unlink()
    run = scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    run.refresh_from_db()
    steps = dict(StepRun.objects.filter(run=run).values_list("step_key", "status"))
    picture = StepRun.objects.get(run=run, step_key="picture")
    assert run.status == SchemeRun.Status.FAILED
    assert steps == {
        "persons": "succeeded",
        "who": "failed",
        "picture": "failed",
        "describe": "skipped",
        "background": "succeeded",
    }
    assert "model.onnx" in picture.error


def test_an_undecodable_item_makes_the_run_partial(world) -> None:
    broken = world["items"][3]
    from django.core.files.storage import default_storage

    with default_storage.open(broken.storage_key, "wb") as fh:
        fh.write(b"not a png")
    run = scheme_runs.scheme_run_start(scheme=world["scheme"])
    _drain()
    run.refresh_from_db()
    persons = StepRun.objects.get(run=run, step_key="persons")
    assert run.status == SchemeRun.Status.PARTIAL
    assert persons.counts["items_failed"] == 1
    assert str(broken.pk) in persons.counts["errors"]


def test_explicit_selection_runs_only_those_items(world) -> None:
    ids = [world["items"][0].pk, world["items"][5].pk]
    scheme_runs.scheme_run_start(scheme=world["scheme"], selection="explicit", item_ids=ids)
    _drain()
    regions = set(
        Region.objects.filter(tagger_version=world["persons"].active_version).values_list(
            "item_id", flat=True
        )
    )
    assert regions == set(ids)


def test_only_one_active_run_per_scheme(world) -> None:
    from apps.core.exceptions import ConflictError

    scheme_runs.scheme_run_start(scheme=world["scheme"])
    with pytest.raises(ConflictError, match="already has run"):
        scheme_runs.scheme_run_start(scheme=world["scheme"])


def test_cancel_ends_the_run_and_skips_pending_steps(world) -> None:
    run = scheme_runs.scheme_run_start(scheme=world["scheme"])
    scheme_runs.scheme_run_plan(job_id=run.job_id)  # planned; the first steps are queued
    scheme_runs.scheme_run_cancel(run=run)
    _drain()
    run.refresh_from_db()
    assert run.status == SchemeRun.Status.CANCELLED
    assert set(StepRun.objects.filter(run=run).values_list("status", flat=True)) == {"skipped"}


def test_a_queryset_selection_runs_its_items(world) -> None:
    from apps.media.models import MediaItem

    wanted = MediaItem.objects.filter(pk__in=[world["items"][2].pk])
    scheme_runs.scheme_run_start(scheme=world["scheme"], selection="explicit", items=wanted)
    _drain()
    done = set(
        Region.objects.filter(tagger_version=world["persons"].active_version).values_list(
            "item_id", flat=True
        )
    )
    assert done == {world["items"][2].pk}


def test_a_cpu_only_worker_refuses_a_model_step_over_the_limit_and_keeps_what_it_did(world, settings) -> None:
    from apps.taggers.engine.wd import onnx_device

    if onnx_device() != "cpu":
        pytest.skip("this host has CUDA")
    settings.BAGGINTAG_CPU_JOB_LIMIT_S = 0
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], batch_size=4)
    _drain()
    run.refresh_from_db()
    persons = StepRun.objects.get(run=run, step_key="persons")
    assert run.status == SchemeRun.Status.FAILED
    assert "BAGGINTAG_CPU_JOB_LIMIT_S" in persons.error
    assert Region.objects.filter(tagger_version=world["persons"].active_version).count() == 8


def test_explicit_selection_walks_past_windows_already_done(world, monkeypatch) -> None:
    monkeypatch.setattr(scheme_runs, "EXPLICIT_WINDOW", 2)
    ids = [i.pk for i in world["items"][:6]]
    scheme_runs.scheme_run_start(scheme=world["scheme"], selection="explicit", item_ids=ids[:4])
    _drain()
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], selection="explicit", item_ids=ids)
    _drain()
    persons = StepRun.objects.get(run=run, step_key="persons")
    done = set(
        Region.objects.filter(tagger_version=world["persons"].active_version).values_list(
            "item_id", flat=True
        )
    )
    assert persons.counts["items_done"] == 2
    assert done == set(ids)
