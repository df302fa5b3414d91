"""Reads of the tags app, one module per concept; the public names are re-exported here."""

from apps.tags.selectors.editor import EditorState, editor_state
from apps.tags.selectors.tagsets import tag_set_list_for_item

__all__ = ["EditorState", "editor_state", "tag_set_list_for_item"]
