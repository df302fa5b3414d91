from django.urls import include, path

from apps.tags import views

app_name = "tags"

urlpatterns = [
    path("", views.tag_list, name="tag-list"),
    path("types/", views.type_list, name="type-list"),
    path("types/new", views.type_create, name="type-create"),
    path("types/<int:pk>/", views.type_row, name="type-row"),
    path("types/<int:pk>/edit", views.type_edit, name="type-edit"),
    path("types/<int:pk>/delete", views.type_delete, name="type-delete"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/<int:pk>/", views.template_detail, name="template-detail"),
    path("templates/<int:pk>/import", views.template_import, name="template-import"),
    path("templates/<int:pk>/build", views.template_build, name="template-build"),
    path("templates/<int:pk>/export.csv", views.template_export, name="template-export"),
    path("templates/<int:pk>/delete", views.template_delete, name="template-delete"),
    path("", include("apps.tags.urls_bulk")),
]
