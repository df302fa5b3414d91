"""Everything under /api/ (namespace `api`)."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from apps.core.api_views import ApiRootApi, AuthTokenApi

app_name = "api"

urlpatterns = [
    path("", ApiRootApi.as_view(), name="root"),
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    # Schema and docs are for signed-in users, like the rest of the API (docs/api.md#authentication):
    # the schema by token or session (else 401), the docs page by session (else the login page).
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
    path("", include("apps.media.api.urls")),
    path("", include("apps.jobs.api.urls")),
    path("", include("apps.tags.api.urls")),
    path("", include("apps.mappings.api.urls")),
    path("", include("apps.taggers.api.urls")),
    path("", include("apps.datasets.api.urls")),
    path("", include("apps.taggers.api.scheme_urls")),
    path("", include("apps.intake.api.urls")),
    path("", include("apps.training.api.urls")),
]
