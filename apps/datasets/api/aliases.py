"""`/api/datasets/…`: the old spelling of the datasets API, kept working as an alias of the
seed's `/api/data-sets/…` (docs/datasets.md#api). Left out of the OpenAPI schema so each
operation is described (and has its operation id) once."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from apps.datasets.api import snapshots, views


@extend_schema(exclude=True)
class DatasetAliasViewSet(views.DatasetViewSet):
    """Alias of DatasetViewSet under /api/datasets/."""


@extend_schema(exclude=True)
class SubsetAliasViewSet(views.SubsetViewSet):
    """Alias of SubsetViewSet under /api/datasets/{id}/subsets/."""


@extend_schema(exclude=True)
class SnapshotAliasViewSet(snapshots.SnapshotViewSet):
    """Alias of SnapshotViewSet under /api/datasets/{id}/snapshots/."""
