"""Celery adapters for training jobs (queue: media, as exports decode and encode images)."""

from celery import shared_task

from apps.jobs.exceptions import JobSuperseded

_EXPECTED = (JobSuperseded,)


@shared_task(name="training.export", soft_time_limit=12 * 3600, time_limit=12 * 3600 + 60, throws=_EXPECTED)
def export_task(*, job_id: int) -> None:
    """Adapter: write one export bundle (docs/training.md#exports)."""
    from apps.training.services import exports

    exports.export_run(job_id=job_id)


@shared_task(name="training.lint", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=_EXPECTED)
def lint_task(*, job_id: int) -> None:
    """Adapter: lint a big training session (docs/training.md#lint)."""
    from apps.training.services import lint

    lint.lint_run(job_id=job_id)
