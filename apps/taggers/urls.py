"""Taggers pages under /taggers/ (namespace `taggers`)."""

from django.urls import path

from apps.taggers.views import schemes, spaces

app_name = "taggers"

urlpatterns = [
    path("spaces/", spaces.space_list, name="space-list"),
    path("spaces/<int:pk>/", spaces.space_detail, name="space-detail"),
    path("spaces/<int:pk>/embed", spaces.space_embed, name="space-embed"),
    path("schemes/", schemes.scheme_list, name="scheme-list"),
    path("schemes/<int:pk>/", schemes.scheme_detail, name="scheme-detail"),
    path("schemes/<int:pk>/run", schemes.scheme_run, name="scheme-run-start"),
    path("schemes/runs/<int:pk>/", schemes.run_detail, name="scheme-run"),
    path("schemes/runs/<int:pk>/cancel", schemes.run_cancel, name="scheme-run-cancel"),
    path("schemes/schedules/", schemes.schedule_list, name="schedule-list"),
    path("schemes/schedules/<int:pk>/toggle", schemes.schedule_toggle, name="schedule-toggle"),
    path("schemes/schedules/<int:pk>/delete", schemes.schedule_delete, name="schedule-delete"),
]
