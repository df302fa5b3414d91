"""Training API routes (docs/training.md#api)."""

from apps.core.routers import OptionalSlashRouter
from apps.training.api import views

router = OptionalSlashRouter()
router.register("training-sessions", views.TrainingSessionViewSet, basename="training-session")
router.register("base-models", views.BaseModelViewSet, basename="base-model")
router.register("textual-inversions", views.TextualInversionViewSet, basename="textual-inversion")
router.register("training-exports", views.TrainingExportViewSet, basename="training-export")
urlpatterns = router.urls
