"""Bulk tag operations, previewing half: validate a request and freeze its target
(`operation_preview`), then say what applying would change, counted by aggregate queries over
the frozen target, and before/after samples decided per item as applying would
(docs/tags.md#bulk-operations).

Items without a curated set take part through the set they would get (seeded from current
source and derived tags): counts treat that seed as the item's curated tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet

from apps.core.db import statement_limit
from apps.media.models import MediaItem
from apps.tags import conf, slots
from apps.tags.models import Operation, OperationTarget, Tag, TagAssignment, TagSet
from apps.tags.selectors.vocabularies import vocabulary_get
from apps.tags.services.assignments import CURATED, CURRENT, DELETED, SEEDED_KINDS, seed_sets_q
from apps.tags.services.operations.decide import decide
from apps.tags.services.operations.plan import (
    ACTIONS,
    SET_KIND_NAMES,
    Spec,
    TagRef,
    actor_or_none,
    operation_spec_build,
    operation_target_freeze,
    operation_target_ids,
    too_many,
    type_changes_plan,
)

SAMPLE_SIZE = 20


# --- counts -------------------------------------------------------------------------------------


def _targets(operation_id: int) -> QuerySet[Any]:
    return OperationTarget.objects.filter(operation_id=operation_id).values("media_item_id")


def _real(spec: Spec, operation_id: int, tag_ids: Sequence[int]) -> QuerySet[TagAssignment]:
    """Assignments of these tags in the chosen kind of set, on target items."""
    return TagAssignment.objects.filter(
        kind=spec.set_kind, tag_id__in=list(tag_ids), media_item_id__in=_targets(operation_id)
    )


def _curated_items(spec: Spec) -> QuerySet[Any]:
    return TagSet.objects.filter(kind=CURATED, vocabulary_id=spec.vocabulary_id, slot=slots.CURATED).values(
        "media_item_id"
    )


def _any_unseeded(spec: Spec, operation_id: int) -> bool:
    """Whether any target item lacks a curated set. In a curated library none does, and every
    seed query is skipped instead of scanning the targets' source rows; asked once per preview."""
    return (
        spec.set_kind == CURATED
        and OperationTarget.objects.filter(operation_id=operation_id)
        .exclude(media_item_id__in=_curated_items(spec))
        .exists()
    )


def _seed(
    spec: Spec, operation_id: int, tag_ids: Sequence[int] | None = None, *, unseeded: bool = True
) -> QuerySet[TagAssignment]:
    """Seed rows (current source/derived tags) of target items that have no curated set yet
    (none at all when the caller found that every target has one: `unseeded=False`)."""
    if not unseeded:
        return TagAssignment.objects.none()
    seed_sets = TagSet.objects.filter(
        seed_sets_q(), vocabulary_id=spec.vocabulary_id, media_item_id__in=_targets(operation_id)
    ).values("pk")
    rows = TagAssignment.objects.filter(
        kind__in=SEEDED_KINDS, state=CURRENT, media_item_id__in=_targets(operation_id)
    ).exclude(media_item_id__in=_curated_items(spec))
    if tag_ids is not None:
        # A tag id implies its vocabulary; a mapping's output sets are left out (`seed_sets_q`).
        return rows.filter(tag_id__in=list(tag_ids)).exclude(tagset__slot__startswith=slots.MAPPING_PREFIX)
    return rows.filter(tagset_id__in=seed_sets)


def _empty_tag_counts() -> dict[str, int]:
    return {"added": 0, "removed": 0, "unchanged": 0, "blocked_by_tombstone": 0, "revived": 0}


