"""Bulk tag operations, planning half: what to do (spec), to which items (target) and what it
would change (counts by aggregate queries, before/after samples). docs/tags.md#bulk-operations.

Items without a curated set take part through the set they would get (`tag_set_curated_get_or_create`
seeds it from current source and derived tags): counts treat that seed as the item's curated tags,
and applying creates the set only on items that change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from apps.core.exceptions import DomainError, ForbiddenError, UnprocessableError
from apps.core.lookups import NameGlob
from apps.media import extensions
from apps.media.models import MediaItem
from apps.media.selectors import media_item_list
from apps.tags import conf, slots
from apps.tags.models import (
    AliasResolution,
    Operation,
    OperationTarget,
    Tag,
    TagAssignment,
    TagSet,
    TagType,
    Vocabulary,
)
from apps.tags.services.names import (
    normalise_fragment,
    tag_names_normalise,
    tag_type_find_by_key,
    vocabulary_default,
)
from apps.tags.services.sql import rows_insert

CURRENT = TagAssignment.State.CURRENT
DELETED = TagAssignment.State.DELETED
CURATED = TagSet.Kind.CURATED
SEEDED_KINDS = (TagSet.Kind.SOURCE, TagSet.Kind.DERIVED)
SET_KINDS = {"curated": TagSet.Kind.CURATED, "tagger": TagSet.Kind.TAGGER, "derived": TagSet.Kind.DERIVED}
SET_KIND_NAMES = {value: name for name, value in SET_KINDS.items()}
ACTIONS = {
    "add": Operation.Kind.ADD,
    "remove": Operation.Kind.REMOVE,
    "replace": Operation.Kind.REPLACE,
    "rename": Operation.Kind.RENAME,
    "set_type": Operation.Kind.SET_TYPE,
}
# OperationChange.before_via of every row of a curated set the operation itself created: undo
# drops such a set again when nothing else was added to it, so effective tags come back exactly.
SET_CREATED = "+set"
SAMPLE_SIZE = 20
_SPLIT_LIST = re.compile(r"[,\n]+")


def tag_list_parse(text: str) -> list[str]:
    """Tags typed in one box: comma- or line-separated; without either, whitespace-separated."""
    text = text.strip()
    if not text:
        return []
    parts = _SPLIT_LIST.split(text) if _SPLIT_LIST.search(text) else text.split()
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class TagRef:
    """A tag the operation names; `id` is None for a new tag (created when applied)."""

    name: str
    id: int | None
    entered: str = ""


@dataclass(frozen=True)
class Spec:
    """What an operation does, independent of its target (rebuilt from `Operation.params`)."""

    action: str
    set_kind: int
    vocabulary_id: int
    add: tuple[TagRef, ...] = ()
    remove: tuple[TagRef, ...] = ()
    revive: bool = True
    scope: str = "items"
    type_id: int | None = None

    @property
    def scoped(self) -> bool:
        """Only items having one of the `remove` tags take part (replace, rename)."""
        return self.action in ("replace", "rename")

    @property
    def inherit(self) -> bool:
        """The added tag takes the removed one's position and origin set (rename)."""
        return self.action == "rename"

    @property
    def add_ids(self) -> list[int]:
        return [r.id for r in self.add if r.id is not None]

    @property
    def remove_ids(self) -> list[int]:
        return [r.id for r in self.remove if r.id is not None]

    def names(self) -> dict[int, str]:
        return {r.id: r.name for r in (*self.remove, *self.add) if r.id is not None}

    def to_params(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "set_kind": SET_KIND_NAMES[TagSet.Kind(self.set_kind)],
            "vocabulary_id": self.vocabulary_id,
            "add": [[r.name, r.id, r.entered] for r in self.add],
            "remove": [[r.name, r.id, r.entered] for r in self.remove],
            "revive_tombstones": self.revive,
            "scope": self.scope,
            "type_id": self.type_id,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Spec:
        return cls(
            action=params["action"],
            set_kind=SET_KINDS[params["set_kind"]],
            vocabulary_id=params["vocabulary_id"],
            add=tuple(TagRef(*row) for row in params.get("add", [])),
            remove=tuple(TagRef(*row) for row in params.get("remove", [])),
            revive=params.get("revive_tombstones", True),
            scope=params.get("scope", "items"),
            type_id=params.get("type_id"),
        )

    def with_ids(self, ids: dict[str, int]) -> Spec:
        """The same spec with new tags' ids filled in (after they were created)."""
        return replace(self, add=tuple(TagRef(r.name, r.id or ids[r.name], r.entered) for r in self.add))


# --- building a spec ----------------------------------------------------------------------------


def _existing(names: Sequence[str], vocabulary: Vocabulary, warnings: list[dict[str, Any]]) -> list[TagRef]:
    """Tags to take away: existing ones only (unknown names are reported, not created)."""
    clean = tag_names_normalise(raw=list(names), vocabulary=vocabulary)
    found = {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=clean)}
    missing = [n for n in clean if n not in found]
    if missing:
        warnings.append(
            {
                "code": "tags.unknown_tag",
                "message": f"Not tags of {vocabulary.name}, so nothing to remove: {', '.join(missing[:20])}.",
                "tags": missing[:100],
            }
        )
    refs = [TagRef(n, found[n].pk, n) for n in clean if n in found]
    antecedents = dict(
        AliasResolution.objects.filter(tag_id__in=[r.id for r in refs]).values_list(
            "tag__name", "ideal_tag__name"
        )
    )
    for name, ideal in antecedents.items():
        warnings.append(
            {
                "code": "tags.alias_antecedent",
                "message": f"'{name}' reads as '{ideal}'; curated sets store '{ideal}', so remove that too.",
                "tag": name,
            }
        )
    return refs


