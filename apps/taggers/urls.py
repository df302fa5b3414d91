"""Taggers pages under /taggers/ (namespace `taggers`)."""

from django.urls import path

from apps.taggers.views import spaces

app_name = "taggers"

urlpatterns = [
    path("spaces/", spaces.space_list, name="space-list"),
    path("spaces/<int:pk>/", spaces.space_detail, name="space-detail"),
    path("spaces/<int:pk>/embed", spaces.space_embed, name="space-embed"),
]
