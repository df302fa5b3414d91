"""Reads of the tags app, one module per concept; the public names are re-exported here."""

from apps.tags.selectors.editor import EditorState, editor_state
from apps.tags.selectors.history import operation_edit_deltas
from apps.tags.selectors.operations import operation_get, operation_item_ids, operation_list
from apps.tags.selectors.tagsets import tag_set_list_for_item

__all__ = [
    "EditorState",
    "editor_state",
    "operation_edit_deltas",
    "operation_get",
    "operation_item_ids",
    "operation_list",
    "tag_set_list_for_item",
]
