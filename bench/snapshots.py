"""Dataset snapshots and `dataset:` searches on a synthetic 100k-item library (MariaDB).

    .venv/bin/python bench/snapshots.py --db mysql://root@127.0.0.1:3306/ [--items 100000] [--keep|--reuse]

Measures (docs/datasets.md#snapshots, docs/query-language.md#datasets-and-subsets):
* freezing a dataset of every item (one INSERT … SELECT with the tag fingerprints), and the
  diff of two such snapshots after some members were excluded and some retagged;
* first pages of `dataset:x` against the tag term whose postings are exactly the dataset's
  explicit members (the same size), alone and with a common tag, through search_media.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tags import django_setup

BENCH_DB = "bench_dsnap"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="mysql://user:pass@host:port/")
    parser.add_argument("--db-name", default=BENCH_DB)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--tags-per-item", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per search")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    return parser.parse_args()


def timed(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(median, max) wall seconds over `repeat` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-dsnap-"))
    reused = django_setup(args.db, work, reuse=args.reuse, name=args.db_name)
    from django.db import connection
    from django.db.models import Min

    from apps.datasets import services
    from apps.datasets.models import Dataset, DatasetItem
    from apps.datasets.selectors import snapshots as snaps
    from apps.datasets.services.snapshots import snapshot_create
    from apps.media.models import MediaItem
    from apps.search.query import search_media
    from apps.tags.models import EffectiveTag, Tag
    from bench.tagdata import generate

    t = time.perf_counter()
    if not reused:
        # No curated copies: the effective tags come from the source sets (half the rows to load).
        generate(
            n_items=args.items, n_tags=args.items, tags_per_item=args.tags_per_item, seed=7, curated_share=0.0
        )
    n_items = MediaItem.objects.count()
    print(
        f"library: {n_items:,} items, {EffectiveTag.objects.count():,} effective tags "
        f"({time.perf_counter() - t:.0f} s)"
    )
    Dataset.objects.all().delete()
    table = connection.ops.quote_name(DatasetItem._meta.db_table)

    everything = services.dataset_create(name="Everything")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (dataset_id, media_item_id, excluded, added_at) "
            "SELECT %s, id, 0, NOW() FROM media_mediaitem",
            [everything.pk],
        )
    rows = []
    t = time.perf_counter()
    first = snapshot_create(dataset=everything, note="bench 1")
    rows.append((f"freeze {first.member_count:,} members", time.perf_counter() - t))
    # Exclude 1,000 members and retag 1,000 (drop one effective tag each), then freeze again.
    ids = list(MediaItem.objects.order_by("pk").values_list("pk", flat=True)[:2000])
    DatasetItem.objects.filter(dataset=everything, media_item_id__in=ids[:1000]).update(excluded=True)
    lowest = (
        EffectiveTag.objects.filter(media_item_id__in=ids[1000:])
        .values("media_item_id")
        .annotate(t=Min("tag_id"))
        .values_list("media_item_id", "t")
    )
    with connection.cursor() as cursor:  # by (item, tag): an index probe each
        cursor.executemany(
            "DELETE FROM tags_effectivetag WHERE media_item_id = %s AND tag_id = %s", list(lowest)
        )
    t = time.perf_counter()
    second = snapshot_create(dataset=everything, note="bench 2")
    rows.append((f"freeze again ({second.member_count:,})", time.perf_counter() - t))
    t = time.perf_counter()
    diff = snaps.snapshot_diff(a=first, b=second, limit=100)
    rows.append(
        (
            f"diff: {diff['added']['count']} added, {diff['removed']['count']} removed, "
            f"{diff['retagged']['count']} retagged",
            time.perf_counter() - t,
        )
    )

    # dataset:x vs the tag whose postings are its members.
    for target in (n_items // 50, n_items // 8):
        tag = Tag.objects.filter(media_count__gte=target).order_by("media_count").first()
        assert tag is not None
        picked = services.dataset_create(name=f"Tag {tag.pk}")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (dataset_id, media_item_id, excluded, added_at) "
                "SELECT %s, media_item_id, 0, NOW() FROM tags_effectivetag WHERE tag_id = %s",
                [picked.pk, tag.pk],
            )
        common = Tag.objects.order_by("-media_count").values_list("name", flat=True)[3]
        term = f'"{tag.name}"' if " " in tag.name else tag.name
        by_query = services.dataset_create(name=f"Query {tag.pk}", query=term)
        for label, q_tag, q_ds in (
            ("alone", term, f"dataset:{picked.slug}"),
            (f"with common tag {common!r}", f"{term} {common}", f"dataset:{picked.slug} {common}"),
        ):
            a = search_media(q=q_tag, viewer=None, limit=100)
            b = search_media(q=q_ds, viewer=None, limit=100)
            assert a.ids == b.ids, (label, a.ids[:5], b.ids[:5])
            ta = timed(lambda q=q_tag: search_media(q=q, viewer=None, limit=100), args.repeat)
            tb = timed(lambda q=q_ds: search_media(q=q, viewer=None, limit=100), args.repeat)
            rows.append((f"{tag.media_count:,} members, {label}: tag term (plan {a.plan}) median", ta[0]))
            rows.append((f"{tag.media_count:,} members, {label}: dataset: (plan {b.plan}) median", tb[0]))
            q_saved = q_ds.replace(picked.slug, by_query.slug)
            c = search_media(q=q_saved, viewer=None, limit=100)
            assert c.ids == a.ids, (label, "saved query")
            tc = timed(lambda q=q_saved: search_media(q=q, viewer=None, limit=100), args.repeat)
            rows.append(
                (
                    f"{tag.media_count:,} members, {label}: dataset: by saved query (plan {c.plan}) median",
                    tc[0],
                )
            )
    print("| measure | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")
    if not args.keep:
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{args.db_name}`")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
