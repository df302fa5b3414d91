"""Lock order of scheduled runs (docs/taggers.md#schedules): `schemes.tick` locks the scheme row
before its schedule, the order `scheme_run_start` and `scheme_delete` use, so two beats queue on
the scheme and a beat never holds a schedule while waiting for a scheme someone else holds.

Real row locks need MariaDB (SQLite serialises writers): run with TEST_DATABASE_URL set."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from apps.taggers.models import SchemeRun, SchemeSchedule, TaggingScheme
from apps.taggers.services import scheme_steps
from apps.taggers.services.schedules import schedule_create, schemes_tick
from apps.taggers.services.schemes import scheme_create
from tests.taggers.wd_fixtures import BOXES, tagger_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mariadb]


@pytest.fixture
def due(settings, tmp_path: Path) -> SchemeSchedule:
    if connection.vendor != "mysql":
        pytest.skip("row locks are only real on MariaDB")
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    scheme_steps._backends.clear()
    tagger_make("persons", "detector", params={"backend": "fixed"})
    steps = [{"key": "persons", "tagger": "persons", "params": {"boxes": BOXES}}]
    scheme = scheme_create(name="detect", body={"steps": steps})
    schedule = schedule_create(scheme=scheme, crontab="* * * * *", selection="all")
    SchemeSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    return schedule


def _lock_waits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")
        return int(cursor.fetchone()[0])


def test_a_tick_waits_on_the_scheme_before_taking_its_schedule(due: SchemeSchedule, monkeypatch) -> None:
    from apps.jobs import services as job_services

    monkeypatch.setattr(job_services.current_app, "send_task", lambda *a, **k: None)
    holding, release = threading.Event(), threading.Event()
    probe: dict[str, object] = {}
    ticked: list[int] = []

    def holder() -> None:  # someone holding the scheme (a delete, another beat)
        try:
            with transaction.atomic():
                list(TaggingScheme.objects.select_for_update().filter(pk=due.scheme_id))
                holding.set()
                release.wait(60)
                try:
                    list(SchemeSchedule.objects.select_for_update(nowait=True).filter(pk=due.pk))
                    probe["schedule"] = "free"
                except DatabaseError:
                    probe["schedule"] = "locked by the waiting tick"
        finally:
            connections.close_all()

    def beat() -> None:
        try:
            ticked.extend(schemes_tick())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holder), threading.Thread(target=beat)]
    threads[0].start()
    assert holding.wait(30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while _lock_waits() == 0 and time.monotonic() < deadline:  # the beat is blocked on a lock
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(60)
    assert probe == {"schedule": "free"}
    assert len(ticked) == 1
    assert SchemeRun.objects.filter(scheme_id=due.scheme_id).count() == 1
