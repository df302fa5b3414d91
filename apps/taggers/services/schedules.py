"""Scheme schedules (docs/taggers.md#schedules): a crontab (django_celery_beat's
CrontabSchedule, editable in admin) per schedule; one beat entry, `schemes.tick`, every minute
turns each due schedule into a run. A scheme with a pending or running run gets none (its row
is locked, SELECT … FOR UPDATE, while the run is created); the schedule stays due and the next
tick after that run ends catches up once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from apps.core.exceptions import ConflictError, DomainError
from apps.taggers.models import SchemeRun, SchemeSchedule, TaggingScheme
from apps.taggers.services.scheme_runs import scheme_run_start

logger = logging.getLogger(__name__)

CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
SCHEDULE_SELECTIONS = (SchemeRun.Selection.ALL, SchemeRun.Selection.NEW_SINCE_LAST)


def _crontab(cron: Any) -> CrontabSchedule:
    """A CrontabSchedule from "m h dow dom moy" text or a {field: value} object; 400 on bad fields."""
    if isinstance(cron, str):
        parts = cron.split()
        if len(parts) != 5:
            raise DomainError(
                'A crontab is five fields: "minute hour day_of_week day_of_month month_of_year".',
                code="taggers.bad_crontab",
                details={"field": "crontab"},
            )
        values = dict(zip(CRON_FIELDS, parts, strict=True))
    elif isinstance(cron, dict) and set(cron) <= set(CRON_FIELDS):
        values = {name: str(cron.get(name, "*")) for name in CRON_FIELDS}
    else:
        raise DomainError(
            f"`crontab` is cron text or an object with {', '.join(CRON_FIELDS)}.",
            code="taggers.bad_crontab",
            details={"field": "crontab"},
        )
    for name, value in values.items():
        limit = CrontabSchedule._meta.get_field(name).max_length or 64
        if len(value) > limit:
            raise DomainError(
                f"The crontab's {name} is longer than {limit} characters.",
                code="taggers.bad_crontab",
                details={"field": "crontab"},
            )
    probe = CrontabSchedule(**values, timezone="UTC")
    try:
        probe.schedule.remaining_estimate(timezone.now())
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise DomainError(f"The crontab is not valid: {exc}.", code="taggers.bad_crontab") from None
    found = CrontabSchedule.objects.filter(**values, timezone="UTC").first()
    return found or CrontabSchedule.objects.create(**values, timezone="UTC")


def next_fire(crontab: CrontabSchedule, after: datetime) -> datetime:
    """The first time the crontab fires after `after`."""
    return after + crontab.schedule.remaining_estimate(after)


def _selection(selection: str) -> str:
    if selection not in SCHEDULE_SELECTIONS:
        raise DomainError(
            f"A schedule's selection is one of {', '.join(SCHEDULE_SELECTIONS)}.",
            code="taggers.bad_selection",
            details={"field": "selection"},
        )
    return selection


@transaction.atomic
def schedule_create(
    *,
    scheme: TaggingScheme,
    crontab: Any,
    selection: str = SchemeRun.Selection.NEW_SINCE_LAST,
    enabled: bool = True,
) -> SchemeSchedule:
    tab = _crontab(crontab)
    return SchemeSchedule.objects.create(
        scheme=scheme,
        crontab=tab,
        selection=_selection(selection),
        enabled=enabled,
        next_run_at=next_fire(tab, timezone.now()) if enabled else None,
    )


@transaction.atomic
def schedule_update(
    *,
    schedule: SchemeSchedule,
    crontab: Any = None,
    selection: str | None = None,
    enabled: bool | None = None,
) -> SchemeSchedule:
    schedule = SchemeSchedule.objects.select_for_update().get(pk=schedule.pk)
    if crontab is not None:
        schedule.crontab = _crontab(crontab)
    if selection is not None:
        schedule.selection = _selection(selection)
    if enabled is not None:
        schedule.enabled = enabled
    schedule.next_run_at = next_fire(schedule.crontab, timezone.now()) if schedule.enabled else None
    schedule.save()
    return schedule


def schedule_delete(*, schedule: SchemeSchedule) -> None:
    schedule.delete()


def _scheme_lock(scheme_id: int) -> bool:
    """Row-lock the scheme (caller's transaction); False when it is gone."""
    return bool(
        list(TaggingScheme.objects.select_for_update().filter(pk=scheme_id).values_list("pk", flat=True))
    )


def schemes_tick(*, now: datetime | None = None) -> list[int]:
    """Create a run for every due schedule (beat, every minute); returns the new runs' ids."""
    now = now or timezone.now()
    # A schedule added or edited in admin has no next time yet: it starts from now.
    fresh = SchemeSchedule.objects.filter(enabled=True, next_run_at__isnull=True).select_related("crontab")
    for unset in fresh:
        SchemeSchedule.objects.filter(pk=unset.pk, next_run_at__isnull=True).update(
            next_run_at=next_fire(unset.crontab, now)
        )
    due = list(
        SchemeSchedule.objects.filter(enabled=True, next_run_at__lte=now)
        .order_by("pk")
        .values_list("pk", "scheme_id")
    )
    created = []
    for schedule_id, scheme_id in due:
        with transaction.atomic():
            # The scheme row first, then the schedule: the order scheme_run_start and
            # scheme_delete take them in, so two beats (or a beat and a delete) queue on the
            # scheme instead of one holding the schedule while waiting for the other.
            if not _scheme_lock(scheme_id):
                continue
            schedule = (
                SchemeSchedule.objects.select_for_update()
                .select_related("scheme", "crontab")
                .filter(pk=schedule_id, scheme_id=scheme_id, enabled=True, next_run_at__lte=now)
                .first()
            )
            if schedule is None:
                continue
            try:
                with transaction.atomic():
                    run = scheme_run_start(
                        scheme=schedule.scheme, selection=schedule.selection, origin=f"schedule:{schedule.pk}"
                    )
            except ConflictError:
                continue  # a run is pending or running: stay due, catch up after it
            except DomainError as err:
                logger.warning("schedule %s: no run (%s)", schedule.pk, err.message)
                run = None
            schedule.last_run = run or schedule.last_run
            schedule.next_run_at = next_fire(schedule.crontab, now)
            schedule.save(update_fields=["last_run", "next_run_at", "updated_at"])
            if run is not None:
                created.append(run.pk)
    return created
