"""Intake API (docs/intake.md#api): parse, call one service or selector, answer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.intake import selectors, services
from apps.intake.api import serializers as s
from apps.intake.models import IntakeEntry
from apps.jobs.api.serializers import job_accepted_body

CHANGE = ["intake.change_intakeentry"]
ADD = ["intake.add_intakeentry"]
DATASET = OpenApiParameter("dataset", int, description="Only entries for this dataset")
STATE = OpenApiParameter("state", str, description="Only entries in this state")


def _parse(serializer_class: type[drf_serializers.Serializer], data: Any, *, partial: bool = False) -> Any:
    """Validated data, or a 400 with code `intake.invalid` naming the fields to fix."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        fields = {
            key: [str(m) for m in value] if isinstance(value, list) else value
            for key, value in serializer.errors.items()
        }
        field, messages = next(iter(fields.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        raise DomainError(f"{field}: {first}", code="intake.invalid", details={"fields": fields})
    return serializer.validated_data


class IntakeEntryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The intake queue: planned entries, their processing and progress."""

    serializer_class = s.EntryOutputSerializer
    queryset = IntakeEntry.objects.none()
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[IntakeEntry]:
        params = self.request.query_params
        state = params.get("state") or ""
        if state and state not in IntakeEntry.State.values:
            raise DomainError(
                f"state: one of {', '.join(IntakeEntry.State.values)}.", code="intake.bad_state"
            )
        return selectors.entry_list(
            dataset_id=int_param(params.get("dataset"), field="dataset", minimum=1), state=state
        )

    def get_serializer_class(self) -> type[drf_serializers.Serializer]:
        return s.EntryOutputSerializer if self.action == "list" else s.EntryDetailSerializer

    def get_object(self) -> IntakeEntry:
        return selectors.entry_get(entry_id=self.kwargs["pk"])

    def _answer(self, entry: IntakeEntry, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.EntryDetailSerializer(selectors.entry_get(entry_id=entry.pk)).data, status=code)

    @extend_schema(parameters=[DATASET, STATE])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.EntryInputSerializer, responses={201: s.EntryDetailSerializer})
    def create(self, request: Request) -> Response:
        """Plan an entry (JSON; multipart for a zip)."""
        data = _parse(s.EntryInputSerializer, request.data)
        entry = services.intake_entry_create(**data, created_by=request.user)
        return self._answer(entry, status.HTTP_201_CREATED)

    @extend_schema(request=s.EntryUpdateSerializer, responses=s.EntryDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(s.EntryUpdateSerializer, request.data, partial=True)
        return self._answer(services.intake_entry_update(entry=self.get_object(), **data))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.intake_entry_delete(entry=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.BulkInputSerializer, responses={201: s.EntryDetailSerializer(many=True)})
    @action(detail=False, methods=["post"], required_perms=ADD)
    def bulk(self, request: Request) -> Response:
        """Plan a pasted URL list: one entry, or one per URL (`split`); any bad line refuses all."""
        data = _parse(s.BulkInputSerializer, request.data)
        entries = services.intake_entries_bulk_add(**data, created_by=request.user)
        return Response(s.EntryDetailSerializer(entries, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.ProcessOutputSerializer, 202: s.ProcessOutputSerializer})
    @action(detail=True, methods=["post"], required_perms=CHANGE)
    def process(self, request: Request, pk: str | None = None) -> Response:
        """Process (or retry) the entry: 202 with the media job it waits for, 200 when nothing
        had to be fetched (or the entry failed at once: see its `error`)."""
        entry = services.intake_entry_process(entry=self.get_object(), actor=request.user)
        entry = selectors.entry_get(entry_id=entry.pk)
        body: dict[str, Any] = {"entry": s.EntryDetailSerializer(entry).data, "job": None}
        if entry.state == IntakeEntry.State.FETCHING and entry.job is not None:
            body["job"] = job_accepted_body(entry.job)["job"]
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})
        return Response(body)

    @extend_schema(request=s.ReviewInputSerializer, responses=s.EntryDetailSerializer)
    @action(detail=True, methods=["post"], required_perms=CHANGE)
    def review(self, request: Request, pk: str | None = None) -> Response:
        """Mark arrived items reviewed (all when `items` is absent)."""
        data = _parse(s.ReviewInputSerializer, request.data)
        return self._answer(services.intake_entry_review(entry=self.get_object(), item_ids=data.get("items")))

    @extend_schema(request=None, responses=s.EntryDetailSerializer)
    @action(detail=True, methods=["post"], url_path="mark-tagged", required_perms=CHANGE)
    def mark_tagged(self, request: Request, pk: str | None = None) -> Response:
        """Added → tagged (what the on-arrival taggers will do once wired in)."""
        return self._answer(services.intake_entry_mark_tagged(entry=self.get_object()))

    @extend_schema(
        parameters=[OpenApiParameter("reviewed", bool, description="Only (not) reviewed items")],
        responses=s.ArrivalsOutputSerializer,
    )
    @action(detail=True, methods=["get"])
    def arrivals(self, request: Request, pk: str | None = None) -> Response:
        """Ids of the items that arrived for the entry (the first 1000, by id)."""
        raw = request.query_params.get("reviewed")
        reviewed = None if raw in (None, "") else raw.lower() in ("1", "true", "yes")
        return Response({"items": selectors.arrival_ids(entry=self.get_object(), reviewed=reviewed)})

    @extend_schema(parameters=[DATASET], responses=s.ProgressOutputSerializer)
    @action(detail=False, methods=["get"])
    def progress(self, request: Request) -> Response:
        """Planned vs added vs reviewed per target dataset."""
        dataset_id = int_param(request.query_params.get("dataset"), field="dataset", minimum=1)
        return Response({"datasets": selectors.dataset_progress(dataset_id=dataset_id)})
