from django.apps import AppConfig
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
        # Media sends events and offers an item-page panel slot; tags fills both
        # (docs/architecture.md#events). Imported here: app modules need the registry ready.
        from apps.jobs.events import job_finished
        from apps.media import events, extensions
        from apps.tags import receivers
        from apps.tags.views import editor

        events.arrival_tags_clean.connect(
            receivers.arrival_tags_clean, dispatch_uid="tags.arrival_tags_clean"
        )
        events.item_arrived.connect(receivers.item_arrived, dispatch_uid="tags.item_arrived")
        events.item_derived.connect(receivers.item_derived, dispatch_uid="tags.item_derived")
        events.items_derived.connect(receivers.items_derived, dispatch_uid="tags.items_derived")
        events.item_deleting.connect(receivers.item_deleting, dispatch_uid="tags.item_deleting")
        extensions.item_panel_register(key="tags.editor", panel=editor.item_panel)
        # A job that ends without its body (cancelled while queued, a lost worker) ends the
        # operation it owns: bulk edits, undos, redos, mapping applies (docs/tags.md#operations-and-undo).
        job_finished.connect(receivers.job_finished, weak=False, dispatch_uid="tags.operation_job_ended")
