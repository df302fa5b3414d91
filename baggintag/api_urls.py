"""Everything under /api/ (namespace `api`)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.api_views import AuthTokenApi

app_name = "api"

urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include("apps.media.api.urls")),
    path("", include("apps.jobs.api.urls")),
    path("", include("apps.tags.api.urls")),
    path("", include("apps.mappings.api.urls")),
]
