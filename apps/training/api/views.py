"""Training API (docs/training.md#api): parse, call one service or selector, answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.training import selectors
from apps.training.api import serializers as s
from apps.training.models import BaseModelProfile, TextualInversion, TrainingExport, TrainingSession
from apps.training.services import base_models, exports, lint, preview, sessions, textual_inversions

EXPORT = ["training.change_trainingsession", "training.add_trainingexport"]
# Read-only fields of the answers, accepted (and ignored) in writes: GET, edit, PATCH back.
READ_ONLY = ("id", "version", "seeded", "detail", "created_at", "updated_at")
EXPORT_TI = ["training.change_textualinversion", "training.add_trainingexport"]
CHANGE = ["training.change_trainingsession"]


class TrainingJSONParser(JSONParser):
    """JSON nested too deeply for Python's parser is a 400 naming the problem, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply; send a flatter body.") from exc


PARSERS = [TrainingJSONParser, FormParser, MultiPartParser]


def _parse(
    serializer_class: type[drf_serializers.Serializer],
    data: Any,
    *,
    partial: bool = False,
    ignored: tuple[str, ...] = (),
) -> Any:
    """Validated data, or a 400 with code `training.invalid` naming the fields to fix. A key
    the input does not know is a 400 too (a misspelt setting is not silently dropped), except
    the read-only fields of the answer (`ignored`), so a read-modify-write round trip works."""
    if isinstance(data, Mapping):
        known = {*serializer_class().fields, *ignored}
        unknown = sorted(str(key)[:60] for key in data if key not in known)
        if unknown:
            raise DomainError(
                f"{unknown[0]}: not a field of this request; check the spelling (see the API schema).",
                code="training.unknown_field",
                details={"fields": {key: ["not a field of this request."] for key in unknown}},
            )
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        fields = {
            key: [str(m) for m in value] if isinstance(value, list) else value
            for key, value in serializer.errors.items()
        }
        field, messages = next(iter(fields.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        raise DomainError(f"{field}: {first}", code="training.invalid", details={"fields": fields})
    return dict(serializer.validated_data)


def _accepted(export: TrainingExport) -> Response:
    body = s.TrainingExportAcceptedSerializer(
        {"export": selectors.export_get(export_id=export.pk), "job": export.job}
    ).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


class TrainingSessionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Training sessions: settings, datasets and caption policies of one training run."""

    serializer_class = s.TrainingSessionOutputSerializer
    queryset = TrainingSession.objects.none()
    parser_classes = PARSERS
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[TrainingSession]:
        return selectors.session_list(search=(self.request.query_params.get("q") or "").strip())

    def get_object(self) -> TrainingSession:
        return selectors.session_get(session_id=self.kwargs["pk"])

    def _answer(self, session: TrainingSession, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.session_get(session_id=session.pk)
        return Response(s.TrainingSessionOutputSerializer(fresh, context={"detail": True}).data, status=code)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(self.get_object())

    @extend_schema(
        request=s.TrainingSessionInputSerializer, responses={201: s.TrainingSessionOutputSerializer}
    )
    def create(self, request: Request) -> Response:
        data = _parse(s.TrainingSessionInputSerializer, request.data, ignored=READ_ONLY)
        session = sessions.session_create(actor=request.user, **data)
        return self._answer(session, status.HTTP_201_CREATED)

    @extend_schema(request=s.TrainingSessionInputSerializer, responses=s.TrainingSessionOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        data = _parse(s.TrainingSessionInputSerializer, request.data, partial=True, ignored=READ_ONLY)
        return self._answer(sessions.session_update(session=session, actor=request.user, **data))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        sessions.session_delete(session=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.TrainingExportInputSerializer, responses={202: s.TrainingExportAcceptedSerializer}
    )
    @action(detail=True, methods=["post"], required_perms=EXPORT)
    def export(self, request: Request, pk: str | None = None) -> Response:
        """Queue an export of the current version: a zip to download, or a server folder."""
        data = _parse(s.TrainingExportInputSerializer, request.data)
        started = exports.export_start(session=self.get_object(), actor=request.user, **data)
        return _accepted(started)

    @extend_schema(responses=s.TrainingExportOutputSerializer(many=True))
    @action(detail=True, methods=["get"])
    def exports(self, request: Request, pk: str | None = None) -> Response:
        """The session's exports, newest first (paged)."""
        page = self.paginate_queryset(selectors.export_list(session=self.get_object()))
        return self.get_paginated_response(s.TrainingExportOutputSerializer(page, many=True).data)

    @extend_schema(responses=s.TrainingSessionVersionOutputSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """Every version's settings, newest first."""
        rows = selectors.version_list(session=self.get_object())[:200]
        return Response(s.TrainingSessionVersionOutputSerializer(rows, many=True).data)

    @extend_schema(
        request=None, responses={200: s.TrainingLintOutputSerializer, 202: s.TrainingLintOutputSerializer}
    )
    @action(detail=True, methods=["post"], required_perms=CHANGE)
    def lint(self, request: Request, pk: str | None = None) -> Response:
        """Lint the latest version without writing images; big sessions answer 202 with a job."""
        found = lint.session_lint(self.get_object(), actor=request.user)
        code = status.HTTP_202_ACCEPTED if found["job"] is not None else status.HTTP_200_OK
        return Response(s.TrainingLintOutputSerializer(found).data, status=code)

    @extend_schema(
        parameters=[OpenApiParameter("n", int, description="Items to show (1 to 50, default 8)")],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """A few items with the captions each targeted renderer would write."""
        n = int_param(
            request.query_params.get("n"), field="n", minimum=1, maximum=preview.MAX_ITEMS, default=8
        )
        return Response(preview.session_preview(self.get_object(), n, actor=request.user))


class BaseModelViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Base-model profiles; shipped ones are protected."""

    serializer_class = s.BaseModelOutputSerializer
    queryset = BaseModelProfile.objects.none()
    parser_classes = PARSERS

    def get_queryset(self) -> QuerySet[BaseModelProfile]:
        return selectors.base_model_list()

    def get_object(self) -> BaseModelProfile:
        return selectors.base_model_get(ref=self.kwargs["pk"])

    @extend_schema(request=s.BaseModelInputSerializer, responses={201: s.BaseModelOutputSerializer})
    def create(self, request: Request) -> Response:
        data = _parse(s.BaseModelInputSerializer, request.data, ignored=READ_ONLY)
        profile = base_models.base_model_create(**data)
        return Response(s.BaseModelOutputSerializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.BaseModelInputSerializer, responses=s.BaseModelOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(s.BaseModelInputSerializer, request.data, partial=True, ignored=READ_ONLY)
        profile = base_models.base_model_update(profile=self.get_object(), **data)
        return Response(s.BaseModelOutputSerializer(selectors.base_model_get(ref=profile.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        base_models.base_model_delete(profile=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TextualInversionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Textual Inversion sets: a token learned from a dataset, subset or query."""

    serializer_class = s.TextualInversionOutputSerializer
    queryset = TextualInversion.objects.none()
    parser_classes = PARSERS
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[TextualInversion]:
        return selectors.ti_list()

    def get_object(self) -> TextualInversion:
        return selectors.ti_get(ti_id=self.kwargs["pk"])

    @extend_schema(
        request=s.TextualInversionInputSerializer, responses={201: s.TextualInversionOutputSerializer}
    )
    def create(self, request: Request) -> Response:
        data = _parse(s.TextualInversionInputSerializer, request.data, ignored=READ_ONLY)
        ti = textual_inversions.ti_create(actor=request.user, **data)
        return Response(s.TextualInversionOutputSerializer(ti).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TextualInversionInputSerializer, responses=s.TextualInversionOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(s.TextualInversionInputSerializer, request.data, partial=True, ignored=READ_ONLY)
        ti = textual_inversions.ti_update(ti=self.get_object(), **data)
        return Response(s.TextualInversionOutputSerializer(selectors.ti_get(ti_id=ti.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        textual_inversions.ti_delete(ti=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.TrainingExportInputSerializer, responses={202: s.TrainingExportAcceptedSerializer}
    )
    @action(detail=True, methods=["post"], required_perms=EXPORT_TI)
    def export(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(s.TrainingExportInputSerializer, request.data)
        started = exports.export_start(textual_inversion=self.get_object(), actor=request.user, **data)
        return _accepted(started)


class TrainingExportViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """One export: its outcome, findings and report excerpt; the zip download."""

    serializer_class = s.TrainingExportOutputSerializer
    queryset = TrainingExport.objects.none()
    parser_classes = PARSERS

    def get_queryset(self) -> QuerySet[TrainingExport]:
        return selectors.export_list()

    def get_object(self) -> TrainingExport:
        return selectors.export_get(export_id=self.kwargs["pk"])

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        exports.export_delete(export=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """The finished bundle as a zip, streamed (entries sorted, fixed times: reproducible)."""
        name, chunks = exports.export_zip_stream(self.get_object())
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