def operation_counts(*, operation: Operation, spec: Spec) -> dict[str, Any]:
    """What applying would change on the frozen target, from a handful of aggregate queries.

    Per tag: added (revived included), removed, unchanged, blocked_by_tombstone. Also
    matched_items, items_changing, sets_created, seeded (rows copied into new curated sets) and
    changes (OperationChange rows: what decides between the sync path and a job).
    """
    op_id = operation.pk
    curated = spec.set_kind == CURATED
    unseeded = _any_unseeded(spec, op_id)
    per_tag = {r.name: _empty_tag_counts() for r in (*spec.remove, *spec.add)}
    names = spec.names()
    matched = OperationTarget.objects.filter(operation_id=op_id).count()
    remove_ids = spec.remove_ids
    counters: dict[str, Any] = {
        "matched_items": matched,
        "items_changing": 0,
        "sets_created": 0,
        "seeded": 0,
        "changes": 0,
    }
    real_removed = 0
    removed_items: dict[int, int] = {}
    if remove_ids:
        current = _real(spec, op_id, remove_ids).filter(state=CURRENT)
        for tag_id, n_rows, n_items in (
            current.values("tag_id")
            .annotate(r=Count("*"), i=Count("media_item_id", distinct=True))
            .values_list("tag_id", "r", "i")
        ):
            per_tag[names[tag_id]]["removed"] += n_rows
            removed_items[tag_id] = n_items
            real_removed += n_rows
        if curated:
            for tag_id, n_items in (
                _seed(spec, op_id, remove_ids, unseeded=unseeded)
                .values("tag_id")
                .annotate(i=Count("media_item_id", distinct=True))
                .values_list("tag_id", "i")
            ):
                per_tag[names[tag_id]]["removed"] += n_items
                removed_items[tag_id] = removed_items.get(tag_id, 0) + n_items
    if spec.action == "add":
        scope = matched
    elif remove_ids:
        in_scope = Q(
            media_item_id__in=_real(spec, op_id, remove_ids).filter(state=CURRENT).values("media_item_id")
        )
        if curated:
            in_scope |= Q(
                media_item_id__in=_seed(spec, op_id, remove_ids, unseeded=unseeded).values("media_item_id")
            )
        scope = OperationTarget.objects.filter(operation_id=op_id).filter(in_scope).count()
    else:
        scope = 0
    if spec.action == "remove":
        for ref in spec.remove:
            per_tag[ref.name]["unchanged"] = matched - removed_items.get(ref.id or 0, 0)
        counters["items_changing"] = scope
    elif spec.scoped:
        for ref in spec.remove:
            per_tag[ref.name]["unchanged"] = scope - removed_items.get(ref.id or 0, 0)
        counters["items_changing"] = scope
    if spec.add and (scope or spec.action == "add"):
        _count_additions(spec, op_id, scope, per_tag, names, unseeded=unseeded)
    seed_items: list[int] | None = None
    if spec.action == "add":
        full_real, full_virtual = _full_items(spec, op_id, unseeded=unseeded)
        counters["items_changing"] = matched - full_real - full_virtual.count()
        if curated:
            new_sets = (
                OperationTarget.objects.filter(operation_id=op_id)
                .exclude(media_item_id__in=_curated_items(spec))
                .exclude(media_item_id__in=full_virtual.values("media_item_id"))
            )
            seed_items = list(new_sets.values_list("media_item_id", flat=True))
            counters["sets_created"] = len(seed_items)
    elif curated and remove_ids:
        # Read as ids: used as a nested IN (subquery) below, MariaDB planned a dependent
        # subquery that ran past the 10 s preview limit at a few thousand items.
        seed_items = sorted(
            set(_seed(spec, op_id, remove_ids, unseeded=unseeded).values_list("media_item_id", flat=True))
        )
        counters["sets_created"] = len(seed_items)
    if seed_items is not None and counters["sets_created"]:
        # Pairs are distinct per item, so counting per chunk of items adds up exactly (and keeps
        # each IN list under SQLite's variable limit).
        counters["seeded"] = sum(
            _seed(spec, op_id, unseeded=unseeded)
            .filter(media_item_id__in=seed_items[start : start + 5000])
            .values("media_item_id", "tag_id")
            .distinct()
            .count()
            for start in range(0, len(seed_items), 5000)
        )
    counters["changes"] = counters["seeded"] + sum(c["added"] for c in per_tag.values()) + real_removed
    counters["tags"] = per_tag
    return counters


