"""Dataset statistics (docs/datasets.md#statistics): reads only, all aggregate SQL over the
membership condition (selectors.dataset_members); nothing walks the members in Python.

One GROUP BY over the member rows answers the histograms (sizes, aspects, tag counts), the
counts, formats, modes, bit depths and buckets together (`_profile`); one count the members
without curated tags; one GROUP BY each the top sites and artists; the tag figures come from a
sample picked in SQL: frequency from its effective tags, coverage from ItemTagType.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Least, Mod, RowNumber

from apps.datasets import buckets as bucketing
from apps.datasets import conf, selectors
from apps.datasets.models import Dataset
from apps.media.models import MediaItem
from apps.tags.models import EffectiveTag, ItemTagType, Tag, TagSet, TagType

TOP = 20
# Histogram bins [low, high): the last bin is open-ended.
SHORT_SIDE_BINS = [0, 256, 512, 768, 1024, 1536, 2048, 3072, 4096]
MEGAPIXEL_BINS = [0, 250_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000]
ASPECT_BINS = [0, 400, 563, 667, 750, 833, 950, 1053, 1200, 1333, 1500, 1778, 2500]  # ratio_milli
ASPECT_NAMES = ["< 2:5", "2:5–9:16", "9:16–2:3", "2:3–3:4", "3:4–5:6", "5:6–19:20", "≈ 1:1",
                "20:19–6:5", "6:5–4:3", "4:3–3:2", "3:2–16:9", "16:9–5:2", "> 5:2"]  # fmt: skip
TAG_COUNT_BINS = [0, 1, 5, 10, 20, 30, 50, 100]


def _bin_names(bins: list[int], unit: str = "") -> list[str]:
    names = []
    for low, high in zip(bins, [*bins[1:], None], strict=True):
        if high is None:
            names.append(f"≥ {low:,}{unit}")
        elif high == low + 1:
            names.append(f"{low:,}{unit}")
        else:
            names.append(f"{low:,}–{high - 1:,}{unit}")
    return names


def _mp_names() -> list[str]:
    edges = [b / 1e6 for b in MEGAPIXEL_BINS]
    out = [f"{lo:g}–{hi:g} MP" for lo, hi in itertools.pairwise(edges)]
    return [*out, f"≥ {edges[-1]:g} MP"]


HISTOGRAMS: list[tuple[str, str, list[int], list[str]]] = [
    ("short_side", "_short", SHORT_SIDE_BINS, _bin_names(SHORT_SIDE_BINS, " px")),
    ("megapixels", "pixels", MEGAPIXEL_BINS, _mp_names()),
    ("aspect", "ratio_milli", ASPECT_BINS, ASPECT_NAMES),
    ("tag_count", "tag_count", TAG_COUNT_BINS, _bin_names(TAG_COUNT_BINS)),
]


def _bin_index(column: str, bins: list[int]) -> Case:
    """The bin of a row as one CASE (bins ascending; below the first counts in the first)."""
    whens = [When(**{f"{column}__lt": high}, then=Value(i)) for i, high in enumerate(bins[1:])]
    return Case(*whens, default=Value(len(bins) - 1), output_field=IntegerField())


def _tallies(rows: Any) -> dict[str, Counter[Any]]:
    """The groups of `_profile`'s pass summed into one tally per column (Python over groups)."""
    tallies: dict[str, Counter[Any]] = {}
    for r in rows:
        n = r.pop("n")
        for column, value in r.items():
            tallies.setdefault(column, Counter())[value] += n
    return tallies


