"""Oracle: 300 random queries over ~2,000 generated items, compared with brute-force Python.

The library has Zipf-distributed tags in source, curated, tagger and derived sets, tombstones,
tagger confidences, aliases and implications; effective tags come from effective_refresh. Each
query's ids (in order) must equal a Python evaluation of the same semantics (docs/query-language.md).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from apps.media.models import MediaItem
from apps.search.query import QueryError, search_ids, search_media
from apps.tags.models import EffectiveTag, Tag, TagSet
from tests.tags.factories import alias_make, assign, closure_make, effective_build, items_bulk, tags_make

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # ~15 s on SQLite, 50–80 s on MariaDB

SEED = 20_240_501
WORDS = ["red", "blue", "long", "short", "cat", "dog", "sky", "sea", "hat", "bow", "star", "moon"]
NOUNS = ["hair", "eyes", "ears", "tail", "dress", "shirt", "scarf", "boots", "sword", "wings", "sign", "gem"]
KINDS = {"curated": TagSet.Kind.CURATED, "source": TagSet.Kind.SOURCE}
KINDS |= {"tagger": TagSet.Kind.TAGGER, "derived": TagSet.Kind.DERIVED}
ALL_KINDS = frozenset(KINDS.values())
ORDERS = {  # order name → MediaItem attribute
    "filesize": "size_bytes", "mpixels": "pixels", "tagcount": "tag_count", "duration": "duration_ms",
    "date": "created_at", "ratio": "ratio_milli",
}  # fmt: skip


@dataclass
class Lib:
    """The generated library, as the oracle sees it."""

    items: dict[int, MediaItem]
    tags: dict[str, Tag]
    ideal: dict[int, int]
    below: dict[int, set[int]]  # ancestor → descendants
    effective: dict[int, dict[int, bool]]  # item → tag → is_implied
    rows: list[tuple[int, int, int, int, int | None]]  # item, kind, tag, state, confidence
    sets: set[tuple[int, int]]


def build(rng: random.Random) -> Lib:
    names = [f"{w}_{n}" for w in WORDS for n in NOUNS][:138]
    chars = [f"hero_{c}" for c in "abcdefgh"]
    antecedents = [f"alt_{n}" for n in range(4)]
    tags = tags_make(names) | tags_make(chars, type_key="character") | tags_make(antecedents)
    pool = [*names, *chars, *antecedents]
    rng.shuffle(pool)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    ideals = [n for n in pool if n not in antecedents]
    ideal = {tags[a].pk: tags[rng.choice(ideals[:40])].pk for a in antecedents}
    for a, b in ideal.items():
        alias_make(Tag.objects.get(pk=a), Tag.objects.get(pk=b))
    order = ideals[:]
    rng.shuffle(order)
    edges = {(order[rng.randrange(5, 40)], order[rng.randrange(0, 5)]) for _ in range(12)}
    edges |= {(order[7], order[6]), (order[6], order[5])}  # a chain: depth 2
    above: dict[str, set[str]] = defaultdict(set)
    for child, parent in edges:
        above[child].add(parent)
    closure = []
    for child in list(above):
        seen, frontier, depth = set(), set(above[child]), 1
        while frontier:
            closure += [(tags[child], tags[p], depth) for p in frontier - seen]
            seen |= frontier
            frontier = {g for p in frontier for g in above.get(p, ())} - seen
            depth += 1
    closure_make(closure)
    below: dict[int, set[int]] = defaultdict(set)
    for d, a, _ in closure:
        below[a.pk].add(d.pk)
    shapes = []
    for _ in range(2000):
        kind = rng.choices(["image", "video", "frame"], [8, 1, 1])[0]
        w, h = rng.randrange(0, 4000), rng.randrange(1, 4000)
        shapes.append(
            {
                "kind": kind, "width": w, "height": h, "pixels": w * h, "ratio_milli": w * 1000 // h,
                "size_bytes": rng.randrange(0, 5_000_000), "rating": rng.choice("gsqeu"),
                "duration_ms": rng.randrange(1000, 600_000) if kind == "video" else None,
            }
        )  # fmt: skip
    items = items_bulk(shapes)
    rows: list[tuple[int, int, int, int, int | None]] = []
    for item in items:
        for kind, chance, low, high in ((1, 0.8, 3, 15), (2, 0.4, 2, 12), (3, 0.5, 3, 15), (4, 0.1, 1, 5)):
            if rng.random() < chance:
                picked = set(rng.choices(pool, weights, k=rng.randint(low, high)))
                for name in picked:
                    state = 0 if kind in (1, 2) and rng.random() < 0.1 else 1
                    conf = rng.randrange(1000, 10_001) if kind == 3 else None
                    rows.append((item.pk, kind, tags[name].pk, state, conf))
    assign(rows)
    effective_build([item.pk for item in items])
    effective: dict[int, dict[int, bool]] = defaultdict(dict)
    for tag_id, item_id, implied in EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied"):
        effective[item_id][tag_id] = implied
    fresh = {m.pk: m for m in MediaItem.objects.all()}
    assert all(m.tag_count == len(effective[pk]) for pk, m in fresh.items())
    tags = {
        t.name: t for t in Tag.objects.filter(pk__in=[t.pk for t in tags.values()]).select_related("type")
    }
    return Lib(fresh, tags, ideal, below, effective, rows, {(r[0], r[1]) for r in rows})


class Oracle:
    """Brute-force evaluation of query pieces over the in-memory library."""

    def __init__(self, lib: Lib) -> None:
        self.lib = lib
        self.all = set(lib.items)
        self.by_tag: dict[int, list[tuple[int, int, int, int | None]]] = defaultdict(list)
        for item, kind, tag, state, conf in lib.rows:
            self.by_tag[tag].append((item, kind, state, conf))
        self.id_of = {name: t.pk for name, t in lib.tags.items()}
        self.antecedents: dict[int, set[int]] = defaultdict(set)
        for a, b in lib.ideal.items():
            self.antecedents[b].add(a)

    def assigned(
        self, tag_ids: set[int], kinds: frozenset[int], conf: Callable[[int | None], bool] | None = None
    ):
        out = set()
        for tag in tag_ids:
            for item, kind, state, c in self.by_tag[tag]:
                if state == 1 and kind in kinds and (conf is None or conf(c)):
                    out.add(item)
        return out

    def term(self, name: str, scope: str, mode: str = "plain", type_key: str | None = None) -> set[int]:
        tag = self.id_of.get(name)
        if tag is None:
            return set()
        ideal = self.lib.ideal.get(tag, tag)
        if type_key and self.type_of(ideal) != type_key:
            return set()
        kinds = ALL_KINDS if scope in ("effective", "any") else frozenset({KINDS[scope]})
        if mode == "unaliased":
            return self.assigned({tag}, kinds)
        if scope == "effective":
            direct = mode == "direct"
            return {i for i, e in self.lib.effective.items() if ideal in e and not (direct and e[ideal])}
        ids = {ideal} | (self.lib.below[ideal] if mode != "direct" else set())
        ids |= {a for i in list(ids) for a in self.antecedents[i]}
        return self.assigned(ids, kinds)

    def type_of(self, tag_id: int) -> str:
        return next(t.type.key for t in self.lib.tags.values() if t.pk == tag_id)

    def wildcard(self, pattern: str, scope: str, type_key: str | None = None) -> tuple[set[int], int]:
        regex = re.compile(".*".join(re.escape(p) for p in pattern.split("*")))
        matched = [t for t in self.lib.tags.values() if regex.fullmatch(t.name)]
        matched = [t for t in matched if type_key is None or t.type.key == type_key]
        # The product's order: most used first, ties by name, descending (the count index's).
        used = {t.pk for t in sorted(matched, key=lambda t: (t.media_count, t.name), reverse=True)[:100]}
        # Each used tag is a tag term: its alias ideal, expanded outside in:effective.
        ideals = {self.lib.ideal.get(t, t) for t in used}
        if scope == "effective":
            return {i for i, e in self.lib.effective.items() if ideals & e.keys()}, len(matched)
        kinds = ALL_KINDS if scope == "any" else frozenset({KINDS[scope]})
        ids = ideals | {b for t in ideals for b in self.lib.below[t]}
        ids |= {a for t in list(ids) for a in self.antecedents[t]}
        return self.assigned(ids, kinds), len(matched)


@dataclass
class Expr:
    """A generated query piece: its text and its evaluation for a scope."""

    text: str
    eval: Callable[[str], set[int]]
    kind: str = "leaf"  # leaf | and | or | not
    broad: bool = False  # a wildcard matching more than 100 tags, not negated
    negated_broad: bool = False  # … under negation: the query must be refused
    tags: int = 0  # tag terms (the guard rail allows 12)


def leaf(rng: random.Random, o: Oracle, ids: list[int]) -> Expr:
    lib = o.lib
    names = sorted(lib.tags, key=lambda n: -lib.tags[n].media_count)
    name = names[min(int(rng.expovariate(1 / 25)), len(names) - 1)]
    roll = rng.random()
    if roll < 0.45:
        return Expr(name, lambda s: o.term(name, s), tags=1)
    if roll < 0.52:
        mode = rng.choice(["direct", "unaliased"])
        return Expr(f"{mode}:{name}", lambda s: o.term(name, s, mode), tags=1)
    if roll < 0.57:
        key = rng.choice(["char", "character", "general"])
        full = {"char": "character"}.get(key, key)
        return Expr(f"{key}:{name}", lambda s: o.term(name, s, type_key=full), tags=1)
    if roll < 0.66:
        shape = rng.choice(["prefix", "suffix", "middle", "all", "char"])
        cut = rng.randint(2, 4)
        pattern = {"prefix": name[:cut] + "*", "suffix": "*" + name[-cut:], "middle": f"*{name[1:3]}*"}
        pattern |= {"all": "*", "char": "*"}
        text = pattern[shape] if shape != "char" else "char:*"
        key = "character" if shape == "char" else None
        total = o.wildcard(pattern[shape], "effective", key)[1]
        return Expr(text, lambda s: o.wildcard(pattern[shape], s, key)[0], broad=total > 100, tags=1)
    if roll < 0.70:
        return Expr(f"nosuch_{rng.randrange(99)}", lambda s: set(), tags=1)
    items = lib.items
    n = rng.randrange(0, 4000)
    choices: list[tuple[str, Callable[[MediaItem], bool]]] = [
        (f"width:>={n}", lambda m: m.width >= n),
        (f"height:<{n}", lambda m: m.height < n),
        (f"width:{n // 2}..{n}", lambda m: n // 2 <= m.width <= n),
        (f"tagcount:{n % 12}", lambda m: m.tag_count == n % 12),
        (f"tagcount:>{n % 25}", lambda m: m.tag_count > n % 25),
        (f"mpixels:>={n / 1000}", lambda m: m.pixels >= n * 1000),
        (f"filesize:<{n}kb", lambda m: m.size_bytes < n * 1024),
        (f"duration:>{n // 10}", lambda m: m.duration_ms is not None and m.duration_ms > n // 10 * 1000),
        ("duration:none", lambda m: not m.duration_ms),
        (f"id:<={ids[n % len(ids)]}", lambda m: m.pk <= ids[n % len(ids)]),
        (
            "kind:" + ["image", "video", "frame"][n % 3],
            lambda m: m.kind == ["image", "video", "frame"][n % 3],
        ),
        ("rating:nsfw", lambda m: m.rating in "qe"),
        ("rating:g,u", lambda m: m.rating in "gu"),
    ]
    kind = ["curated", "source", "tagger", "derived"][n % 4]
    if roll < 0.88:
        text, test = rng.choice(choices)
        return Expr(text, lambda s: {pk for pk, m in items.items() if test(m)})
    if roll < 0.92:
        return Expr(f"has:{kind}", lambda s: {i for i, k in lib.sets if k == KINDS[kind]})
    threshold = n % 10_000
    conf, test = rng.choice(
        [
            ("", lambda c: c >= 3500),
            (f",>={threshold / 10000}", lambda c: c >= threshold),
            (",20%..60%", lambda c: 2000 <= c <= 6000),
        ]
    )
    prefix = rng.choice(["ai", "conf"])

    def ai(scope: str) -> set[int]:
        tag = o.id_of[name]
        best = lib.ideal.get(tag, tag)
        return o.assigned({best} | o.antecedents[best], frozenset({3}), test)

    return Expr(f"{prefix}:{name}{conf}", ai, tags=1)


def expr(rng: random.Random, o: Oracle, ids: list[int], depth: int = 0) -> Expr:
    if depth >= 3 or rng.random() < 0.35:
        return leaf(rng, o, ids)
    op = rng.choice(["and", "and", "or", "not"])
    if op == "not":
        child = expr(rng, o, ids, depth + 1)
        text = f"-{child.text}" if child.kind == "leaf" else f"-({child.text})"
        return Expr(
            text, lambda s: o.all - child.eval(s), "not", child.negated_broad, child.broad, child.tags
        )
    parts = [expr(rng, o, ids, depth + 1) for _ in range(rng.randint(2, 3))]
    if op == "and":
        texts = [
            f"({p.text})" if p.kind == "or" or (p.kind == "and" and rng.random() < 0.3) else p.text
            for p in parts
        ]
        joiner = rng.choice([" ", " ", " and "])

        def both(s: str) -> set[int]:
            return set.intersection(*(p.eval(s) for p in parts))

        return Expr(joiner.join(texts), both, "and", *_flags(parts))
    if all(p.kind == "leaf" for p in parts) and rng.random() < 0.3:
        text = " ".join(f"~{p.text}" for p in parts)  # legacy OR: only safe as a whole AND level
        return Expr(f"({text})", lambda s: set.union(*(p.eval(s) for p in parts)), "leaf", *_flags(parts))
    texts = [f"({p.text})" if p.kind != "leaf" and rng.random() < 0.5 else p.text for p in parts]
    joined = rng.choice([" or ", " | "]).join(texts)
    return Expr(joined, lambda s: set.union(*(p.eval(s) for p in parts)), "or", *_flags(parts))


def _flags(parts: list[Expr]) -> tuple[bool, bool, int]:
    return any(p.broad for p in parts), any(p.negated_broad for p in parts), sum(p.tags for p in parts)


def ordered(lib: Lib, ids: set[int], order: str) -> list[int]:
    name, _, direction = order.partition("_")
    desc = direction != "asc"
    if name == "id":
        return sorted(ids, reverse=desc)

    def key(pk: int):
        value = getattr(lib.items[pk], ORDERS[name])
        return (value is not None, value if value is not None else 0, pk)

    return sorted(ids, key=key, reverse=desc)


def test_random_queries_match_brute_force():
    rng = random.Random(SEED)
    lib = build(rng)
    oracle = Oracle(lib)
    ids = sorted(lib.items)
    checked = refused = paged = 0
    for n in range(300):
        e = expr(rng, oracle, ids)
        while e.tags > 12:
            e = expr(rng, oracle, ids)
        scope = rng.choices(
            ["effective", "curated", "source", "tagger", "derived", "any"], [6, 1, 1, 1, 1, 1]
        )[0]
        order = rng.choice(
            ["id", "id", "id_asc", "filesize", "mpixels_asc", "tagcount", "duration", "date_asc"]
        )
        q = e.text
        if scope != "effective" or n % 5 == 0:
            q = f"in:{scope} ({q})"
        if order != "id" or n % 7 == 0:
            q = f"{q} order:{order}" if e.kind != "or" else f"({q}) order:{order}"
        if e.negated_broad:
            with pytest.raises(QueryError) as info:
                search_ids(q=q, viewer=None)
            assert info.value.code == "search.wildcard_too_broad", q
            refused += 1
            continue
        got = search_ids(q=q, viewer=None)
        expected = ordered(lib, e.eval(scope), order)
        assert got == expected, (q, len(got), len(expected), set(got) ^ set(expected))
        checked += 1
        if n % 10 == 0:  # the same answer page by page through cursors
            pages, cursor = [], None
            while True:
                page = search_media(q=q, viewer=None, limit=97, cursor=cursor)
                pages += page.ids
                if not (cursor := page.next_cursor):
                    break
            assert pages == got, q
            paged += 1
    assert checked >= 250
    assert paged >= 25
