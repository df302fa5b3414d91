from apps.core.routers import OptionalSlashRouter
from apps.jobs.api.views import JobViewSet

router = OptionalSlashRouter()
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
