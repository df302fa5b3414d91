from django.urls import path

from apps.media import views

app_name = "media"

urlpatterns = [
    path("", views.item_list, name="item-list"),
    path("items/<int:pk>/", views.item_detail, name="item-detail"),
    path("items/<int:pk>/delete", views.item_delete, name="item-delete"),
    path("items/<int:pk>/focus", views.item_focus, name="item-focus"),
    path("items/<int:pk>/transform", views.item_transform, name="item-transform"),
    path("items/<int:pk>/frames", views.item_frames, name="item-frames"),
    path("items/<int:pk>/stream", views.item_stream, name="item-stream"),
    path("items/<int:pk>/preview", views.item_preview, name="item-preview"),
    path("upload/", views.upload, name="upload"),
    path("selection/ids", views.selection_ids, name="selection-ids"),
    path("selection/transform", views.selection_transform, name="selection-transform"),
    path("selection/delete", views.selection_delete, name="selection-delete"),
]
