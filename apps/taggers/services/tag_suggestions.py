"""Embedding suggestions for tag mappings (docs/taggers.md#mapping-suggestions): the target tags
whose names lie nearest to a source tag's name by the text tower of the default text space.

Registered with the tags app's suggester registry (apps/tags/extensions.py), which the mappings
app reads; mappings and taggers are siblings and never import each other. A request never loads
the text tower: names are encoded into `TextQuery` rows by an `ml_cpu` worker. The suggester
ranks with the vectors already stored and hands the names still missing to a worker, so a first
look at a new vocabulary proposes nothing from here and a second one, seconds later, does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
from celery import current_app
from django.db import transaction
from django.utils import timezone

from apps.search.query.errors import QueryError
from apps.taggers.models import EmbeddingSpace, TextQuery
from apps.taggers.services import matrix
from apps.taggers.services.similarity import RESEND_AFTER_S, text_space
from apps.tags.extensions import Candidate, suggester_register
from apps.tags.models import Tag

TARGETS_MAX = 5_000  # the target vocabulary's most used names that are compared
COSINE_MIN = 0.80  # below this a name is not proposed
PER_SOURCE = 3
ENCODE_TASK = "taggers.text_queries"
ENCODE_BATCH = 256


def tag_text(name: str) -> str:
    """What the text tower reads for a tag: its name with underscores as spaces."""
    return name.replace("_", " ").strip()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _vectors(space: EmbeddingSpace, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Stored vectors by text. Texts without a row get a pending one; new pending rows, and old
    ones a worker never answered (RESEND_AFTER_S), go to a worker in batches after commit."""
    by_digest = {_digest(t): t for t in texts}
    found: dict[str, np.ndarray] = {}
    known: set[str] = set()
    stale = timezone.now() - timedelta(seconds=RESEND_AFTER_S)
    send: list[int] = []
    digests = list(by_digest)
    for start in range(0, len(digests), 1000):
        rows = TextQuery.objects.filter(space=space, text_sha256__in=digests[start : start + 1000])
        columns = ("pk", "text_sha256", "vector", "error", "used_at")
        for pk, digest, blob, error, used in rows.values_list(*columns):
            known.add(digest)
            if blob is not None:
                found[by_digest[digest]] = matrix.decode_blob(bytes(blob), space.dim).astype(np.float32)
            elif not error and used < stale:
                send.append(pk)
    missing = [TextQuery(space=space, text_sha256=d, text=by_digest[d]) for d in digests if d not in known]
    if missing:
        with transaction.atomic():
            TextQuery.objects.bulk_create(missing, batch_size=1000, ignore_conflicts=True)
        send += TextQuery.objects.filter(
            space=space, text_sha256__in=[m.text_sha256 for m in missing], vector__isnull=True
        ).values_list("pk", flat=True)
    if send:
        TextQuery.objects.filter(pk__in=send).update(used_at=timezone.now())
        for start in range(0, len(send), ENCODE_BATCH):
            transaction.on_commit(partial(_send, send[start : start + ENCODE_BATCH]))
    return found


def _send(ids: list[int]) -> None:
    # A broker that does not answer leaves the rows pending; the next look sends them again.
    with suppress(Exception):
        current_app.send_task(ENCODE_TASK, kwargs={"text_query_ids": ids})


def text_suggester(
    sources: Sequence[Any], target_vocabulary_id: int, limit: int
) -> dict[int, list[Candidate]]:
    """Per source tag, up to PER_SOURCE target tags by cosine of their names' text vectors."""
    try:
        space = text_space()
    except QueryError:  # no space with a text tower has vectors yet: nothing to say
        return {}
    targets = list(
        Tag.objects.filter(vocabulary_id=target_vocabulary_id)
        .order_by("-media_count", "pk")
        .values_list("pk", "name")[:TARGETS_MAX]
    )
    if not targets or not sources:
        return {}
    texts = {tag_text(s.name) for s in sources} | {tag_text(name) for _pk, name in targets}
    vectors = _vectors(space, sorted(texts))
    ranked = [(pk, name) for pk, name in targets if tag_text(name) in vectors]
    if not ranked:
        return {}
    grid = np.stack([vectors[tag_text(name)] for _pk, name in ranked])
    grid /= np.maximum(np.linalg.norm(grid, axis=1, keepdims=True), 1e-6)
    out: dict[int, list[Candidate]] = {}
    for source in sources:
        query = vectors.get(tag_text(source.name))
        if query is None:
            continue
        cosines = grid @ (query / max(float(np.linalg.norm(query)), 1e-6))
        best = np.argsort(-cosines, kind="stable")[:PER_SOURCE]
        picked = [
            Candidate(
                ranked[i][0],
                round(0.9 * float(cosines[i]), 4),
                [{"kind": "text_embedding", "cosine": round(float(cosines[i]), 4), "space": space.name}],
            )
            for i in best
            if cosines[i] >= COSINE_MIN and ranked[i][1] != source.name
        ]
        if picked:
            out[source.id] = picked
    return out


def text_queries_encode(*, text_query_ids: list[int]) -> int:
    """Worker: encode pending text queries of one space in one batch; returns how many."""
    from apps.core.exceptions import DomainError
    from apps.taggers.services.embeddings import backend_for, vector_bytes

    rows = list(TextQuery.objects.select_related("space").filter(pk__in=text_query_ids, vector__isnull=True))
    done = 0
    for space_id in {r.space_id for r in rows}:
        batch = [r for r in rows if r.space_id == space_id]
        space = batch[0].space
        try:
            encoded = backend_for(space).encode_text([r.text for r in batch])
        except DomainError as err:
            TextQuery.objects.filter(pk__in=[r.pk for r in batch]).update(error=err.message[:2000])
            continue
        for row, vector in zip(batch, encoded, strict=True):
            TextQuery.objects.filter(pk=row.pk).update(vector=vector_bytes(vector, space.dim))
            done += 1
    return done


def register() -> None:
    """Add the text-embedding suggester (called from TaggersConfig.ready)."""
    suggester_register(key="taggers.text_embedding", suggester=text_suggester)
