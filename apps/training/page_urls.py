"""Training pages under /training/ (docs/training.md#pages); the API is in api/urls.py."""

from django.urls import path

from apps.training import views
from apps.training.views import base_models, exports, ti

app_name = "training"

urlpatterns = [
    path("", views.session_list, name="session-list"),
    path("new", views.session_create, name="session-create"),
    path("preview", views.session_preview, name="session-draft-preview"),
    path("<int:pk>/", views.session_edit, name="session-edit"),
    path("<int:pk>/preview", views.session_preview, name="session-preview"),
    path("<int:pk>/delete", views.session_delete, name="session-delete"),
    path("<int:pk>/lint", exports.session_lint, name="session-lint"),
    path("<int:pk>/exports", exports.session_exports, name="session-exports"),
    path("<int:pk>/fidelity", exports.session_fidelity, name="session-fidelity"),
    path("exports/<int:pk>/row", exports.export_row, name="export-row"),
    path("exports/<int:pk>/download", exports.export_download, name="export-download"),
    path("ti/", ti.ti_list, name="ti-list"),
    path("ti/new", ti.ti_create, name="ti-create"),
    path("ti/<int:pk>/", ti.ti_edit, name="ti-edit"),
    path("ti/<int:pk>/delete", ti.ti_delete, name="ti-delete"),
    path("ti/<int:pk>/exports", ti.ti_exports, name="ti-exports"),
    path("ti/<int:pk>/preview", ti.ti_preview, name="ti-preview"),
    path("base-models/", base_models.base_model_list, name="base-model-list"),
    path("base-models/new", base_models.base_model_create, name="base-model-create"),
    path("base-models/<slug:ref>/", base_models.base_model_detail, name="base-model-detail"),
    path("base-models/<slug:ref>/edit", base_models.base_model_edit, name="base-model-edit"),
    path("base-models/<slug:ref>/delete", base_models.base_model_delete, name="base-model-delete"),
]
