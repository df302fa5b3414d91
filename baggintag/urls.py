from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.views import ThrottledLoginView

handler404 = "apps.core.views.not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("baggintag.api_urls")),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", include("apps.jobs.urls")),
    path("tags/", include("apps.tags.urls")),
    path("mappings/", include("apps.mappings.urls")),
    path("taggers/", include("apps.taggers.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("intake/", include("apps.intake.urls")),
    path("training/", include("apps.training.page_urls")),
    path("", include("apps.media.urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