def _count_additions(
    spec: Spec,
    op_id: int,
    scope: int,
    per_tag: dict[str, dict[str, int]],
    names: dict[int, str],
    *,
    unseeded: bool,
) -> None:
    """Added / unchanged / blocked counts of the `add` tags over the scope."""
    present: dict[int, int] = {}
    deleted: dict[int, int] = {}
    add_ids = spec.add_ids
    if add_ids:
        real = _real(spec, op_id, add_ids)
        seed = _seed(spec, op_id, add_ids, unseeded=unseeded)
        if spec.scoped:
            real = real.filter(
                media_item_id__in=_real(spec, op_id, spec.remove_ids)
                .filter(state=CURRENT)
                .values("media_item_id")
            )
            seed = seed.filter(
                media_item_id__in=_seed(spec, op_id, spec.remove_ids, unseeded=unseeded).values(
                    "media_item_id"
                )
            )
        for tag_id, state, n in (
            real.values("tag_id", "state").annotate(n=Count("*")).values_list("tag_id", "state", "n")
        ):
            target = present if state == CURRENT else deleted
            target[tag_id] = target.get(tag_id, 0) + n
        for tag_id, n in (
            seed.values("tag_id").annotate(n=Count("media_item_id", distinct=True)).values_list("tag_id", "n")
        ):
            present[tag_id] = present.get(tag_id, 0) + n
    for ref in spec.add:
        counts = per_tag[ref.name]
        have = present.get(ref.id, 0) if ref.id else 0
        gone = deleted.get(ref.id, 0) if ref.id else 0
        counts["unchanged"] = have
        if spec.revive:
            counts["added"] = scope - have
            counts["revived"] = gone
        else:
            counts["added"] = scope - have - gone
            counts["blocked_by_tombstone"] = gone


def _full_items(spec: Spec, op_id: int, *, unseeded: bool) -> tuple[int, QuerySet[Any]]:
    """Target items that `add` leaves alone (every tag already there, or tombstoned and not revived):
    the count among items with a curated set, and a queryset of those without one."""
    wanted = len(spec.add)
    if not wanted or len(spec.add_ids) < wanted:
        return 0, TagAssignment.objects.none()
    states = [CURRENT] if spec.revive else [CURRENT, DELETED]
    full_real = (
        _real(spec, op_id, spec.add_ids)
        .filter(state__in=states)
        .values("media_item_id")
        .annotate(n=Count("tag_id", distinct=True))
        .filter(n=wanted)
        .count()
    )
    full_virtual = (
        _seed(spec, op_id, spec.add_ids, unseeded=unseeded)
        .values("media_item_id")
        .annotate(n=Count("tag_id", distinct=True))
        .filter(n=wanted)
    )
    return full_real, full_virtual


# --- samples ------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One item's tags in the chosen set kind before and after (names in position order)."""

    item_id: int
    name: str
    has_thumbnail: bool
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        gone = set(self.before)
        return [n for n in self.after if n not in gone]

    @property
    def removed(self) -> list[str]:
        kept = set(self.after)
        return [n for n in self.before if n not in kept]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "name": self.name,
            "has_thumbnail": self.has_thumbnail,
            "before": self.before,
            "after": self.after,
            "added": self.added,
            "removed": self.removed,
        }


