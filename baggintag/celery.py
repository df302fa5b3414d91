"""The Celery application: configuration from Django settings (CELERY_ namespace); production
settings unless DJANGO_SETTINGS_MODULE says otherwise."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baggintag.settings.prod")

app = Celery("baggintag", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
