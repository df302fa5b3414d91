from typing import Any

from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "apps.mappings"
    label = "mappings"
    verbose_name = "Tag mappings"

    def ready(self) -> None:
        # The built-in suggestion sources fill the suggester extension point
        # (docs/mappings.md#suggestions); the search app's `has:stale_mapping` comes from here.
        from apps.jobs.events import job_finished
        from apps.mappings import selectors
        from apps.mappings.services import apply, suggestions
        from apps.search import extensions
        from apps.tags import extensions as tag_extensions
        from apps.tags.models import Operation

        suggestions.builtin_register()
        extensions.has_value_register(value="stale_mapping", condition=selectors.stale_condition)
        # Undoing the undo of an apply that created sets applies the profile there again.
        tag_extensions.redo_handler_register(kind=Operation.Kind.MAP, handler=apply.mapping_redo)
        # An apply job that ends without its body (cancelled while queued, a lost worker) ends its
        # operation too (docs/mappings.md#preview-and-apply).
        job_finished.connect(apply_job_ended, weak=False, dispatch_uid="mappings.apply_job_ended")


def apply_job_ended(sender: Any = None, job_id: int = 0, kind: str = "", status: str = "", **_: Any) -> None:
    """Adapter: jobs' `job_finished` → the apply service."""
    from apps.mappings.services.apply import mapping_apply_job_ended

    mapping_apply_job_ended(job_id=int(job_id), kind=kind, status=status)
