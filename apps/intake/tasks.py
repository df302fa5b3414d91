"""Celery adapters for intake (queue: default)."""

from celery import shared_task


@shared_task(name="intake.collect_finished")
def intake_collect_finished_task() -> list[int]:
    """Adapter (beat): collect entries whose media job ended but were not collected yet, and
    settle entries whose on-arrival tagging ended without its event (docs/intake.md)."""
    from apps.intake import services

    return services.intake_collect_finished()
