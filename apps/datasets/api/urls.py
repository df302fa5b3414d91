"""Datasets API routes (docs/datasets.md#api): the seed's `data-sets/` spellings, and the
older `datasets/` ones as an alias left out of the schema."""

from apps.core.routers import OptionalSlashRouter
from apps.datasets.api import aliases, groups, snapshots, views

router = OptionalSlashRouter()
router.register(r"data-sets/(?P<dataset_pk>[0-9]+)/subsets", views.SubsetViewSet, basename="data-set-subset")
router.register(
    r"data-sets/(?P<dataset_pk>[0-9]+)/snapshots", snapshots.SnapshotViewSet, basename="data-set-snapshot"
)
router.register("data-set-groups", groups.GroupViewSet, basename="data-set-group")
router.register("data-sets", views.DatasetViewSet, basename="data-set")
router.register(
    r"datasets/(?P<dataset_pk>[0-9]+)/subsets", aliases.SubsetAliasViewSet, basename="dataset-subset"
)
router.register(
    r"datasets/(?P<dataset_pk>[0-9]+)/snapshots", aliases.SnapshotAliasViewSet, basename="dataset-snapshot"
)
router.register("datasets", aliases.DatasetAliasViewSet, basename="dataset")
urlpatterns = router.urls