def operation_samples(*, operation: Operation, spec: Spec, size: int = SAMPLE_SIZE) -> list[Sample]:
    """Before/after tag lists for up to `size` target items, preferring items that change."""
    op_id = operation.pk
    unseeded = _any_unseeded(spec, op_id)
    targets = OperationTarget.objects.filter(operation_id=op_id).order_by("media_item_id")
    if spec.remove_ids and spec.action != "set_type":
        in_scope = Q(
            media_item_id__in=_real(spec, op_id, spec.remove_ids)
            .filter(state=CURRENT)
            .values("media_item_id")
        )
        if spec.set_kind == CURATED:
            in_scope |= Q(
                media_item_id__in=_seed(spec, op_id, spec.remove_ids, unseeded=unseeded).values(
                    "media_item_id"
                )
            )
        ids = list(targets.filter(in_scope).values_list("media_item_id", flat=True)[:size])
    else:
        ids = list(targets.values_list("media_item_id", flat=True)[:size])
    if not ids or spec.action == "set_type":
        return []
    items = {m.pk: m for m in MediaItem.objects.filter(pk__in=ids).only("pk", "name", "thumbnail_key")}
    sets = list(
        TagSet.objects.filter(media_item_id__in=ids, vocabulary_id=spec.vocabulary_id).values_list(
            "pk", "media_item_id", "kind", "slot"
        )
    )
    rows: dict[int, dict[int, tuple[int, int | None, int | None]]] = {}
    for tagset_id, tag_id, state, position, origin in TagAssignment.objects.filter(
        tagset_id__in=[s[0] for s in sets]
    ).values_list("tagset_id", "tag_id", "state", "position", "origin_set_id"):
        rows.setdefault(tagset_id, {})[tag_id] = (state, position, origin)
    tag_names = dict(
        Tag.objects.filter(
            pk__in={t for r in rows.values() for t in r} | set(spec.add_ids) | set(spec.remove_ids)
        ).values_list("pk", "name")
    )
    new_names = {f"new:{r.name}": r.name for r in spec.add if r.id is None}
    samples = []
    for item_id in ids:
        item = items.get(item_id)
        if item is None:
            continue
        mine = [
            s
            for s in sets
            if s[1] == item_id and s[2] == spec.set_kind and (spec.set_kind != CURATED or s[3] == "")
        ]
        states: list[dict[Any, tuple[int, int | None, int | None]]] = []
        if mine:
            states = [rows.get(s[0], {}) for s in mine]
        elif spec.set_kind == CURATED:
            seed: dict[Any, tuple[int, int | None, int | None]] = {}
            seed_sets = sorted(
                (
                    s
                    for s in sets
                    if s[1] == item_id and s[2] in SEEDED_KINDS and not s[3].startswith(slots.MAPPING_PREFIX)
                ),
                key=lambda s: (s[2], s[0]),
            )
            for s in seed_sets:
                for tag_id, (state, _position, _origin) in sorted(
                    rows.get(s[0], {}).items(), key=lambda kv: (kv[1][1] is not None, kv[1][1] or 0)
                ):
                    if state == CURRENT and tag_id not in seed:
                        seed[tag_id] = (CURRENT, len(seed), s[0])
            states = [seed]
        sample = Sample(item_id=item_id, name=item.name, has_thumbnail=bool(item.thumbnail_key))
        for state_map in states:
            before = {t: v for t, v in state_map.items() if v[0] == CURRENT}
            after = dict(before)
            max_pos = max((v[1] or 0 for v in state_map.values()), default=-1)
            decision = decide(spec, state_map.get, max_pos + 1, new_key=_new_key)
            if decision is not None:
                for tag_id in decision.removed:
                    after.pop(tag_id, None)
                for key, position, _origin, _revived in decision.added:
                    after[key] = (CURRENT, position, None)
            sample.before += _ordered(before, tag_names, new_names)
            sample.after += _ordered(after, tag_names, new_names)
        samples.append(sample)
    return samples


def _new_key(ref: TagRef) -> str:
    return f"new:{ref.name}"


def _ordered(
    state_map: dict[Any, tuple[int, int | None, int | None]], names: dict[int, str], new: dict[str, str]
) -> list[str]:
    def name(key: Any) -> str:
        return new[key] if isinstance(key, str) else names.get(key, str(key))

    return [
        name(k)
        for k, _ in sorted(state_map.items(), key=lambda kv: (kv[1][1] is None, kv[1][1] or 0, name(kv[0])))
    ]


@dataclass
class Preview:
    """A previewed operation: its frozen target's counts, warnings and before/after samples."""

    operation: Operation
    counts: dict[str, Any]
    warnings: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """How applying would run: in the request ("sync") or as a job."""
        return "sync" if self.counts.get("changes", 0) <= conf.bulk_sync_max_changes() else "job"


# --- preview ------------------------------------------------------------------------------------


def _summary(spec: Spec, matched: int | None) -> str:
    def names(refs: Sequence[Any]) -> str:
        shown = ", ".join(r.name for r in refs[:5])
        return shown + (f" +{len(refs) - 5}" if len(refs) > 5 else "")

    verb = {
        "add": f"add {names(spec.add)}",
        "remove": f"remove {names(spec.remove)}",
        "replace": f"replace {names(spec.remove)} → {names(spec.add)}",
        "rename": f"rename {names(spec.remove)} → {names(spec.add)}",
        "set_type": f"set type of {names(spec.remove)}",
    }[spec.action]
    where = "" if matched is None else f" on {matched:,} items"
    kind = SET_KIND_NAMES[TagSet.Kind(spec.set_kind)]
    library = " (library: alias + deprecate)" if spec.scope == "library" else ""
    return f"{verb}{where} ({kind}){library}"[:500]


