from django.apps import AppConfig


class TaggersConfig(AppConfig):
    name = "apps.taggers"
    label = "taggers"
    verbose_name = "Taggers"

    def ready(self) -> None:
        # Nothing here may import the engine's ML packages: web processes never load torch,
        # open_clip or onnxruntime (docs/taggers.md#processes).
        from apps.taggers import registrations

        registrations.register()
