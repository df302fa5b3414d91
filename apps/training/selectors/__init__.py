"""Reads: sessions, base-model profiles, Textual Inversion sets, exports (docs/training.md)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.core.exceptions import NotFoundError
from apps.training.models import (
    BaseModelProfile,
    TextualInversion,
    TrainingExport,
    TrainingSession,
    TrainingSessionDataset,
    TrainingSessionVersion,
)


def _pk(value: Any) -> int:
    return int(value)


def session_list(*, search: str = "") -> QuerySet[TrainingSession]:
    rows = TrainingSession.objects.select_related("base_model", "mapping_profile").order_by("-id")
    if search:
        rows = rows.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return rows


def session_get(*, session_id: Any) -> TrainingSession:
    try:
        return session_list().get(pk=_pk(session_id))
    except (TrainingSession.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Training session {session_id} not found.", code="training.not_found") from exc


def session_detail(*, session: TrainingSession) -> dict[str, Any]:
    """The session's child rows, for the API and pages (a few queries, however many rows)."""
    return {
        "datasets": list(
            TrainingSessionDataset.objects.filter(session=session)
            .select_related("dataset", "subset", "group", "snapshot")
            .order_by("position", "id")
        ),
        "type_policies": list(
            session.type_policies.select_related("tag_type").order_by("zone_order", "tag_type__key")
        ),
        "description_weights": list(session.description_weights.order_by("name")),
        "samples": list(session.samples.order_by("position", "id")),
    }


def version_list(*, session: TrainingSession) -> QuerySet[TrainingSessionVersion]:
    return TrainingSessionVersion.objects.filter(session=session).order_by("-number")


def base_model_list() -> QuerySet[BaseModelProfile]:
    return BaseModelProfile.objects.select_related("vocabulary", "mapping_profile").order_by("-id")


def base_model_get(*, ref: Any) -> BaseModelProfile:
    rows = base_model_list()
    try:
        text = str(ref)
        if text.isascii() and text.isdigit():
            return rows.get(pk=int(text)) if len(text) <= 10 and int(text) <= 2**31 - 1 else rows.none().get()
        return rows.get(slug=text)
    except BaseModelProfile.DoesNotExist as exc:
        raise NotFoundError(f"Base model {ref} not found.", code="training.base_model_not_found") from exc


def ti_list() -> QuerySet[TextualInversion]:
    return TextualInversion.objects.select_related("base_model", "dataset", "subset").order_by("-id")


def ti_get(*, ti_id: Any) -> TextualInversion:
    try:
        return ti_list().get(pk=_pk(ti_id))
    except (TextualInversion.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Textual Inversion set {ti_id} not found.", code="training.not_found") from exc


def export_list(
    *, session: TrainingSession | None = None, ti: TextualInversion | None = None
) -> QuerySet[TrainingExport]:
    rows = TrainingExport.objects.select_related("job").order_by("-id")
    if session is not None:
        rows = rows.filter(session=session)
    if ti is not None:
        rows = rows.filter(textual_inversion=ti)
    return rows


def export_get(*, export_id: Any) -> TrainingExport:
    try:
        return TrainingExport.objects.select_related("job", "session", "textual_inversion").get(
            pk=_pk(export_id)
        )
    except (TrainingExport.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Export {export_id} not found.", code="training.export_not_found") from exc
