"""Search by embedding through the query language (docs/taggers.md#similarity-search):

* `similar:<item id>,emb[=<space id>][,<k>]`: the k items (default
  BAGGINTAG_SIMILAR_TOP_K) closest to an item by cosine in a space (the item's largest space
  unless named);
* `clip:"<text>"`: the items closest to a text in the default text space (the largest space
  with a text tower). The text tower runs on an `ml_cpu` worker, never in the web process
  (docs/taggers.md#text-to-image-search); the vector is kept for later searches.

Both rank the last published build of the per-host matrix cache (services/matrix.py) by brute
force; a request never builds it. A stale build is still used and a worker is asked to rebuild
it (`taggers.cache_space`); without any build the answer is 409 `taggers.matrix_pending`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import ConflictError
from apps.search.query.errors import QueryError
from apps.search.query.values import ValueProblem
from apps.taggers import conf
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, TextQuery
from apps.taggers.services import matrix

TEXT_MAX = 300
K_MAX = 5_000
RESEND_AFTER_S = 30
TEXT_TASK = "taggers.text_query"
CACHE_SPACE_TASK = "taggers.cache_space"
CACHE_RESEND_S = 60  # one rebuild request per space and host per minute
logger = logging.getLogger(__name__)


class TextQueryPending(ConflictError):
    """The text is still being encoded by a worker: search again shortly."""

    default_code = "taggers.text_query_pending"


class MatrixPending(ConflictError):
    """No matrix build of the space exists on this host yet: a worker is building it."""

    default_code = "taggers.matrix_pending"


def cache_space_request(space_id: int) -> bool:
    """Ask an `ml_cpu` worker to rebuild the space's matrix cache, at most once per
    CACHE_RESEND_S per host (a marker file's age); False when the broker did not answer."""
    marker = matrix.cache_dir(space_id) / ".queued"
    try:
        if time.time() - marker.stat().st_mtime < CACHE_RESEND_S:
            return True
    except OSError:
        pass
    try:
        current_app.send_task(CACHE_SPACE_TASK, kwargs={"space_id": space_id})
    except Exception:
        logger.warning("could not queue %s for space %s", CACHE_SPACE_TASK, space_id, exc_info=True)
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return True


def published(space: EmbeddingSpace) -> matrix.Matrix:
    """The space's last published matrix build (a stale one too, with a rebuild requested), or
    MatrixPending when there is none yet. No build in the request."""
    found, stale = matrix.matrix_published(space=space)
    if stale:
        cache_space_request(space.pk)
    if found is None:
        raise MatrixPending(
            f"The vectors of space {space.name!r} are being gathered for search (task "
            f"{CACHE_SPACE_TASK} on queue ml_cpu); search again in a moment. If this stays, no "
            "worker consumes ml_cpu: start one (docs/operations.md#ml-workers).",
            details={"space": space.pk},
        )
    return found


def top_k_default() -> int:
    return conf.similar_top_k()


@dataclass(frozen=True)
class SimilarBy:
    item_id: int
    space_id: int | None
    k: int


def similar_read(text: str) -> SimilarBy:
    """`<item id>,emb[=<space id>][,<k>]` (the reader of the `emb` mode of `similar:`)."""
    hint = "similar:<item id>,emb[=<space id>][,<how many, 1–5000>], e.g. similar:123,emb,50"
    parts = text.split(",")
    if len(parts) > 3:
        raise ValueProblem(f"{text!r} has too many parts.", token=text, offset=0, hint=hint)
    item, mode = parts[0], parts[1]
    offset = len(item) + 1
    _, _, space = mode.partition("=")
    if space and (not space.isascii() or not space.isdigit() or len(space) > 18):
        raise ValueProblem(f"{space!r} is not a space id.", token=space, offset=offset + 4, hint=hint)
    k = top_k_default()
    if len(parts) == 3:
        raw = parts[2]
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:6]) <= K_MAX:
            raise ValueProblem(
                f"{raw!r} is not a number from 1 to {K_MAX}.",
                token=raw,
                offset=offset + len(mode) + 1,
                hint=hint,
            )
        k = int(raw)
    return SimilarBy(int(item), int(space) if space else None, k)


def _query_error(message: str, hint: str, token: str = "") -> QueryError:
    return QueryError("invalid_value", message, token=token, position=0, hint=hint)


