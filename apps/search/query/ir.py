"""The resolved query: tag-postings and column conditions, normalised before planning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.search.query.values import RangeList


@dataclass(frozen=True)
class Cond:
    """Base of resolved conditions (each is a test on one media item)."""


@dataclass(frozen=True)
class Match(Cond):
    """The item has one of `tag_ids` in EffectiveTag (table=effective) or TagAssignment (assign).

    Assignments are current ones of set `kinds` (empty = any kind), with confidence in
    `conf` when given; `direct` keeps only non-implied effective rows.
    """

    table: str
    tag_ids: frozenset[int]
    kinds: frozenset[int] = frozenset()
    direct: bool = False
    conf: RangeList | None = None
    count: int = field(default=0, compare=False)
    label: str = field(default="", compare=False)


@dataclass(frozen=True)
class Column(Cond):
    """A MediaItem column test: op is range (RangeList), in (tuple), eq, bytes (exact), folded
    (case-insensitive name, `_` = space), prefix."""

    field: str
    op: str
    value: Any
    nullable: bool = False
    integer: bool = True


@dataclass(frozen=True)
class HasSet(Cond):
    """The item has a tag set of this kind (and tagger model/version when given)."""

    kind: int
    model: str = ""
    version: str | None = None


@dataclass(frozen=True)
class HasValue(Cond):
    """`has:<value>` for a value another app registered (apps/search/extensions.py)."""

    value: str


@dataclass(frozen=True)
class Similar(Cond):
    """The item's 64-bit perceptual hash is within `distance` bits of `phash` (signed storage
    form); `bands` are its five band values, one of which any such neighbour shares."""

    phash: int
    bands: tuple[int, ...]
    distance: int


@dataclass(frozen=True)
class Ranked(Cond):
    """The item is one of `ids`, which another app ranked best first (a registered qualifier,
    apps/search/extensions.py); `order:similarity` lists them in that order."""

    ids: tuple[int, ...]
    label: str = field(default="", compare=False)


@dataclass(frozen=True)
class TypeCount(Cond):
    """The number of effective tags of one type is in `ranges`."""

    type_id: int
    ranges: RangeList


@dataclass(frozen=True)
class Const(Cond):
    """Always true or always false (unknown tags, empty wildcards)."""

    value: bool


@dataclass(frozen=True)
class AllOf(Cond):
    """AND."""

    children: tuple[Cond, ...]


@dataclass(frozen=True)
class AnyOf(Cond):
    """OR."""

    children: tuple[Cond, ...]


@dataclass(frozen=True)
class Neg(Cond):
    """NOT."""

    child: Cond


TRUE = Const(True)
FALSE = Const(False)


def _merge_key(node: Cond) -> tuple[Any, ...] | None:
    if isinstance(node, Match):
        return (node.table, node.kinds, node.direct, node.conf)
    return None


def normalise(node: Cond) -> Cond:
    """Flatten, fold constants, dedupe, merge OR-ed postings into one IN list, `a -a` → false."""
    if isinstance(node, Neg):
        child = normalise(node.child)
        if isinstance(child, Const):
            return Const(not child.value)
        if isinstance(child, Neg):
            return child.child
        return Neg(child)
    if not isinstance(node, AllOf | AnyOf):
        return node
    is_and = isinstance(node, AllOf)
    flat: list[Cond] = []
    for child in (normalise(c) for c in node.children):
        if isinstance(child, Const):
            if child.value != is_and:
                return child  # false in AND, true in OR
            continue
        if type(child) is type(node):
            assert isinstance(child, AllOf | AnyOf)
            flat.extend(child.children)
        else:
            flat.append(child)
    unique = list(dict.fromkeys(flat))
    if is_and and any(Neg(c) in unique for c in unique):
        return FALSE
    if not is_and and any(Neg(c) in unique for c in unique):
        return TRUE
    if not is_and:
        unique = _merge_postings(unique)
    if not unique:
        return Const(is_and)
    if len(unique) == 1:
        return unique[0]
    return AllOf(tuple(unique)) if is_and else AnyOf(tuple(unique))


def _merge_postings(children: list[Cond]) -> list[Cond]:
    groups: dict[tuple[Any, ...], Match] = {}
    out: list[Cond] = []
    for child in children:
        key = _merge_key(child)
        if key is None or not isinstance(child, Match):
            out.append(child)
            continue
        if key in groups:
            first = groups[key]
            merged = Match(
                first.table,
                first.tag_ids | child.tag_ids,
                first.kinds,
                first.direct,
                first.conf,
                first.count + child.count,
                first.label or child.label,
            )
            out[out.index(first)] = merged
            groups[key] = merged
        else:
            groups[key] = child
            out.append(child)
    return out


PROBE_MAX_TAGS = 4


def has_negation(cond: Cond) -> bool:
    """Whether a condition excludes an effective tag and every tag term is a few effective tags:
    then its EXISTS run as primary-key probes (see statement_limit). Other shapes keep MariaDB's
    rewrite: a wildcard's hundred tags would make each probe a hundred index ranges, and the
    assignment-table scopes (`in:curated`, `in:any`) probe a wider index."""

    def negated(node: Cond) -> bool:
        if isinstance(node, Neg) and isinstance(node.child, Match):
            return True
        return any(negated(c) for c in getattr(node, "children", ()))

    def narrow(node: Cond) -> bool:
        if isinstance(node, Match) and (node.table != "effective" or len(node.tag_ids) > PROBE_MAX_TAGS):
            return False
        inner = [node.child] if isinstance(node, Neg) else list(getattr(node, "children", ()))
        return all(narrow(c) for c in inner)

    return negated(cond) and narrow(cond)