PATTERN_MAX_TAGS = 500


def _matching(
    patterns: Sequence[str], vocabulary: Vocabulary, warnings: list[dict[str, Any]]
) -> list[TagRef]:
    """Tags a `*` pattern names (remove only: `*_background`, `artist:*`-style clean-ups), most
    used first; a pattern naming more than PATTERN_MAX_TAGS tags is refused, not truncated."""
    refs: list[TagRef] = []
    for pattern in patterns:
        text = pattern.strip()
        parts = tuple(normalise_fragment(part, vocabulary) for part in text.split("*"))
        if not any(parts):
            raise DomainError(
                f"{text!r} would name every tag; write part of a name around the '*'.",
                code="tags.bulk_invalid",
                details={"fields": {"tags": [f"{text!r} matches everything."]}},
            )
        rows = list(
            Tag.objects.filter(NameGlob(F("name"), parts), vocabulary=vocabulary)
            .order_by("-media_count", "name")
            .values_list("pk", "name")[: PATTERN_MAX_TAGS + 1]
        )
        if len(rows) > PATTERN_MAX_TAGS:
            raise DomainError(
                f"{text!r} matches more than {PATTERN_MAX_TAGS} tags; make the pattern narrower.",
                code="tags.pattern_too_broad",
                details={"fields": {"tags": [f"More than {PATTERN_MAX_TAGS} tags match {text!r}."]}},
            )
        if not rows:
            warnings.append(
                {
                    "code": "tags.unknown_tag",
                    "message": f"No tag of {vocabulary.name} matches {text!r}, so nothing to remove.",
                    "tags": [text],
                }
            )
        refs += [TagRef(name, pk, text) for pk, name in rows]
    return refs


def _wanted(names: Sequence[str], vocabulary: Vocabulary) -> list[TagRef]:
    """Tags a person adds: normalised, aliases resolved to their ideal, deprecated ones refused.

    Unknown names stay without id (created at apply time); a closed vocabulary refuses them.
    """
    clean = tag_names_normalise(raw=list(names), vocabulary=vocabulary)
    found = {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=clean)}
    missing = [n for n in clean if n not in found]
    if missing and vocabulary.policy == Vocabulary.Policy.CLOSED:
        raise DomainError(
            f"Vocabulary {vocabulary.slug!r} is closed and does not know: {', '.join(missing[:20])}.",
            code="tags.unknown_tag",
            details={"unknown": missing[:100], "vocabulary": vocabulary.slug},
        )
    deprecated = [n for n in clean if n in found and found[n].is_deprecated]
    if deprecated:
        raise DomainError(
            f"Deprecated tags cannot be added: {', '.join(deprecated[:10])}.",
            code="tags.deprecated",
            details={"tags": deprecated[:50]},
        )
    ideal = {
        tag_id: (ideal_id, ideal_name)
        for tag_id, ideal_id, ideal_name in AliasResolution.objects.filter(
            tag_id__in=[t.pk for t in found.values()]
        ).values_list("tag_id", "ideal_tag_id", "ideal_tag__name")
    }
    refs: dict[str, TagRef] = {}
    for name in clean:
        tag = found.get(name)
        if tag is not None and tag.pk in ideal:
            ideal_id, ideal_name = ideal[tag.pk]
            refs.setdefault(ideal_name, TagRef(ideal_name, ideal_id, name))
        else:
            refs.setdefault(name, TagRef(name, tag.pk if tag else None, name))
    return list(refs.values())


