from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_base_models(sender: AppConfig, **kwargs: object) -> None:
    from apps.training.defaults import base_models_ensure

    base_models_ensure()


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training sessions and export bundles"

    def ready(self) -> None:
        # Also after `flush` (transactional and browser tests), which empties the seeded rows.
        post_migrate.connect(_ensure_base_models, sender=self, dispatch_uid="training.ensure_base_models")
