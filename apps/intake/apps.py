from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "apps.intake"
    label = "intake"
    verbose_name = "Intake queue"

    def ready(self) -> None:
        # When a media job an entry waits for ends, the worker collects what arrived at once
        # (docs/intake.md#processing); the beat task `intake.collect_finished` is the fallback.
        from apps.intake import receivers

        receivers.connect()
