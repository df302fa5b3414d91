"""Taggers pages under /taggers/ (namespace `taggers`)."""

from django.urls import path

from apps.taggers.views import schemes, spaces, taggers

app_name = "taggers"

urlpatterns = [
    path("", taggers.tagger_list, name="tagger-list"),
    path("<int:pk>/", taggers.tagger_detail, name="tagger-detail"),
    path("<int:pk>/train", taggers.tagger_train, name="tagger-train"),
    path("<int:pk>/versions/<int:number>/promote", taggers.tagger_promote, name="tagger-promote"),
    path("<int:pk>/rollback", taggers.tagger_rollback, name="tagger-rollback"),
    path("<int:pk>/review/", taggers.review_page, name="review"),
    path("<int:pk>/review/decide", taggers.review_decide, name="review-decide"),
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
