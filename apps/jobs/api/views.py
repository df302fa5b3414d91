from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs import selectors, services
from apps.jobs.api.serializers import (
    JobDetailOutputSerializer,
    JobItemOutputSerializer,
    JobOutputSerializer,
    job_accepted_body,
)
from apps.jobs.models import Job


class JobFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(field_name="kind", lookup_expr="exact")
    status = django_filters.ChoiceFilter(field_name="status", choices=Job.Status.choices)

    class Meta:
        model = Job
        fields = ["kind", "status"]


class JobItemPagination(CursorPagination):
    ordering = "seq"
    page_size = 200


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Background jobs: state, outcome, progress, per-input results; cancel and retry."""

    filterset_class = JobFilter
    required_perms: list[str] | None = None  # set per action; see ModelPermissionsOrReadOnly
    queryset = Job.objects.none()

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.job_list(viewer=self.request.user)

    def get_serializer_class(self):  # type: ignore[no-untyped-def]
        return JobDetailOutputSerializer if self.action == "retrieve" else JobOutputSerializer

    def get_object(self) -> Job:
        return selectors.job_get(job_id=self.kwargs["pk"], viewer=self.request.user)

    @extend_schema(request=None, responses=JobOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = services.job_cancel(job=self.get_object())
        return Response(JobOutputSerializer(job).data)

    @extend_schema(
        request=None,
        responses={202: inline_serializer("JobRetryAccepted", {"job": JobOutputSerializer()})},
        description="Run a failed job again from its checkpoint: inputs already done stay done, "
        "failed inputs are tried again. 409 `jobs.not_failed` unless it failed; 409 "
        "`jobs.inputs_removed` once its uploaded files were removed.",
    )
    @action(detail=True, methods=["post"], required_perms=[])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = services.job_retry(job=self.get_object(), actor=request.user)
        body = job_accepted_body(job)
        return Response(body, status=202, headers={"Location": body["job"]["url"]})

    @extend_schema(responses=JobItemOutputSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request: Request, pk: str | None = None) -> Response:
        paginator = JobItemPagination()
        page = paginator.paginate_queryset(selectors.job_item_list(job=self.get_object()), request)
        return paginator.get_paginated_response(JobItemOutputSerializer(page, many=True).data)
