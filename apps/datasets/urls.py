from django.urls import path

from apps.datasets import views
from apps.datasets.views import edit, groups, library

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("<int:pk>/report", views.dataset_report, name="dataset-report"),
    path("new", edit.dataset_create, name="dataset-create"),
    path("<int:pk>/edit", edit.dataset_edit, name="dataset-edit"),
    path("<int:pk>/delete", edit.dataset_delete, name="dataset-delete"),
    path("<int:pk>/requirements", edit.requirements_edit, name="dataset-requirements"),
    path("<int:pk>/subsets/new", edit.subset_form, name="subset-create"),
    path("<int:pk>/subsets/<int:sid>/edit", edit.subset_form, name="subset-edit"),
    path("<int:pk>/subsets/<int:sid>/delete", edit.subset_delete, name="subset-delete"),
    path("<int:pk>/members", edit.members, name="dataset-members"),
    path("<int:pk>/members/edit", edit.members_edit, name="dataset-members-edit"),
    path("<int:pk>/snapshots", edit.snapshot_create, name="snapshot-create"),
    path("<int:pk>/snapshots/diff", edit.snapshot_diff, name="snapshot-diff"),
    path("<int:pk>/snapshots/<int:sid>/", edit.snapshot_detail, name="snapshot-detail"),
    path("selection/add", library.selection_add, name="selection-add"),
    path("items/<int:pk>/membership", library.item_membership, name="item-membership"),
    path("groups/", groups.group_list, name="group-list"),
    path("groups/<int:pk>/", groups.group_detail, name="group-detail"),
    path("groups/<int:pk>/edit", groups.group_edit, name="group-edit"),
    path("<int:pk>/stats", views.dataset_stats, name="dataset-stats"),
    path("<int:pk>/conform", views.dataset_conform, name="dataset-conform"),
]
