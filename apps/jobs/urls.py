from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("<int:pk>/", views.job_detail, name="job-detail"),
    path("<int:pk>/status", views.job_status, name="job-status"),
    path("<int:pk>/items", views.job_items, name="job-items"),
    path("<int:pk>/cancel", views.job_cancel, name="job-cancel"),
]
