"""Execution: keyset-paged SQL under the statement-time guard, then hydration.

docs/query-language.md#execution
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When

from apps.core.db import statement_limit
from apps.core.lookups import Hamming
from apps.media.models import MediaItem
from apps.media.selectors import media_item_list
from apps.search.query.conditions import compile_cond
from apps.search.query.config import int_knob, knob
from apps.search.query.count import count_page
from apps.search.query.cursor import CursorState, cursor_decode, cursor_encode
from apps.search.query.errors import QueryTimeout
from apps.search.query.ir import TRUE, AllOf, Ranked, Similar, has_negation, normalise
from apps.search.query.nodes import ast_hash
from apps.search.query.parser import parse
from apps.search.query.planner import Plan, plan_choose
from apps.search.query.resolve import Resolved, query_resolve
from apps.tags.models import EffectiveTag

# order name → (MediaItem column, nullable)
ORDER_FIELDS: dict[str, tuple[str, bool]] = {
    "date": ("created_at", False),
    "filesize": ("size_bytes", False),
    "mpixels": ("pixels", False),
    "ratio": ("ratio_milli", False),
    "duration": ("duration_ms", True),
    "tagcount": ("tag_count", False),
    "timestamp": ("timestamp_ms", True),
}
# order:random sorts by a seeded hash of the id (integer arithmetic, identical on both
# databases, no overflow below 2^63): x = (id·A + seed) mod P, then x = (x² + K) mod P twice.
RANDOM_MULTIPLIER = 1_103_515_245
RANDOM_MODULUS = 2_147_483_659
RANDOM_ROUNDS = (1_013_904_223, 507_952_102)


def random_key(id_expr: Any, seed: int) -> Any:
    """The order:random sort key of an item id (an expression; also usable on ints)."""
    x = (id_expr * RANDOM_MULTIPLIER + seed) % RANDOM_MODULUS
    for constant in RANDOM_ROUNDS:
        x = (x * x + constant) % RANDOM_MODULUS
    return x


@dataclass
class SearchPage:
    """One page of results: ids in order, hydrated items, the next cursor and warnings."""

    ids: list[int]
    items: list[Any]
    next_cursor: str | None
    warnings: list[dict[str, Any]]
    limit: int
    plan: str
    count: int | None = None
    count_exact: bool = False
    count_upper_bound: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    prev_cursor: str | None = None


def _queryset(plan: Plan, base: QuerySet[Any]) -> tuple[QuerySet[Any], str, str]:
    """The filtered rows, the item-id path and the prefix of item columns."""
    if plan.kind == "postings":
        assert plan.driver is not None
        rows: QuerySet[Any] = EffectiveTag.objects.filter(tag_id=next(iter(plan.driver.tag_ids)))
        if plan.driver.direct:
            rows = rows.filter(is_implied=False)
        if plan.rest is not None:
            rows = rows.filter(compile_cond(plan.rest, prefix="media_item__", outer="media_item_id"))
        if base.query.has_filters():
            rows = rows.filter(media_item_id__in=base.values("pk"))
        return rows, "media_item_id", "media_item__"
    if plan.kind == "empty":
        return base.none(), "pk", ""
    return (base if plan.cond == TRUE else base.filter(compile_cond(plan.cond))), "pk", ""


def _keyset(sort: str, id_path: str, desc: bool, nullable: bool, state: CursorState) -> Q:
    """Rows after the cursor, spelled out (not a row comparison) so indexes serve it."""
    after = "lt" if desc else "gt"
    if sort == id_path:
        return Q(**{f"{id_path}__{after}": state.last_id})
    if state.value is None:  # NULLs sort lowest on both databases: last when descending
        same_null = Q(**{f"{sort}__isnull": True, f"{id_path}__{after}": state.last_id})
        return same_null if desc else same_null | Q(**{f"{sort}__isnull": False})
    out = Q(**{f"{sort}__{after}": state.value}) | Q(
        **{sort: state.value, f"{id_path}__{after}": state.last_id}
    )
    if nullable and desc:
        out |= Q(**{f"{sort}__isnull": True})
    return out


def _page_rows(
    plan: Plan, base: QuerySet[Any], resolved: Resolved, state: CursorState | None, seed: int, size: int
) -> list[tuple[Any, int]]:
    rows, id_path, prefix = _queryset(plan, base)
    # A back cursor reads the rows before it: the same keyset and order, reversed.
    desc, nullable = resolved.descending != bool(state and state.back), False
    if resolved.order == "id":
        sort = id_path
    elif resolved.order == "random":
        rows = rows.annotate(_rnd=random_key(F(id_path), seed))
        sort = "_rnd"
    elif resolved.order == "similarity" and (similar := _similar_of(plan.cond)) is not None:
        if isinstance(similar, Ranked):  # the other app's rank: position in its list
            whens = [When(**{id_path: item_id}, then=Value(n)) for n, item_id in enumerate(similar.ids)]
            last = Value(len(similar.ids))
            rows = rows.annotate(_sim=Case(*whens, default=last, output_field=IntegerField()))
        else:
            rows = rows.annotate(_sim=Hamming(F(prefix + "phash"), Value(similar.phash)))
        sort = "_sim"
    elif resolved.order == "similarity":  # the condition folded away (matches nothing)
        sort = id_path
    else:
        column, nullable = ORDER_FIELDS[resolved.order]
        sort = prefix + column
    if state is not None:
        rows = rows.filter(_keyset(sort, id_path, desc, nullable, state))
    ordering = [F(sort).desc() if desc else F(sort).asc()] if sort != id_path else []
    ordering.append(F(id_path).desc() if desc else F(id_path).asc())
    return list(rows.order_by(*ordering).values_list(sort, id_path)[: size + 1])


def _similar_of(cond: Any) -> Similar | Ranked | None:
    """The top-level similar: or ranked condition (order:similarity requires one)."""
    for child in cond.children if isinstance(cond, AllOf) else (cond,):
        if isinstance(child, Similar | Ranked):
            return child
    return None


def _run(
    plan: Plan, base: QuerySet[Any], resolved: Resolved, state: CursorState | None, seed: int, size: int
) -> tuple[list[tuple[Any, int]], Plan]:
    """Run under the time limit; a long scan with a driver falls back to the postings plan."""
    seconds = knob("SEARCH_TIME_LIMIT")
    term = max(resolved.costs, key=lambda c: c[1])[0] if resolved.costs else ""
    probes = has_negation(plan.cond)
    if plan.kind == "scan" and plan.driver is not None:
        try:
            with statement_limit(seconds / 3, term=term, probes=probes):
                return _page_rows(plan, base, resolved, state, seed, size), plan
        except QueryTimeout:
            plan = plan.as_postings()
            seconds = seconds * 2 / 3
    with statement_limit(seconds, term=term, probes=probes):
        return _page_rows(plan, base, resolved, state, seed, size), plan


def _live_estimate() -> int:
    """≈ number of items (the highest id: one index probe, no COUNT)."""
    return MediaItem.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def search_media(
    *,
    q: str,
    viewer: Any,
    cursor: str | None = None,
    limit: int | None = None,
    base: QuerySet[Any] | None = None,
    bind: str = "",
    count: str = "none",
    hydrate: bool = True,
) -> SearchPage:
    """Search the library with the query language and return one keyset page.

    `base` narrows the items (e.g. the API's other filters; `bind` names them so cursors stay
    tied to them); `count` is none, estimate or exact. Raises QueryError (400) on bad queries
    or cursors and QueryTimeout (422) when the statement-time guard stops the search.
    """
    root = parse(q or "")
    query_key = ast_hash(root, bind)
    resolved = query_resolve(root)
    order_key = f"{resolved.order}_{'desc' if resolved.descending else 'asc'}"
    state = cursor_decode(cursor, query=query_key, order=order_key) if cursor else None
    size = resolved.limit or limit or int_knob("SEARCH_DEFAULT_LIMIT")
    size = max(1, min(size, int_knob("SEARCH_MAX_LIMIT")))
    items_base = base if base is not None else media_item_list(viewer=viewer)
    cond = normalise(resolved.cond)
    total = _live_estimate()
    plan = plan_choose(cond, limit=size, total=total)
    seed = state.seed if state else (secrets.randbelow(RANDOM_MODULUS) if resolved.order == "random" else 0)
    rows, plan = _run(plan, items_base, resolved, state, seed, size)
    page, more = rows[:size], len(rows) > size
    back = state is not None and state.back
    if back:
        page.reverse()  # read backwards; shown in the query's order
    # Forward: more rows after this page if one extra came back; earlier rows if we came by a
    # cursor. Back: the reverse.
    after, before = (state is not None, more) if back else (more, state is not None)
    next_cursor = prev_cursor = None
    if page and after:
        value, last_id = page[-1]
        next_cursor = cursor_encode(CursorState(query_key, order_key, value, last_id, seed))
    if page and before:
        value, first_id = page[0]
        prev_cursor = cursor_encode(CursorState(query_key, order_key, value, first_id, seed, back=True))
    ids = [row[1] for row in page]
    warnings = list({(w["code"], w.get("position")): w for w in resolved.warnings}.values())
    if (
        resolved.scope == "effective"
        and resolved.costs
        and MediaItem.objects.filter(effective_stale=True).exists()
    ):
        warnings.append(
            {
                "code": "stale_items",
                "message": "Some items' effective tags are being rebuilt; results may lag.",
            }
        )
    found = MediaItem.objects.in_bulk(ids) if hydrate and ids else {}
    result = SearchPage(
        ids=ids,
        items=[found[i] for i in ids if i in found],
        next_cursor=next_cursor,
        warnings=warnings,
        limit=size,
        plan=plan.kind,
        prev_cursor=prev_cursor,
    )
    result.count, result.count_exact, result.count_upper_bound = count_page(
        mode=count,
        plan=plan,
        cond=cond,
        base=items_base,
        first_page=state is None,
        rows=len(page),
        more=more,
        total=total,
        queryset=lambda p: _queryset(p, items_base)[0],
        query_key=query_key,
    )
    return result


def search_ids(
    *, q: str, viewer: Any, base: QuerySet[Any] | None = None, max_ids: int = 1_000_000
) -> list[int]:
    """Every matching item id in the query's order (bulk targets, tests), under the time limit.

    `limit:` in the query is ignored; at most `max_ids` ids are returned.
    """
    root = parse(q or "")
    resolved = query_resolve(root)
    items_base = base if base is not None else media_item_list(viewer=viewer)
    cond = normalise(resolved.cond)
    plan = plan_choose(cond, limit=max_ids, total=_live_estimate())
    seed = secrets.randbelow(RANDOM_MODULUS) if resolved.order == "random" else 0
    rows, _ = _run(plan, items_base, resolved, None, seed, max_ids)
    return [row[1] for row in rows[:max_ids]]


def search_queryset(*, q: str, viewer: Any, base: QuerySet[Any] | None = None) -> QuerySet[Any]:
    """The items matching `q` as an unordered queryset (for `pk__in` subqueries: a saved
    query's members, docs/datasets.md#membership); nothing is read until it is evaluated.

    `order:`, `limit:` and `similar:` ordering are ignored. Raises QueryError on bad queries.
    """
    resolved = query_resolve(parse(q or ""))
    items_base = base if base is not None else media_item_list(viewer=viewer)
    cond = normalise(resolved.cond)
    if cond == TRUE:
        return items_base
    return items_base.filter(compile_cond(cond))
