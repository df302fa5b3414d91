"""Datasets API routes (docs/datasets.md#api)."""

from apps.core.routers import OptionalSlashRouter
from apps.datasets.api import groups, snapshots, views

router = OptionalSlashRouter()
router.register(r"datasets/(?P<dataset_pk>[0-9]+)/subsets", views.SubsetViewSet, basename="dataset-subset")
router.register(
    r"datasets/(?P<dataset_pk>[0-9]+)/snapshots", snapshots.SnapshotViewSet, basename="dataset-snapshot"
)
router.register("data-set-groups", groups.GroupViewSet, basename="data-set-group")
router.register("datasets", views.DatasetViewSet, basename="dataset")
urlpatterns = router.urls
