"""API for tag types (`tag-types/`), tag templates (`tag-templates/`: vocabularies with CSV import,
export and build-from-usage) and tags (`tags/`, `tags/autocomplete`)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from apps.core.exceptions import DomainError
from apps.tags.api.serializers_vocab import (
    ImportResultOutputSerializer,
    TagAutocompleteInputSerializer,
    TagCreateInputSerializer,
    TagListQuerySerializer,
    TagOutputSerializer,
    TagSuggestionOutputSerializer,
    TagTypeInputSerializer,
    TagTypeOutputSerializer,
    TagUpdateInputSerializer,
    VocabularyBuildInputSerializer,
    VocabularyImportInputSerializer,
    VocabularyInputSerializer,
    VocabularyOutputSerializer,
)
from apps.tags.forms import TagFilter
from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.selectors import autocomplete
from apps.tags.selectors import vocabularies as vocabulary_reads
from apps.tags.services import names, vocabularies, vocabulary_io

TEMPLATE_WRITE = ["tags.change_vocabulary", "tags.add_tag", "tags.change_tag"]


class TagTypePagination(CursorPagination):
    ordering = ("display_order", "id")
    page_size = 100


class TagTypeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Tag types: caption zone and order, dropout, shuffling, export. Writes need the model perms."""

    serializer_class = TagTypeOutputSerializer
    pagination_class = TagTypePagination
    queryset = TagType.objects.all()
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_object(self) -> TagType:
        return vocabulary_reads.tag_type_get(type_id=int(self.kwargs["pk"]))

    @extend_schema(request=TagTypeInputSerializer, responses={201: TagTypeOutputSerializer})
    def create(self, request: Request) -> Response:
        data = TagTypeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tag_type = vocabularies.tag_type_create(**data.validated_data)
        return Response(TagTypeOutputSerializer(tag_type).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TagTypeInputSerializer, responses={200: TagTypeOutputSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        data = TagTypeInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tag_type = vocabularies.tag_type_update(tag_type=self.get_object(), **data.validated_data)
        return Response(TagTypeOutputSerializer(tag_type).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="The type is in use")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        vocabularies.tag_type_delete(tag_type=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VocabularyPagination(CursorPagination):
    ordering = "id"
    page_size = 100


class TagTemplateViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Tag templates (vocabularies): naming rules and policy, CSV import and export, build from usage."""

    serializer_class = VocabularyOutputSerializer
    pagination_class = VocabularyPagination
    queryset = Vocabulary.objects.select_related("default_type")
    required_perms: list[str] | None = None  # set per action; see ModelPermissionsOrReadOnly
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_object(self) -> Vocabulary:
        return vocabulary_reads.vocabulary_get(vocabulary_id=int(self.kwargs["pk"]))

    @extend_schema(request=VocabularyInputSerializer, responses={201: VocabularyOutputSerializer})
    def create(self, request: Request) -> Response:
        data = VocabularyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vocabulary = vocabularies.vocabulary_create(**data.validated_data)
        return Response(VocabularyOutputSerializer(vocabulary).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VocabularyInputSerializer, responses={200: VocabularyOutputSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        data = VocabularyInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        vocabulary = vocabularies.vocabulary_update(vocabulary=self.get_object(), **data.validated_data)
        return Response(VocabularyOutputSerializer(vocabulary).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="The template has tags")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        vocabularies.vocabulary_delete(vocabulary=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request={"multipart/form-data": VocabularyImportInputSerializer},
        responses={200: ImportResultOutputSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
        required_perms=TEMPLATE_WRITE,
    )
    def import_csv(self, request: Request, pk: str) -> Response:
        """Load `name,type,count,aliases` lines; answers with counts and per-line errors."""
        data = VocabularyImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = vocabulary_io.vocabulary_import_csv(
            vocabulary=self.get_object(),
            data=data.validated_data["file"],
            actor=request.user,
            scheme=data.validated_data["scheme"],
        )
        return Response(ImportResultOutputSerializer(result.as_dict()).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request: Request, pk: str) -> StreamingHttpResponse:
        """The template as CSV (`name,type,count,aliases`), streamed."""
        return csv_response(self.get_object())

    @extend_schema(request=VocabularyBuildInputSerializer, responses={200: ImportResultOutputSerializer})
    @action(detail=True, methods=["post"], url_path="build", required_perms=TEMPLATE_WRITE)
    def build(self, request: Request, pk: str) -> Response:
        """Create or refresh this template's tags from the tags in use in another vocabulary."""
        data = VocabularyBuildInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = vocabulary_io.vocabulary_build_from_usage(
            vocabulary=self.get_object(),
            source=values.get("source") or vocabulary_reads.vocabulary_default(),
            scope=values["scope"],
            min_count=values["min_count"],
        )
        return Response(ImportResultOutputSerializer(result.as_dict()).data)


def csv_response(vocabulary: Vocabulary) -> StreamingHttpResponse:
    """A streamed CSV download of a template (shared with the pages)."""
    response = StreamingHttpResponse(
        vocabulary_io.vocabulary_export_csv(vocabulary=vocabulary), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{vocabulary.slug}.csv"'
    return response


class TagKeysetPagination(BasePagination):
    """Keyset pages in `order` (count: most used first, or name), `cursor` from `next`; no COUNT."""

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        params = TagListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        self.request = request
        page = vocabulary_reads.tag_page(
            queryset=queryset,
            order=params.validated_data["order"],
            cursor=params.validated_data.get("cursor", ""),
            size=params.validated_data["page_size"],
        )
        self.next_cursor = page.next_cursor
        return page.rows

    def get_paginated_response(self, data: Any) -> Response:
        next_url = None
        if self.next_cursor:
            next_url = replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)
        return Response({"next": next_url, "previous": None, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "order",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(vocabulary_reads.TAG_ORDERS)},
            },
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "page_size", "in": "query", "required": False, "schema": {"type": "integer"}},
        ]


class TagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tags: filter by template (`vocab`, default: the default template), type, name prefix and
    deprecation; edit type, display name and deprecation; autocomplete. Names never change here
    (renaming is a bulk operation)."""

    serializer_class = TagOutputSerializer
    filterset_class = TagFilter
    pagination_class = TagKeysetPagination
    queryset = Tag.objects.none()
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return vocabulary_reads.tag_list()

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action == "list" and not self.request.query_params.get("vocab"):
            # One template at a time: its (vocabulary, media_count) index serves the keyset order.
            queryset = queryset.filter(vocabulary=vocabulary_reads.vocabulary_default())
        return queryset

    def get_object(self) -> Tag:
        return vocabulary_reads.tag_get(tag_id=int(self.kwargs["pk"]))

    @extend_schema(request=TagCreateInputSerializer, responses={201: TagOutputSerializer})
    def create(self, request: Request) -> Response:
        data = TagCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        tag = names.tag_create(
            vocabulary=values.get("vocabulary") or vocabulary_reads.vocabulary_default(),
            name=values["name"],
            tag_type=values.get("type"),
            display_name=values.get("display_name", ""),
            keep_underscore=values["keep_underscore"],
        )
        return Response(
            TagOutputSerializer(vocabulary_reads.tag_get(tag_id=tag.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=TagUpdateInputSerializer, responses={200: TagOutputSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        data = TagUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        tag = names.tag_update(tag=self.get_object(), **data.validated_data)
        return Response(TagOutputSerializer(tag).data)

    @extend_schema(
        parameters=[TagAutocompleteInputSerializer],
        responses={
            200: inline_serializer(
                "TagAutocompleteOutput",
                {"q": serializers.CharField(), "results": TagSuggestionOutputSerializer(many=True)},
            )
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def autocomplete(self, request: Request) -> Response:
        """Suggestions for a partly typed tag: name prefixes and word starts ranked by use,
        aliases shown as `antecedent → ideal`, one-typo matches when there are few."""
        params = TagAutocompleteInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        vocabulary = (
            vocabulary_reads.vocabulary_get(slug=values["vocab"])
            if values.get("vocab")
            else vocabulary_reads.vocabulary_default()
        )
        tag_type = None
        if values.get("type"):
            tag_type = vocabulary_reads.tag_type_find_by_key(key=values["type"])
            if tag_type is None:
                raise DomainError(
                    f"Unknown tag type {values['type']!r}.",
                    code="tags.unknown_type",
                    details={"fields": {"type": ["Unknown tag type."]}},
                )
        found = autocomplete.tag_autocomplete(
            q=values["q"], vocabulary=vocabulary, tag_type=tag_type, limit=values["limit"]
        )
        return Response(
            {
                "q": autocomplete.tag_query_normalise(values["q"], vocabulary),
                "results": [suggestion.as_dict() for suggestion in found],
            }
        )
