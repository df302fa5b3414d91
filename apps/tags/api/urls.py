"""Tag API routes. Each viewset module registers here (one line each)."""

from apps.core.routers import OptionalSlashRouter

router = OptionalSlashRouter()
urlpatterns = router.urls
