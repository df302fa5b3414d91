"""On-arrival tagging end to end with a real Celery worker (docs/intake.md#on-arrival): a URL
entry's media job runs on the worker and is collected, its scheme run plans on `default` and
runs its detector step on `ml`, and the jobs app's `job_finished` event moves the entry to
`tagged` when the run ends; a step that fails leaves the entry `added` with the reason."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from apps.intake.models import IntakeEntry
from apps.taggers.models import Region, SchemeRun
from apps.taggers.services import scheme_steps
from apps.taggers.services.schemes import scheme_create
from tests.taggers.wd_fixtures import BOXES, tagger_make

pytestmark = [pytest.mark.flow, pytest.mark.django_db(transaction=True)]

QUEUES = ["default", "media", "ml", "ml_caption"]
State = IntakeEntry.State


@pytest.fixture
def tagging_worker(transactional_db, settings, tmp_path, monkeypatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A real worker on the queues intake, media and scheme jobs use (an ML-queue worker starts
    only offline: docs/operations.md#ml-workers)."""
    from celery.contrib.testing.worker import start_worker

    from baggintag.celery import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    scheme_steps._backends.clear()
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30
    ) as worker:
        yield worker


def wait_until(entry_id: int, done, timeout: float = 120.0) -> IntakeEntry:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = IntakeEntry.objects.get(pk=entry_id)
        if done(entry):
            return entry
        time.sleep(0.2)
    entry = IntakeEntry.objects.get(pk=entry_id)
    raise AssertionError(
        f"entry {entry_id} is {entry.state} (tagging {entry.tagging!r}): {entry.error_message}"
    )


def test_entry_is_tagged_when_its_scheme_run_ends_on_the_worker(
    api, dataset, url_server, tagging_worker
) -> None:  # type: ignore[no-untyped-def]
    tagger_make("persons", "detector", params={"backend": "fixed"})
    steps = [{"key": "persons", "tagger": "persons", "params": {"boxes": BOXES}}]
    scheme = scheme_create(name="detect", body={"steps": steps})
    planned = api.post(
        "/api/intake",
        {
            "kind": "urls",
            "dataset": dataset.pk,
            "urls": [url_server.url("/a.jpg"), url_server.url("/b.jpg")],
            "on_arrival": {"scheme": "detect"},
        },
        format="json",
    ).json()
    assert api.post(f"/api/intake/{planned['id']}/process").status_code == 202

    entry = wait_until(planned["id"], lambda e: e.state not in (State.FETCHING, State.ADDED))
    assert (entry.state, entry.tagging, entry.added_count, entry.error_code) == (State.TAGGED, "done", 2, "")
    run = SchemeRun.objects.get(scheme=scheme)
    assert run.status == SchemeRun.Status.SUCCEEDED
    arrived = list(entry.arrivals.values_list("media_item_id", flat=True))
    assert sorted(run.item_ids) == sorted(arrived)
    assert Region.objects.filter(item_id__in=arrived).count() == 4
    body = api.get(f"/api/intake/{planned['id']}").json()
    assert (body["state"], body["tagging"], body["error"]) == ("tagged", "done", None)


def test_a_failed_step_leaves_the_entry_added_with_the_reason(
    api, dataset, url_server, tagging_worker
) -> None:  # type: ignore[no-untyped-def]
    captioner = tagger_make("echo", "captioner", params={"backend": "echo"})
    scheme_create(name="describe", body={"steps": [{"key": "say", "tagger": "echo", "prompt": "Describe."}]})
    # The captioner's backend changed after the scheme was made: its step fails on the worker.
    captioner.params = {"backend": "nonesuch"}
    captioner.save(update_fields=["params"])
    planned = api.post(
        "/api/intake",
        {
            "kind": "urls",
            "dataset": dataset.pk,
            "urls": [url_server.url("/c.jpg")],
            "on_arrival": {"scheme": "describe"},
        },
        format="json",
    ).json()
    assert api.post(f"/api/intake/{planned['id']}/process").status_code == 202

    entry = wait_until(planned["id"], lambda e: e.tagging == IntakeEntry.Tagging.FAILED)
    run = SchemeRun.objects.get(scheme__name="describe")
    assert run.status == SchemeRun.Status.FAILED
    assert (entry.state, entry.added_count, entry.error_code) == (State.ADDED, 1, "intake.on_arrival_failed")
    assert f"scheme describe (run {run.pk}) failed" in entry.error_message
    body = api.get(f"/api/intake/{planned['id']}").json()
    assert (body["state"], body["tagging"], body["error"]["code"]) == (
        "added",
        "failed",
        "intake.on_arrival_failed",
    )
