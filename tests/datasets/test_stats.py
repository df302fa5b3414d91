"""Dataset statistics (docs/datasets.md#statistics): each figure against the same count made in
Python over the members, the bucket arithmetic, the SVG plots and the page; SQLite and MariaDB."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from apps.datasets import buckets, services, stats
from apps.datasets.models import Dataset
from apps.datasets.svg import bar_chart
from apps.media.models import MediaItem
from apps.tags.models import EffectiveTag, TagSet
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


def _library() -> tuple[Dataset, list[MediaItem], MediaItem]:
    rng = random.Random(5)
    sizes = [(64, 64), (96, 48), (48, 96), (128, 80), (40, 120), (200, 100)]
    members = [
        make_item(
            rng.sample(["cat", "dog", "hat", "saber_(fate)"], rng.randint(0, 3)),
            seed=i,
            size=sizes[i % len(sizes)],
            fmt=["png", "jpeg", "webp"][i % 3],
            artist=["ann", "bo", ""][i % 3],
        )
        for i in range(12)
    ]
    outsider = make_item(["cat", "tree"], seed=99, size=(64, 64))
    dataset = services.dataset_create(name="S", query="cat")
    services.members_edit(owner=dataset, action="add", item_ids=[m.pk for m in members])
    return dataset, members, outsider


def _counts(rows: list[dict]) -> dict[str, int]:
    return {r["label"]: r["count"] for r in rows if r["count"]}


def test_figures_match_a_python_count_over_the_members() -> None:
    dataset, members, outsider = _library()
    ids = {m.pk for m in members} | {outsider.pk}
    items = list(MediaItem.objects.filter(pk__in=ids))
    result = stats.dataset_stats(dataset=dataset, base=512)
    assert result["members"] == len(items)
    assert _counts(result["formats"]) == dict(Counter(i.format for i in items))
    assert _counts(result["modes"]) == dict(Counter(i.mode for i in items))
    artists = Counter(i.artist or "(none)" for i in items)
    assert _counts(result["artists"]) == dict(artists)
    short = result["histograms"]["short_side"]
    assert sum(r["count"] for r in short) == len(items)
    assert short[0]["count"] == sum(1 for i in items if min(i.width, i.height) < 256)
    tag_rows = list(
        EffectiveTag.objects.filter(media_item_id__in=ids).values_list(
            "tag__name", "media_item_id", "tag__type__key"
        )
    )
    frequency = Counter(name for name, _, _ in tag_rows)
    assert frequency["cat"] >= 2
    assert {f["name"]: f["count"] for f in result["tags"]["frequency"]} == dict(frequency)
    curated = set(
        TagSet.objects.filter(
            media_item_id__in=ids, kind=TagSet.Kind.CURATED, assignment_count__gt=0
        ).values_list("media_item_id", flat=True)
    )
    assert result["without_curated_tags"] == len(ids - curated)
    per_type = Counter(key for key, _ in {(key, item_id) for _, item_id, key in tag_rows})
    coverage = {c["type"]: c["count"] for c in result["tags"]["coverage"] if c["count"]}
    assert coverage == dict(per_type)


def test_bucket_occupancy_matches_nearest_bucket_in_python() -> None:
    dataset, members, outsider = _library()
    items = [*members, outsider]
    result = stats.dataset_stats(dataset=dataset, base=512)["buckets"]
    table = buckets.buckets_for(512)
    expected = Counter(buckets.nearest_bucket(i.width, i.height, table).label for i in items)
    assert {b["label"]: b["count"] for b in result["buckets"] if b["count"]} == dict(expected)
    upscaled = sum(
        1
        for i in items
        if (b := buckets.nearest_bucket(i.width, i.height, table))
        and (i.width < b.width or i.height < b.height)
    )
    assert sum(b["upscaled"] for b in result["buckets"]) == upscaled


def test_bucket_arithmetic() -> None:
    table = buckets.buckets_for(1024)
    assert all(b.width % 64 == 0 and b.height % 64 == 0 for b in table)
    assert all(b.width * b.height <= 1024 * 1024 for b in table)
    assert all(min(b.width, b.height) >= 512 and max(b.width, b.height) <= 2048 for b in table)
    labels = {b.label for b in table}
    assert {"1024×1024", "1216×832", "832×1216"} <= labels
    assert buckets.nearest_bucket(1000, 1000, table).label == "1024×1024"
    with pytest.raises(ValueError, match="multiple of 64"):
        buckets.buckets_for(1000)


def test_empty_dataset() -> None:
    dataset = services.dataset_create(name="Empty")
    result = stats.dataset_stats(dataset=dataset)
    assert (result["members"], result["tags"]["frequency"]) == (0, [])


def test_svg_is_accessible_and_escaped() -> None:
    svg = bar_chart(title="Tags <b>", labels=["a&b", "c"], series=[[3, 1]], x_label="Tag", y_label="Items")
    assert '<title id="' in svg
    assert "Tags &lt;b&gt;" in svg
    assert "a&amp;b" in svg
    assert "<desc" in svg
    heights = [
        float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    ]
    assert heights[0] == pytest.approx(3 * heights[1])


def test_api_and_bad_base(api) -> None:  # type: ignore[no-untyped-def]
    dataset, members, _ = _library()
    body = api.get(f"/api/datasets/{dataset.pk}/stats", {"base": "768"}).json()
    assert (body["members"], body["buckets"]["base"]) == (len(members) + 1, 768)
    bad = api.get(f"/api/datasets/{dataset.pk}/stats", {"base": "700"})
    assert (bad.status_code, bad.json()["code"]) == (400, "datasets.invalid")
    assert api.get("/api/datasets/999999/stats").status_code == 404


def test_page_section_has_plots_and_tables(client, curator) -> None:  # type: ignore[no-untyped-def]
    dataset, _, _ = _library()
    client.force_login(curator)
    html = client.get(f"/datasets/{dataset.pk}/stats", HTTP_HX_REQUEST="true").content.decode()
    assert html.count('<svg class="chart"') >= 8
    assert "as a table</summary>" in html
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'hx-get="/datasets/{dataset.pk}/stats"' in page


def test_the_library_size_is_an_estimate_not_a_count_of_every_item() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dataset, members, outsider = _library()
    with CaptureQueriesContext(connection) as queries:
        result = stats.dataset_stats(dataset=dataset)
    whole = [
        q["sql"]
        for q in queries.captured_queries
        if re.sub(r"[`\"]", "", q["sql"]).strip() == "SELECT COUNT(*) AS __count FROM media_mediaitem"
    ]
    assert whole == []
    assert result["tags"]["library_items"] == max(m.pk for m in [*members, outsider])


def test_tag_figures_of_a_large_dataset_are_estimated_from_a_labelled_sample() -> None:
    dataset, members, outsider = _library()
    ids = sorted({m.pk for m in members} | {outsider.pk})
    sampled = ids[::4]  # 13 members, at most 4 sampled: every 4th in id order
    result = stats.dataset_stats(dataset=dataset, sample=4)["tags"]
    assert result["estimated"] == {"sampled": len(sampled), "members": len(ids)}
    rows = list(
        EffectiveTag.objects.filter(media_item_id__in=sampled).values_list("tag__name", "tag__type__key")
    )
    scale = len(ids) / len(sampled)
    expected = {
        name: min(len(ids), round(n * scale)) for name, n in Counter(name for name, _ in rows).items()
    }
    assert {f["name"]: f["count"] for f in result["frequency"]} == expected
    exact = stats.dataset_stats(dataset=dataset)["tags"]
    assert exact["estimated"] is None


def test_the_page_says_when_tag_figures_are_estimated() -> None:
    from apps.datasets.templatetags.dataset_charts import dataset_charts

    dataset, _, _ = _library()
    charts = dataset_charts(stats.dataset_stats(dataset=dataset, sample=4))
    titles = [c["title"] for c in charts if c["title"].startswith("Coverage per tag type")]
    assert titles == ["Coverage per tag type (estimated from 4 of 13 members)"]


def test_exclusions_hold_and_the_resolved_members_leave_nothing_on_the_connection(monkeypatch) -> None:
    """The statistics resolve the members once into a temporary table (docs/datasets.md#statistics):
    an excluded item that the saved query matches stays out, and the table is gone afterwards,
    also when a pass fails."""
    from django.db import connection

    dataset, members, outsider = _library()
    services.members_edit(owner=dataset, action="exclude", item_ids=[outsider.pk, members[0].pk])
    result = stats.dataset_stats(dataset=dataset, base=512)
    assert result["members"] == len(members) - 1
    assert _counts(result["formats"]) == dict(Counter(m.format for m in members[1:]))

    seen: list[str] = []

    def failing(members_qs, base):  # type: ignore[no-untyped-def]
        seen.append(str(members_qs.query))
        raise RuntimeError("a pass failed")

    monkeypatch.setattr(stats, "_profile", failing)
    with pytest.raises(RuntimeError):
        stats.dataset_stats(dataset=dataset, base=512)
    table = re.search(r"bt_stats_members_[0-9a-f]+", seen[0]).group(0)
    with connection.cursor() as cursor, pytest.raises(Exception, match=table.split("_")[-1]):
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # dropped: "no such table" / "doesn't exist"
