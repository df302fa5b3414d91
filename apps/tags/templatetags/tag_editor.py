"""`{% tag_editor_state item as editor %}`: the tag editor's data for pages whose view does not
supply it (the item page includes the editor partial)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def tag_editor_state(item: Any) -> Any:
    from apps.tags.views_editor import editor_state  # lazy: views import this app's templates

    return editor_state(item)
