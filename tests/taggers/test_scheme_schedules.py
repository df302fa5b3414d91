"""`schemes.tick` and `new_since_last` (TAGGERS §10 item 30; docs/taggers.md#schedules)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.taggers.models import Region, SchemeRun, SchemeSchedule, StepRun, TaggerVersion
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schedules import schedule_create, schemes_tick
from apps.taggers.services.schemes import scheme_create
from tests.media.factories import make_item
from tests.taggers import factories
from tests.taggers.wd_fixtures import BOXES, halves_png, tagger_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path: Path):
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    scheme_steps._backends.clear()
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    steps = [{"key": "persons", "tagger": "persons", "params": {"boxes": BOXES}}]
    scheme = scheme_create(name="detect", body={"steps": steps})
    items = [make_item(data=halves_png((255, 0, 0), (0, 0, 255), seed=n)) for n in range(3)]
    return {"scheme": scheme, "persons": persons, "items": items}


def _due(schedule: SchemeSchedule) -> None:
    SchemeSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))


def _items_sent(run: SchemeRun) -> int:
    return sum(int(r.counts.get("items_done", 0)) for r in StepRun.objects.filter(run=run))


def test_tick_makes_one_run_per_due_schedule(world) -> None:
    due = schedule_create(scheme=world["scheme"], crontab="* * * * *")
    other = scheme_create(name="other", body={"steps": [{"key": "p", "tagger": "persons"}]})
    later = schedule_create(scheme=other, crontab="0 0 1 1 *")
    _due(due)
    created = schemes_tick()
    due.refresh_from_db()
    later.refresh_from_db()
    assert len(created) == 1
    assert SchemeRun.objects.get(pk=created[0]).scheme_id == world["scheme"].pk
    assert due.last_run_id == created[0]
    assert due.next_run_at > timezone.now()
    assert later.last_run_id is None


def test_tick_makes_no_run_while_one_is_pending_and_catches_up_after(world) -> None:
    schedule = schedule_create(scheme=world["scheme"], crontab="* * * * *")
    scheme_runs.scheme_run_start(scheme=world["scheme"])
    _due(schedule)
    assert schemes_tick() == []
    assert SchemeRun.objects.count() == 1
    factories.scheme_jobs_drain()
    assert len(schemes_tick()) == 1


def test_disabled_schedules_never_run(world) -> None:
    schedule = schedule_create(scheme=world["scheme"], crontab="* * * * *", enabled=False)
    SchemeSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    assert schemes_tick() == []


def test_new_since_last_picks_new_items_only(world) -> None:
    first = scheme_runs.scheme_run_start(scheme=world["scheme"])
    factories.scheme_jobs_drain()
    new = make_item(data=halves_png((0, 255, 0), (0, 0, 255), seed=99))
    second = scheme_runs.scheme_run_start(scheme=world["scheme"], selection="new_since_last")
    factories.scheme_jobs_drain()
    regions = Region.objects.filter(tagger_version=world["persons"].active_version, item=new).count()
    assert _items_sent(first) == 3
    assert _items_sent(second) == 1
    assert regions == 2


def test_new_since_last_picks_every_item_lacking_output_of_a_promoted_version(world) -> None:
    scheme_runs.scheme_run_start(scheme=world["scheme"])
    factories.scheme_jobs_drain()
    persons = world["persons"]
    v2 = TaggerVersion.objects.create(tagger=persons, number=2, status=TaggerVersion.Status.READY)
    persons.active_version = v2
    persons.save(update_fields=["active_version"])
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], selection="new_since_last")
    factories.scheme_jobs_drain()
    assert _items_sent(run) == 3
    assert Region.objects.filter(tagger_version=v2).count() == 6


def test_force_recomputes_without_duplicating(world) -> None:
    scheme_runs.scheme_run_start(scheme=world["scheme"])
    factories.scheme_jobs_drain()
    run = scheme_runs.scheme_run_start(scheme=world["scheme"], force=True)
    factories.scheme_jobs_drain()
    run.refresh_from_db()
    assert _items_sent(run) == 3
    assert Region.objects.filter(tagger_version=world["persons"].active_version).count() == 6


def test_a_schedule_without_a_next_time_gets_one_and_does_not_run_at_once(world) -> None:
    schedule = schedule_create(scheme=world["scheme"], crontab="0 0 1 1 *")
    SchemeSchedule.objects.filter(pk=schedule.pk).update(next_run_at=None)  # as admin leaves it
    assert schemes_tick() == []
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()
