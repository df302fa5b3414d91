from rest_framework.routers import SimpleRouter

from apps.media.api.views import MediaItemViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("media", MediaItemViewSet, basename="media")
urlpatterns = router.urls
