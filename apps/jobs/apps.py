from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        from celery import signals

        from apps.jobs import tasks

        # Every job task: a failure fails the job its attempt owns; the end stops its heartbeat.
        signals.task_failure.connect(tasks.on_task_failure, weak=False, dispatch_uid="jobs.task_failure")
        signals.task_postrun.connect(tasks.on_task_postrun, weak=False, dispatch_uid="jobs.task_postrun")
        # A worker (re)starting sweeps at once: the embedded mode has no beat of its own.
        signals.worker_ready.connect(tasks.on_worker_ready, weak=False, dispatch_uid="jobs.worker_ready")
