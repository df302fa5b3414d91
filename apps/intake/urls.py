from django.urls import path

from apps.intake import views

app_name = "intake"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("rows", views.queue_rows, name="queue-rows"),
    path("add", views.entry_add, name="entry-add"),
    path("<int:pk>/process", views.entry_process, name="entry-process"),
    path("<int:pk>/review", views.entry_review, name="entry-review"),
    path("<int:pk>/delete", views.entry_delete, name="entry-delete"),
]
