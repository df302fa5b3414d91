"""API for mapping sets (`tag-mappings/`) and profiles (`mapping-profiles/`), docs/api.md#tag-mappings.

Views parse input, call one service or selector and render; every write is all-or-nothing and
bad input is a 4xx naming what to fix."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs.api.serializers import JobOutputSerializer
from apps.mappings import selectors
from apps.mappings.api import serializers as s
from apps.mappings.models import MappingProfile, MappingSet
from apps.mappings.services import apply, io, preview, profiles, rules, suggestions
from apps.tags.api.serializers_operations import OperationOutputSerializer

SET_WRITE = ["mappings.change_mappingset", "mappings.change_tagmapping"]
PROFILE_APPLY = ["mappings.change_mappingprofile", "tags.change_tagassignment"]


def _inputs(data: list[dict[str, Any]]) -> list[rules.RuleInput]:
    return [rules.RuleInput.from_dict(d, n) for n, d in enumerate(data, 1)]


def _detail(mapping_set: MappingSet) -> dict[str, Any]:
    page = selectors.rules_page(mapping_set=mapping_set, limit=1000)
    count = mapping_set.rules.count()
    return dict(s.MappingSetDetailSerializer(mapping_set, context={"rules": page, "rules_count": count}).data)


class TagMappingViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Mapping sets and their rules. Reads need a signed-in user; writes the model permissions."""

    serializer_class = s.MappingSetOutputSerializer
    queryset = MappingSet.objects.all()
    lookup_value_regex = "[0-9]+"
    required_perms: list[str] | None = None

    def get_queryset(self) -> Any:
        return selectors.mapping_set_list()

    def get_object(self) -> MappingSet:
        return selectors.mapping_set_get(ref=self.kwargs["pk"])

    @extend_schema(responses=s.MappingSetDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        """The set with its first 1,000 rules (page on with `rules/?after=`)."""
        return Response(_detail(self.get_object()))

    @extend_schema(request=s.MappingSetInputSerializer, responses={201: s.MappingSetDetailSerializer})
    def create(self, request: Request) -> Response:
        data = s.MappingSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["rules"] = _inputs(values.pop("rules"))
        created = rules.mapping_set_create(**values)
        return Response(_detail(created), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.MappingSetReplaceSerializer, responses=s.MappingSetDetailSerializer)
    def update(self, request: Request, pk: str) -> Response:
        """PUT: the rules become exactly those sent (and name/description when sent)."""
        data = s.MappingSetReplaceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        mapping_set = rules.mapping_set_replace(
            mapping_set=self.get_object(),
            rules=_inputs(values["rules"]),
            version=values.get("version"),
            create_targets=values["create_targets"],
            name=values.get("name"),
            description=values.get("description"),
        )
        return Response(_detail(mapping_set))

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="A profile uses the set")})
    def destroy(self, request: Request, pk: str) -> Response:
        rules.mapping_set_delete(mapping_set=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[s.SearchQuerySerializer], responses=s.MappingSetOutputSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="search", pagination_class=None)
    def search(self, request: Request) -> Response:
        """Sets whose slug or name contains `q`, or with a rule from or to `tag` (first 100)."""
        query = s.SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = selectors.mapping_set_search(text=query.validated_data["q"], tag=query.validated_data["tag"])
        return Response(s.MappingSetOutputSerializer(found[:100], many=True).data)

    @extend_schema(parameters=[s.RulesQuerySerializer], responses=s.RuleOutputSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="rules", pagination_class=None)
    def rules_list(self, request: Request, pk: str) -> Response:
        """A keyset page of rules (`after` = the last rule id seen), filtered."""
        query = s.RulesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.rules_page(mapping_set=self.get_object(), **query.validated_data)
        return Response(s.RuleOutputSerializer(page, many=True).data)

    @extend_schema(request=s.RulesInputSerializer, responses=s.ChangeResultSerializer)
    @action(detail=True, methods=["post"], url_path="append-mapping", required_perms=SET_WRITE)
    def append_mapping(self, request: Request, pk: str) -> Response:
        """Add rules; one with an existing rule's source and guards replaces it."""
        data = s.RulesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mapping_set = self.get_object()
        changed = rules.mapping_rules_append(
            mapping_set=mapping_set,
            rules=_inputs(data.validated_data["rules"]),
            version=data.validated_data.get("version"),
            create_targets=data.validated_data["create_targets"],
        )
        return Response({"changed": changed, "version": mapping_set.version})

    @extend_schema(request=s.RemoveInputSerializer, responses=s.ChangeResultSerializer)
    @action(detail=True, methods=["post"], url_path="remove-mapping", required_perms=SET_WRITE)
    def remove_mapping(self, request: Request, pk: str) -> Response:
        """Remove rules by source and guards (`"*"` as a guard: all of the source's rules)."""
        data = s.RemoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mapping_set = self.get_object()
        changed = rules.mapping_rules_remove(
            mapping_set=mapping_set,
            rules=_inputs(data.validated_data["rules"]),
            version=data.validated_data.get("version"),
        )
        return Response({"changed": changed, "version": mapping_set.version})

    @extend_schema(
        request={"multipart/form-data": s.ImportInputSerializer, "application/json": s.ImportInputSerializer},
        responses=s.ChangeResultSerializer,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
        required_perms=SET_WRITE,
    )
    def import_rules(self, request: Request, pk: str) -> Response:
        """CSV (`source,target[,target…],action,requires,unless` or `source,target`) or a kohya
        `--tag_replacement` string; all lines valid or nothing is saved (400 lists each)."""
        data = s.ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = io.mapping_set_import(
            mapping_set=self.get_object(),
            data=values.get("file") or values["text"],
            format=values["format"],
            replace=values["replace"],
            create_targets=values["create_targets"],
        )
        return Response(result)

    @extend_schema(parameters=[s.ExportQuerySerializer], responses={(200, "text/plain"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request: Request, pk: str) -> HttpResponse:
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        mapping_set = self.get_object()
        fmt = query.validated_data["format"]
        body = io.mapping_set_export(mapping_set=mapping_set, format=fmt)
        response = HttpResponse(
            body, content_type="text/csv; charset=utf-8" if fmt == "csv" else "text/plain"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{mapping_set.slug}.{"csv" if fmt == "csv" else "txt"}"'
        )
        return response


def _applied(outcome: apply.Outcome) -> Response:
    body: dict[str, Any] = {"operation": OperationOutputSerializer(outcome.operation).data}
    if outcome.job is None:
        return Response(body)
    body["job"] = JobOutputSerializer(outcome.job).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


APPLY_OUT = inline_serializer(
    "MappingApplyOutput",
    {"operation": OperationOutputSerializer(), "job": JobOutputSerializer(required=False)},
)


class MappingProfileViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Profiles per target network; preview, apply (and undo) and suggestions."""

    serializer_class = s.ProfileOutputSerializer
    queryset = MappingProfile.objects.all()
    lookup_value_regex = "[0-9]+"
    required_perms: list[str] | None = None

    def get_queryset(self) -> Any:
        return selectors.profile_list()

    def get_object(self) -> MappingProfile:
        return selectors.profile_get(ref=self.kwargs["pk"])

    @extend_schema(request=s.ProfileInputSerializer, responses={201: s.ProfileOutputSerializer})
    def create(self, request: Request) -> Response:
        data = s.ProfileInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("version", None)
        profile = profiles.profile_create(**values)
        return Response(s.ProfileOutputSerializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProfileInputSerializer, responses=s.ProfileOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        data = s.ProfileInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        profile = profiles.profile_update(profile=self.get_object(), **values)
        return Response(s.ProfileOutputSerializer(profile).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="Items carry its sets")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        profiles.profile_delete(profile=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.PreviewInputSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"], url_path="preview", required_perms=[])
    def preview(self, request: Request, pk: str) -> Response:
        """Sampled items (input, output with traces, caption, flags) and aggregates; above
        10,000 items the aggregates are a job (`job`)."""
        data = s.PreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        body = preview.mapping_preview(
            profile=self.get_object(),
            q=values["q"],
            ids=values["ids"],
            sample=values["sample"],
            actor=request.user,
        )
        if body["job"] is not None:
            body["job"] = JobOutputSerializer(body["job"]).data
        return Response(body)

    @extend_schema(request=s.TargetInputSerializer, responses={200: APPLY_OUT, 202: APPLY_OUT})
    @action(detail=True, methods=["post"], url_path="apply", required_perms=PROFILE_APPLY)
    def apply(self, request: Request, pk: str) -> Response:
        """Write the profile's derived set on every target item (200 done, 202 queued job)."""
        data = s.TargetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return _applied(
            apply.mapping_apply(
                profile=self.get_object(), q=values["q"], ids=values["ids"], actor=request.user
            )
        )

    @extend_schema(request=s.UndoInputSerializer, responses={200: OperationOutputSerializer})
    @action(detail=True, methods=["post"], url_path="undo", required_perms=PROFILE_APPLY)
    def undo(self, request: Request, pk: str) -> Response:
        """Undo one of this profile's apply operations."""
        data = s.UndoInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = selectors.mapping_operation_get(
            profile=self.get_object(), operation_id=data.validated_data["operation"]
        )
        return Response(
            OperationOutputSerializer(apply.mapping_undo(operation=operation, actor=request.user)).data
        )

    @extend_schema(parameters=[s.SuggestionsQuerySerializer], responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path="suggestions")
    def suggestions(self, request: Request, pk: str) -> Response:
        """Unmapped source tags (most used first) with scored target candidates and evidence."""
        query = s.SuggestionsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = suggestions.mapping_suggestions(
            profile=self.get_object(), limit=query.validated_data["limit"]
        )
        return Response({"results": found})
