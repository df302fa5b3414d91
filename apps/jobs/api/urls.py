from rest_framework.routers import SimpleRouter

from apps.jobs.api.views import JobViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
