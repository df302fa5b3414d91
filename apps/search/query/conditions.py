"""Resolved conditions → Django Q objects (EXISTS / NOT EXISTS subqueries, column filters)."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThanOrEqual

from apps.core.lookups import ExactBytes, FoldedEquals, Hamming
from apps.search import extensions
from apps.search.query.ir import (
    AllOf,
    AnyOf,
    Column,
    Cond,
    Const,
    HasSet,
    HasValue,
    Match,
    Neg,
    Ranked,
    Similar,
    TypeCount,
)
from apps.search.query.values import ANY, NONE, Interval, RangeList
from apps.tags.models import EffectiveTag, TagAssignment, TagSet


def _int_bounds(item: Interval) -> tuple[Any, Any]:
    """Closed integer bounds of an interval (so Decimal limits never get truncated)."""
    lo = None if item.lo is None else (math.ceil(item.lo) if item.lo_incl else math.floor(item.lo) + 1)
    hi = None if item.hi is None else (math.floor(item.hi) if item.hi_incl else math.ceil(item.hi) - 1)
    return lo, hi


def _nothing(prefix: str) -> Q:
    return Q(**{f"{prefix}pk__in": []})


def range_q(path: str, ranges: RangeList, *, integer: bool, nullable: bool, prefix: str = "") -> Q:
    """OR of the range items over one column (NULL never matches a bound)."""
    parts: list[Q] = []
    for item in ranges.items:
        if item == ANY:
            part = Q(**{f"{path}__gt": 0}) if integer else Q(**{f"{path}__isnull": False})
        elif item == NONE:
            part = Q(**{f"{path}__isnull": True})
            if integer:
                part |= Q(**{path: 0})
        else:
            assert isinstance(item, Interval)
            part = _interval_q(path, item, integer=integer, prefix=prefix)
        if nullable and item != NONE:
            part &= Q(**{f"{path}__isnull": False})
        parts.append(part)
    out = parts[0]
    for part in parts[1:]:
        out |= part
    return out


def _interval_q(path: str, item: Interval, *, integer: bool, prefix: str) -> Q:
    if integer:
        lo, hi = _int_bounds(item)
        lo_incl = hi_incl = True
    else:
        lo, hi, lo_incl, hi_incl = item.lo, item.hi, item.lo_incl, item.hi_incl
    if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_incl and hi_incl))):
        return _nothing(prefix)
    if lo is not None and lo == hi:
        return Q(**{path: lo})
    conds: dict[str, Any] = {}
    if lo is not None:
        conds[f"{path}__{'gte' if lo_incl else 'gt'}"] = lo
    if hi is not None:
        conds[f"{path}__{'lte' if hi_incl else 'lt'}"] = hi
    return Q(**conds) if conds else Q(**{f"{path}__isnull": False})


def _expr_range(expr: Any, ranges: RangeList) -> Q:
    """Range test on a non-null integer expression (lookups used as expressions)."""
    parts: list[Any] = []
    for item in ranges.items:
        if item == ANY:
            parts.append(GreaterThan(expr, 0))
        elif item == NONE:
            parts.append(Exact(expr, 0))
        else:
            assert isinstance(item, Interval)
            lo, hi = _int_bounds(item)
            if lo is not None and hi is not None and lo > hi:
                parts.append(Exact(Value(0), 1))
                continue
            tests: list[Any] = []
            if lo is not None:
                tests.append(GreaterThanOrEqual(expr, lo))
            if hi is not None:
                tests.append(LessThanOrEqual(expr, hi))
            q = Q(*tests) if tests else Q(GreaterThanOrEqual(expr, 0))
            parts.append(q)
    out = Q(parts[0])
    for part in parts[1:]:
        out |= Q(part)
    return out


def compile_cond(cond: Cond, *, prefix: str = "", outer: str = "pk") -> Q:
    """A Q over the queryset whose item columns sit at `prefix` and whose item id is `outer`."""
    if isinstance(cond, AllOf):
        out = Q()
        for child in cond.children:
            out &= compile_cond(child, prefix=prefix, outer=outer)
        return out
    if isinstance(cond, AnyOf):
        parts = [compile_cond(child, prefix=prefix, outer=outer) for child in cond.children]
        out = parts[0]
        for part in parts[1:]:
            out |= part
        return out
    if isinstance(cond, Neg):
        return ~compile_cond(cond.child, prefix=prefix, outer=outer)
    if isinstance(cond, Match):
        return Q(Exists(postings(cond, outer)))
    if isinstance(cond, Column):
        return column_q(cond, prefix)
    if isinstance(cond, HasSet):
        sets = TagSet.objects.filter(media_item_id=OuterRef(outer), kind=cond.kind)
        if cond.model:
            sets = sets.filter(ExactBytes(F("tagger_model"), cond.model))
        if cond.version is not None:
            sets = sets.filter(ExactBytes(F("tagger_version"), cond.version))
        return Q(Exists(sets))
    if isinstance(cond, HasValue):
        condition = extensions.has_condition(cond.value)
        assert condition is not None  # resolved only for registered values
        return condition(outer)
    if isinstance(cond, Ranked):
        return Q(**{f"{prefix}pk__in": list(cond.ids)})
    if isinstance(cond, Similar):
        bands = Q()
        for n, band in enumerate(cond.bands):
            bands |= Q(**{f"{prefix}phash_b{n}": band})
        close = LessThanOrEqual(Hamming(F(f"{prefix}phash"), Value(cond.phash)), cond.distance)
        return bands & Q(close)
    if isinstance(cond, TypeCount):
        counted = (
            EffectiveTag.objects.filter(media_item_id=OuterRef(outer), tag__type_id=cond.type_id)
            .order_by()
            .values("media_item_id")
            .annotate(n=Count("tag_id"))
            .values("n")
        )
        total = Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
        return _expr_range(total, cond.ranges)
    if isinstance(cond, Const):
        return Q() if cond.value else _nothing(prefix)
    raise TypeError(type(cond))


def postings(match: Match, outer: str) -> Any:
    """The correlated postings subquery of one tag match."""
    ids = sorted(match.tag_ids)
    by_tag: dict[str, Any] = {"tag_id": ids[0]} if len(ids) == 1 else {"tag_id__in": ids}
    if match.table == "effective":
        effective = EffectiveTag.objects.filter(media_item_id=OuterRef(outer), **by_tag)
        return effective.filter(is_implied=False) if match.direct else effective
    rows = TagAssignment.objects.filter(
        media_item_id=OuterRef(outer), state=TagAssignment.State.CURRENT, **by_tag
    )
    if match.kinds:
        kinds = sorted(match.kinds)
        rows = rows.filter(kind=kinds[0]) if len(kinds) == 1 else rows.filter(kind__in=kinds)
    if match.conf is not None:
        rows = rows.filter(range_q("confidence", match.conf, integer=True, nullable=True))
    return rows


def column_q(cond: Column, prefix: str) -> Q:
    """One MediaItem column test."""
    path = prefix + cond.field
    if cond.op == "range":
        return range_q(path, cond.value, integer=cond.integer, nullable=cond.nullable, prefix=prefix)
    if cond.op == "in":
        values = list(cond.value)
        return Q(**{path: values[0]}) if len(values) == 1 else Q(**{f"{path}__in": values})
    if cond.op == "eq":
        return Q(**{path: cond.value})
    if cond.op == "bytes":
        return Q(ExactBytes(F(path), cond.value))
    if cond.op == "folded":
        return Q(FoldedEquals(F(path), cond.value))
    if cond.op == "prefix":
        return Q(**{f"{path}__startswith": cond.value})
    if cond.op == "null":
        return Q(**{f"{path}__isnull": True})
    raise ValueError(cond.op)
