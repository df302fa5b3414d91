"""Fidelity-report charts as inline SVG (docs/training.md#fidelity), drawn with the datasets
app's bar chart (apps/datasets/svg.py); each page shows the same numbers as a table."""

from __future__ import annotations

from typing import Any

from django.utils.safestring import SafeString, mark_safe

from apps.datasets.svg import bar_chart


def keep_rate_chart(trainer: str, rows: list[dict[str, Any]]) -> SafeString:
    """Per tag type: the policy's keep rate beside the simulated one (when simulated)."""
    labels = [r["type"] for r in rows]
    series = [[float(r["policy"]) for r in rows]]
    names = ["policy"]
    if any(r["simulated"] is not None for r in rows):
        series.append([float(r["simulated"] or 0.0) for r in rows])
        names.append(f"{trainer} (simulated)")
    svg = bar_chart(
        title=f"Keep rate per tag type · {trainer}",
        labels=labels,
        series=series,
        names=names,
        x_label="Tag type",
        y_label="Captions keeping the type",
        percent=True,
    )
    return mark_safe(svg)  # noqa: S308 (bar_chart escapes every text it writes)


def bucket_chart(trainer: str, histogram: dict[str, Any]) -> SafeString:
    svg = bar_chart(
        title=f"Images per bucket · {trainer}",
        labels=histogram["labels"],
        series=[histogram["counts"]],
        x_label="Bucket (width×height)",
        y_label="Images",
    )
    return mark_safe(svg)  # noqa: S308 (bar_chart escapes every text it writes)