def similar_rank(parsed: SimilarBy) -> list[int]:
    """Item ids closest to the item, best first (the item itself first)."""
    rows = ImageEmbedding.objects.filter(item_id=parsed.item_id)
    if parsed.space_id is not None:
        rows = rows.filter(space_id=parsed.space_id)
    row = rows.select_related("space").order_by("-space__embedding_count", "space_id").first()
    if row is None:
        where = f" in space {parsed.space_id}" if parsed.space_id is not None else ""
        raise _query_error(
            f"Item {parsed.item_id} has no embedding{where} yet.",
            "Embed it first (Embedding spaces → Embed), or use similar:<id> for near-duplicates by "
            "perceptual hash.",
            token=str(parsed.item_id),
        )
    vector = matrix.decode_blob(bytes(row.vector), row.space.dim)
    found = matrix.nearest(published(row.space), vector, parsed.k)
    return [item_id for item_id, _ in found]


def clip_read(text: str) -> str:
    """The text of `clip:"…"` (1–300 characters)."""
    text = " ".join(text.split())
    if not text or len(text) > TEXT_MAX:
        raise ValueProblem(
            f"The text must have 1 to {TEXT_MAX} characters.",
            token=text[:20],
            offset=0,
            hint='Describe the picture in quotes, e.g. clip:"a red circle on grey".',
        )
    return text


def text_space() -> EmbeddingSpace:
    """The space text searches use: the one with a text tower and the most vectors."""
    space = (
        EmbeddingSpace.objects.filter(has_text_tower=True, embedding_count__gt=0)
        .order_by("-embedding_count", "pk")
        .first()
    )
    if space is None:
        raise _query_error(
            "No embedding space with a text tower has any vectors yet.",
            "Create an open_clip embedding space and embed the library (docs/taggers.md).",
        )
    return space


def _send(row: TextQuery) -> None:
    try:
        current_app.send_task(TEXT_TASK, kwargs={"text_query_id": row.pk})
    except Exception as exc:
        raise TextQueryPending(
            "The text query could not be handed to the ML workers (the broker did not answer); try again.",
        ) from exc
    TextQuery.objects.filter(pk=row.pk).update(used_at=timezone.now())


def text_query_get(*, space: EmbeddingSpace, text: str) -> TextQuery:
    """The stored text query, created (and sent to an `ml_cpu` worker) when new, and sent again
    when it stayed pending for RESEND_AFTER_S (a worker was down)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        with transaction.atomic():
            row, created = TextQuery.objects.get_or_create(
                space=space, text_sha256=digest, defaults={"text": text}
            )
    except IntegrityError:  # created by a concurrent request
        row, created = TextQuery.objects.get(space=space, text_sha256=digest), False
    stalled = (timezone.now() - row.used_at).total_seconds() > RESEND_AFTER_S
    if row.vector is None and not row.error and (created or stalled):
        transaction.on_commit(lambda: _send(row))
    return row


def _wait(row: TextQuery) -> TextQuery:
    deadline = time.monotonic() + conf.text_query_wait_s()
    while row.vector is None and not row.error and time.monotonic() < deadline:
        time.sleep(0.1)
        row.refresh_from_db(fields=["vector", "error"])
    return row


def clip_rank(text: str) -> list[int]:
    """Item ids closest to a text, best first (or TextQueryPending while a worker encodes it)."""
    space = text_space()
    row = _wait(text_query_get(space=space, text=text))
    if row.error:
        raise _query_error(
            f"The text could not be encoded: {row.error}", "Fix the space's model, then retry."
        )
    if row.vector is None:
        raise TextQueryPending(
            f'clip:"{text}" is being encoded by an ML worker (queue ml_cpu); search again in a few seconds. '
            "If it stays pending, no worker consumes ml_cpu: start one (docs/operations.md#ml-workers).",
            details={"space": space.pk, "text_query": row.pk},
        )
    vector = matrix.decode_blob(bytes(row.vector), space.dim)
    return [item_id for item_id, _ in matrix.nearest(published(space), vector, top_k_default())]


def text_query_encode(*, text_query_id: int) -> None:
    """Worker: encode a pending text query with its space's text tower."""
    from apps.core.exceptions import DomainError
    from apps.taggers.services.embeddings import backend_for, vector_bytes

    row = TextQuery.objects.select_related("space").filter(pk=text_query_id).first()
    if row is None or row.vector is not None:
        return
    try:
        backend = backend_for(row.space)
        blob = vector_bytes(backend.encode_text([row.text])[0], row.space.dim)
    except DomainError as err:
        TextQuery.objects.filter(pk=row.pk).update(error=err.message[:2000])
        return
    TextQuery.objects.filter(pk=row.pk).update(vector=blob)


def register() -> None:
    """Fill the search app's registries (called from TaggersConfig.ready)."""
    from apps.search import extensions

    extensions.similar_mode_register(
        mode="emb",
        read=similar_read,
        rank=similar_rank,
        help="similar:<item id>,emb[=<space id>][,<k>]: the k nearest items by embedding",
    )
    extensions.ranked_qualifier_register(
        name="clip", read=clip_read, rank=clip_rank, help='clip:"<text>": items that look like the text'
    )
