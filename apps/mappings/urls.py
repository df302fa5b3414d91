"""Mapping pages under /mappings/ (namespace `mappings`)."""

from django.urls import path

from apps.mappings import views

app_name = "mappings"

urlpatterns = [
    path("", views.home, name="home"),
    path("profiles/new", views.profile_create, name="profile-create"),
    path("sets/<int:pk>/", views.set_detail, name="set-detail"),
    path("sets/<int:pk>/rules/add", views.rule_add, name="rule-add"),
    path("sets/<int:pk>/rules/remove", views.rule_remove, name="rule-remove"),
    path("sets/<int:pk>/import", views.set_import, name="set-import"),
    path("sets/<int:pk>/export", views.set_export, name="set-export"),
    path("profiles/<int:pk>/", views.profile_detail, name="profile-detail"),
    path("profiles/<int:pk>/edit", views.profile_edit, name="profile-edit"),
    path("profiles/<int:pk>/preview", views.profile_preview, name="profile-preview"),
    path("profiles/<int:pk>/apply", views.profile_apply, name="profile-apply"),
    path("profiles/<int:pk>/operations/<int:operation_id>/undo", views.profile_undo, name="profile-undo"),
    path("profiles/<int:pk>/suggestions/", views.suggestion_list, name="suggestions"),
    path("profiles/<int:pk>/suggestions/decide", views.suggestion_decide, name="suggestion-decide"),
]
