"""Bar charts as inline SVG, rendered on the server (docs/datasets.md#statistics). No script,
no chart library: a <title> and <desc> for screen readers, axis labels, and the page shows the
same numbers as a table beside each chart."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from itertools import count

COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#ef4444")
_ids = count(1)


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2 or 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float) -> str:
    return f"{value:.0%}" if 0 < value < 1 and value != int(value) else f"{value:,.0f}"


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    names: Sequence[str] = (),
    x_label: str = "",
    y_label: str = "Items",
    percent: bool = False,
    width: int = 640,
    height: int = 260,
) -> str:
    """A vertical bar chart: one group of bars per label, one bar per series (e.g. the dataset
    beside the library). `percent`: values are fractions, shown as percentages."""
    uid = f"chart{next(_ids)}"
    left, right, top, bottom = 56, 12, 28, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for values in series for v in values), default=0.0)
    axis_max = min(1.0, _nice_max(peak * 100) / 100) if percent else _nice_max(peak)
    groups = max(1, len(labels))
    group_w = plot_w / groups
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    desc = "; ".join(
        f"{label}: " + ", ".join((f"{v:.1%}" if percent else f"{v:,.0f}") for v in (s[i] for s in series))
        for i, label in enumerate(labels)
    )
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{uid}t {uid}d" width="100%" style="max-width:{width}px">',
        f'<title id="{uid}t">{escape(title)}</title>',
        f'<desc id="{uid}d">{escape(desc[:2000])}</desc>',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in range(5):
        value = axis_max * tick / 4
        y = top + plot_h - plot_h * tick / 4
        text = f"{value:.0%}" if percent else _fmt(value)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{text}</text>')
    for i, label in enumerate(labels):
        x0 = left + group_w * i + group_w * 0.1
        for k, values in enumerate(series):
            value = values[i]
            h = plot_h * (value / axis_max) if axis_max else 0
            x = x0 + bar_w * k
            name = f"{names[k]}: " if k < len(names) else ""
            shown = f"{value:.1%}" if percent else f"{value:,.0f}"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[k % len(COLOURS)]}">'
                f"<title>{escape(label)} · {escape(name)}{shown}</title></rect>"
            )
        cx = left + group_w * (i + 0.5)
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {top + plot_h + 12})">{escape(label[:24])}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#6b7280"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#6b7280"/>'
    )
    if x_label:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">'
            f"{escape(x_label)}</text>"
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
        )
    for k, name in enumerate(names):
        x = left + plot_w - 120 * (len(names) - k)
        parts.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>'
            f'<text x="{x + 14}" y="15" font-size="10">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
