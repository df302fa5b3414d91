"""Mapping preview and apply at library scale, on MariaDB (docs/mappings.md, issue 12 goals).

    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --items 100000
    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --reuse   # a kept run's data
    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --reuse --only aggregate
    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --name bm_me --keep --only build
    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --name bm_me --reuse --only apply
    .venv/bin/python bench/mappings.py --db mysql://root@127.0.0.1:3306/ --name bm_me --reuse \
        --only applymem --mem-items 100000   # then 25000, each size in its own process

Builds (or reuses, with --reuse, what a `--keep` run left in `--name`, default `bench_mappings`)
the tags benchmark's library (`bench/tagdata.py`: about 30 Zipf tags per item, curated sets),
then a target vocabulary with the
top --mapped source tags renamed, a mapping set (1:1, some 1:2, drops, guarded rules) and a
profile (curated input, prune implied, drop no types, max 40 tags). Measured:

* preview of 50 sampled items through the API: p50 / p95 over --rounds calls (goal ≤ 300 ms);
* the aggregate preview over every item (the job's body, chunked) in items/s, next to a plain
  Python loop that reads every input row in one query, runs the same pipeline per item and
  counts the same aggregates (`same_aggregates` checks), in interleaved rounds (goal: ≥ 1.0×
  that loop);
* apply to every item as a job (its body run here) in items/s, next to a loop that reads the
  inputs in one query as above, runs the same pipeline and writes the same derived sets and assignment
  rows (bulk INSERTs, one transaction per 2,000 items) into the same two tables under its own
  slot (deleted afterwards, untimed); `same_rows` checks both wrote the same rows; in
  --apply-rounds interleaved rounds, the product's apply undone between rounds (the undo timed
  on its own);
* peak traced memory of the aggregate over half and over all items (flat: ratio ≈ 1);
* `applymem`: the apply job body's peak memory at two sizes (`--mem-items`, default a quarter and
  all items): tracemalloc's peak of Python allocations during `mapping_apply_run`, and the peak
  resident set above the process's size when the body started (sampled every 20 ms by a
  thread, so C allocations such as the driver's result buffers count too, and tracemalloc's own
  bookkeeping); each apply is undone again (untimed) so the next size creates every set afresh,
  as a first apply does. Sizes after the first start from the first's high-water mark, so for
  RSS run each size in its own process (`--mem-items 100000`, then `--mem-items 25000`).

`--only` picks parts (preview, aggregate, memory, apply, applymem). Each run's `build` makes a new
profile, so each apply adds its derived sets to a kept library (the sets of earlier profiles stay).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tags import django_setup  # noqa: E402

BENCH_DB = "bench_mappings"  # its own database, so it never touches a kept bench_tags


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="mysql://user:pass@host:port/")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=20_000)
    parser.add_argument("--mapped", type=int, default=3_000, help="source tags with a rule")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--agg-rounds", type=int, default=5, help="interleaved aggregate rounds")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--only", default="preview,aggregate,memory,apply", help="parts to run")
    parser.add_argument("--apply-rounds", type=int, default=3, help="interleaved apply rounds")
    parser.add_argument("--apply-items", type=int, default=0, help="apply to the first N items (0: all)")
    parser.add_argument("--profile-apply", action="store_true", help="pyinstrument the product's applies")
    parser.add_argument("--mem-items", default="", help="applymem sizes, e.g. 25000,100000")
    parser.add_argument("--name", default=BENCH_DB, help="database name (concurrent runs: one each)")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    return args


def build(mapped: int):  # type: ignore[no-untyped-def]
    """Target vocabulary, mapping set and profile over the loaded library."""
    from apps.mappings.models import MappingProfile, MappingSet
    from apps.mappings.services.profiles import profile_create
    from apps.mappings.services.rules import RuleInput, mapping_set_create
    from apps.tags.models import Tag, Vocabulary

    MappingProfile.objects.filter(slug="bench").delete()
    MappingSet.objects.filter(slug="bench").delete()
    target = Vocabulary.objects.filter(slug="bench-target").first() or Vocabulary.objects.create(
        slug="bench-target", name="bench target"
    )
    source = list(
        Tag.objects.filter(vocabulary__is_default_key=True)
        .order_by("-media_count")
        .values_list("name", flat=True)[:mapped]
    )
    rng = random.Random(3)
    rules = []
    for n, name in enumerate(source):
        roll = rng.random()
        if roll < 0.1:
            rules.append(RuleInput(name, action="drop", line=n))
        elif roll < 0.2:
            rules.append(RuleInput(name, [f"t_{name}", f"t2_{name}"], line=n))
        else:
            rules.append(RuleInput(name, [f"t_{name}"], line=n))
        if roll > 0.95 and n > 0:
            rules.append(RuleInput(name, [f"g_{name}"], requires=source[0], priority=1, line=n))
    mapping_set = mapping_set_create(
        slug="bench",
        source_vocabulary=Vocabulary.objects.get(is_default_key=True).slug,
        target_vocabulary=target.slug,
        rules=rules,
        create_targets=True,
    )
    return profile_create(
        slug="bench",
        target_vocabulary=target.slug,
        steps=[mapping_set.slug],
        input_scope="curated",
        implication_policy="prune_implied",
        unmapped_policy="drop",
        max_tags=40,
    )


def baseline(prepared, item_ids):  # type: ignore[no-untyped-def]
    """Every input row in one query, grouped in Python, the same pipeline per item, and the same
    aggregates the product reports (counts per share, flags, unmapped tags by count)."""
    from collections import Counter

    from django.db import connection

    from apps.mappings.pipeline import map_item
    from apps.mappings.selectors import outputs_load

    rows: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.media_item_id, a.tag_id, a.position FROM tags_tagassignment a "
            "WHERE a.kind = 2 AND a.state = 1 AND a.media_item_id BETWEEN %s AND %s",
            [item_ids[0], item_ids[-1]],
        )
        for item_id, tag_id, position in cursor.fetchall():
            rows[item_id].append((tag_id, position))
    ideal = prepared.compiled.ideal
    outputs_load(prepared.compiled, {ideal.get(t, t) for pairs in rows.values() for t, _p in pairs})
    counts: Counter[str] = Counter()
    unmapped: Counter[int] = Counter()
    for item_id in item_ids:
        result = map_item(prepared.compiled, rows.get(item_id, []), caption=False)
        counts["mapped"] += len(result.mapped)
        counts["dropped"] += len(result.dropped)
        counts["unmapped"] += len(result.unmapped)
        counts["output_tags"] += len(result.tags)
        unmapped.update(result.unmapped)
        for flag in result.flags:
            counts[f"flag_{flag}"] += 1
    return counts, unmapped


LOOP_SLOT = "bench-loop"  # the loop's derived sets: same tables as the product's, another slot


def loop_rows_drop() -> None:
    """Delete the loop's derived sets and their rows (untimed; also what a stopped run left)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE a FROM tags_tagassignment a JOIN tags_tagset s ON a.tagset_id = s.id"
            " WHERE s.kind = 4 AND s.slot LIKE %s",
            [f"{LOOP_SLOT}:%"],
        )
        cursor.execute("DELETE FROM tags_tagset WHERE kind = 4 AND slot LIKE %s", [f"{LOOP_SLOT}:%"])


