from __future__ import annotations

import json
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import IdField, int_field
from apps.core.exceptions import DomainError, NotFoundError, UnprocessableError
from apps.jobs.api.serializers import job_accepted_body
from apps.media import extensions, selectors, services
from apps.media.api.serializers import (
    MediaItemOutputSerializer,
    MediaItemPatchSerializer,
    MediaListPageSerializer,
    MediaSearchPageSerializer,
    MediaUploadBulkInputSerializer,
    MediaUploadInputSerializer,
    MediaUploadOutputSerializer,
    TransformBulkInputSerializer,
    VideoFrameOutputSerializer,
)
from apps.media.filters import MediaItemFilter
from apps.media.models import MediaItem
from apps.media.services import fetch, frames, storage, transforms
from apps.media.services.ingest import Origin

ADD_MEDIA = ["media.add_mediaitem"]


SEARCH_SCHEMA = [
    OpenApiParameter("q", str, description="Tag query (docs/query-language.md); answers with next_cursor"),
    OpenApiParameter("cursor", str, description="next_cursor or prev_cursor of a page of the same query"),
    OpenApiParameter("limit", int, description="Page size 1–200 (limit: in q wins)"),
    OpenApiParameter("count", str, enum=["none", "estimate", "exact"], description="Count mode"),
]


class MediaItemViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The media library: list and filter (`q=` through the query provider), fetch, delete, upload, files,
    transforms and frames. An item's tag sets live at `media/{id}/tag-sets` in the tags API."""

    serializer_class = MediaItemOutputSerializer
    required_perms: list[str] | None = None  # set per action; see ModelPermissionsOrReadOnly
    filterset_class = MediaItemFilter
    queryset = MediaItem.objects.none()

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.media_item_list(viewer=self.request.user)

    def get_object(self) -> MediaItem:
        return selectors.media_item_get(item_id=self.kwargs["pk"], viewer=self.request.user)

    # Without q= a cursor page of items; with q= a search page (both documented, oneOf).
    @extend_schema(
        parameters=SEARCH_SCHEMA,
        responses=PolymorphicProxySerializer(
            component_name="MediaListOrSearchPage",
            serializers=[MediaListPageSerializer, MediaSearchPageSerializer],
            resource_type_field_name=None,
            many=False,
        ),
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if "q" in request.query_params:
            return extensions.query_provider().api(request, self.filter_queryset(self.get_queryset()))
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=SEARCH_SCHEMA, responses=MediaSearchPageSerializer, filters=True)
    @action(detail=False, methods=["get"])
    def search(self, request: Request) -> Response:
        """The query language (`q=`), keyset-paged by `cursor`; the list filters narrow it."""
        return extensions.query_provider().api(request, self.filter_queryset(self.get_queryset()))

    @extend_schema(request=MediaItemPatchSerializer, responses=MediaItemOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Set or clear the item's focus box (docs/training.md#focus-boxes); needs change permission."""
        item = self.get_object()
        data = MediaItemPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.media_item_set_focus(item=item, focus=data.validated_data["focus"])
        return Response(MediaItemOutputSerializer(item).data)

    def perform_destroy(self, instance: MediaItem) -> None:
        services.media_item_delete(item=instance)

    @extend_schema(
        request=MediaUploadInputSerializer,
        responses={201: MediaUploadOutputSerializer, 200: MediaUploadOutputSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        parser_classes=[MultiPartParser, FormParser, JSONParser],
        required_perms=ADD_MEDIA,
    )
    def upload(self, request: Request) -> Response:
        data = MediaUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        metadata = services.metadata_clean(
            name=values.get("name", ""),
            source=values.get("source", ""),
            artist=values.get("artist", ""),
            tags=values.get("tags"),
            tag_source=values.get("tag_source", ""),
        )
        if upload := values.get("file"):
            result = services.media_ingest(
                stream=upload,
                metadata=metadata,
                added_by=request.user,
                origin=Origin(kind="upload", original_filename=upload.name or ""),
            )
        else:
            fetched = fetch.fetch_url(values["url"])
            try:
                with fetched.path.open("rb") as handle:
                    result = services.media_ingest(
                        stream=handle,
                        metadata=metadata,
                        added_by=request.user,
                        origin=Origin(kind="url", url=values["url"], original_filename=fetched.filename),
                    )
            finally:
                fetched.path.unlink(missing_ok=True)
        body = MediaItemOutputSerializer(result.item).data
        body["duplicate"] = result.duplicate
        return Response(body, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED)

    @extend_schema(
        request=MediaUploadBulkInputSerializer,
        responses={202: inline_serializer("JobAccepted", {"job": serializers.DictField()})},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="upload-bulk",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
        required_perms=ADD_MEDIA,
    )
    def upload_bulk(self, request: Request) -> Response:
        payload: Any = request.data
        if hasattr(payload, "getlist"):
            payload = {
                "files": payload.getlist("files"),
                "urls": _lines(payload.getlist("urls")),
                **{
                    k: payload.get(k)
                    for k in ("archive", "source", "artist", "tag_source")
                    if payload.get(k) not in (None, "")
                },
                **({"tags": payload.getlist("tags")} if "tags" in payload else {}),
                **({"items": _json_list(payload.get("items"))} if payload.get("items") else {}),
            }
        data = MediaUploadBulkInputSerializer(data=payload)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job = services.media_upload_bulk_start(
            files=values.get("files", []),
            archive=values.get("archive"),
            urls=values.get("urls", []),
            items=values.get("items", []),
            defaults={k: values.get(k) for k in ("source", "artist", "tags", "tag_source")},
            added_by=request.user,
        )
        return _accepted(job)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk: str | None = None) -> FileResponse:
        item = self.get_object()
        return _file_response(item.storage_key, item.mime_type, item.name)

    @extend_schema(responses={(200, "image/webp"): bytes})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str | None = None) -> FileResponse:
        item = self.get_object()
        if not item.thumbnail_key:
            raise NotFoundError("This item has no thumbnail.", code="media.no_thumbnail")
        response = _file_response(item.thumbnail_key, "image/webp", f"{item.pk}.webp")
        response["Cache-Control"] = "private, max-age=86400, immutable"
        return response

    @extend_schema(
        request=inline_serializer(
            "TransformRecipe",
            {
                "ops": serializers.ListField(child=serializers.DictField()),
                "output": serializers.DictField(),
                "frame": IdField(required=False),
            },
        ),
        responses={201: MediaUploadOutputSerializer, 200: MediaUploadOutputSerializer},
    )
    @action(detail=True, methods=["post"], required_perms=ADD_MEDIA)
    def transform(self, request: Request, pk: str | None = None) -> Response:
        """Crop, scale, rotate, flip or convert into a new item (the same recipe returns the same item)."""
        result = transforms.media_item_transform(
            item=self.get_object(), recipe=request.data, added_by=request.user
        )
        body = MediaItemOutputSerializer(result.item).data
        body["duplicate"] = result.duplicate
        return Response(body, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED)

    @extend_schema(
        request=TransformBulkInputSerializer,
        responses={202: inline_serializer("TransformJobAccepted", {"job": serializers.DictField()})},
    )
    @action(detail=False, methods=["post"], url_path="transform-bulk", required_perms=ADD_MEDIA)
    def transform_bulk(self, request: Request) -> Response:
        data = TransformBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = transforms.media_transform_bulk_start(
            ids=data.validated_data["ids"], recipe=data.validated_data["recipe"], added_by=request.user
        )
        return _accepted(job)

    @extend_schema(methods=["get"], responses=VideoFrameOutputSerializer(many=True))
    @extend_schema(
        methods=["post"],
        request=inline_serializer(
            "FramesRequest",
            {
                "mode": serializers.ChoiceField(choices=frames.MODES),
                "timestamps": serializers.ListField(child=serializers.FloatField(), required=False),
                "interval": serializers.FloatField(required=False),
                "count": int_field(required=False, min_value=1),
                "threshold": serializers.FloatField(required=False),
                "box": serializers.ListField(child=int_field(), required=False),
                "skip_similar": int_field(required=False, max_value=32),
            },
        ),
        responses={202: inline_serializer("FramesJobAccepted", {"job": serializers.DictField()})},
    )
    @action(detail=True, methods=["get", "post"], required_perms=ADD_MEDIA)
    def frames(self, request: Request, pk: str | None = None) -> Response:
        """Capture frames (a job) or list a video's captured frames in time order."""
        video = self.get_object()
        if request.method == "POST":
            return _accepted(
                frames.media_frames_extract_start(video=video, request=request.data, added_by=request.user)
            )
        if video.kind != MediaItem.Kind.VIDEO:
            raise UnprocessableError(f"Item {video.pk} is not a video.", code="media.not_a_video")
        paginator = FramePagination()
        page = paginator.paginate_queryset(selectors.video_frame_list(video=video), request)
        return paginator.get_paginated_response(VideoFrameOutputSerializer(page, many=True).data)


class FramePagination(CursorPagination):
    ordering = ("timestamp_ms", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


def _accepted(job: Any) -> Response:
    body = job_accepted_body(job)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


def _lines(values: list[str]) -> list[str]:
    """URLs from form fields: repeated fields and/or one URL per line."""
    return [line.strip() for value in values for line in str(value).splitlines() if line.strip()]


def _json_list(raw: Any) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise DomainError("items must be a JSON list of objects.", code="invalid") from exc


def _file_response(key: str, content_type: str, filename: str) -> FileResponse:
    try:
        size = default_storage.size(key)
        handle = storage.open_stored(key)  # streamed, never downloaded whole first (S3)
    except FileNotFoundError as exc:
        raise NotFoundError("The stored file is missing.", code="media.file_missing") from exc
    response = FileResponse(handle, content_type=content_type, filename=filename, as_attachment=False)
    response["Content-Length"] = str(size)
    return response
