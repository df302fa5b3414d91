"""Intake writes (docs/intake.md): planning entries, processing them through the media jobs,
collecting arrivals into the target dataset, review."""

from apps.intake.services.entries import (
    folder_resolve,
    intake_archive_forget,
    intake_entries_bulk_add,
    intake_entry_create,
    intake_entry_delete,
    intake_entry_update,
    on_arrival_clean,
    target_resolve,
    urls_parse,
)
from apps.intake.services.process import (
    intake_collect_finished,
    intake_collect_for_job,
    intake_entry_collect,
    intake_entry_mark_tagged,
    intake_entry_process,
    intake_entry_review,
)
from apps.intake.services.tagging import (
    intake_entry_tagging_settle,
    intake_tagging_settle_finished,
    intake_tagging_settle_for_job,
)

__all__ = [
    "folder_resolve",
    "intake_archive_forget",
    "intake_collect_finished",
    "intake_collect_for_job",
    "intake_entries_bulk_add",
    "intake_entry_collect",
    "intake_entry_create",
    "intake_entry_delete",
    "intake_entry_mark_tagged",
    "intake_entry_process",
    "intake_entry_review",
    "intake_entry_tagging_settle",
    "intake_entry_update",
    "intake_tagging_settle_finished",
    "intake_tagging_settle_for_job",
    "on_arrival_clean",
    "target_resolve",
    "urls_parse",
]
