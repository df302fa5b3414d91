"""A Danbooru-shaped library generator for the tag benchmarks (bulk SQL, no per-row ORM work).

N items with about 30 source tags each, drawn from a Zipf distribution over T tags with types
(general, character, copyright, artist, meta), a few hundred aliases and implications; effective
tags, counters and TagStat are written directly so the library is ready to search.

    from bench.tagdata import generate
    stats = generate(n_items=100_000, n_tags=100_000, seed=7)
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

TYPE_SHARE = [("general", 0.70), ("character", 0.15), ("copyright", 0.06), ("artist", 0.07), ("meta", 0.02)]
BATCH = 20_000
TAGSET_COLUMNS = [
    "media_item_id",
    "kind",
    "vocabulary_id",
    "slot",
    "origin_label",
    "tagger_model",
    "tagger_version",
    "stored_threshold",
    "assignment_count",
    "row_version",
    "created_at",
    "updated_at",
]


@dataclass
class Library:
    """What was generated: ids and each item's base tags, for peers and oracles."""

    item_ids: list[int] = field(default_factory=list)
    tag_ids: list[int] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    item_tags: dict[int, list[int]] = field(default_factory=dict)
    ideal: dict[int, int] = field(default_factory=dict)
    ancestors: dict[int, set[int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _zipf_sampler(n: int, s: float, rng: random.Random) -> Any:
    weights = [1.0 / (k**s) for k in range(1, n + 1)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]

    def draw() -> int:
        return bisect.bisect_left(cumulative, rng.random() * total)

    return draw


def _insert(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]], vendor: str) -> None:
    quote = "`" if vendor == "mysql" else '"'
    marks = ", ".join(["%s"] * len(columns))
    names = ", ".join(quote + c + quote for c in columns)
    sql = f"INSERT INTO {quote}{table}{quote} ({names}) VALUES ({marks})"
    for start in range(0, len(rows), BATCH):
        cursor.executemany(sql, rows[start : start + BATCH])


