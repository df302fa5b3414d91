"""Celery adapters of the taggers app (routes: baggintag/settings/base.py, docs/taggers.md#queues).
Each parses its arguments and calls one service; the services import the engine lazily."""

from __future__ import annotations

from celery import shared_task

DAY = 24 * 3600


@shared_task(name="taggers.embed", soft_time_limit=2 * DAY, time_limit=2 * DAY + 60)
def embed_task(*, job_id: int) -> None:
    """Adapter: embed a space's missing items, batch by batch, resuming at its cursor."""
    from apps.taggers.services import embeddings

    embeddings.embed_run(job_id=job_id)


@shared_task(name="taggers.cache", soft_time_limit=3600, time_limit=3600 + 60)
def cache_task() -> dict[str, int]:
    """Adapter: rebuild this host's stale matrix caches (beat, nightly)."""
    from apps.taggers.services import matrix

    return matrix.matrix_refresh_all()


@shared_task(name="taggers.text_query", soft_time_limit=300, time_limit=360)
def text_query_task(*, text_query_id: int) -> None:
    """Adapter: encode a text search with its space's text tower (queue ml_cpu)."""
    from apps.taggers.services import similarity

    similarity.text_query_encode(text_query_id=text_query_id)


@shared_task(name="taggers.train", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def train_task(*, job_id: int) -> None:
    """Adapter: train a tagger version from its frozen labels (queue ml_cpu)."""
    from apps.taggers.services import training

    training.train_run(job_id=job_id)


@shared_task(name="taggers.score", soft_time_limit=DAY, time_limit=DAY + 60)
def score_task(*, job_id: int) -> None:
    """Adapter: score items with a head version and write its tagger sets (queue ml_cpu)."""
    from apps.taggers.services import apply

    apply.score_run(job_id=job_id)
