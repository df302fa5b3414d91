"""Dataset groups API with the seed's names (docs/datasets.md#groups): `data-set-groups/`."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import IdField
from apps.datasets.api.views import _parse
from apps.datasets.models import DatasetGroup, DatasetGroupEntry
from apps.datasets.selectors import groups as reads
from apps.datasets.services import groups as writes
from apps.datasets.services.groups import ENTRIES_MAX

CHANGE = ["datasets.change_datasetgroup"]
SEARCH = OpenApiParameter("search", str, description="Part of the name or slug")


class GroupInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)


class GroupOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetGroup
        fields = ["id", "name", "slug", "description", "created_at", "updated_at"]


class EntriesInputSerializer(serializers.Serializer):
    data_sets = serializers.ListField(child=IdField(), required=False, max_length=ENTRIES_MAX)
    groups = serializers.ListField(
        child=IdField(), required=False, max_length=ENTRIES_MAX, help_text="Groups to nest (as entries)"
    )


class AppendGroupInputSerializer(serializers.Serializer):
    group = IdField(help_text="The group whose entries are copied to the end of this one")


class CountSerializer(serializers.Serializer):
    appended = serializers.IntegerField(required=False)
    removed = serializers.IntegerField(required=False)


class NamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class EntrySerializer(serializers.ModelSerializer):
    dataset = NamedSerializer(allow_null=True)
    group = NamedSerializer(source="child", allow_null=True, help_text="A nested group")

    class Meta:
        model = DatasetGroupEntry
        fields = ["position", "dataset", "group"]


class FlatSerializer(serializers.Serializer):
    dataset = NamedSerializer()
    via = serializers.ListField(child=serializers.IntegerField(), help_text="Groups from this one down")


class GroupDatasetsSerializer(serializers.Serializer):
    entries = EntrySerializer(many=True)
    data_sets = FlatSerializer(many=True, help_text="Every dataset, nested groups expanded, once each")


class GroupViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Groups of datasets in order; an entry is a dataset or a nested group."""

    serializer_class = GroupOutputSerializer
    queryset = DatasetGroup.objects.none()
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[DatasetGroup]:
        return reads.group_list(search=self.request.query_params.get("search", "").strip()[:200])

    def get_object(self) -> DatasetGroup:
        return reads.group_get(group_id=self.kwargs["pk"])

    @extend_schema(parameters=[SEARCH])
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(request=GroupInputSerializer, responses={201: GroupOutputSerializer})
    def create(self, request: Request) -> Response:
        group = writes.group_create(**_parse(GroupInputSerializer, request.data))
        return Response(GroupOutputSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GroupInputSerializer, responses=GroupOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _parse(GroupInputSerializer, request.data, partial=True)
        return Response(GroupOutputSerializer(writes.group_update(group=self.get_object(), **data)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        writes.group_delete(group=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=GroupDatasetsSerializer)
    @action(detail=True, methods=["get"], url_path="data-sets")
    def data_sets(self, request: Request, pk: str | None = None) -> Response:
        """The entries in order, and every dataset with nested groups expanded."""
        group = self.get_object()
        body = {"entries": reads.group_entries(group=group), "data_sets": reads.group_datasets(group=group)}
        return Response(GroupDatasetsSerializer(body).data)

    @extend_schema(request=EntriesInputSerializer, responses=CountSerializer)
    @action(detail=True, methods=["post"], url_path="append-data-sets", required_perms=CHANGE)
    def append_data_sets(self, request: Request, pk: str | None = None) -> Response:
        """Append datasets (and groups to nest) to the end; entries already there stay."""
        data = _parse(EntriesInputSerializer, request.data)
        return Response(writes.group_append(group=self.get_object(), **data))

    @extend_schema(request=AppendGroupInputSerializer, responses=CountSerializer)
    @action(detail=True, methods=["post"], url_path="append-data-set-group", required_perms=CHANGE)
    def append_data_set_group(self, request: Request, pk: str | None = None) -> Response:
        """Copy another group's entries to the end of this one."""
        data = _parse(AppendGroupInputSerializer, request.data)
        return Response(writes.group_append_group(group=self.get_object(), other_id=data["group"]))

    @extend_schema(request=EntriesInputSerializer, responses=CountSerializer)
    @action(detail=True, methods=["post"], url_path="remove-data-sets", required_perms=CHANGE)
    def remove_data_sets(self, request: Request, pk: str | None = None) -> Response:
        """Remove datasets (and nested groups); every id must be an entry, else 400."""
        data = _parse(EntriesInputSerializer, request.data)
        return Response(writes.group_remove(group=self.get_object(), **data))