def generate(
    *,
    n_items: int,
    n_tags: int,
    tags_per_item: int = 30,
    seed: int = 7,
    n_aliases: int = 500,
    n_implications: int = 500,
    curated_share: float = 1.0,
) -> Library:
    """Fill the current database with a synthetic library; returns what was written."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.media.models import MediaItem
    from apps.tags.models import TagSet, TagType, Vocabulary
    from apps.tags.services import vocabulary_default

    rng = random.Random(seed)
    lib = Library()
    vendor = connection.vendor
    now = timezone.now()
    vocabulary: Vocabulary = vocabulary_default()
    types = {t.key: t.pk for t in TagType.objects.all()}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "mysql":
            # A bulk load: checks are skipped for speed; the generator's own data is consistent.
            cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
        # Tags: rank 0 is the most common; types drawn by share, names unique.
        type_keys, shares = zip(*TYPE_SHARE, strict=True)
        tag_rows = []
        for rank in range(n_tags):
            key = rng.choices(type_keys, weights=shares)[0]
            name = f"{key[:4]}_{rank:06d}_{hashlib.md5(str(rank).encode()).hexdigest()[:4]}"
            tag_rows.append((vocabulary.pk, name, name, types[key], 0, False, False, now, now))
        _insert(
            cursor,
            "tags_tag",
            [
                "vocabulary_id",
                "name",
                "display_name",
                "type_id",
                "media_count",
                "is_deprecated",
                "keep_underscore",
                "created_at",
                "updated_at",
            ],
            tag_rows,
            vendor,
        )
        cursor.execute("SELECT id, name FROM tags_tag WHERE vocabulary_id = %s ORDER BY id", [vocabulary.pk])
        fetched = cursor.fetchall()
        by_name = {name: tag_id for tag_id, name in fetched}
        lib.tag_ids = [by_name[row[1]] for row in tag_rows]
        lib.names = {tag_id: name for name, tag_id in by_name.items()}
        lib.seconds["tags"] = time.perf_counter() - started

        # Items.
        t0 = time.perf_counter()
        items = []
        for i in range(n_items):
            width, height = rng.choice([(1024, 1024), (832, 1216), (1216, 832), (2048, 1536), (640, 480)])
            digest = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
            items.append(
                MediaItem(
                    kind="image",
                    name=f"img{i:07d}.jpg",
                    sha256=digest,
                    storage_key=f"originals/{digest}.jpg",
                    format=rng.choice(["jpeg", "png", "webp"]),
                    mime_type="image/jpeg",
                    size_bytes=rng.randint(50_000, 5_000_000),
                    width=width,
                    height=height,
                    pixels=width * height,
                    ratio_milli=round(1000 * width / height),
                    mode="RGB",
                    bit_depth=8,
                    rating=rng.choice("gsqe"),
                )
            )
        MediaItem.objects.bulk_create(items, batch_size=5000)
        lib.item_ids = list(MediaItem.objects.order_by("pk").values_list("pk", flat=True))[-n_items:]
        lib.seconds["items"] = time.perf_counter() - t0

        # One source set per item, ~30 Zipf-distributed tags.
        t0 = time.perf_counter()
        draw = _zipf_sampler(n_tags, 1.05, rng)
        set_rows = [
            (item_id, TagSet.Kind.SOURCE, vocabulary.pk, "src:bench", "bench", "", "", 1000, 0, 1, now, now)
            for item_id in lib.item_ids
        ]
        _insert(
            cursor,
            "tags_tagset",
            TAGSET_COLUMNS,
            set_rows,
            vendor,
        )
        # A curated set (the person's copy of the imported tags) on `curated_share` of the items:
        # a curated library, as bulk edits meet it; the rest read their source tags.
        curated_items = lib.item_ids[: round(curated_share * len(lib.item_ids))]
        _insert(
            cursor,
            "tags_tagset",
            TAGSET_COLUMNS,
            [
                (i, TagSet.Kind.CURATED, vocabulary.pk, "", "", "", "", 1000, 0, 1, now, now)
                for i in curated_items
            ],
            vendor,
        )
        cursor.execute("SELECT media_item_id, id FROM tags_tagset WHERE slot = 'src:bench'")
        set_of = dict(cursor.fetchall())
        cursor.execute("SELECT media_item_id, id FROM tags_tagset WHERE kind = %s", [TagSet.Kind.CURATED])
        curated_of = dict(cursor.fetchall())
        curated_rows = []
        assignment_rows = []
        for item_id in lib.item_ids:
            chosen: list[int] = []
            seen: set[int] = set()
            target = max(5, int(rng.gauss(tags_per_item, 6)))
            while len(chosen) < target:
                tag_id = lib.tag_ids[draw()]
                if tag_id not in seen:
                    seen.add(tag_id)
                    chosen.append(tag_id)
            lib.item_tags[item_id] = chosen
            # Rows in primary-key order, so InnoDB appends to its clustered index.
            assignment_rows += sorted(
                (set_of[item_id], tag_id, item_id, TagSet.Kind.SOURCE, 1, None, pos, "import", "", now, now)
                for pos, tag_id in enumerate(chosen)
            )
            if item_id in curated_of:
                curated_rows += sorted(
                    (curated_of[item_id], t, item_id, TagSet.Kind.CURATED, 1, None, p, "manual", "", now, now)
                    for p, t in enumerate(chosen)
                )
        assignment_rows += curated_rows
        del curated_rows
        _insert(
            cursor,
            "tags_tagassignment",
            [
                "tagset_id",
                "tag_id",
                "media_item_id",
                "kind",
                "state",
                "confidence",
                "position",
                "added_via",
                "entered_tag",
                "created_at",
                "updated_at",
            ],
            assignment_rows,
            vendor,
        )
        lib.seconds["assignments"] = time.perf_counter() - t0
        n_assignments = len(assignment_rows)
        del assignment_rows

        # Aliases (rare → common) and implications (character ⇒ copyright style, acyclic by rank).
        t0 = time.perf_counter()
        alias_rows, resolution_rows = [], []
        used: set[int] = set()
        for _ in range(n_aliases):
            antecedent = lib.tag_ids[rng.randrange(n_tags // 2, n_tags)]
            consequent = lib.tag_ids[rng.randrange(0, n_tags // 10)]
            if antecedent in used or consequent in used or antecedent == consequent:
                continue
            used |= {antecedent, consequent}
            lib.ideal[antecedent] = consequent
            alias_rows.append((vocabulary.pk, antecedent, consequent, "active", antecedent, "", now, now))
            resolution_rows.append((antecedent, consequent))
        _insert(
            cursor,
            "tags_tagalias",
            [
                "vocabulary_id",
                "antecedent_id",
                "consequent_id",
                "status",
                "active_antecedent_id",
                "reason",
                "created_at",
                "updated_at",
            ],
            alias_rows,
            vendor,
        )
        _insert(cursor, "tags_aliasresolution", ["tag_id", "ideal_tag_id"], resolution_rows, vendor)
        edges: dict[int, set[int]] = {}
        implication_rows = []
        for _ in range(n_implications):
            child_rank = rng.randrange(200, n_tags // 5)
            parent_rank = rng.randrange(0, child_rank // 2 + 1)  # parents are more common: no cycles
            child, parent = lib.tag_ids[child_rank], lib.tag_ids[parent_rank]
            if child in used or parent in used or parent in edges.get(child, set()):
                continue
            edges.setdefault(child, set()).add(parent)
            implication_rows.append((vocabulary.pk, child, parent, "active", True, "", now, now))
        _insert(
            cursor,
            "tags_tagimplication",
            [
                "vocabulary_id",
                "child_id",
                "parent_id",
                "status",
                "allow_cross_type",
                "reason",
                "created_at",
                "updated_at",
            ],
            implication_rows,
            vendor,
        )
        closure_rows = []
        for start in edges:
            depth = {start: 0}
            queue = [start]
            while queue:
                node = queue.pop(0)
                for parent in edges.get(node, ()):
                    if parent not in depth:
                        depth[parent] = depth[node] + 1
                        queue.append(parent)
            lib.ancestors[start] = {a for a in depth if a != start}
            closure_rows += [(start, a, d) for a, d in depth.items() if a != start]
        _insert(cursor, "tags_tagclosure", ["descendant_id", "ancestor_id", "depth"], closure_rows, vendor)
        lib.seconds["rules"] = time.perf_counter() - t0

        # Effective tags and counters, computed here exactly as the service does.
        t0 = time.perf_counter()
        effective_rows = []
        counts: dict[int, int] = {}
        tag_count: dict[int, int] = {}
        for item_id, base in lib.item_tags.items():
            direct = {lib.ideal.get(t, t) for t in base}
            result = dict.fromkeys(direct, False)
            for t in direct:
                for ancestor in lib.ancestors.get(t, ()):
                    result.setdefault(ancestor, True)
            tag_count[item_id] = len(result)
            for t, implied in result.items():
                effective_rows.append((t, item_id, implied))
                counts[t] = counts.get(t, 0) + 1
        _insert(
            cursor, "tags_effectivetag", ["tag_id", "media_item_id", "is_implied"], effective_rows, vendor
        )
        stat_rows = [(t, kind, 0) for t in lib.tag_ids for kind in (TagSet.Kind.SOURCE, TagSet.Kind.CURATED)]
        _insert(cursor, "tags_tagstat", ["tag_id", "set_kind", "current_count"], stat_rows, vendor)
        lib.seconds["effective"] = time.perf_counter() - t0
        n_effective = len(effective_rows)
        del effective_rows
    # Counters in set-based statements (from the tables just written).
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "mysql":
            cursor.execute(
                "UPDATE tags_tag t JOIN (SELECT tag_id, COUNT(*) n FROM tags_effectivetag GROUP BY tag_id) c "
                "ON c.tag_id = t.id SET t.media_count = c.n"
            )
            cursor.execute(
                "UPDATE tags_tagstat s JOIN (SELECT tag_id, COUNT(*) n FROM tags_tagassignment "
                "WHERE state = 1 AND kind = 1 GROUP BY tag_id) c ON c.tag_id = s.tag_id "
                "SET s.current_count = c.n "
                "WHERE s.set_kind = 1"
            )
            cursor.execute(
                "UPDATE tags_tagstat s JOIN (SELECT tag_id, COUNT(*) n FROM tags_tagassignment "
                "WHERE state = 1 AND kind = 2 GROUP BY tag_id) c ON c.tag_id = s.tag_id "
                "SET s.current_count = c.n "
                "WHERE s.set_kind = 2"
            )
            cursor.execute(
                "UPDATE media_mediaitem m JOIN (SELECT media_item_id, COUNT(*) n FROM tags_effectivetag "
                "GROUP BY media_item_id) c ON c.media_item_id = m.id SET m.tag_count = c.n"
            )
            cursor.execute(
                "UPDATE tags_tagset s SET assignment_count = (SELECT COUNT(*) FROM tags_tagassignment a "
                "WHERE a.tagset_id = s.id)"
            )
        else:
            cursor.execute(
                "UPDATE tags_tag SET media_count = (SELECT COUNT(*) FROM tags_effectivetag e "
                "WHERE e.tag_id = tags_tag.id)"
            )
            cursor.execute(
                "UPDATE tags_tagstat SET current_count = (SELECT COUNT(*) FROM tags_tagassignment a "
                "WHERE a.tag_id = tags_tagstat.tag_id AND a.state = 1 AND a.kind = tags_tagstat.set_kind)"
            )
            cursor.execute(
                "UPDATE media_mediaitem SET tag_count = (SELECT COUNT(*) FROM tags_effectivetag e "
                "WHERE e.media_item_id = media_mediaitem.id)"
            )
            cursor.execute(
                "UPDATE tags_tagset SET assignment_count = (SELECT COUNT(*) FROM tags_tagassignment a "
                "WHERE a.tagset_id = tags_tagset.id)"
            )
        # Tag types per item, as the migration backfills them (docs/tags.md#tag-types-per-item).
        cursor.execute(
            "INSERT INTO tags_itemtagtype (tag_type_id, media_item_id, tag_count) "
            "SELECT t.type_id, e.media_item_id, COUNT(*) FROM tags_effectivetag e "
            "INNER JOIN tags_tag t ON t.id = e.tag_id GROUP BY t.type_id, e.media_item_id"
        )
        if vendor == "mysql":
            # Fresh statistics, as InnoDB's background recalculation would give a library that
            # grew to this size (right after a bulk load they describe the empty tables).
            cursor.execute(
                "ANALYZE TABLE tags_tagassignment, tags_effectivetag, tags_tagset, tags_tag, "
                "media_mediaitem, tags_itemtagtype"
            )
            cursor.fetchall()
    lib.seconds["counters"] = time.perf_counter() - t0
    lib.seconds["total"] = time.perf_counter() - started
    lib.seconds["assignments_rows"] = n_assignments
    lib.seconds["effective_rows"] = n_effective
    return lib


def load() -> Library:
    """The Library of a database `generate` filled earlier (tag rank = id order; item tags
    from the source sets), so a kept bench database can be measured again without a reload."""
    from django.db import connection

    lib = Library()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, name FROM tags_tag WHERE name REGEXP %s ORDER BY id",
            ["^[a-z]{4}_[0-9]{6}_[0-9a-f]{4}$"],
        )
        for tag_id, name in cursor.fetchall():
            lib.tag_ids.append(tag_id)
            lib.names[tag_id] = name
        cursor.execute(
            "SELECT media_item_id, tag_id FROM tags_tagassignment WHERE kind = 1 ORDER BY tagset_id, position"
        )
        for item_id, tag_id in cursor.fetchall():
            lib.item_tags.setdefault(item_id, []).append(tag_id)
        lib.item_ids = sorted(lib.item_tags)
        cursor.execute("SELECT tag_id, ideal_tag_id FROM tags_aliasresolution")
        lib.ideal = dict(cursor.fetchall())
        cursor.execute("SELECT COUNT(*) FROM tags_tagassignment")
        lib.seconds["assignments_rows"] = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM tags_effectivetag")
        lib.seconds["effective_rows"] = cursor.fetchone()[0]
    return lib
