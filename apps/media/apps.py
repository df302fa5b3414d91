from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "apps.media"
    label = "media"

    def ready(self) -> None:
        from apps.media.services import probe

        probe.configure_pillow()