def apply_baseline(prepared, item_ids, chunk: int = 2_000) -> None:  # type: ignore[no-untyped-def]
    """The apply as a plain loop: every input row in one query, the same pipeline per item, and
    per chunk of items one transaction with bulk INSERTs of the rows the product's apply writes
    into a fresh profile slot (a derived set per item with output tags, an assignment row per
    output tag at its position), into the same two tables under its own slot. No undo log, no
    effective tags, counters or MappedSet rows, no locks: what the product writes on top."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.mappings.pipeline import map_item
    from apps.mappings.selectors import outputs_load
    from apps.tags.models import TagAssignment, TagSet

    rows: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.media_item_id, a.tag_id, a.position FROM tags_tagassignment a "
            "WHERE a.kind = 2 AND a.state = 1 AND a.media_item_id BETWEEN %s AND %s",
            [item_ids[0], item_ids[-1]],
        )
        for item_id, tag_id, position in cursor.fetchall():
            rows[item_id].append((tag_id, position))
    ideal = prepared.compiled.ideal
    outputs_load(prepared.compiled, {ideal.get(t, t) for pairs in rows.values() for t, _p in pairs})
    profile = prepared.profile
    slot, label = f"{LOOP_SLOT}:{profile.pk}", f"mapping profile {profile.slug}"[:200]
    derived, current, via = TagSet.Kind.DERIVED, TagAssignment.State.CURRENT, TagAssignment.Via.MAPPING
    for start in range(0, len(item_ids), chunk):
        tags = {}
        for item_id in item_ids[start : start + chunk]:
            tag_ids = map_item(prepared.compiled, rows.get(item_id, []), caption=False).tag_ids
            if tag_ids:
                tags[item_id] = {tag_id: n for n, tag_id in enumerate(tag_ids)}
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO tags_tagset (created_at, updated_at, kind, slot, origin_label, tagger_model,"
                " tagger_version, stored_threshold, assignment_count, row_version, media_item_id,"
                " vocabulary_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [  # placeholders only: MySQLdb folds only those into one multi-row INSERT
                    (now, now, derived, slot, label, "", "", 0, len(t), 1, i, profile.target_vocabulary_id)
                    for i, t in tags.items()
                ],
            )
            cursor.execute(
                "SELECT media_item_id, id FROM tags_tagset WHERE media_item_id BETWEEN %s AND %s"
                " AND kind = 4 AND vocabulary_id = %s AND slot = %s",
                [
                    item_ids[start],
                    item_ids[min(start + chunk, len(item_ids)) - 1],
                    profile.target_vocabulary_id,
                    slot,
                ],
            )
            sets = dict(cursor.fetchall())
            cursor.executemany(
                "INSERT INTO tags_tagassignment (created_at, updated_at, kind, state, position, added_via,"
                " entered_tag, media_item_id, tag_id, tagset_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (now, now, derived, current, n, via, "", i, tag_id, sets[i])
                    for i, t in tags.items()
                    for tag_id, n in t.items()
                ],
            )


class profiled:
    """pyinstrument's text report of the block, printed after it, when `on`."""

    def __init__(self, on: bool, label: str) -> None:
        self.on, self.label, self.profiler = on, label, None

    def __enter__(self) -> None:
        if self.on:
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=0.005)
            self.profiler.start()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            print(f"--- profile: {self.label}")
            print(self.profiler.output_text(unicode=False, color=False, show_all=False))


