"""Datasets API routes (docs/datasets.md#api)."""

from apps.core.routers import OptionalSlashRouter
from apps.datasets.api import views

router = OptionalSlashRouter()
router.register(r"datasets/(?P<dataset_pk>[0-9]+)/subsets", views.SubsetViewSet, basename="dataset-subset")
router.register("datasets", views.DatasetViewSet, basename="dataset")
urlpatterns = router.urls