def _profile(members: QuerySet[MediaItem], base: int) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Every per-member figure but the tag ones from ONE GROUP BY over the members: the bin of
    each histogram (one CASE each), has_alpha, kind, format, mode, bit depth, the bucket and
    whether the member is smaller than it. The groups are the combinations that
    occur (bounded by the bin counts, not the members); summing them into the tallies is Python
    over groups, never over members. Returns the member count, the counts and the shapes."""
    buckets, index, small = _bucket_index(base)
    annotations = {f"_h_{key}": _bin_index(column, bins) for key, column, bins, _names in HISTOGRAMS}
    flags = {
        "_bucket": index,
        "_small": Case(When(small, then=Value(1)), default=Value(0), output_field=IntegerField()),
    }
    columns = [*annotations, *flags, "has_alpha", "kind", "format", "mode", "bit_depth"]
    rows = (
        members.order_by()
        .annotate(_short=Least("width", "height"))
        .annotate(**annotations, **flags)
        .values(*columns)
        .annotate(n=Count("pk"))
    )
    groups = [dict(r) for r in rows]
    total = sum(r["n"] for r in groups)
    tallies = _tallies(dict(r) for r in groups)
    upscaled: Counter[int] = Counter()
    for r in groups:
        if r["_small"]:
            upscaled[r["_bucket"]] += r["n"]
    histograms = {
        key: [
            {"label": name, "count": tallies.get(f"_h_{key}", Counter())[i]} for i, name in enumerate(names)
        ]
        for key, _c, _b, names in HISTOGRAMS
    }
    empty: Counter[Any] = Counter()
    counts = {
        "with_alpha": tallies.get("has_alpha", empty)[True],
        "videos": tallies.get("kind", empty)[MediaItem.Kind.VIDEO],
    }
    per_bucket = tallies.get("_bucket", empty)
    min_side, max_side = bucketing.bucket_sides(base)
    shapes = {
        "formats": _ranked(tallies.get("format", empty)),
        "modes": _ranked(tallies.get("mode", empty)),
        "bit_depths": _ranked(tallies.get("bit_depth", empty)),
        "buckets": {
            "base": base,
            "step": bucketing.STEP,
            "min_side": min_side,
            "max_side": max_side,
            "max_area": base * base,
            "buckets": [
                {
                    "label": b.label,
                    "width": b.width,
                    "height": b.height,
                    "count": per_bucket[i],
                    "upscaled": upscaled[i],
                }
                for i, b in enumerate(buckets)
            ],
        },
    }
    return total, {"histograms": histograms, **counts}, shapes


def _grouped(members: QuerySet[MediaItem], column: str, top: int | None = None) -> list[dict[str, Any]]:
    rows = members.order_by().values(column).annotate(n=Count("pk")).order_by("-n", column)
    if top is not None:
        rows = rows[:top]
    return [
        {"label": str(r[column]) if r[column] not in ("", None) else "(none)", "count": r["n"]} for r in rows
    ]


def _bucket_index(base: int) -> tuple[list[bucketing.Bucket], Case, Q]:
    """The bucket of a row as a CASE over ratio_milli (docs/datasets.md#buckets), and the
    condition "smaller than its bucket on a side" (training would upscale it)."""
    buckets = bucketing.buckets_for(base)
    cuts = bucketing.thresholds(buckets)
    whens = [When(ratio_milli__lt=cut, then=Value(i)) for i, cut in enumerate(cuts)]
    index = Case(*whens, default=Value(len(buckets) - 1), output_field=IntegerField())
    small = Q()
    for i, bucket in enumerate(buckets):
        in_bucket = Q(ratio_milli__gte=cuts[i - 1]) if i else Q()
        if i < len(cuts):
            in_bucket &= Q(ratio_milli__lt=cuts[i])
        small |= in_bucket & (Q(width__lt=bucket.width) | Q(height__lt=bucket.height))
    return buckets, index, small


def _ranked(counter: Counter[Any]) -> list[dict[str, Any]]:
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [{"label": str(k) if k not in ("", None) else "(none)", "count": n} for k, n in rows]


def _library_estimate() -> int:
    """≈ items in the library: the highest item id (one index probe, as search estimates it),
    not a COUNT over a million rows on every request; deletions make it an upper bound."""
    return MediaItem.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _sample_ids(members: QuerySet[MediaItem], n_members: int, sample: int) -> list[int] | None:
    """Every k-th member in id order (k = ⌈members ÷ sample⌉): a systematic sample spread over
    the whole dataset, deterministic so the same members give the same figures. Numbered and
    picked in SQL (ROW_NUMBER), so only the sample's ids leave the database. None: take all."""
    if n_members <= sample:
        return None
    step = -(-n_members // sample)
    numbered = members.order_by().annotate(_rn=Window(RowNumber(), order_by=F("pk").asc()))
    picked = numbered.annotate(_pick=Mod(F("_rn") - 1, step)).filter(_pick=0)
    return list(picked.values_list("pk", flat=True))


def _covered(rows: QuerySet[ItemTagType]) -> dict[int, int]:
    """Members per tag type from ItemTagType (one row per item and type it covers: a plain
    count, no DISTINCT over the members' effective tags joined with their tags)."""
    return dict(
        rows.order_by()
        .values("tag_type_id")
        .annotate(n=Count("media_item_id"))
        .values_list("tag_type_id", "n")
    )


def _tags(members: QuerySet[MediaItem], n_members: int, top: int, sample: int) -> dict[str, Any]:
    """Most frequent effective tags in the dataset beside their library frequency, and per tag
    type how many members have at least one tag of it. Over `sample` members, the figures are
    estimated from a systematic sample of them (counts scaled up, `estimated` says from how many)."""
    ids = _sample_ids(members, n_members, sample)
    if ids is None:
        # Driven from the members (membership tested once per item, then the item's effective
        # rows through their (media_item, tag) index), not from the effective rows (membership
        # tested once per row: 30× the work, which MariaDB chose for `media_item_id IN (…)`).
        joined = members.order_by().filter(effective_tags__isnull=False)
        top_rows = list(
            joined.values(tag_id=F("effective_tags__tag_id"))
            .annotate(n=Count("pk"))
            .order_by("-n", "tag_id")[:top]
        )
        covered = _covered(ItemTagType.objects.filter(media_item_id__in=members.order_by().values("pk")))
        scale, estimated = 1.0, None
    else:
        # A few thousand ids: one range of the (media_item, tag) index each, never the 3 M rows.
        rows = EffectiveTag.objects.filter(media_item_id__in=ids).order_by()
        top_rows = list(
            rows.values("tag_id").annotate(n=Count("media_item_id")).order_by("-n", "tag_id")[:top]
        )
        covered = _covered(ItemTagType.objects.filter(media_item_id__in=ids))
        scale, estimated = n_members / len(ids), {"sampled": len(ids), "members": n_members}
    tags = Tag.objects.select_related("type").in_bulk([r["tag_id"] for r in top_rows])
    library = _library_estimate() or 1
    frequency = []
    for r in top_rows:
        tag = tags[r["tag_id"]]
        count = min(n_members, round(r["n"] * scale))
        share = count / n_members if n_members else 0.0
        library_share = tag.media_count / library
        frequency.append(
            {
                "tag": tag.pk,
                "name": tag.name,
                "type": tag.type.key,
                "count": count,
                "share": round(share, 4),
                "library_count": tag.media_count,
                "library_share": round(library_share, 4),
                "lift": round(share / library_share, 2) if library_share else None,
            }
        )
    coverage = []
    for t in TagType.objects.order_by("display_order", "key"):
        count = min(n_members, round(covered.get(t.pk, 0) * scale))
        coverage.append(
            {
                "type": t.key,
                "name": t.name,
                "color": t.color,
                "count": count,
                "share": round(count / n_members, 4) if n_members else 0.0,
            }
        )
    return {"frequency": frequency, "coverage": coverage, "library_items": library, "estimated": estimated}


HEAP_BYTES = 256 * 2**20  # MariaDB MEMORY table cap for the resolved ids: ~7 M members


@contextlib.contextmanager
def _resolved(members: QuerySet[MediaItem]) -> Iterator[QuerySet[MediaItem]]:
    """The members resolved once into a temporary table of their ids (one pass), for the
    statistics' several passes to join by primary key instead of evaluating the membership
    (explicit rows, a saved query's search, exclusions) each time (docs/datasets.md#statistics).
    On MariaDB the table is a MEMORY table (hash primary key; a fifth of the passes' time of an
    InnoDB one) sized by HEAP_BYTES for this statement only. The table lives on this connection
    and is dropped at the end (DROP TEMPORARY TABLE: no implicit commit on MariaDB)."""
    table = connection.ops.quote_name(f"bt_stats_members_{uuid.uuid4().hex[:12]}")
    sql, params = members.order_by().values("pk").query.sql_with_params()
    mysql = connection.vendor == "mysql"
    with connection.cursor() as cursor:
        if mysql:
            cursor.execute("SET @bt_heap = @@SESSION.max_heap_table_size")
            cursor.execute("SET SESSION max_heap_table_size = GREATEST(@bt_heap, %s)", [HEAP_BYTES])
            try:
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {table} (id BIGINT NOT NULL PRIMARY KEY) ENGINE=MEMORY"
                )
            finally:  # the size is the table's from its creation; the session keeps its own
                cursor.execute("SET SESSION max_heap_table_size = @bt_heap")
        else:
            cursor.execute(f"CREATE TEMPORARY TABLE {table} (id BIGINT NOT NULL PRIMARY KEY)")
        try:
            cursor.execute(f"INSERT INTO {table} (id) {sql}", params)
            ids = RawSQL(f"SELECT id FROM {table}", ())  # noqa: S608, S611 - a generated identifier only
            yield MediaItem.objects.filter(pk__in=ids)
        finally:
            cursor.execute(f"{'DROP TEMPORARY TABLE' if mysql else 'DROP TABLE'} {table}")


def dataset_stats(
    *, dataset: Dataset, base: int = 1024, viewer: Any = None, top: int = TOP, sample: int | None = None
) -> dict[str, Any]:
    """Every statistic of the dataset's members (docs/datasets.md#statistics). Tag figures are
    estimated over `sample` members (default `BAGGINTAG_DATASET_STATS_SAMPLE`); the members are
    resolved once (`_resolved`) for every pass."""
    members = selectors.dataset_members(dataset=dataset, viewer=viewer)
    with _resolved(members) as resolved:
        return _stats(dataset, resolved, base, top, sample)


def _stats(
    dataset: Dataset, members: QuerySet[MediaItem], base: int, top: int, sample: int | None
) -> dict[str, Any]:
    n, figures, shapes = _profile(members, base)
    # Its own count: as a WHERE NOT EXISTS MariaDB answers it with one index probe per member;
    # as a flag in `_profile`'s SELECT list the same subquery cost several times more.
    curated = TagSet.objects.filter(
        media_item_id=OuterRef("pk"), kind=TagSet.Kind.CURATED, assignment_count__gt=0
    )
    without_curated = members.filter(~Exists(curated)).count() if n else 0
    histograms = figures.pop("histograms")
    empty = {"frequency": [], "coverage": [], "library_items": 0, "estimated": None}
    tags = _tags(members, n, top, sample or conf.stats_sample()) if n else empty
    return {
        "dataset": dataset.pk,
        "members": n,
        "with_alpha": figures["with_alpha"],
        "videos": figures["videos"],
        "without_curated_tags": without_curated,
        "histograms": histograms,
        **shapes,
        "tags": tags,
        "sites": _grouped(members, "site", top),
        "artists": _grouped(members, "artist", top),
    }
