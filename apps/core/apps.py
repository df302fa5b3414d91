from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_curators(sender: AppConfig, **kwargs: object) -> None:
    from apps.core.services import curators_group_ensure

    curators_group_ensure()


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        # After every migrate, so permissions of newly added models reach the group.
        post_migrate.connect(_ensure_curators, dispatch_uid="core.ensure_curators")
