"""API for tagging schemes (`tagging-schemes/`), their runs (`scheme-runs/`) and schedules
(`scheme-schedules/`); docs/api.md#tagging-schemes. Views parse, call one service or selector,
render; a bad definition is a 400 naming the step."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.taggers.api import scheme_serializers as s
from apps.taggers.models import SchemeRun, SchemeSchedule, TaggingScheme
from apps.taggers.selectors import schemes as selectors
from apps.taggers.services import schedules, scheme_runs, schemes

RUN_PERMS = ["taggers.add_schemerun"]
SCHEDULE_PERMS = ["taggers.add_schemeschedule"]


class DefinitionJSONParser(JSONParser):
    """JSON that may spell NaN or Infinity: the definition's validation then refuses them with a
    400 naming the step (a strict parse would refuse them naming nothing)."""

    strict = False


class TaggingSchemeViewSet(viewsets.ModelViewSet):
    """Schemes: a DAG of tagger steps. Reads need a signed-in user; writes the model permissions."""

    parser_classes = [DefinitionJSONParser, FormParser, MultiPartParser]
    serializer_class = s.SchemeOutputSerializer
    queryset = TaggingScheme.objects.all()
    lookup_value_regex = "[0-9]+"
    required_perms: list[str] | None = None
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.scheme_list()

    def get_object(self) -> TaggingScheme:
        return selectors.scheme_get(ref=self.kwargs["pk"])

    @extend_schema(request=s.SchemeInputSerializer, responses={201: s.SchemeOutputSerializer})
    def create(self, request: Request) -> Response:
        data = s.SchemeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        scheme = schemes.scheme_create(
            name=values["name"],
            description=values.get("description", ""),
            body=values["definition"],
            actor=request.user,
        )
        return Response(s.SchemeOutputSerializer(scheme).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SchemeInputSerializer, responses=s.SchemeOutputSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PUT or PATCH: a new definition is stored as a new immutable version."""
        data = s.SchemeInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        scheme = schemes.scheme_update(
            scheme=self.get_object(),
            body=values.get("definition"),
            name=values.get("name"),
            description=values.get("description"),
        )
        return Response(s.SchemeOutputSerializer(scheme).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        schemes.scheme_delete(scheme=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.SchemeRunInputSerializer, responses={202: s.RunOutputSerializer})
    @action(detail=True, methods=["post"], url_path="run", required_perms=RUN_PERMS)
    def run(self, request: Request, pk: str) -> Response:
        """Start a run (a job per step; follow it at `scheme-runs/{id}/`)."""
        data = s.SchemeRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = scheme_runs.scheme_run_start(
            scheme=self.get_object(),
            selection=values["selection"],
            item_ids=values.get("item_ids"),
            q=values.get("q") or None,
            force=values["force"],
            actor=request.user,
        )
        return Response(
            s.RunOutputSerializer(selectors.run_get(pk=run.pk)).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(responses=s.RunOutputSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="runs")
    def runs(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(selectors.run_list(scheme=self.get_object()))
        return self.get_paginated_response(s.RunOutputSerializer(page, many=True).data)

    @extend_schema(methods=["get"], responses=s.ScheduleOutputSerializer(many=True), request=None)
    @extend_schema(
        methods=["post"], request=s.ScheduleInputSerializer, responses={201: s.ScheduleOutputSerializer}
    )
    @action(detail=True, methods=["get", "post"], url_path="schedules", required_perms=SCHEDULE_PERMS)
    def schedules(self, request: Request, pk: str) -> Response:
        """GET: the scheme's schedules; POST: add one (crontab, selection, enabled)."""
        scheme = self.get_object()
        if request.method == "GET":
            rows = selectors.schedule_list(scheme=scheme)
            return Response(s.ScheduleOutputSerializer(rows, many=True).data)
        data = s.ScheduleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = schedules.schedule_create(scheme=scheme, **data.validated_data)
        return Response(s.ScheduleOutputSerializer(schedule).data, status=status.HTTP_201_CREATED)


class SchemeRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs with their steps' status, counters and progress; cancel."""

    serializer_class = s.RunOutputSerializer
    queryset = SchemeRun.objects.all()
    lookup_value_regex = "[0-9]+"
    required_perms: list[str] | None = None

    def get_queryset(self) -> Any:
        return selectors.run_list()

    def get_object(self) -> SchemeRun:
        return selectors.run_get(pk=self.kwargs["pk"])

    @extend_schema(request=None, responses=s.RunOutputSerializer)
    @action(detail=True, methods=["post"], url_path="cancel", required_perms=RUN_PERMS)
    def cancel(self, request: Request, pk: str) -> Response:
        run = scheme_runs.scheme_run_cancel(run=self.get_object())
        return Response(s.RunOutputSerializer(selectors.run_get(pk=run.pk)).data)


class SchemeScheduleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Schedules: change the crontab, selection or enabled; delete."""

    serializer_class = s.ScheduleOutputSerializer
    queryset = SchemeSchedule.objects.all()
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.schedule_list()

    def get_object(self) -> SchemeSchedule:
        return selectors.schedule_get(pk=self.kwargs["pk"])

    @extend_schema(request=s.ScheduleInputSerializer, responses=s.ScheduleOutputSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.ScheduleInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        schedule = schedules.schedule_update(
            schedule=self.get_object(),
            crontab=values.get("crontab"),
            selection=values.get("selection"),
            enabled=values.get("enabled"),
        )
        return Response(s.ScheduleOutputSerializer(schedule).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        schedules.schedule_delete(schedule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
