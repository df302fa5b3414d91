from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("<int:pk>/report", views.dataset_report, name="dataset-report"),
    path("<int:pk>/stats", views.dataset_stats, name="dataset-stats"),
    path("<int:pk>/conform", views.dataset_conform, name="dataset-conform"),
]
