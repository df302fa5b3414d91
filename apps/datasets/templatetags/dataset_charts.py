"""The statistics charts of a dataset page: SVG plus the same numbers as table rows
(docs/datasets.md#statistics)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import mark_safe

from apps.datasets.svg import bar_chart

register = template.Library()


def _chart(title: str, rows: list[dict[str, Any]], x_label: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "title": title,
        "svg": mark_safe(  # noqa: S308 - bar_chart escapes every label and title
            bar_chart(
                title=title,
                labels=[r["label"] for r in rows],
                series=[[r["count"] for r in rows]],
                x_label=x_label,
                **kwargs,
            )
        ),
        "headers": [x_label, "Items"],
        "rows": [[r["label"], f"{r['count']:,}"] for r in rows],
    }


@register.simple_tag
def dataset_charts(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Every chart of the statistics, in page order."""
    h = stats["histograms"]
    b = stats["buckets"]
    bucket_rows = [{"label": x["label"], "count": x["count"]} for x in b["buckets"] if x["count"]]
    charts = [
        _chart("Short side", h["short_side"], "Short side (pixels)"),
        _chart("Size", h["megapixels"], "Megapixels"),
        _chart("Aspect ratio", h["aspect"], "Width : height"),
        _chart(f"Buckets for base {b['base']} (occupied only)", bucket_rows, "Bucket (width × height)"),
        _chart("Formats", stats["formats"], "Format"),
        _chart("Colour modes", stats["modes"], "Mode"),
        _chart("Effective tags per item", h["tag_count"], "Tags"),
    ]
    freq = stats["tags"]["frequency"]
    estimated = stats["tags"].get("estimated")
    note = ""
    if estimated:
        note = f" (estimated from {estimated['sampled']:,} of {estimated['members']:,} members)"
    if freq:
        labels = [f["name"] for f in freq]
        charts.append(
            {
                "title": "Most frequent tags: share of the dataset and of the library" + note,
                "svg": mark_safe(  # noqa: S308 - escaped by bar_chart
                    bar_chart(
                        title="Most frequent tags: dataset vs library",
                        labels=labels,
                        series=[[f["share"] for f in freq], [f["library_share"] for f in freq]],
                        names=["Dataset", "Library"],
                        x_label="Tag",
                        y_label="Share of items",
                        percent=True,
                        height=300,
                    )
                ),
                "headers": [
                    "Tag",
                    "Type",
                    "Dataset items",
                    "Dataset share",
                    "Library items",
                    "Library share",
                ],
                "rows": [
                    [
                        f["name"],
                        f["type"],
                        f"{f['count']:,}",
                        f"{f['share']:.1%}",
                        f"{f['library_count']:,}",
                        f"{f['library_share']:.1%}",
                    ]
                    for f in freq
                ],
            }
        )
    coverage = stats["tags"]["coverage"]
    if coverage:
        charts.append(
            {
                "title": "Coverage per tag type" + note,
                "svg": mark_safe(  # noqa: S308 - escaped by bar_chart
                    bar_chart(
                        title="Coverage per tag type",
                        labels=[c["name"] for c in coverage],
                        series=[[c["share"] for c in coverage]],
                        x_label="Tag type",
                        y_label="Share of items with one",
                        percent=True,
                    )
                ),
                "headers": ["Tag type", "Items with one", "Share"],
                "rows": [[c["name"], f"{c['count']:,}", f"{c['share']:.1%}"] for c in coverage],
            }
        )
    charts.append(_chart("Sources (sites)", stats["sites"], "Site"))
    charts.append(_chart("Artists", stats["artists"], "Artist"))
    return charts