def apply_product(apply_service, profile, item_ids, user):  # type: ignore[no-untyped-def]
    """The product's apply of `profile` to `item_ids` as a job, its body run here."""
    outcome = apply_service.mapping_apply(profile=profile, ids=item_ids, actor=user)
    assert outcome.job is not None
    apply_service.mapping_apply_run(job_id=outcome.job.pk)
    return outcome


class rss_peak:
    """The peak resident set size above the size at entry, sampled every 20 ms by a thread."""

    def __init__(self) -> None:
        import threading

        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self.now()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def now(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def sample(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> rss_peak:
        self.start = self.peak = self.now()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.now())

    @property
    def above(self) -> int:
        return self.peak - self.start


def apply_memory(apply_service, profile, item_ids, user, sizes):  # type: ignore[no-untyped-def]
    """The apply job body's peak memory per size (traced Python peak, RSS above its start, and
    seconds), each apply undone afterwards (untimed) so every size starts from no sets."""
    import gc

    from apps.tags.services.operations import operation_undo
    from apps.tags.services.operations.run import operation_run

    apply_service.SYNC_MAX_ITEMS = 0  # always a job; its body runs here
    out = []
    for size in sizes:
        ids = item_ids[:size]
        outcome = apply_service.mapping_apply(profile=profile, ids=ids, actor=user)  # the request
        assert outcome.job is not None
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()
        with rss_peak() as rss:
            apply_service.mapping_apply_run(job_id=outcome.job.pk)
        seconds = time.perf_counter() - started
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        outcome.operation.refresh_from_db()
        assert outcome.operation.counters["items_done"] == len(ids), outcome.operation.counters
        out.append((len(ids), traced, rss.above, seconds))
        print(
            f"apply memory, {len(ids):,} items: traced peak {traced / 2**20:.1f} MiB,"
            f" RSS {rss.start / 2**20:.0f} MiB at the start, peak +{rss.above / 2**20:.1f} MiB,"
            f" {seconds:.0f} s (traced), load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        undo = operation_undo(operation=outcome.operation, actor=user)
        if undo.job is not None:
            operation_run(job_id=undo.job.pk)
    return out


def same_rows(profile) -> int:  # type: ignore[no-untyped-def]
    """The loop wrote the rows the product's apply left current in the profile's derived sets
    (item, tag, position; and the same items got a set); returns the row count."""
    from django.db import connection

    from apps.tags import slots

    check = (
        "SELECT COUNT(*), SUM(CRC32(CONCAT_WS(',', s.media_item_id, a.tag_id, a.position)))"
        " FROM tags_tagset s JOIN tags_tagassignment a ON a.tagset_id = s.id"
        " WHERE s.kind = 4 AND s.slot = %s AND a.state = 1"
    )
    sets = "SELECT COUNT(*), SUM(media_item_id) FROM tags_tagset WHERE kind = 4 AND slot = %s"
    out = []
    with connection.cursor() as cursor:
        for slot in (slots.mapping(profile.pk), f"{LOOP_SLOT}:{profile.pk}"):
            cursor.execute(check, [slot])
            found = cursor.fetchone()
            cursor.execute(sets, [slot])
            out.append((found, cursor.fetchone()))
    assert out[0] == out[1], out
    return int(out[0][0][0])


def same_aggregates(product, counts, unmapped) -> None:  # type: ignore[no-untyped-def]
    """The product's aggregates equal the loop's (the comparison is only fair if they do)."""
    inputs = counts["mapped"] + counts["dropped"] + counts["unmapped"]
    assert product["input_tags"] == inputs, (product["input_tags"], inputs)
    assert product["output_tags"] == counts["output_tags"]
    assert product["flags"] == {k[5:]: v for k, v in counts.items() if k.startswith("flag_")}
    top = {row["tag_id"]: row["count"] for row in product["top_unmapped"]}
    assert all(unmapped[tag_id] == n for tag_id, n in top.items())
    assert sorted(top.values(), reverse=True) == [n for _t, n in unmapped.most_common(len(top))]


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-map-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the data folder (broker spool, secret key)


def run(args: argparse.Namespace, work: Path) -> None:
    reused = django_setup(args.db, work, reuse=args.reuse, name=args.name)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from apps.mappings.services import apply as apply_service
    from apps.mappings.services.preview import aggregate
    from apps.tags.models import TagSet
    from bench.tagdata import generate

    t0 = time.perf_counter()
    if not reused:
        generate(n_items=args.items, n_tags=args.tags, seed=7, curated_share=1.0)
    item_ids = list(
        TagSet.objects.filter(kind=TagSet.Kind.CURATED)
        .order_by("media_item_id")
        .values_list("media_item_id", flat=True)
    )
    print(f"library: {len(item_ids):,} items with a curated set ({time.perf_counter() - t0:.0f} s)")
    profile = build(args.mapped)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password="pw-123456"
    )
    client = Client()
    client.force_login(user)
    rows = []

    timings = []
    for n in range(args.rounds + 3 if "preview" in args.only else 0):
        ids = random.Random(n).sample(item_ids, 50)
        started = time.perf_counter()
        response = client.post(
            f"/api/mapping-profiles/{profile.pk}/preview",
            {"ids": ids, "sample": 50},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content[:300]
        if n >= 3:
            timings.append(time.perf_counter() - started)
    if timings:
        rows.append(
            (
                "preview of 50 sampled items (API)",
                statistics.median(timings) * 1000,
                sorted(timings)[int(0.95 * len(timings)) - 1] * 1000,
                "ms",
            )
        )

    # Interleaved rounds (bench/rounds.py): each round runs the loop and the product on every
    # item, in alternating order, from a fresh compile; the ratio is taken inside the round.
    ratios, loops, products = [], [], []
    for n in range(args.agg_rounds if "aggregate" in args.only else 0):
        timed = {}
        for side in ("loop", "product") if n % 2 == 0 else ("product", "loop"):
            prepared = apply_service.prepare(profile)
            started = time.perf_counter()
            if side == "loop":
                counts, unmapped = baseline(prepared, item_ids)
            else:
                aggregates = aggregate(prepared, item_ids)
            timed[side] = time.perf_counter() - started
        same_aggregates(aggregates, counts, unmapped)
        loops.append(timed["loop"])
        products.append(timed["product"])
        ratios.append(timed["loop"] / timed["product"])
    if ratios:
        loop, product = statistics.median(loops), statistics.median(products)
        rows.append(
            (
                "aggregate preview, all items (median round)",
                len(item_ids) / product,
                len(item_ids) / loop,
                "items/s (product, loop)",
            )
        )
        rows.append(
            ("aggregate / loop speed, median of per-round ratios", statistics.median(ratios), None, "×")
        )
        rows.append(("  spread over rounds (min, max)", min(ratios), max(ratios), "×"))

    if "memory" in args.only:
        half = item_ids[: len(item_ids) // 2]
        peaks = []
        for ids in (half, item_ids):
            prepared = apply_service.prepare(profile)
            tracemalloc.start()
            aggregate(prepared, ids)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        rows.append(("aggregate peak memory, half / all items", peaks[0] / 2**20, peaks[1] / 2**20, "MiB"))

    # Apply: interleaved rounds (the side that goes first alternates). Each round the product
    # applies the profile as a job (its body run here) and the loop writes the same rows into the
    # same tables under its own slot; same_rows checks they are equal. Between rounds (untimed
    # for the ratio, timed as its own figure) the product's apply is undone through the tags
    # app's undo job, so the next round's apply creates every set again, and the loop's rows
    # are deleted.
    if "apply" in args.only:
        from apps.tags.services.operations import operation_undo
        from apps.tags.services.operations.run import operation_run

        apply_ids = item_ids[: args.apply_items] if args.apply_items else item_ids
        apply_service.SYNC_MAX_ITEMS = 0  # always a job; its body runs here
        loop_rows_drop()
        applied_s, loop_s, undo_s, apply_ratios = [], [], [], []
        written = 0
        for n in range(args.apply_rounds):
            timed = {}
            for side in ("product", "loop") if n % 2 == 0 else ("loop", "product"):
                started = time.perf_counter()
                with profiled(args.profile_apply, side):
                    if side == "loop":
                        apply_baseline(apply_service.prepare(profile), apply_ids)
                    else:
                        outcome = apply_product(apply_service, profile, apply_ids, user)
                timed[side] = time.perf_counter() - started
            written = same_rows(profile)
            applied_s.append(timed["product"])
            loop_s.append(timed["loop"])
            apply_ratios.append(timed["loop"] / timed["product"])
            print(
                f"apply round {n + 1}: product {timed['product']:.1f} s, loop {timed['loop']:.1f} s,"
                f" ratio {apply_ratios[-1]:.2f}, {written:,} rows equal, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            loop_rows_drop()
            started = time.perf_counter()
            with profiled(args.profile_apply, "undo"):
                undo = operation_undo(operation=outcome.operation, actor=user)
                if undo.job is not None:
                    operation_run(job_id=undo.job.pk)
            undo_s.append(time.perf_counter() - started)
            undone = undo.operation.__class__.objects.get(pk=undo.operation.pk)
            assert undone.counters.get("conflicts", 0) == 0, undone.counters
            print(
                f"  undo: {undo_s[-1]:.1f} s, {undone.counters.get('sets_removed', 0):,} sets dropped",
                flush=True,
            )
        rows.append(
            (
                f"apply, {len(apply_ids):,} items: product (job) / loop writing the same {written:,} rows"
                " (median round)",
                len(apply_ids) / statistics.median(applied_s),
                len(apply_ids) / statistics.median(loop_s),
                "items/s (product, loop)",
            )
        )
        rows.append(
            ("apply / loop speed, median of per-round ratios", statistics.median(apply_ratios), None, "×")
        )
        rows.append(("  spread over rounds (min, max)", min(apply_ratios), max(apply_ratios), "×"))
        rows.append(
            (
                "undo of the apply (job body), median",
                len(apply_ids) / statistics.median(undo_s),
                None,
                "items/s",
            )
        )

    if "applymem" in args.only:
        sizes = [int(n) for n in args.mem_items.split(",") if n] or [len(item_ids) // 4, len(item_ids)]
        found = apply_memory(apply_service, profile, item_ids, user, sizes)
        for (n, traced, _r, _s), (m, traced2, _r2, _s2) in zip(found, found[1:], strict=False):  # noqa: RUF007
            label = f"apply job peak traced memory, {n:,} / {m:,} items"
            rows.append((label, traced / 2**20, traced2 / 2**20, "MiB"))
        for n, _traced, rss, seconds in found:
            label = f"apply job peak RSS above its start, {n:,} items ({seconds:.0f} s traced)"
            rows.append((label, rss / 2**20, None, "MiB"))

    print(f"\n| measure ({len(item_ids):,} items) | value | second | unit |\n|---|---|---|---|")
    for name, a, b, unit in rows:
        print(f"| {name} | {a:,.2f} | {'' if b is None else f'{b:,.2f}'} | {unit} |")
    if not args.keep and not args.reuse:
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{args.name}`")


if __name__ == "__main__":
    main()
