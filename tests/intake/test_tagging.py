"""On-arrival tagging moves an entry on (docs/intake.md#on-arrival): ADDED → TAGGED when every
scheme run and scoring job it started ended well; ADDED with `tagging` failed and the reasons
when one failed, was cancelled or could not start; processing again restarts it. Scheme jobs run
here in-process with the fixed-box detector (what a worker would do); scoring jobs, whose head
needs training, are ended through the jobs app's own lifecycle. SQLite and MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from apps.intake import services
from apps.intake.models import IntakeEntry, IntakeTagging
from apps.jobs import services as job_services
from apps.jobs.events import job_finished
from apps.jobs.models import Job
from apps.taggers.models import Region, SchemeRun, Tagger, TaggerVersion
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schemes import scheme_create
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import BOXES, tagger_make

pytestmark = pytest.mark.django_db

State = IntakeEntry.State
Tagging = IntakeEntry.Tagging
SCHEME_TASKS = {
    "schemes.run": scheme_runs.scheme_run_plan,
    "taggers.detect": scheme_runs.step_run_execute,
    "taggers.caption": scheme_runs.step_run_execute,
}


@pytest.fixture
def world(settings, tmp_path):  # type: ignore[no-untyped-def]
    """A detector scheme (fixed boxes, no model), a head tagger with an active version, an
    untrained one, and three items."""
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    scheme_steps._backends.clear()
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    head = tagger_make("heads", "embedding_head")
    untrained = Tagger.objects.create(name="untrained", kind="embedding_head", vocabulary=head.vocabulary)
    steps = [{"key": "persons", "tagger": "persons", "params": {"boxes": BOXES}}]
    scheme = scheme_create(name="detect", body={"steps": steps})
    items = [make_item(seed=n) for n in range(3)]
    return {"scheme": scheme, "persons": persons, "head": head, "untrained": untrained, "items": items}


def _entry(dataset, world, on_arrival: dict[str, Any]) -> IntakeEntry:  # type: ignore[no-untyped-def]
    ids = ",".join(str(i.pk) for i in world["items"])
    entry = services.intake_entry_create(
        kind="query", dataset=dataset.pk, query=f"id:{ids}", on_arrival=on_arrival
    )
    return services.intake_entry_process(entry=entry)


def _run_scheme_jobs() -> None:
    """Run the queued scheme jobs oldest first, as a worker on `default` and `ml` would."""
    for _ in range(20):
        job = Job.objects.filter(status=Job.Status.QUEUED, kind__startswith="schemes.").order_by("pk").first()
        if job is None:
            return
        SCHEME_TASKS[job.params["task"]](job_id=job.pk)
    raise AssertionError("scheme jobs kept coming")


def _score_job() -> Job:
    return Job.objects.get(kind="taggers.score", status__in=(Job.Status.QUEUED, Job.Status.RUNNING))


def _end_score_job(*, fail: bool = False) -> Job:
    job = job_services.job_claim(job_id=_score_job().pk)
    assert job is not None
    if fail:
        return job_services.job_fail(
            job=job, code="taggers.no_embeddings", message="The items have no embeddings."
        )
    return job_services.job_finish(job=job)


def test_entry_moves_to_tagged_when_its_scheme_run_and_scoring_end(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"scheme": "detect", "taggers": ["heads"]})
    assert (entry.state, entry.tagging, entry.error_code) == (State.ADDED, Tagging.RUNNING, "")
    rows = list(IntakeTagging.objects.filter(entry=entry).order_by("pk"))
    assert [(r.label, r.started, r.problem) for r in rows] == [
        ("scheme detect", True, ""),
        ("tagger heads", True, ""),
    ]

    assert services.intake_entry_tagging_settle(entry_id=entry.pk) is None  # both still queued
    _run_scheme_jobs()
    assert SchemeRun.objects.get(pk=rows[0].scheme_run_id).status == SchemeRun.Status.SUCCEEDED
    assert Region.objects.filter(item_id__in=[i.pk for i in world["items"]]).count() == 6
    # The scoring job still runs: the entry waits (neither the event nor the fallback moves it).
    assert services.intake_tagging_settle_for_job(job_id=rows[0].scheme_run.job_id, kind="schemes.run") == []
    assert services.intake_collect_finished() == []
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.ADDED

    scored = _end_score_job()
    assert services.intake_tagging_settle_for_job(job_id=scored.pk, kind=scored.kind) == [entry.pk]
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code, entry.error_message) == (
        State.TAGGED,
        Tagging.DONE,
        "",
        "",
    )
    # Idempotent: settling again (the fallback, a duplicate event) changes nothing.
    assert services.intake_entry_tagging_settle(entry_id=entry.pk) is None
    assert services.intake_collect_finished() == []
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.TAGGED


def test_job_finished_event_settles_the_entry_after_commit(
    dataset, world, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"taggers": ["heads"]})
    seen: list[dict[str, Any]] = []

    def record(sender: Any = None, **kwargs: Any) -> None:
        seen.append({k: kwargs[k] for k in ("job_id", "kind", "status")})

    job_finished.connect(record, weak=False, dispatch_uid="test.record")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            scored = _end_score_job()
            assert IntakeEntry.objects.get(pk=entry.pk).state == State.ADDED  # not before the commit
    finally:
        job_finished.disconnect(dispatch_uid="test.record")
    assert seen == [{"job_id": scored.pk, "kind": "taggers.score", "status": "succeeded"}]
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.TAGGED


def test_a_failed_scoring_job_leaves_the_entry_added_and_a_retry_tags_it(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"scheme": "detect", "taggers": ["heads"]})
    _run_scheme_jobs()
    failed = _end_score_job(fail=True)
    settled = services.intake_tagging_settle_for_job(job_id=failed.pk, kind=failed.kind)
    assert settled == [entry.pk]
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code) == (
        State.ADDED,
        Tagging.FAILED,
        "intake.on_arrival_failed",
    )
    assert f"tagger heads (job {failed.pk}) failed: The items have no embeddings." in entry.error_message
    assert "Retry a failed job from the jobs page" in entry.error_message
    # The fallback leaves a failed entry alone (nothing to wait for until someone retries).
    assert services.intake_collect_finished() == []

    # The job retried from the jobs page ends well: the entry moves on and the note goes.
    job_services.job_retry(job=failed)
    retried = _end_score_job()
    assert services.intake_tagging_settle_for_job(job_id=retried.pk, kind=retried.kind) == [entry.pk]
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code, entry.error_message) == (
        State.TAGGED,
        Tagging.DONE,
        "",
        "",
    )


def test_a_cancelled_scheme_run_fails_the_tagging_and_processing_again_restarts_it(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"scheme": world["scheme"].pk})
    run = SchemeRun.objects.get(scheme=world["scheme"])
    scheme_runs.scheme_run_cancel(run=run)
    assert services.intake_collect_finished() == [entry.pk]  # the fallback, without an event
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code) == (
        State.ADDED,
        Tagging.FAILED,
        "intake.on_arrival_failed",
    )
    assert f"scheme detect (run {run.pk}) cancelled" in entry.error_message

    entry = services.intake_entry_process(entry=entry)  # starts the tagging again, fetches nothing
    assert (entry.state, entry.tagging, entry.error_code, entry.error_message) == (
        State.ADDED,
        Tagging.RUNNING,
        "",
        "",
    )
    again = IntakeTagging.objects.get(entry=entry)
    assert again.scheme_run_id not in (None, run.pk)
    _run_scheme_jobs()
    assert services.intake_collect_finished() == [entry.pk]
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.TAGGED


def test_what_could_not_start_keeps_the_entry_added_once_the_rest_ended(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"scheme": "detect", "taggers": ["untrained"]})
    assert (entry.tagging, entry.error_code) == (Tagging.RUNNING, "intake.on_arrival_not_started")
    assert "tagger untrained:" in entry.error_message
    assert "no active version" in entry.error_message
    _run_scheme_jobs()
    assert services.intake_collect_finished() == [entry.pk]
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code) == (
        State.ADDED,
        Tagging.FAILED,
        "intake.on_arrival_not_started",
    )

    # Give the tagger an active version, then process again: both start.
    untrained = world["untrained"]
    untrained.active_version = TaggerVersion.objects.create(
        tagger=untrained, number=1, status=TaggerVersion.Status.READY
    )
    untrained.save(update_fields=["active_version"])
    entry = services.intake_entry_process(entry=entry)
    assert (entry.tagging, entry.error_code) == (Tagging.RUNNING, "")
    assert sorted(IntakeTagging.objects.filter(entry=entry).values_list("started", flat=True)) == [True, True]


def test_nothing_started_fails_the_tagging_at_once(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"taggers": ["untrained"]})
    assert (entry.state, entry.tagging, entry.error_code) == (
        State.ADDED,
        Tagging.FAILED,
        "intake.on_arrival_not_started",
    )
    assert services.intake_collect_finished() == []


def test_entries_without_on_arrival_tagging_stay_added(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {})
    assert (entry.state, entry.tagging) == (State.ADDED, Tagging.NONE)
    assert services.intake_collect_finished() == []
    assert services.intake_entry_tagging_settle(entry_id=entry.pk) is None
    assert services.intake_entry_mark_tagged(entry=entry).state == State.TAGGED  # by hand, as before


def test_an_entry_reviewed_while_tagging_ran_is_left_reviewed(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"taggers": ["heads"]})
    entry = services.intake_entry_review(entry=entry)
    assert entry.state == State.REVIEWED
    scored = _end_score_job()
    assert services.intake_tagging_settle_for_job(job_id=scored.pk, kind=scored.kind) == []
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.REVIEWED


def test_jobs_of_other_kinds_are_not_looked_at(dataset, world) -> None:  # type: ignore[no-untyped-def]
    entry = _entry(dataset, world, {"taggers": ["heads"]})
    scored = _end_score_job()
    assert services.intake_tagging_settle_for_job(job_id=scored.pk, kind="media.upload_bulk") == []
    assert IntakeEntry.objects.get(pk=entry.pk).state == State.ADDED


def test_the_queue_shows_the_tagging_and_retry_restarts_it(client, curator, dataset, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(curator)
    entry = _entry(dataset, world, {"taggers": ["heads"]})
    row = _row(client.get("/intake/").content.decode(), entry.pk)
    assert "tagging…" in row
    assert "Retry" not in row
    failed = _end_score_job(fail=True)
    services.intake_tagging_settle_for_job(job_id=failed.pk, kind=failed.kind)
    row = _row(client.get("/intake/").content.decode(), entry.pk)
    assert "tagging failed" in row
    assert "The items have no embeddings." in row
    assert "Retry" in row
    assert client.post(f"/intake/{entry.pk}/process").status_code == 303
    entry.refresh_from_db()
    assert (entry.state, entry.tagging, entry.error_code) == (State.ADDED, Tagging.RUNNING, "")
    assert _score_job().pk != failed.pk  # a new scoring job over the arrivals


def _row(html: str, entry_id: int) -> str:
    start = html.index(f'id="entry-{entry_id}"')
    return html[start : html.index("</tr>", start)]
