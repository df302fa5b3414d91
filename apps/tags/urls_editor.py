from django.urls import path

from apps.tags import views_editor

app_name = "tag_editor"

urlpatterns = [
    path("items/<int:pk>/", views_editor.editor, name="editor"),
    path("items/<int:pk>/suggest", views_editor.suggest, name="suggest"),
    path("items/<int:pk>/add", views_editor.tag_add, name="add"),
    path("items/<int:pk>/remove", views_editor.tag_remove, name="remove"),
    path("items/<int:pk>/promote", views_editor.tag_promote, name="promote"),
    path("items/<int:pk>/descriptions/add", views_editor.description_add, name="description-add"),
    path(
        "items/<int:pk>/descriptions/<int:description_id>/",
        views_editor.description_show,
        name="description",
    ),
    path(
        "items/<int:pk>/descriptions/<int:description_id>/edit",
        views_editor.description_edit,
        name="description-edit",
    ),
    path(
        "items/<int:pk>/descriptions/<int:description_id>/delete",
        views_editor.description_delete,
        name="description-delete",
    ),
]
