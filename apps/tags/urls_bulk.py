"""Bulk editor and operation history pages; included by apps/tags/urls.py (namespace `tags`)."""

from django.urls import path

from apps.tags import views_bulk

urlpatterns = [
    path("bulk/", views_bulk.bulk_editor, name="bulk"),
    path("bulk/preview", views_bulk.bulk_preview, name="bulk-preview"),
    path("bulk/<int:pk>/apply", views_bulk.bulk_apply, name="bulk-apply"),
    path("operations/", views_bulk.operation_list, name="operation-list"),
    path("operations/<int:pk>/", views_bulk.operation_detail, name="operation-detail"),
    path("operations/<int:pk>/undo", views_bulk.operation_undo, name="operation-undo"),
]
