from apps.core.routers import OptionalSlashRouter
from apps.media.api.views import MediaItemViewSet

router = OptionalSlashRouter()
router.register("media", MediaItemViewSet, basename="media")
urlpatterns = router.urls
