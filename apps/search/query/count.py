"""Counts and estimates: free when possible, else COUNT(*) under a short limit.
docs/query-language.md#counts

`count=estimate` gives COUNT(*) SEARCH_COUNT_ESTIMATE_TIME_LIMIT (50 ms) rather than the 1 s the design
first had: a first page should not wait on a count, and the estimate says it is one (count_exact=false,
with the upper bound). `count=exact` counts under the search limit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from apps.core.db import statement_limit
from apps.search.query.config import knob
from apps.search.query.errors import QueryTimeout
from apps.search.query.ir import AllOf, Cond, Match, Neg, has_negation
from apps.search.query.planner import Plan

SLOW_COUNT_SECONDS = 0.01  # only counts slower than this are worth caching (estimate mode stops at 0.05)


def count_page(
    *,
    mode: str,
    plan: Plan,
    cond: Cond,
    base: QuerySet[Any],
    first_page: bool,
    rows: int,
    more: bool,
    total: int,
    queryset: Callable[[Plan], QuerySet[Any]],
    query_key: str,
) -> tuple[int | None, bool, int | None]:
    """(count, count_exact, count_upper_bound) for mode none, estimate or exact."""
    if mode not in ("estimate", "exact"):
        return None, False, None
    if plan.kind == "empty":
        return 0, True, None
    if first_page and not more:
        return rows, True, None
    lone = isinstance(cond, Match) and cond.table == "effective" and len(cond.tag_ids) == 1
    if lone and isinstance(cond, Match) and not cond.direct and not base.query.has_filters():
        return cond.count, True, None
    key = "search:count:" + hashlib.sha256(f"{query_key}|{base.query}".encode()).hexdigest()[:32]
    if (hit := cache.get(key)) is not None:
        return int(hit), True, None
    seconds = knob("SEARCH_TIME_LIMIT" if mode == "exact" else "SEARCH_COUNT_ESTIMATE_TIME_LIMIT")
    if (
        mode == "estimate"
        and plan.c_min is not None
        and _work(plan, cond, total) > knob("SEARCH_COUNT_ESTIMATE_ROWS")
    ):
        return _estimate(plan, cond, total)  # a COUNT(*) would only run into its limit
    started = time.monotonic()
    try:
        with statement_limit(seconds, probes=has_negation(cond)):
            n = queryset(plan).count()
    except QueryTimeout:
        if plan.c_min is None:
            return None, False, None
        return _estimate(plan, cond, total)
    if time.monotonic() - started >= SLOW_COUNT_SECONDS:
        cache.set(key, n, int(knob("SEARCH_COUNT_CACHE_SECONDS")))
    return n, True, None


def _work(plan: Plan, cond: Cond, total: int) -> float:
    """Rough rows a COUNT(*) would touch: the driving rows (a postings plan's rarest tag, or every
    item for a scan), each checked against the other tags (an OR of many costs more)."""
    driving = plan.c_min if plan.kind == "postings" and plan.c_min is not None else total
    checks = 0
    for child in cond.children if isinstance(cond, AllOf) else (cond,):
        inner = child.child if isinstance(child, Neg) else child
        if child is not plan.driver:
            checks += len(inner.tag_ids) if isinstance(inner, Match) else 1
    return driving * (1 + checks / 8)


def _estimate(plan: Plan, cond: Cond, total: int) -> tuple[int | None, bool, int | None]:
    """N·s clamped to [0, c_min] (docs/query-language.md#counts), with c_min as the upper bound."""
    assert plan.c_min is not None
    selectivity = 1.0
    for child in cond.children if isinstance(cond, AllOf) else (cond,):
        if isinstance(child, Match):
            selectivity *= min(1.0, child.count / max(total, 1))
    return max(0, min(int(total * selectivity), plan.c_min)), False, plan.c_min
