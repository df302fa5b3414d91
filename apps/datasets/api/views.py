"""Datasets API (docs/datasets.md#api): parse, call one service or selector, answer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.datasets import buckets, selectors, services, stats
from apps.datasets.api import serializers as s
from apps.datasets.models import Dataset, Subset
from apps.datasets.services import conform
from apps.jobs.api.serializers import job_accepted_body

CHANGE = ["datasets.change_dataset"]
CONFORM = ["datasets.change_dataset", "media.add_mediaitem"]
PAGE_MAX = 200
REPORT_MAX = 1000
AFTER = OpenApiParameter("after", int, description="Only ids above this (the previous page's next_after)")
SEARCH = OpenApiParameter("q", str, description="Part of a dataset's name or slug")
LIMIT = OpenApiParameter("limit", int, description="Rows per page (per requirement for validate)")


def _parse(serializer_class: type[drf_serializers.Serializer], data: Any, *, partial: bool = False) -> Any:
    """Validated data, or a 400 with code `datasets.invalid` naming the fields to fix."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        fields = {
            key: [str(m) for m in value] if isinstance(value, list) else value
            for key, value in serializer.errors.items()
        }
        field, messages = next(iter(fields.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        raise DomainError(f"{field}: {first}", code="datasets.invalid", details={"fields": fields})
    return serializer.validated_data


def _members(request: Request, members: QuerySet[Any]) -> Response:
    page = selectors.members_page(
        members=members,
        after=int_param(request.query_params.get("after"), field="after", default=0),
        limit=int_param(
            request.query_params.get("limit"), field="limit", minimum=1, maximum=PAGE_MAX, default=50
        ),
    )
    return Response(s.MembersOutputSerializer({"items": page.items, "next_after": page.next_after}).data)


def _items(request: Request, owner: Dataset | Subset) -> Response:
    data = _parse(s.ItemsInputSerializer, request.data)
    return Response(services.members_edit(owner=owner, action=data["action"], item_ids=data["items"]))


class DatasetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Datasets: members = explicit items ∪ the saved query's matches − exclusions."""

    serializer_class = s.DatasetOutputSerializer
    queryset = Dataset.objects.none()
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[Dataset]:
        return selectors.dataset_list().prefetch_related("requirements__required_tag_types")

    def get_object(self) -> Dataset:
        return selectors.dataset_get(dataset_id=self.kwargs["pk"])

    def _answer(self, dataset: Dataset, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.DatasetOutputSerializer(self.get_object_by_pk(dataset.pk)).data, status=code)

    @staticmethod
    def get_object_by_pk(pk: int) -> Dataset:
        return selectors.dataset_get(dataset_id=pk)

    @extend_schema(request=s.DatasetInputSerializer, responses={201: s.DatasetOutputSerializer})
    def create(self, request: Request) -> Response:
        data = _parse(s.DatasetInputSerializer, request.data)
        return self._answer(services.dataset_create(**data), status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetInputSerializer, responses=s.DatasetOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        dataset = self.get_object()
        data = _parse(s.DatasetInputSerializer, request.data, partial=True)
        return self._answer(services.dataset_update(dataset=dataset, **data))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.dataset_delete(dataset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ItemsInputSerializer, responses=s.ItemsOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=CHANGE)
    def items(self, request: Request, pk: str | None = None) -> Response:
        """Add, remove, exclude or unexclude items (all or nothing)."""
        return _items(request, self.get_object())

    @extend_schema(parameters=[AFTER, LIMIT], responses=s.MembersOutputSerializer)
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """Members in id order, keyset paged by `after`."""
        dataset = self.get_object()
        return _members(request, selectors.dataset_members(dataset=dataset, viewer=request.user))

    @extend_schema(parameters=[SEARCH], responses=s.DatasetOutputSerializer(many=True))
    @action(detail=False, methods=["get"])
    def search(self, request: Request) -> Response:
        """Datasets whose name or slug contains `q`, newest first, paged like the list."""
        found = selectors.dataset_search(search=(request.query_params.get("q") or "").strip())
        page = self.paginate_queryset(found.prefetch_related("requirements__required_tag_types"))
        return self.get_paginated_response(s.DatasetOutputSerializer(page, many=True).data)

    @extend_schema(parameters=[AFTER, LIMIT], responses=s.MembersOutputSerializer)
    @action(detail=True, methods=["get"])
    def images(self, request: Request, pk: str | None = None) -> Response:
        """Members in id order, keyset paged by `after` (the seed's name for `members`)."""
        dataset = self.get_object()
        return _members(request, selectors.dataset_members(dataset=dataset, viewer=request.user))

    @extend_schema(request=s.ImagesInputSerializer, responses=s.ItemsOutputSerializer)
    @action(detail=True, methods=["post"], url_path="append-images", required_perms=CHANGE)
    def append_images(self, request: Request, pk: str | None = None) -> Response:
        """Add items as explicit members (clears their exclusions); all or nothing."""
        data = _parse(s.ImagesInputSerializer, request.data)
        return Response(services.members_edit(owner=self.get_object(), action="add", item_ids=data["images"]))

    @extend_schema(request=s.RemoveImagesInputSerializer, responses=s.ItemsOutputSerializer)
    @action(detail=True, methods=["post"], url_path="remove-images", required_perms=CHANGE)
    def remove_images(self, request: Request, pk: str | None = None) -> Response:
        """Drop explicit members by id (each must be one, else 400) or those a query matches."""
        data = _parse(s.RemoveImagesInputSerializer, request.data)
        dataset = self.get_object()
        if "query" in data:
            return Response(
                services.members_remove_matching(owner=dataset, q=data["query"], viewer=request.user)
            )
        return Response(services.members_edit(owner=dataset, action="remove", item_ids=data["images"]))

    @extend_schema(parameters=[AFTER, LIMIT], responses=s.ValidationReportSerializer)
    @action(detail=True, methods=["get"])
    def validate(self, request: Request, pk: str | None = None) -> Response:
        """Failing members per requirement with the measured value, and counts."""
        report = selectors.validation_report(
            dataset=self.get_object(),
            viewer=request.user,
            after=int_param(request.query_params.get("after"), field="after", default=0),
            limit=int_param(
                request.query_params.get("limit"), field="limit", minimum=1, maximum=REPORT_MAX, default=100
            ),
        )
        return Response(s.ValidationReportSerializer(report).data)

    @extend_schema(
        methods=["get"],
        parameters=[
            AFTER,
            LIMIT,
            OpenApiParameter("target", str, description="rules (default) or bucket"),
            OpenApiParameter("base", int, description="Bucket base resolution (default 1024)"),
            OpenApiParameter("max_upscale", float, description="1 (default: never enlarge) to 4"),
            OpenApiParameter("quality", int, description="JPEG/WebP quality (default 95)"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @extend_schema(methods=["post"], request=OpenApiTypes.OBJECT, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get", "post"], required_perms=CONFORM)
    def conform(self, request: Request, pk: str | None = None) -> Response:
        """GET: what conform would do with each failing member; POST: start the conform job."""
        dataset = self.get_object()
        if request.method == "POST":
            body = request.data if isinstance(request.data, dict) else {}
            job = conform.conform_start(dataset=dataset, options=body, actor=request.user)
            accepted = job_accepted_body(job)
            return Response(
                accepted, status=status.HTTP_202_ACCEPTED, headers={"Location": accepted["job"]["url"]}
            )
        params = request.query_params
        preview = conform.conform_preview(
            dataset=dataset,
            options={k: params.get(k) for k in ("target", "base", "max_upscale", "quality")},
            after=int_param(params.get("after"), field="after", default=0),
            limit=int_param(params.get("limit"), field="limit", minimum=1, maximum=PAGE_MAX, default=50),
            viewer=request.user,
        )
        return Response(preview)

    @extend_schema(
        parameters=[OpenApiParameter("base", int, description="Bucket base resolution (default 1024)")],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        """Statistics of the members: sizes, aspects, buckets, formats, tags, sources, artists."""
        return Response(
            stats.dataset_stats(
                dataset=self.get_object(),
                base=buckets.base_param(request.query_params.get("base")),
                viewer=request.user,
            )
        )


class SubsetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """A dataset's subsets: named parts with their own membership."""

    serializer_class = s.SubsetOutputSerializer
    queryset = Subset.objects.none()
    required_perms: list[str] | None = None

    def _dataset(self) -> Dataset:
        return selectors.dataset_get(dataset_id=self.kwargs["dataset_pk"])

    def get_queryset(self) -> QuerySet[Subset]:
        return selectors.subset_list(dataset=self._dataset(), order="-id")

    def get_object(self) -> Subset:
        return selectors.subset_get(dataset=self._dataset(), subset_id=self.kwargs["pk"])

    @extend_schema(request=s.SubsetInputSerializer, responses={201: s.SubsetOutputSerializer})
    def create(self, request: Request, dataset_pk: str | None = None) -> Response:
        data = _parse(s.SubsetInputSerializer, request.data)
        subset = services.subset_create(dataset=self._dataset(), **data)
        return Response(s.SubsetOutputSerializer(subset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SubsetInputSerializer, responses=s.SubsetOutputSerializer)
    def partial_update(
        self, request: Request, dataset_pk: str | None = None, pk: str | None = None
    ) -> Response:
        subset = self.get_object()
        data = _parse(s.SubsetInputSerializer, request.data, partial=True)
        return Response(s.SubsetOutputSerializer(services.subset_update(subset=subset, **data)).data)

    def destroy(self, request: Request, dataset_pk: str | None = None, pk: str | None = None) -> Response:
        services.subset_delete(subset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ItemsInputSerializer, responses=s.ItemsOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=CHANGE)
    def items(self, request: Request, dataset_pk: str | None = None, pk: str | None = None) -> Response:
        return _items(request, self.get_object())

    @extend_schema(parameters=[AFTER, LIMIT], responses=s.MembersOutputSerializer)
    @action(detail=True, methods=["get"])
    def members(self, request: Request, dataset_pk: str | None = None, pk: str | None = None) -> Response:
        return _members(request, selectors.subset_members(subset=self.get_object(), viewer=request.user))
