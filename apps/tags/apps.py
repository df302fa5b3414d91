from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _ensure_defaults(sender: AppConfig, **kwargs: object) -> None:
    from apps.tags.defaults import defaults_ensure

    defaults_ensure()


class TagsConfig(AppConfig):
    name = "apps.tags"
    label = "tags"

    def ready(self) -> None:
        # Also after `flush` (transactional tests), which empties the seeded rows.
        post_migrate.connect(_ensure_defaults, sender=self, dispatch_uid="tags.ensure_defaults")
        from apps.tags.search.lookups import sqlite_functions

        connection_created.connect(sqlite_functions, dispatch_uid="tags.sqlite_functions")
