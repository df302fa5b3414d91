from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from apps.core.lookups import sqlite_functions


def _ensure_curators(sender: AppConfig, **kwargs: object) -> None:
    from apps.core.services import curators_group_ensure

    curators_group_ensure()


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        # After every migrate, so permissions of newly added models reach the group.
        post_migrate.connect(_ensure_curators, dispatch_uid="core.ensure_curators")
        connection_created.connect(sqlite_functions, dispatch_uid="core.sqlite_functions")
