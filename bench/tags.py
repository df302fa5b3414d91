"""Tag search, autocomplete, bulk edit and rebuild at library scale, on MariaDB.

    .venv/bin/python bench/tags.py --db mysql://root@127.0.0.1:3306/ --items 100000   # quick
    .venv/bin/python bench/tags.py --db mysql://root@127.0.0.1:3306/ --items 1000000 --tags 600000

Flags:
  --db URL        MariaDB server; the script creates and drops its own database (`--db-name`)
  --db-name NAME  that database's name (default bench_tags; give each concurrent run its own)
  --items N       library size (default 100,000); about 30 tags per item
  --tags T        vocabulary size (default 100,000)
  --queries Q     searches timed (default 300, cycling through a fixed mix)
  --peer-items P  caption files the peer scan reads (default: all items)
  --keep          keep the database afterwards
  --reuse         use the database a --keep run left (skips the load; implies --keep)
  --curated F     share of items with a curated set (default 1.0: a curated library, as bulk edits
                  meet it; 0 halves the load for search-only runs at 1M)
  --only LIST     comma-separated parts to run: search,peer,autocomplete,bulk,rebuild,load (default all)
  --bulk-rounds R interleaved rounds of the bulk replace + undo against the hand-written floor (3)
  --clients C     load mode: searching clients, one process each (default 16)
  --think-ms MS   load mode: mean pause between a client's searches (default 0: back to back)
  --load-seconds S  load mode: seconds measured alone before the bulk job starts (default 20)

Measured through the API (Django's test client, so DRF, serializers and the planner all run):
search first page (p50/p95 over a fixed mix of 1–6 term queries with negations and qualifiers),
two peers (a caption tool holding every item's effective tags and metadata in memory, timed on
every query shape against the API at count=exact, counts and first pages compared; and one
caption .txt per item scanned per query, the way file-based tag editors do, on the tag-only
shapes) with the speed ratios, autocomplete p95, a bulk replace of the most common
tag and its undo, and the effective-tag rebuild rate after an alias change. Figures go in
bench/README.md with the data size and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench_tags"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="mysql://user:pass@host:port/")
    parser.add_argument("--db-name", default=BENCH_DB, help="the bench database (dropped and created)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--peer-items", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--curated", type=float, default=1.0)
    parser.add_argument("--only", default="search,peer,autocomplete,bulk,rebuild,load")
    parser.add_argument("--bulk-rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    args = parser.parse_args()
    args.keep = args.keep or args.reuse
    args.only = set(args.only.split(","))
    return args


def django_setup(db: str, work: Path, reuse: bool = False, name: str = BENCH_DB) -> bool:
    """Point Django at the bench database; returns whether a loaded one was reused."""
    sys.path.insert(0, str(ROOT))
    parts = urlsplit(db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "baggintag.settings.test"
    os.environ["BAGGINTAG_DATA_DIR"] = str(work / "data")
    os.environ["TEST_DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", [name])
        if reuse and cursor.fetchone()[0]:
            call_command("migrate", verbosity=0)  # migrations newer than the load
            return True
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    call_command("migrate", verbosity=0)
    return False


SHAPES = 9  # query_mix yields 9 shapes per round


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _spec(all_of: list[list[str]], none: list[str] = (), **qualifiers: object) -> dict:
    """What a query asks, for the peers: every group needs one of its tags, none of `none`."""
    return {
        "all": all_of,
        "none": list(none),
        "width_min": None,
        "ratings": None,
        "format": None,
        "prefix": None,
        **qualifiers,
    }


def query_mix(lib, rng: random.Random) -> list[tuple[str, dict]]:
    """(q, spec): the fixed mix of 9 shapes, each with what it asks in a form the peers read."""
    names = [lib.names[t] for t in lib.tag_ids]
    n = len(names)
    common, mid, rare = names[:20], names[50 : max(200, n // 50)], names[n // 20 : n // 2]
    mix = []
    for _ in range(40):
        c1, c2 = rng.sample(common, 2)
        m1, m2, m3, m4, m5, m6 = rng.sample(mid, 6)
        r1 = rng.choice(rare)
        mix += [
            (c1, _spec([[c1]])),
            (r1, _spec([[r1]])),
            (f"{m1} {m2}", _spec([[m1], [m2]])),
            (f"{c1} -{c2}", _spec([[c1]], [c2])),
            (f"{m1} or {m2} or {m3} or {m4} or {m5}", _spec([[m1, m2, m3, m4, m5]])),
            (f"{c1} {m1} -{m2} width:>=1024", _spec([[c1], [m1]], [m2], width_min=1024)),
            (
                f"{m1} {m2} {m3} {m4} {m5} {m6} rating:g,s",
                _spec([[t] for t in (m1, m2, m3, m4, m5, m6)], ratings={"g", "s"}),
            ),
            (f"{r1} -{c1} format:jpeg", _spec([[r1]], [c1], format="jpeg")),
            (f"{m1[:6]}* {c1}", _spec([[c1]], prefix=m1[:6])),
        ]
    return mix


def tag_only(spec: dict) -> bool:
    return not any(spec[k] for k in ("width_min", "ratings", "format", "prefix"))


def peer_scan(folder: Path, spec: dict) -> int:
    """What file-based editors do: read every caption file and test the query on its tags."""
    groups, excluded = spec["all"], spec["none"]
    hits = 0
    for path in folder.iterdir():
        tags = {t.strip() for t in path.read_text().split(",")}
        if all(any(t in tags for t in group) for group in groups) and not any(t in tags for t in excluded):
            hits += 1
    return hits


class CaptionMemory:
    """A caption tool that holds everything in memory: each item's effective tags (aliases
    resolved, implications added: what search reads) with its width, format and rating, newest
    first. A query is one pass over the items, counting every match exactly and keeping the
    first 100, as `count=exact` does; a wildcard takes the 100 most used matching tags, as the
    query language does (SEARCH_WILDCARD_MAX)."""

    def __init__(self, lib) -> None:
        from collections import Counter

        from django.db import connection

        tags: dict[int, set[str]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT e.media_item_id, t.name FROM tags_effectivetag e JOIN tags_tag t ON t.id = e.tag_id"
            )
            for item_id, name in cursor.fetchall():
                tags.setdefault(item_id, set()).add(name)
            cursor.execute("SELECT id, width, format, rating FROM media_mediaitem ORDER BY id DESC")
            rows = cursor.fetchall()
        self.items = [(i, frozenset(tags.get(i, ())), w, f, r) for i, w, f, r in rows]
        self.usage = Counter(name for names in tags.values() for name in names)
        by_name = {name: tag_id for tag_id, name in lib.names.items()}
        self.ideal = {
            name: lib.names.get(lib.ideal[by_name[name]], name)
            for name in by_name
            if by_name[name] in lib.ideal
        }

    def search(self, spec: dict, limit: int = 100) -> tuple[int, list[int]]:
        groups = [{self.ideal.get(t, t) for t in group} for group in spec["all"]]
        if spec["prefix"]:
            matching = [name for name in self.usage if name.startswith(spec["prefix"])]
            groups.append(set(sorted(matching, key=lambda name: -self.usage[name])[:100]))
        none = {self.ideal.get(t, t) for t in spec["none"]}
        width_min, ratings, fmt = spec["width_min"], spec["ratings"], spec["format"]
        count, page = 0, []
        for item_id, names, width, item_format, rating in self.items:
            if (
                all(not names.isdisjoint(group) for group in groups)
                and names.isdisjoint(none)
                and (width_min is None or width >= width_min)
                and (ratings is None or rating in ratings)
                and (fmt is None or item_format == fmt)
            ):
                count += 1
                if len(page) < limit:
                    page.append(item_id)
        return count, page


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-tags-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # caption files, the data folder


def run(args: argparse.Namespace, work: Path) -> None:
    reused = django_setup(args.db, work, reuse=args.reuse, name=args.db_name)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from bench.tagdata import generate, load

    rng = random.Random(11)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, MariaDB {connection.cursor().connection.get_server_info()}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@innodb_buffer_pool_size")
        pool = cursor.fetchone()[0]
    print(
        f"innodb_buffer_pool_size: {pool / 2**20:.0f} MB"
        + ("  (small: the data will not stay in memory; see bench/README.md)" if pool < 2**31 else "")
    )
    t0 = time.perf_counter()
    lib = (
        load()
        if reused
        else generate(n_items=args.items, n_tags=args.tags, seed=7, curated_share=args.curated)
    )
    loaded = time.perf_counter() - t0
    print(
        f"data: {len(lib.item_ids):,} items, {len(lib.tag_ids):,} tags, "
        f"{lib.seconds['assignments_rows']:,.0f} assignments, "
        f"{lib.seconds['effective_rows']:,.0f} effective tags; "
        + (f"reused (read in {loaded:.0f} s)" if reused else f"loaded in {loaded:.0f} s")
    )

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password="bench-pw-123"
    )
    client = Client()
    client.force_login(user)
    rows = []

    mix = query_mix(lib, rng)
    if "search" in args.only:
        rows += bench_search(client, mix, args.queries)
    if "peer" in args.only:
        rows += bench_peer(client, lib, mix, work, args.peer_items or len(lib.item_ids))
    if "autocomplete" in args.only:
        prefixes = [lib.names[t][: rng.randint(3, 7)] for t in rng.sample(lib.tag_ids[:20000], 200)]
        auto = []
        for prefix in prefixes[:20]:  # warm
            client.get("/api/tags/autocomplete", {"q": prefix})
        for prefix in prefixes:
            t = time.perf_counter()
            client.get("/api/tags/autocomplete", {"q": prefix})
            auto.append(time.perf_counter() - t)
        rows.append(("autocomplete (API)", pct(auto, 50) * 1000, pct(auto, 95) * 1000, "ms"))
    if "bulk" in args.only:
        rows += bench_bulk(client, lib, rounds=args.bulk_rounds)
    if "load" in args.only:
        rows += bench_load(client, lib, mix, args.clients, args.think_ms / 1000, args.load_seconds)
    if "rebuild" in args.only:
        rows += bench_rebuild(lib)

    print()
    print(f"| measure ({len(lib.item_ids):,} items) | p50 / value | p95 / max | unit |")
    print("|---|---|---|---|")
    for name, a, b, unit in rows:
        second = "" if b is None else f"{b:,.2f}" if b < 10 else f"{b:,.1f}"
        print(
            f"| {name} | {a:,.2f} | {second} | {unit} |"
            if a < 10
            else f"| {name} | {a:,.1f} | {second} | {unit} |"
        )
    if not args.keep:
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{args.db_name}`")


def bench_search(client, mix, queries: int) -> list[tuple[str, float, float | None, str]]:
    """First pages through the API: p50/p95 overall, and p95 per query shape (to find culprits)."""
    for q, *_ in mix[:20]:  # warm caches
        client.get("/api/media/search", {"q": q, "limit": 100})
    times: list[float] = []
    shapes: dict[int, list[float]] = {}
    for i in range(queries):
        q = mix[i % len(mix)][0]
        t = time.perf_counter()
        response = client.get("/api/media/search", {"q": q, "limit": 100})
        dt = time.perf_counter() - t
        times.append(dt)
        shapes.setdefault(i % SHAPES, []).append(dt)
        if response.status_code != 200:
            raise SystemExit(f"search {q!r} answered {response.status_code}: {response.content[:300]!r}")
    for shape, values in sorted(shapes.items()):
        print(
            f"  shape {shape} (e.g. {mix[shape][0]!r}): p50 {pct(values, 50) * 1000:.1f} ms, "
            f"p95 {pct(values, 95) * 1000:.1f} ms"
        )
    return [("search, first page of 100 (API)", pct(times, 50) * 1000, pct(times, 95) * 1000, "ms")]


def bench_peer(client, lib, mix, work: Path, limit: int) -> list[tuple[str, float, float | None, str]]:
    """Two peers. (1) A caption tool holding the same effective tags and metadata in memory:
    every shape, interleaved with the API at `count=exact` (both count every match), counts and
    first pages compared. (2) One caption .txt per item (base tags, as file-based editors keep
    them), scanned per query: only the tag-only shapes (files hold no width, format or rating)."""
    memory = CaptionMemory(lib)
    per_shape: dict[int, dict[str, list[float]]] = {}
    agree = {"count": 0, "page": 0, "queries": 0}
    for i, (q, spec) in enumerate(mix[: SHAPES * 5]):
        timings = per_shape.setdefault(i % SHAPES, {"api": [], "memory": []})
        for side in ("api", "memory") if i % 2 == 0 else ("memory", "api"):
            t = time.perf_counter()
            if side == "api":
                body = client.get("/api/media/search", {"q": q, "limit": 100, "count": "exact"}).json()
            else:
                count, page = memory.search(spec)
            timings[side].append(time.perf_counter() - t)
        agree["queries"] += 1
        agree["count"] += body.get("count") == count
        agree["page"] += [r["id"] for r in body.get("results", [])] == page
        if body.get("count") != count:
            print(f"  counts differ for {q!r}: API {body.get('count')}, in-memory {count}")
    rows = []
    ratios = []
    for shape, timings in sorted(per_shape.items()):
        api_ms, mem_ms = statistics.median(timings["api"]) * 1000, statistics.median(timings["memory"]) * 1000
        ratios.append(mem_ms / api_ms)
        print(
            f"  peer shape {shape} (e.g. {mix[shape][0]!r}): API count=exact {api_ms:.1f} ms, "
            f"in-memory captions {mem_ms:.1f} ms; API / in-memory speed {mem_ms / api_ms:.2f}"
        )
    print(
        f"  in-memory peer vs API count=exact: counts equal in {agree['count']}/{agree['queries']} queries, "
        f"first pages equal in {agree['page']}/{agree['queries']}"
    )
    rows.append(
        (
            "peer: captions held in memory, every shape (median over shapes of per-shape ratios)",
            statistics.median(ratios),
            min(ratios),
            f"API speed / in-memory speed (min over shapes second; count=exact on both; "
            f"{agree['count']}/{agree['queries']} counts equal)",
        )
    )

    captions = work / "captions"
    captions.mkdir()
    for item_id in lib.item_ids[:limit]:
        (captions / f"{item_id}.txt").write_text(", ".join(lib.names[t] for t in lib.item_tags[item_id]))
    peer_times, ours = [], []
    for q, spec in [entry for entry in mix if tag_only(entry[1])][:10]:  # 2 of each tag-only shape
        t = time.perf_counter()
        peer_scan(captions, spec)
        peer_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.get("/api/media/search", {"q": q, "limit": 100, "count": "exact"})
        ours.append(time.perf_counter() - t)
    ratio = statistics.median(peer_times) / statistics.median(ours)
    rows.append(
        (
            f"peer: scan {limit:,} caption files per query (5 tag-only shapes; API count=exact)",
            statistics.median(peer_times) * 1000,
            max(peer_times) * 1000,
            f"ms (Baggintag {ratio:,.0f}× faster)",
        )
    )
    return rows


def bench_rebuild(lib) -> list[tuple[str, float, float | None, str]]:
    """Effective rebuild after an alias is activated, and again after it is retired."""
    from apps.media.models import MediaItem
    from apps.tags.services import rules
    from apps.tags.services.effective import effective_rebuild_stale

    antecedent, consequent = lib.names[lib.tag_ids[30]], lib.names[lib.tag_ids[31]]
    from apps.tags.models import TagAlias

    alias = TagAlias.objects.filter(antecedent__name=antecedent, consequent__name=consequent).first()
    if alias is None:
        alias = rules.alias_create(antecedent=antecedent, consequent=consequent, activate=True)
    else:  # a reused database: the last run retired it
        rules.alias_activate(alias=alias)
    out = []
    for label in ("activated", "retired"):
        stale = MediaItem.objects.filter(effective_stale=True).count()
        t = time.perf_counter()
        rebuilt = effective_rebuild_stale()
        dt = time.perf_counter() - t
        out.append((f"effective rebuild, alias {label} ({stale:,} items)", rebuilt / dt, None, "items/s"))
        if label == "activated":
            rules.alias_retire(alias=alias)
    return out


def _run_job(body: dict, marks: dict[str, float]) -> None:
    """Run a queued bulk job here, synchronously (the bench has no worker); `marks["applied"]`
    gets the moment its operation was committed as applied (the effective pass follows)."""
    from apps.tags.services.operations import operation_run
    from apps.tags.services.operations import run as operation_module

    settle = operation_module.operation_effective_settle

    def marked(*, operation_id: int) -> int:
        marks.setdefault("applied", time.perf_counter())
        return settle(operation_id=operation_id)

    operation_module.operation_effective_settle = marked
    try:
        operation_run(job_id=body["job"]["id"])
    finally:
        operation_module.operation_effective_settle = settle


def _timed(post: Any) -> tuple[float, float, dict]:
    """(seconds until applied, seconds until the job ended, response body) of a bulk request."""
    marks: dict[str, float] = {}
    t = time.perf_counter()
    response = post()
    body = response.json()
    if response.status_code == 202:
        _run_job(body, marks)
    elif response.status_code >= 300:
        raise SystemExit(f"bulk request answered {response.status_code}: {response.content[:300]!r}")
    end = time.perf_counter()
    return marks.get("applied", end) - t, end - t, body


class Floor:
    """What the replace must do at the least, written by hand: one UPDATE tombstoning the tag's
    curated rows and one INSERT … SELECT adding the new tag to the same sets (no change log, no
    set versions, no counters, no effective tags), and the two statements that revert them."""

    def __init__(self, from_id: int, to_id: int) -> None:
        self.from_id, self.to_id = from_id, to_id

    def apply(self) -> None:
        from django.db import connection, transaction

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tags_tagassignment SET state = 0, operation_id = 0, updated_at = NOW(6) "
                "WHERE tag_id = %s AND kind = 2 AND state = 1",
                [self.from_id],
            )
            cursor.execute(
                "INSERT INTO tags_tagassignment (created_at, updated_at, tagset_id, tag_id, media_item_id, "
                "kind, state, position, added_via, origin_set_id, entered_tag, actor_id, operation_id, "
                "confidence) SELECT NOW(6), NOW(6), tagset_id, %s, media_item_id, 2, 1, NULL, 'bulk', NULL, "
                "'', NULL, 0, NULL FROM tags_tagassignment WHERE tag_id = %s AND kind = 2 AND state = 0 "
                "AND operation_id = 0",
                [self.to_id, self.from_id],
            )

    def undo(self) -> None:
        from django.db import connection, transaction

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM tags_tagassignment "
                "WHERE tag_id = %s AND kind = 2 AND state = 1 AND operation_id = 0",
                [self.to_id],
            )
            cursor.execute(
                "UPDATE tags_tagassignment SET state = 1, operation_id = NULL, updated_at = NOW(6) "
                "WHERE tag_id = %s AND kind = 2 AND state = 0 AND operation_id = 0",
                [self.from_id],
            )


def bench_bulk(
    client, lib, rounds: int = 3, floor: bool = True
) -> list[tuple[str, float, float | None, str]]:
    """Replace the most common tag on every item that has it (curated sets), then undo it, as the
    API does it (jobs run here); `rounds` interleaved rounds against the hand-written floor."""
    from apps.tags.models import Tag

    tag = lib.names[lib.tag_ids[0]]
    payload = {"action": "replace", "from": [tag], "to": ["bench_replaced"], "q": tag, "set_kind": "curated"}
    samples: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {"apply": [], "undo": []}
    matched = None
    for n in range(rounds):
        sides = ["product", "floor"] if floor else ["product"]
        for side in sides[n % len(sides) :] + sides[: n % len(sides)]:
            if side == "floor":
                to_id = Tag.objects.get(name="bench_replaced").pk
                bottom = Floor(lib.tag_ids[0], to_id)
                for step in ("apply", "undo"):
                    t = time.perf_counter()
                    getattr(bottom, step)()
                    samples.setdefault(f"floor {step}", []).append(time.perf_counter() - t)
                continue
            t = time.perf_counter()
            preview = client.post(
                "/api/tags/bulk", {**payload, "dry_run": True}, content_type="application/json"
            )
            samples.setdefault("preview", []).append(time.perf_counter() - t)
            body = preview.json()
            counts = body.get("counts", body)
            matched = counts.get("matched_items") if isinstance(counts, dict) else None
            # Apply that preview (its frozen target), as the bulk page's Apply button does.
            apply_url = f"/api/tag-operations/{body['operation']['id']}/apply"
            applied, settled, body = _timed(lambda: client.post(apply_url))  # noqa: B023 - called at once
            samples.setdefault("apply", []).append(applied)
            samples.setdefault("apply settled", []).append(settled)
            operation_id = (body.get("operation") or {}).get("id")
            undo_url = f"/api/tag-operations/{operation_id}/undo"
            applied, settled, _body = _timed(lambda: client.post(undo_url))  # noqa: B023 - called at once
            samples.setdefault("undo", []).append(applied)
            samples.setdefault("undo settled", []).append(settled)
        if floor:
            for step in ("apply", "undo"):
                ratios[step].append(samples[f"floor {step}"][-1] / samples[step][-1])
    med = {key: statistics.median(values) for key, values in samples.items()}
    top = {key: max(values) for key, values in samples.items()}
    items = f"{matched:,} items" if matched else "the most common tag"
    rows = [
        (f"bulk replace preview ({items})", med["preview"], top["preview"], "s (median, max)"),
        (
            "bulk replace apply: until applied (undoable; effective pass pending)",
            med["apply"],
            top["apply"],
            "s",
        ),
        (
            "bulk replace apply: until the effective pass is done",
            med["apply settled"],
            top["apply settled"],
            "s",
        ),
        ("its undo: until applied", med["undo"], top["undo"], "s"),
        ("its undo: until the effective pass is done", med["undo settled"], top["undo settled"], "s"),
    ]
    if floor:
        rows += [
            (
                "floor: hand-written UPDATE + INSERT … SELECT (no log, counters, effective)",
                med["floor apply"],
                top["floor apply"],
                "s",
            ),
            ("floor: its two reverting statements", med["floor undo"], top["floor undo"], "s"),
            (
                "apply until applied: floor time / product time (median of rounds)",
                statistics.median(ratios["apply"]),
                min(ratios["apply"]),
                "ratio (min)",
            ),
            (
                "undo until applied: floor time / product time",
                statistics.median(ratios["undo"]),
                min(ratios["undo"]),
                "ratio (min)",
            ),
        ]
    return rows


def _load_client(
    index: int, mix: list[str], think: float, stop: Any, out: Any, phase: Any, ready: Any
) -> None:
    """One searching client (its own process and connection): first pages, tagged with the phase
    (0 alone, 1 while the bulk job runs) in which each search started. It logs in and runs a few
    unmeasured searches first (a fresh process's first request pays for its connection, login
    and Django's lazy set-up: seconds when 16 start at once on two cores), then waits until
    every client is as warm."""
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client

    connections.close_all()  # never share the parent's socket
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    rng = random.Random(index)
    for q in rng.sample(mix, min(3, len(mix))):
        client.get("/api/media/search", {"q": q, "limit": 100})
    ready.wait()
    times: list[tuple[int, float]] = []
    while not stop.is_set():
        q = rng.choice(mix)
        started_in = phase.value
        t = time.perf_counter()
        response = client.get("/api/media/search", {"q": q, "limit": 100})
        dt = time.perf_counter() - t
        if response.status_code != 200:  # e.g. 422 search.timeout: counted as a failed search
            dt = -dt
        times.append((started_in, dt))
        if think:
            time.sleep(rng.uniform(0.5, 1.5) * think)
    out.put(("times", index, times))


def bench_load(
    client, lib, mix, clients: int, think: float, seconds: float
) -> list[tuple[str, float, float | None, str]]:
    """`clients` processes search first pages in a closed loop (each waits `think` seconds on
    average between searches; 0: none) for `seconds` alone, then while a bulk replace of the most
    common tag and its undo run as jobs in this process; p50/p95 per phase."""
    import multiprocessing

    from django.db import connections

    queries = [q for q, _spec in mix]
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    stop, out, phase = ctx.Event(), ctx.Queue(), ctx.Value("i", 0)
    ready = ctx.Barrier(clients + 1)  # the measured phases start once every client is warm
    procs = [
        ctx.Process(target=_load_client, args=(i, queries, think, stop, out, phase, ready))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=600)
    time.sleep(seconds)
    phase.value = 1
    t = time.perf_counter()
    bulk = bench_bulk(client, lib, rounds=1, floor=False)
    bulk_s = time.perf_counter() - t
    phase.value = 2
    stop.set()
    per_phase: dict[int, list[float]] = {0: [], 1: []}
    failed = {0: 0, 1: 0}
    for _ in procs:
        message = out.get(timeout=120)
        for started_in, dt in message[2]:
            if started_in in per_phase:
                per_phase[started_in].append(abs(dt))
                failed[started_in] += dt < 0
    for proc in procs:
        proc.join(timeout=60)
    label = f"{clients} clients" + (f", think {think * 1000:.0f} ms" if think else ", no think time")
    rows = []
    for key, name in ((0, "alone"), (1, f"during bulk apply + undo ({bulk_s:.1f} s)")):
        values = per_phase[key]
        if values:
            rows.append(
                (
                    f"search under load, {label}, {name}: {len(values)} searches "
                    f"({failed[key]} not 200, e.g. timed out), "
                    f"{len(values) / (seconds if key == 0 else bulk_s):.1f}/s",
                    pct(values, 50) * 1000,
                    pct(values, 95) * 1000,
                    "ms",
                )
            )
    return rows + [(f"(under load) {name}", a, b, unit) for name, a, b, unit in bulk]


if __name__ == "__main__":
    main()
