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


@shared_task(name="taggers.cache_space", soft_time_limit=3600, time_limit=3600 + 60)
def cache_space_task(*, space_id: int) -> int:
    """Adapter: rebuild one space's matrix cache on this host (a search found it stale)."""
    from apps.taggers.services import matrix

    return matrix.matrix_space_refresh(space_id=space_id)


@shared_task(name="taggers.text_queries", soft_time_limit=600, time_limit=660)
def text_queries_task(*, text_query_ids: list[int]) -> int:
    """Adapter: encode tag names for mapping suggestions in one batch (queue ml_cpu)."""
    from apps.taggers.services import tag_suggestions

    return tag_suggestions.text_queries_encode(text_query_ids=text_query_ids)


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


@shared_task(name="taggers.retrain_due", soft_time_limit=300, time_limit=360)
def retrain_due_task() -> dict[str, list[int]]:
    """Adapter (beat, every minute): queue one training per head tagger whose curated label
    changes reached the count (queue ml_cpu)."""
    from apps.taggers.services import retrain

    return retrain.retrain_due()


@shared_task(name="taggers.score", soft_time_limit=DAY, time_limit=DAY + 60)
def score_task(*, job_id: int) -> None:
    """Adapter: score items with a head version and write its tagger sets (queue ml_cpu)."""
    from apps.taggers.services import apply

    apply.score_run(job_id=job_id)


# --- tagging schemes (docs/taggers.md#tagging-schemes): `schemes.*` on default, steps on their
# kind's queue -----------------------------------------------------------------------------------

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


@shared_task(name="taggers.vectors", soft_time_limit=SOFT, time_limit=HARD)
def vectors_task(*, job_id: int) -> None:
    """Adapter: a head or zero-shot step of a scheme run, on stored vectors (queue ml_cpu)."""
    _step(job_id)