def _required(values: Sequence[str], field_name: str) -> None:
    if not values:
        raise DomainError(
            f"Name at least one tag in '{field_name}'.",
            code="tags.bulk_invalid",
            details={"fields": {field_name: ["This field is required."]}},
        )


def operation_spec_build(
    *,
    action: str,
    tags: Sequence[str] = (),
    from_tags: Sequence[str] = (),
    to_tags: Sequence[str] = (),
    type_key: str = "",
    set_kind: str = "curated",
    vocabulary: Vocabulary | None = None,
    revive_tombstones: bool = True,
    scope: str = "items",
    actor: Any = None,
) -> tuple[Spec, list[dict[str, Any]]]:
    """Validate a bulk request into a Spec plus warnings; DomainError (400) names the bad field."""
    if action not in ACTIONS:
        raise DomainError(
            f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.",
            code="tags.bulk_invalid",
            details={"fields": {"action": [f"Choose one of {', '.join(ACTIONS)}."]}},
        )
    if set_kind not in SET_KINDS:
        raise DomainError(
            f"Unknown set kind {set_kind!r}; use curated, tagger or derived.",
            code="tags.bulk_invalid",
            details={"fields": {"set_kind": ["Choose curated, tagger or derived."]}},
        )
    kind = SET_KINDS[set_kind]
    if kind != CURATED and action != "remove":
        raise DomainError(
            f"A {set_kind} set keeps what its tagger or profile produced; only 'remove' may touch it.",
            code="tags.set_read_only",
            details={"set_kind": set_kind},
        )
    vocabulary = vocabulary or vocabulary_default()
    warnings: list[dict[str, Any]] = []
    spec = Spec(action=action, set_kind=kind, vocabulary_id=vocabulary.pk, revive=revive_tombstones)
    if action == "add":
        _required(tags, "tags")
        return replace(spec, add=tuple(_wanted(tags, vocabulary))), warnings
    if action == "remove":
        _required(tags, "tags")
        patterns = [t for t in tags if "*" in t]
        plain = [t for t in tags if "*" not in t]
        refs = _existing(plain, vocabulary, warnings) if plain else []
        seen = {r.name for r in refs}
        for ref in _matching(patterns, vocabulary, warnings):
            if ref.name not in seen:  # patterns may overlap the names and each other
                seen.add(ref.name)
                refs.append(ref)
        return replace(spec, remove=tuple(refs)), warnings
    if action == "set_type":
        _required(tags, "tags")
        tag_type = tag_type_find_by_key(key=type_key or "")
        if tag_type is None:
            raise DomainError(
                f"Unknown tag type {type_key!r}.",
                code="tags.bulk_invalid",
                details={"fields": {"type": [f"No tag type {type_key!r}."]}},
            )
        refs = _existing(tags, vocabulary, warnings)
        return replace(spec, remove=tuple(refs), type_id=tag_type.pk), warnings
    _required(from_tags, "from")
    _required(to_tags, "to")
    if action == "rename":
        if len(from_tags) != 1 or len(to_tags) != 1:
            raise DomainError(
                "Rename takes exactly one tag on each side; use replace for several.",
                code="tags.bulk_invalid",
                details={"fields": {"from": ["One tag."], "to": ["One tag."]}},
            )
        if scope not in ("items", "library"):
            raise DomainError("Scope is 'items' or 'library'.", code="tags.bulk_invalid")
        if scope == "library" and not (actor is not None and actor.has_perm("tags.approve_rules")):
            raise ForbiddenError(
                "Renaming across the library creates an active alias; that needs permission to "
                "approve rules.",
                code="tags.approve_rules_required",
            )
    sources = _existing(from_tags, vocabulary, warnings)
    targets = _wanted(to_tags, vocabulary)
    if action == "rename" and not sources:
        raise DomainError(
            f"There is no tag {from_tags[0]!r} to rename.",
            code="tags.unknown_tag",
            details={"fields": {"from": ["Unknown tag."]}},
        )
    overlap = {r.name for r in sources} & {r.name for r in targets}
    if overlap:
        raise DomainError(
            f"A tag cannot be replaced by itself: {', '.join(sorted(overlap))}.",
            code="tags.bulk_invalid",
            details={"fields": {"to": [f"Also in 'from': {', '.join(sorted(overlap))}."]}},
        )
    return replace(spec, remove=tuple(sources), add=tuple(targets), scope=scope), warnings


