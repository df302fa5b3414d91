"""Intake API routes (docs/intake.md#api)."""

from apps.core.routers import OptionalSlashRouter
from apps.intake.api import views

router = OptionalSlashRouter()
router.register("intake", views.IntakeEntryViewSet, basename="intake-entry")
urlpatterns = router.urls
