"""API for bulk tag operations (POST /api/tags/bulk) and the operation log (/api/tag-operations/)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.ints import INT_MAX, int_param
from apps.tags import selectors
from apps.tags.api import serializers_operations as s
from apps.tags.models import Operation
from apps.tags.services import operations

WRITE = ["tags.change_tagassignment"]


def _result(outcome: operations.Outcome, extra: dict[str, Any] | None = None) -> Response:
    """200 with the finished operation, or 202 + Location when a job will run it."""
    body = {**(extra or {}), "operation": s.OperationOutputSerializer(outcome.operation).data}
    if outcome.job is None:
        return Response(body)
    body["job"] = s.accepted_job_body(outcome.job)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


class TagBulkApi(APIView):
    """Bulk add / remove / replace / rename / set type over a query or ids (dry_run previews)."""

    required_perms = WRITE

    @extend_schema(
        request=s.TagBulkInputSerializer,
        responses={200: s.PreviewOutputSerializer, 202: s.PreviewOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = s.TagBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        dry_run = values.pop("dry_run")
        preview, outcome = operations.operation_bulk(dry_run=dry_run, actor=request.user, **values)
        body = s.preview_body(preview)
        if outcome is None:
            return Response(body)
        return _result(outcome, body)


class OperationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(field_name="kind", choices=Operation.Kind.choices)
    status = django_filters.ChoiceFilter(field_name="status", choices=Operation.Status.choices)
    created_by = django_filters.CharFilter(field_name="created_by__username")

    class Meta:
        model = Operation
        fields: list[str] = []


class TagOperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The operation log, newest first: bulk operations, edits, undos; apply, undo, cancel."""

    serializer_class = s.OperationOutputSerializer
    filterset_class = OperationFilter
    queryset = Operation.objects.none()
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[Operation]:
        return selectors.operation_list(viewer=self.request.user)

    def get_object(self) -> Operation:
        return selectors.operation_get(operation_id=self.kwargs["pk"], viewer=self.request.user)

    @extend_schema(
        request=None,
        responses={200: s.OperationResultOutputSerializer, 202: s.OperationResultOutputSerializer},
    )
    @action(detail=True, methods=["post"], required_perms=WRITE)
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Apply a preview to exactly its frozen target (200 when done, 202 when queued)."""
        operation = self.get_object()
        return _result(operations.operation_apply(operation=operation, actor=request.user))

    @extend_schema(
        request=None,
        responses={200: s.OperationResultOutputSerializer, 202: s.OperationResultOutputSerializer},
    )
    @action(detail=True, methods=["post"], required_perms=WRITE)
    def undo(self, request: Request, pk: str | None = None) -> Response:
        """Undo as a new operation (undo an undo to redo); later edits are kept and reported
        as conflicts in its counters."""
        return _result(operations.operation_undo(operation=self.get_object(), actor=request.user))

    @extend_schema(request=None, responses=s.OperationOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=WRITE)
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop a queued or running operation after its current chunk."""
        operation = operations.operation_cancel(operation=self.get_object(), actor=request.user)
        return Response(
            s.OperationOutputSerializer(
                selectors.operation_get(operation_id=operation.pk, viewer=request.user)
            ).data
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("after", {"type": "integer", "minimum": 0, "maximum": INT_MAX}),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ],
        responses=inline_serializer(
            "OperationItems",
            {
                "ids": drf_serializers.ListField(child=drf_serializers.IntegerField()),
                "next_after": drf_serializers.IntegerField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def items(self, request: Request, pk: str | None = None) -> Response:
        """Ids of the items an operation changed (a preview: its target), ascending, keyset-paged."""
        after = int_param(request.query_params.get("after"), field="after", default=0)
        limit = int_param(
            request.query_params.get("limit"), field="limit", minimum=1, maximum=1000, default=100
        )
        ids = selectors.operation_item_ids(operation=self.get_object(), after=after, limit=limit + 1)
        return Response({"ids": ids[:limit], "next_after": ids[limit - 1] if len(ids) > limit else None})
