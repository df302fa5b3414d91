"""A real Celery worker runs a scheme: planning on `default`, steps on `ml` and `ml_caption`, each
step's job starting the next (no chords), the run ending `succeeded` (docs/taggers.md#tagging-schemes)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.jobs.models import Job
from apps.taggers.models import Caption, Region, SchemeRun
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schemes import scheme_create
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import example_steps, halves_png, tagger_make, write_wd_dir

QUEUES = ["default", "ml", "ml_caption"]


@pytest.fixture
def scheme_worker(transactional_db, settings, tmp_path: Path) -> Iterator[object]:
    from celery.contrib.testing.worker import start_worker

    from baggintag.celery import app

    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    write_wd_dir(tmp_path / "models", name="wd-test")
    scheme_steps._backends.clear()
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30
    ) as worker:
        yield worker


@pytest.mark.flow
def test_a_real_worker_runs_the_example_scheme(scheme_worker) -> None:
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    wd = tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test")
    echo = tagger_make("echo", "captioner", params={"backend": "echo"})
    for n in range(4):
        make_item(data=halves_png((255, 0, 0), (0, 0, 255), seed=n))
    scheme = scheme_create(name="example", body={"steps": example_steps(persons, wd, echo)})
    run = scheme_runs.scheme_run_start(scheme=scheme, batch_size=3)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in SchemeRun.ACTIVE:
            break
        time.sleep(0.3)
    assert run.status == SchemeRun.Status.SUCCEEDED
    assert Region.objects.filter(tagger_version=persons.active_version).count() == 8
    assert Caption.objects.filter(tagger_version=echo.active_version).count() == 8 + 4
    assert set(Job.objects.filter(kind="schemes.step").values_list("status", flat=True)) == {"succeeded"}
