"""Template access to media's extension points (apps/media/extensions.py)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from apps.media import extensions

register = template.Library()


@register.simple_tag
def selection_actions(user: Any) -> list[dict[str, str]]:
    """The selection bar's extra buttons for this user: label, key and the URL they post to."""
    return [
        {"key": a.key, "label": a.label, "url": reverse(a.url_name)}
        for a in extensions.selection_actions(user=user)
    ]
