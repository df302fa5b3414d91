"""Tagging-scheme API routes (docs/api.md#tagging-schemes)."""

from apps.core.routers import OptionalSlashRouter
from apps.taggers.api import scheme_views as views

router = OptionalSlashRouter()
router.register("tagging-schemes", views.TaggingSchemeViewSet, basename="tagging-scheme")
router.register("scheme-runs", views.SchemeRunViewSet, basename="scheme-run")
router.register("scheme-schedules", views.SchemeScheduleViewSet, basename="scheme-schedule")
urlpatterns = router.urls
