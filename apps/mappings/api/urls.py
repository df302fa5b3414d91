"""Mapping API routes (docs/api.md#tag-mappings)."""

from apps.core.routers import OptionalSlashRouter
from apps.mappings.api import views

router = OptionalSlashRouter()
router.register("tag-mappings", views.TagMappingViewSet, basename="tag-mapping")
router.register("mapping-profiles", views.MappingProfileViewSet, basename="mapping-profile")
urlpatterns = router.urls
