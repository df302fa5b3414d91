"""Resolution: tag terms to tag ids, qualifiers to column conditions.

docs/query-language.md#tag-terms, #wildcards, #scopes, #qualifiers, #range-values
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone

from apps.core.db import statement_limit
from apps.core.exceptions import DomainError
from apps.core.lookups import NameGlob
from apps.media.models import MediaItem
from apps.media.phash import phash_bands
from apps.media.selectors import media_sites_matching
from apps.search import extensions
from apps.search.query import values as v
from apps.search.query.config import int_knob, knob
from apps.search.query.errors import QueryError
from apps.search.query.ir import (
    FALSE,
    TRUE,
    AllOf,
    AnyOf,
    Column,
    Cond,
    HasSet,
    HasValue,
    Match,
    Neg,
    Ranked,
    Similar,
    TypeCount,
)
from apps.search.query.nodes import And, Node, Not, Or, Qualifier, TagTerm
from apps.search.query.qualifiers import SINGLETONS, SimilarBy, nearest_qualifier
from apps.search.query.terms import TermResolver
from apps.tags.models import Tag, TagSet, TagType, Vocabulary
from apps.tags.services.names import normalise_fragment, vocabulary_default

KIND_OF_SCOPE = {
    "curated": TagSet.Kind.CURATED,
    "source": TagSet.Kind.SOURCE,
    "tagger": TagSet.Kind.TAGGER,
    "derived": TagSet.Kind.DERIVED,
}
RANGE_COLUMNS: dict[str, tuple[str, bool]] = {
    "id": ("id", False),
    "width": ("width", False),
    "height": ("height", False),
    "tagcount": ("tag_count", False),
    "frame": ("frame_index", True),
    "video": ("video_id", True),
    "mpixels": ("pixels", False),
    "fps": ("fps_milli", True),
    "ratio": ("ratio_milli", False),
    "filesize": ("size_bytes", False),
    "duration": ("duration_ms", True),
    "time": ("timestamp_ms", True),
}


@dataclass
class Resolved:
    """A query ready to plan: condition tree, order, page size, warnings."""

    cond: Cond
    order: str = "id"
    descending: bool = True
    limit: int | None = None
    scope: str = "effective"
    warnings: list[dict[str, Any]] = field(default_factory=list)
    costs: list[tuple[str, int]] = field(default_factory=list)


def _singletons(root: Node | None) -> dict[str, Qualifier]:
    """order/limit/in/vocab qualifiers (the parser guarantees: once each, on the AND path)."""
    found: dict[str, Qualifier] = {}
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.children)
        elif isinstance(node, Qualifier) and node.name in SINGLETONS:
            found[node.name] = node
    return found


class Resolver:
    """Turns one AST into a Resolved query, collecting warnings on the way."""

    def __init__(self, root: Node | None) -> None:
        self.root = root
        self.out = Resolved(cond=TRUE)
        singles = _singletons(root)
        self.vocabulary = self._vocabulary(singles.get("vocab"))
        if "in" in singles:
            self.out.scope = singles["in"].parsed[0]
        if "order" in singles:
            name, desc = singles["order"].parsed
            self.out.order = name
            self.out.descending = (name not in ("random", "similarity")) if desc is None else desc
        if "limit" in singles:
            self.out.limit = singles["limit"].parsed
        self.types = self._types()
        self.terms = TermResolver(self.vocabulary, self.out.warnings)

    @staticmethod
    def _vocabulary(node: Qualifier | None) -> Vocabulary:
        if node is None:
            return vocabulary_default()
        found = Vocabulary.objects.filter(slug=node.parsed).first()
        if found is None:
            raise QueryError(
                "invalid_value",
                f"There is no vocabulary {node.parsed!r}.",
                token=node.value,
                position=node.value_pos,
                hint="Use the slug of an existing vocabulary.",
            )
        return found

    @staticmethod
    def _types() -> dict[str, int]:
        types: dict[str, int] = {}
        for type_id, key, short_keys in TagType.objects.values_list("id", "key", "short_keys"):
            types[key.lower()] = type_id
            for short in short_keys.split(","):
                if short.strip():
                    types.setdefault(short.strip().lower(), type_id)
        return types

    def resolve(self) -> Resolved:
        """Resolve the whole tree. A query with a top-level ranked term (`clip:`, an embedding
        `similar:`) and no `order:` lists its items best first."""
        if self.root is not None:
            self.out.cond = self.node(self.root, negated=False)
        top = self.out.cond.children if isinstance(self.out.cond, AllOf) else (self.out.cond,)
        if "order" not in _singletons(self.root) and any(isinstance(c, Ranked) for c in top):
            self.out.order, self.out.descending = "similarity", False
        return self.out

    def node(self, node: Node, *, negated: bool) -> Cond:
        if isinstance(node, Not):
            assert node.child is not None
            return Neg(self.node(node.child, negated=not negated))
        if isinstance(node, And):
            return AllOf(tuple(self.node(c, negated=negated) for c in node.children))
        if isinstance(node, Or):
            return AnyOf(tuple(self.node(c, negated=negated) for c in node.children))
        if isinstance(node, Qualifier):
            return self.qualifier(node)
        assert isinstance(node, TagTerm)
        return self.term(node, negated=negated)

    # Tag terms -----------------------------------------------------------------------------

    def term(self, node: TagTerm, *, negated: bool) -> Cond:
        text, stars, type_id, prefix = node.text, node.stars, None, ""
        if node.mode != "tag" and node.colon > 0:
            head = text[: node.colon].lower()
            if head in self.types:
                type_id = self.types[head]
                text = text[node.colon + 1 :]
                stars = tuple(s - node.colon - 1 for s in stars if s > node.colon)
            elif node.mode == "plain" and head.endswith("tags") and head[:-4] in self.types:
                return self.type_count(node, self.types[head[:-4]], text[node.colon + 1 :])
            else:
                prefix = head
        if not text:
            return self._no_match(node, "needs a tag name")
        if stars:
            return self.wildcard(node, text, stars, type_id, negated=negated)
        tag = self.terms.lookup(text)
        if tag is None:
            suggestion = nearest_qualifier(prefix, frozenset(self.types)) if prefix else None
            if suggestion:
                raise QueryError(
                    "unknown_qualifier",
                    f"Unknown qualifier {prefix!r}; did you mean {suggestion!r}?",
                    token=prefix,
                    position=node.pos,
                    hint=f"Did you mean '{suggestion}:'?",
                    suggestion=suggestion,
                )
            return self._no_match(node, "is not a known tag", self.terms.suggest(text))
        ideal = self.terms.ideal(tag, node)
        if type_id is not None and ideal.type_id != type_id:
            return self._no_match(node, "has no tag of that type")
        return self.match_for(node, tag, ideal)

    def match_for(self, node: TagTerm, tag: Tag, ideal: Tag) -> Cond:
        scope = self.out.scope
        kinds = frozenset() if scope in ("effective", "any") else frozenset({KIND_OF_SCOPE[scope]})
        label = node.raw or node.text
        self.out.costs.append((label, ideal.media_count))
        if node.mode == "unaliased":
            return Match("assign", frozenset({tag.pk}), kinds, count=tag.media_count, label=label)
        if scope == "effective":
            return Match(
                "effective",
                frozenset({ideal.pk}),
                direct=node.mode == "direct",
                count=ideal.media_count,
                label=label,
            )
        ids = self.terms.expand(ideal, descendants=node.mode != "direct")
        if len(ids) > int_knob("SEARCH_TERM_EXPANSION_MAX"):
            raise QueryError(
                "term_too_broad",
                f"{label!r} stands for {len(ids)} tags in in:{scope} (aliases and implied tags); "
                f"at most {int_knob('SEARCH_TERM_EXPANSION_MAX')} are allowed.",
                token=node.raw,
                position=node.pos,
                length=node.length,
                hint="Search in:effective, or use direct: to leave out implied tags.",
            )
        return Match("assign", frozenset(ids), kinds, count=ideal.media_count, label=label)

    def wildcard(
        self, node: TagTerm, text: str, stars: tuple[int, ...], type_id: int | None, *, negated: bool
    ) -> Cond:
        cuts = [-1, *stars, len(text)]
        parts = tuple(
            normalise_fragment(text[a + 1 : b], self.vocabulary) for a, b in itertools.pairwise(cuts)
        )
        limit = int_knob("SEARCH_WILDCARD_MAX")
        tags = Tag.objects.filter(NameGlob(F("name"), parts), vocabulary=self.vocabulary)
        if type_id is not None:
            tags = tags.filter(type_id=type_id)
        with statement_limit(knob("SEARCH_WILDCARD_TIME_LIMIT"), term=node.raw):
            # Up to WILDCARD_SORT_MAX matches are ranked here; a broader pattern is answered by
            # walking the most used tags down the (vocabulary, media_count, name) index.
            probe = list(
                tags.order_by("name").values_list("id", "media_count", "name")[: WILDCARD_SORT_MAX + 1]
            )
            if len(probe) <= WILDCARD_SORT_MAX:
                # The walk's order (count, then name, both descending) so both pick the same tags.
                ranked = sorted(probe, key=lambda r: (r[1], r[2]), reverse=True)
                rows = [(r[0], r[1]) for r in ranked[: limit + 1]]
                total: int | None = len(probe)
            else:
                rows = _most_used(tags, limit + 1)
                total = None  # more than WILDCARD_SORT_MAX
        if not rows:
            return FALSE if negated else self._no_match(node, "matches no tag")
        if len(rows) > limit:
            matches = f"{total:,}" if total is not None else f"more than {WILDCARD_SORT_MAX:,}"
            if negated:
                raise QueryError(
                    "wildcard_too_broad",
                    f"{node.raw!r} matches {matches} tags; a negated wildcard may match at most {limit}.",
                    token=node.raw,
                    position=node.pos,
                    length=node.length,
                    hint="Make the pattern more specific.",
                    total=total,
                )
            self.out.warnings.append(
                {
                    "code": "wildcard_truncated",
                    "message": f"{node.raw!r} matches {matches} tags; the {limit} most used are searched.",
                    "token": node.raw,
                    "position": node.pos,
                    "total": total,
                    "used": limit,
                }
            )
            rows = rows[:limit]
        matched = {r[0] for r in rows}
        count = sum(r[1] for r in rows)
        self.out.costs.append((node.raw, count))
        return self.wildcard_match(node, matched, count)

    def wildcard_match(self, node: TagTerm, matched: set[int], count: int) -> Cond:
        """A wildcard is a tag term for each tag it matched: alias antecedents search as their
        ideal, and outside in:effective each ideal expands to its antecedents and implied-by
        descendants (docs/query-language.md#wildcards)."""
        scope = self.out.scope
        kinds = frozenset() if scope in ("effective", "any") else frozenset({KIND_OF_SCOPE[scope]})
        if node.mode == "unaliased":
            return Match("assign", frozenset(matched), kinds, count=count, label=node.raw)
        ideals = self.terms.ideal_ids(matched)
        if scope == "effective":
            return Match(
                "effective", frozenset(ideals), direct=node.mode == "direct", count=count, label=node.raw
            )
        ids = self.terms.expand_ids(ideals, descendants=node.mode != "direct")
        if len(ids) > int_knob("SEARCH_TERM_EXPANSION_MAX"):
            raise QueryError(
                "term_too_broad",
                f"{node.raw!r} stands for {len(ids)} tags in in:{scope} (the tags it matches, their "
                f"aliases and implied tags); at most {int_knob('SEARCH_TERM_EXPANSION_MAX')} are allowed.",
                token=node.raw,
                position=node.pos,
                length=node.length,
                hint="Make the pattern more specific, search in:effective, or use direct: "
                "to leave out implied tags.",
            )
        return Match("assign", frozenset(ids), kinds, count=count, label=node.raw)

    def type_count(self, node: TagTerm, type_id: int, value: str) -> Cond:
        try:
            ranges = v.parse_range(value, v.conv_int, what="a tag count", hint="e.g. 2, >=1, 0..3")
        except v.ValueProblem as exc:
            start = node.pos + node.length - len(value)
            raise QueryError(
                "invalid_value", exc.message, token=exc.token, position=start + exc.offset, hint=exc.hint
            ) from None
        return TypeCount(type_id, ranges)

    def _no_match(self, node: TagTerm, why: str, suggestions: list[str] | None = None) -> Cond:
        self.out.warnings.append(
            {
                "code": "unknown_tag",
                "message": f"{node.raw or node.text!r} {why}; it matches nothing.",
                "token": node.raw,
                "position": node.pos,
                "suggestions": suggestions or [],
            }
        )
        return FALSE

    # Qualifiers ----------------------------------------------------------------------------

    def qualifier(self, node: Qualifier) -> Cond:
        name, parsed = node.name, node.parsed
        if name in SINGLETONS:
            return TRUE
        if name in RANGE_COLUMNS:
            column, nullable = RANGE_COLUMNS[name]
            return Column(column, "range", parsed, nullable=nullable)
        if name == "date":
            return Column("created_at", "range", parsed, integer=False)
        if name == "age":
            return Column("created_at", "range", _ages_to_dates(parsed), integer=False)
        if name in ("has", "is", "kind"):
            return AnyOf(tuple(_state(name, value) for value in parsed))
        if name in ("filetype", "format"):
            return Column("format", "in", parsed)
        if name == "rating":
            return Column("rating", "in", parsed)
        if name == "site":  # the host or any subdomain of it
            sites = media_sites_matching(hosts=list(parsed))
            return Column("site", "in", tuple(sites)) if sites else FALSE
        if name == "artist":  # case-insensitive, `_` = space
            return Column("artist", "folded", parsed)
        if name == "sha256":
            return Column("sha256", "eq", parsed)
        if name == "source":
            if parsed.endswith("*"):
                return Column("source", "prefix", parsed[:-1])
            return Column("source_hash", "eq", hashlib.sha256(parsed.strip().encode()).hexdigest())
        if name == "model":
            model, _, version = parsed.partition("@")
            return HasSet(TagSet.Kind.TAGGER, model, version or None)
        if name in ("ai", "conf"):
            return self.ai(node)
        if name == "similar":
            return self.similar(node)
        ranked = extensions.ranked_qualifier(name)
        if ranked is None:
            raise AssertionError(name)
        return _ranked(node, ranked.rank(parsed))

    def similar(self, node: Qualifier) -> Cond:
        """Near-duplicates of one item by perceptual hash (five band lookups, then the Hamming
        distance; docs/query-language.md#near-duplicates); the item itself is among them."""
        if isinstance(node.parsed, SimilarBy):
            mode = extensions.similar_mode(node.parsed.mode)
            assert mode is not None  # the reader accepted only registered modes
            return _ranked(node, mode.rank(node.parsed.parsed))
        item_id, distance = node.parsed
        row = MediaItem.objects.filter(pk=item_id).values_list("phash", flat=True).first()
        position = node.pos + len("similar:")
        if row is None and not MediaItem.objects.filter(pk=item_id).exists():
            raise QueryError(
                "invalid_value",
                f"There is no item {item_id}.",
                token=str(item_id),
                position=position,
                hint="similar: takes the id of an item in the library.",
            )
        if row is None:
            raise QueryError(
                "invalid_value",
                f"Item {item_id} has no perceptual hash (videos and unreadable images have none).",
                token=str(item_id),
                position=position,
                hint="Use an image or a captured frame.",
            )
        unsigned = row & ((1 << 64) - 1)
        return Similar(int(row), tuple(phash_bands(unsigned)), distance)

    def ai(self, node: Qualifier) -> Cond:
        name, ranges = node.parsed
        tag = self.terms.lookup(name)
        fake = TagTerm(node.pos, node.length, "plain", name, -1, (), node.raw)
        if tag is None:
            return self._no_match(fake, "is not a known tag", self.terms.suggest(name))
        ideal = self.terms.ideal(tag, fake)
        if ranges is None:
            threshold = self.vocabulary.default_tagger_threshold
            ranges = v.RangeList((v.Interval(threshold, True, None, True),))
        ids = self.terms.expand(ideal, descendants=False)
        self.out.costs.append((node.raw, ideal.media_count))
        kinds = frozenset({TagSet.Kind.TAGGER})
        return Match("assign", frozenset(ids), kinds, conf=ranges, count=ideal.media_count, label=node.raw)


def _ranked(node: Qualifier, ids: Any) -> Cond:
    """Item ids another app ranked (best first, duplicates dropped); none match nothing."""
    unique = tuple(dict.fromkeys(int(i) for i in ids))
    return Ranked(unique, node.raw) if unique else FALSE


def _state(name: str, value: str) -> Cond:
    if value in KIND_OF_SCOPE:
        return HasSet(KIND_OF_SCOPE[value])
    if value == "crop":
        return Neg(Column("box_w", "null", None))
    if value == "stale":
        return Column("effective_stale", "eq", True)
    if extensions.has_condition(value) is not None:
        return HasValue(value)
    return Column("kind", "in", (value,))


def _ages_to_dates(ranges: v.RangeList) -> v.RangeList:
    """age ranges (seconds before now) → created_at ranges."""
    now = timezone.now()
    items: list[v.RangeItem] = []
    for item in ranges.items:
        if isinstance(item, str):
            items.append(item)
            continue
        lo = None if item.hi is None else now - timedelta(seconds=item.hi)
        hi = None if item.lo is None else now - timedelta(seconds=item.lo)
        items.append(v.Interval(lo, item.hi_incl, hi, item.lo_incl))
    return v.RangeList(tuple(items))


def query_resolve(root: Node | None) -> Resolved:
    """Resolve a parsed query against the vocabulary, types, aliases and implications."""
    try:
        return Resolver(root).resolve()
    except DomainError:
        raise
    except (OverflowError, ValueError) as exc:  # e.g. dates out of range after age arithmetic
        raise QueryError(
            "invalid_value",
            f"A value is out of range: {exc}.",
            token="",
            position=0,
            hint="Use a smaller value.",
        ) from exc


__all__ = ["Resolved", "query_resolve"]


WILDCARD_SORT_MAX = 1000
WILDCARD_NARROWER = (
    "Make the pattern more specific, search in:effective, or use direct: to leave out implied tags."
)


def _most_used(tags: QuerySet[Tag], n: int) -> list[tuple[int, int]]:
    """The n most used of a broad set of tags, (id, media_count), by media count then name.

    On MariaDB the walk is pinned to the covering count index (the optimizer would otherwise
    sort the whole name range); SQLite sorts.
    """
    ordered = tags.order_by("-media_count", "-name").values_list("id", "media_count")
    if connection.vendor != "mysql":
        return list(ordered[:n])
    sql, params = ordered[:n].query.sql_with_params()
    table = connection.ops.quote_name(Tag._meta.db_table)
    sql = sql.replace(f"FROM {table}", f"FROM {table} FORCE INDEX (tag_vocab_count_name)", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(a), int(b)) for a, b in cursor.fetchall()]