def operation_preview(
    *,
    action: str,
    tags: Sequence[str] = (),
    from_tags: Sequence[str] = (),
    to_tags: Sequence[str] = (),
    type_key: str = "",
    set_kind: str = "curated",
    q: str | None = None,
    ids: Sequence[Any] | None = None,
    revive_tombstones: bool = True,
    scope: str = "items",
    vocabulary: str | None = None,
    actor: Any = None,
) -> Preview:
    """Validate a bulk request, freeze its target and count what applying would change.

    Writes a `previewed` Operation and its OperationTarget rows; changes no tag. Refuses bad
    input (400), too large a target (422) and missing permissions (403).
    """
    vocab = vocabulary_get(slug=vocabulary) if vocabulary else None
    spec, warnings = operation_spec_build(
        action=action,
        tags=tags,
        from_tags=from_tags,
        to_tags=to_tags,
        type_key=type_key,
        set_kind=set_kind,
        vocabulary=vocab,
        revive_tombstones=revive_tombstones,
        scope=scope,
        actor=actor,
    )
    params: dict[str, Any] = {
        "spec": spec.to_params(),
        "input": {
            "tags": list(tags),
            "from": list(from_tags),
            "to": list(to_tags),
            "type": type_key,
            "q": q or "",
            "ids": len(ids or ()),
        },
    }
    if spec.action == "set_type":
        changes = type_changes_plan(spec=spec)
        counts = {
            "matched_items": 0,
            "items_changing": 0,
            "changes": len(changes),
            "tags_changing": len(changes),
            "tags": {r.name: {"changed": int(any(c[0] == r.id for c in changes))} for r in spec.remove},
        }
        with transaction.atomic():
            operation = Operation.objects.create(
                kind=Operation.Kind.SET_TYPE,
                status=Operation.Status.PREVIEWED,
                params={**params, "preview": counts},
                target_kind="library",
                set_kind=spec.set_kind,
                summary=_summary(spec, None),
                created_by=actor_or_none(actor),
            )
        return Preview(operation=operation, counts=counts, warnings=warnings)
    item_ids = _library_target(spec) if _is_library_default(spec, q, ids) else None
    if item_ids is None:
        item_ids = operation_target_ids(q=q, ids=ids, viewer=actor)
    if ids and not q and len(item_ids) < len({str(i) for i in ids}):
        missing = len({str(i) for i in ids}) - len(item_ids)
        warnings.append({"code": "tags.unknown_items", "message": f"{missing} of the ids are not items."})
    with transaction.atomic():
        operation = Operation.objects.create(
            kind=ACTIONS[spec.action],
            status=Operation.Status.PREVIEWED,
            params=params,
            target_kind="query" if q else "selection",
            set_kind=spec.set_kind,
            summary=_summary(spec, len(item_ids)),
            created_by=actor_or_none(actor),
        )
        operation_target_freeze(operation=operation, item_ids=item_ids)
        # Bulk previews get 10 s (docs/query-language.md#statement-time-guard).
        with statement_limit(10.0):
            counts = operation_counts(operation=operation, spec=spec)
        operation.params = {**params, "preview": counts}
        operation.save(update_fields=["params", "updated_at"])
    if not item_ids:
        warnings.append({"code": "tags.empty_target", "message": "No items match; nothing would change."})
    samples = operation_samples(operation=operation, spec=spec)
    return Preview(operation=operation, counts=counts, warnings=warnings, samples=samples)


def _is_library_default(spec: Spec, q: str | None, ids: Sequence[Any] | None) -> bool:
    return spec.action == "rename" and spec.scope == "library" and not (q or "").strip() and not ids


def _library_target(spec: Spec) -> list[int]:
    """A library-wide rename's items: every item with the old tag in a curated, source or
    derived set (tagger sets are machine output and keep the name they were given)."""
    limit = conf.bulk_max_target()
    ids = list(
        TagAssignment.objects.filter(
            tag_id=spec.remove_ids[0],
            state=CURRENT,
            kind__in=[TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.DERIVED],
        )
        .order_by("media_item_id")
        .values_list("media_item_id", flat=True)
        .distinct()[: limit + 1]
    )
    if len(ids) > limit:
        raise too_many(len(ids), limit, more=True)
    return ids
