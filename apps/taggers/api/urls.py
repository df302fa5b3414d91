"""Taggers API routes (docs/api.md#taggers)."""

from apps.core.routers import OptionalSlashRouter
from apps.taggers.api import space_views, tagger_views

router = OptionalSlashRouter()
router.register("embedding-spaces", space_views.EmbeddingSpaceViewSet, basename="embedding-space")
router.register("taggers", tagger_views.TaggerViewSet, basename="tagger")
urlpatterns = router.urls