# --- target -------------------------------------------------------------------------------------


def _search_ids(q: str, viewer: Any, limit: int, among: set[int] | None = None) -> list[int]:
    """Ids the query matches (at most `limit` + 1; only `among` them when given), through the
    library's query provider (the search app; docs/architecture.md#search)."""
    base = None
    if among is not None:
        base = media_item_list(viewer=viewer).filter(pk__in=sorted(among))
    return list(extensions.query_ids(q=q, viewer=viewer, base=base, max_ids=limit + 1))


def operation_target_ids(
    *, q: str | None = None, ids: Sequence[Any] | None = None, viewer: Any = None
) -> list[int]:
    """The items a bulk operation works on, ascending: those matching `q`, those listed in `ids`
    (unknown ids dropped), or those listed that also match `q`. Too many is a 422."""
    limit = conf.bulk_max_target()
    q = (q or "").strip()
    if not q and not ids:
        raise DomainError(
            "Choose the items: a query (q) or a list of ids.",
            code="tags.bulk_no_target",
            details={"fields": {"q": ["Give a query or ids."]}},
        )
    chosen: set[int] | None = None
    if ids:
        try:
            wanted = sorted({int(i) for i in ids})
        except (TypeError, ValueError) as exc:
            raise DomainError(
                "ids must be whole numbers.",
                code="tags.bulk_invalid",
                details={"fields": {"ids": ["Numbers."]}},
            ) from exc
        if len(wanted) > limit:
            raise _too_many(len(wanted), limit)
        chosen = set()
        for start in range(0, len(wanted), 5000):
            chosen.update(
                MediaItem.objects.filter(pk__in=wanted[start : start + 5000]).values_list("pk", flat=True)
            )
    if q:
        matched = _search_ids(
            q, viewer, limit, chosen if chosen is not None and len(chosen) <= 5000 else None
        )
        if chosen is None and len(matched) > limit:
            raise _too_many(len(matched), limit, more=True)
        chosen = set(matched) if chosen is None else chosen & set(matched)
    assert chosen is not None
    return sorted(chosen)


def _too_many(n: int, limit: int, *, more: bool = False) -> UnprocessableError:
    return UnprocessableError(
        f"{'More than ' if more else ''}{n:,} items selected; a bulk operation takes at most {limit:,}. "
        "Narrow the query or split the selection.",
        code="tags.target_too_large",
        details={"limit": limit, "count": n},
    )


def operation_target_freeze(*, operation: Operation, item_ids: Sequence[int]) -> int:
    """Store the target of a preview (OperationTarget rows, one multi-row INSERT per 5,000)."""
    rows_insert(OperationTarget, ("operation_id", "media_item_id"), [(operation.pk, i) for i in item_ids])
    return len(item_ids)


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
    rows = TagAssignment.objects.filter(
        kind__in=SEEDED_KINDS, state=CURRENT, media_item_id__in=_targets(operation_id)
    ).exclude(media_item_id__in=_curated_items(spec))
    if tag_ids is not None:
        return rows.filter(tag_id__in=list(tag_ids))  # a tag id implies its vocabulary
    seed_sets = TagSet.objects.filter(
        kind__in=SEEDED_KINDS, vocabulary_id=spec.vocabulary_id, media_item_id__in=_targets(operation_id)
    ).values("pk")
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
    from apps.tags.services.operations.apply import decide

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
    keyed = replace(spec, add=tuple(TagRef(r.name, r.id, r.entered) for r in spec.add))
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
                (s for s in sets if s[1] == item_id and s[2] in SEEDED_KINDS), key=lambda s: (s[2], s[0])
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
            decision = decide(keyed, state_map.get, max_pos + 1, new_key=_new_key)
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


def type_changes_plan(*, spec: Spec) -> list[list[int]]:
    """[tag id, type before, type after] for the tags whose type a set_type operation changes."""
    assert spec.type_id is not None
    TagType.objects.get(pk=spec.type_id)
    return [
        [tag_id, type_id, spec.type_id]
        for tag_id, type_id in Tag.objects.filter(pk__in=spec.remove_ids).values_list("pk", "type_id")
        if type_id != spec.type_id
    ]
