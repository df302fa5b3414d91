"""Celery adapters for tagging schemes (docs/taggers.md#queues): `schemes.*` on the default
queue; step jobs on the step kind's queue (routes in settings, by task name)."""

from celery import shared_task

SOFT, HARD = 12 * 3600, 12 * 3600 + 60


@shared_task(name="schemes.run", soft_time_limit=SOFT, time_limit=HARD)
def scheme_run_task(*, job_id: int) -> None:
    """Adapter: plan a scheme run (resolve versions, create step runs, start the first steps)."""
    from apps.taggers.services import scheme_runs

    scheme_runs.scheme_run_plan(job_id=job_id)


@shared_task(name="schemes.tick")
def schemes_tick_task() -> list[int]:
    """Adapter (beat, every minute): due schedules become runs."""
    from apps.taggers.services import schedules

    return schedules.schemes_tick()


def _step(job_id: int) -> None:
    from apps.taggers.services import scheme_runs

    scheme_runs.step_run_execute(job_id=job_id)


@shared_task(name="taggers.detect", soft_time_limit=SOFT, time_limit=HARD)
def detect_task(*, job_id: int) -> None:
    """Adapter: a detector step of a scheme run (queue ml)."""
    _step(job_id)


@shared_task(name="taggers.wd", soft_time_limit=SOFT, time_limit=HARD)
def wd_task(*, job_id: int) -> None:
    """Adapter: a WD tagger step of a scheme run (queue ml)."""
    _step(job_id)


@shared_task(name="taggers.caption", soft_time_limit=SOFT, time_limit=HARD)
def caption_task(*, job_id: int) -> None:
    """Adapter: a captioner step of a scheme run (queue ml_caption)."""
    _step(job_id)
