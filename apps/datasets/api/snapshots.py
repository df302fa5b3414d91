"""Snapshots API (docs/datasets.md#snapshots): list, freeze, one snapshot, its members and the
diff of two. Snapshots are immutable: no update or delete."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.ints import int_param
from apps.datasets import selectors
from apps.datasets.api.views import AFTER, LIMIT, _parse
from apps.datasets.models import Dataset, Snapshot, SnapshotPart
from apps.datasets.selectors import snapshots as snaps
from apps.datasets.services.snapshots import NOTE_MAX, snapshot_create

PAGE_MAX = 1000
SUBSET = OpenApiParameter("subset", str, description="A subset's slug (default: the dataset's own members)")


class SnapshotInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX)


class SnapshotPartSerializer(serializers.ModelSerializer):
    class Meta:
        model = SnapshotPart
        fields = ["position", "subset", "name", "slug", "query", "member_count"]


class SnapshotOutputSerializer(serializers.ModelSerializer):
    parts = serializers.SerializerMethodField(help_text="The subsets as frozen")
    created_by = serializers.SerializerMethodField(help_text="Who froze it (a user name)")

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "dataset",
            "number",
            "note",
            "query",
            "member_count",
            "parts",
            "created_by",
            "created_at",
        ]

    def get_created_by(self, obj: Snapshot) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    def get_parts(self, obj: Snapshot) -> SnapshotPartSerializer(many=True):  # type: ignore[valid-type]
        return SnapshotPartSerializer(snaps.snapshot_parts(snapshot=obj), many=True).data  # type: ignore[return-value]


class FrozenItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="item_id")
    sha256 = serializers.CharField()
    tags_hash = serializers.IntegerField(help_text="Fingerprint of the set of effective tag ids")
    tag_count = serializers.IntegerField()


class FrozenPageSerializer(serializers.Serializer):
    items = FrozenItemSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True)


class DiffItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sha256 = serializers.CharField()
    tag_count = serializers.IntegerField()


class DiffPartSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    items = DiffItemSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    from_snapshot = serializers.IntegerField()
    to_snapshot = serializers.IntegerField()
    subset = serializers.CharField(allow_null=True)
    added = DiffPartSerializer(help_text="In to_snapshot only")
    removed = DiffPartSerializer(help_text="In from_snapshot only")
    retagged = DiffPartSerializer(help_text="In both, with another set of effective tags")


def _page(request: Request) -> tuple[int, int]:
    after = int_param(request.query_params.get("after"), field="after", default=0)
    limit = int_param(
        request.query_params.get("limit"), field="limit", minimum=1, maximum=PAGE_MAX, default=100
    )
    return after, limit


class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Frozen versions of a dataset: members with sha256 and a fingerprint of their tags."""

    serializer_class = SnapshotOutputSerializer
    queryset = Snapshot.objects.none()
    required_perms: list[str] | None = None

    def _dataset(self) -> Dataset:
        return selectors.dataset_get(dataset_id=self.kwargs["dataset_pk"])

    def get_queryset(self) -> QuerySet[Snapshot]:
        return snaps.snapshot_list(dataset=self._dataset())

    def get_object(self) -> Snapshot:
        return snaps.snapshot_get(dataset=self._dataset(), snapshot_id=self.kwargs["pk"])

    @extend_schema(request=SnapshotInputSerializer, responses={201: SnapshotOutputSerializer})
    def create(self, request: Request, dataset_pk: str | None = None) -> Response:
        """Freeze the dataset and its subsets now."""
        data = _parse(SnapshotInputSerializer, request.data)
        snapshot = snapshot_create(dataset=self._dataset(), note=data.get("note", ""), user=request.user)
        return Response(SnapshotOutputSerializer(snapshot).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[SUBSET, AFTER, LIMIT], responses=FrozenPageSerializer)
    @action(detail=True, methods=["get"])
    def members(self, request: Request, dataset_pk: str | None = None, pk: str | None = None) -> Response:
        """The frozen members in id order, keyset paged by `after`."""
        after, limit = _page(request)
        items, next_after = snaps.snapshot_members_page(
            snapshot=self.get_object(),
            subset=request.query_params.get("subset", ""),
            after=after,
            limit=limit,
        )
        return Response(FrozenPageSerializer({"items": items, "next_after": next_after}).data)

    @extend_schema(parameters=[SUBSET, AFTER, LIMIT], responses=DiffSerializer)
    @action(detail=True, methods=["get"], url_path=r"diff/(?P<other>[0-9]+)")
    def diff(
        self, request: Request, dataset_pk: str | None = None, pk: str | None = None, other: str | None = None
    ) -> Response:
        """From this snapshot to `other`: added, removed and retagged members."""
        dataset = self._dataset()
        after, limit = _page(request)
        result = snaps.snapshot_diff(
            a=snaps.snapshot_get(dataset=dataset, snapshot_id=pk),
            b=snaps.snapshot_get(dataset=dataset, snapshot_id=other),
            subset=request.query_params.get("subset", ""),
            after=after,
            limit=limit,
        )
        return Response(DiffSerializer(result).data)
