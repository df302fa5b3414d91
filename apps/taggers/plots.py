"""Server-side SVG plots for the tagger pages (no script, no CDN; docs/taggers.md#pages).

`metrics_plot`: one point per evaluated tag at its threshold, precision (y) against recall (x),
its radius growing with the tag's AP; a leaf module that reads only a version's metrics dict.
"""

from __future__ import annotations

from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 360, 260, 36


def _x(recall: float) -> float:
    return PAD + recall * (WIDTH - 2 * PAD)


def _y(precision: float) -> float:
    return HEIGHT - PAD - precision * (HEIGHT - 2 * PAD)


def _axes() -> list[str]:
    parts = [
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
        'fill="none" stroke="#999"/>'
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{_x(tick):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        parts.append(
            f'<text x="{PAD - 6}" y="{_y(tick) + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    middle = HEIGHT / 2
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">recall</text>')
    parts.append(
        f'<text x="12" y="{middle}" font-size="11" transform="rotate(-90 12 {middle})" '
        'text-anchor="middle">precision</text>'
    )
    return parts


def _point(tag: dict[str, Any]) -> str:
    radius = 2 + 4 * float(tag.get("ap") or 0)
    title = (
        f"{tag.get('name', '')}: AP {tag.get('ap')}, threshold {tag.get('threshold')}, "
        f"precision {tag['precision']}, recall {tag['recall']}"
    )
    x, y = _x(float(tag["recall"])), _y(float(tag["precision"]))
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#2563eb" fill-opacity="0.6">'
        f"<title>{escape(title)}</title></circle>"
    )


def metrics_plot(metrics: dict[str, Any]) -> SafeString:
    """Precision/recall at each tag's threshold; empty when nothing was evaluated."""
    tags = [
        t
        for t in (metrics.get("tags") or {}).values()
        if t.get("precision") is not None and t.get("recall") is not None
    ]
    if not tags:
        return mark_safe("")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="precision and recall per tag at its threshold">'
    )
    body = "".join([head, *_axes(), *(_point(t) for t in tags), "</svg>"])
    return mark_safe(body)  # noqa: S308 - numbers and escaped names only
