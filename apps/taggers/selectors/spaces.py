"""Reads of embedding spaces (docs/taggers.md#embedding-spaces)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.exceptions import NotFoundError
from apps.taggers.models import EmbeddingSpace


def space_list() -> QuerySet[EmbeddingSpace]:
    return EmbeddingSpace.objects.select_related("embed_job").order_by("name")


def space_get(*, space_id: object) -> EmbeddingSpace:
    try:
        return space_list().get(pk=int(str(space_id)))
    except (EmbeddingSpace.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Embedding space {space_id} not found.", code="taggers.space_not_found") from exc
