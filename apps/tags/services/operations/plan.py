"""Bulk tag operations, planning half: what to do (spec), to which items (target) and what it
would change (counts by aggregate queries, before/after samples). docs/tags.md#bulk-operations.

Items without a curated set take part through the set they would get (`tag_set_curated_get_or_create`
seeds it from current source and derived tags): counts treat that seed as the item's curated tags,
and applying creates the set only on items that change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import F

from apps.core.exceptions import DomainError, ForbiddenError, UnprocessableError
from apps.core.lookups import NameGlob
from apps.media import extensions
from apps.media.models import MediaItem
from apps.media.selectors import media_item_list
from apps.tags import conf
from apps.tags.models import (
    AliasResolution,
    Operation,
    OperationTarget,
    Tag,
    TagSet,
    TagType,
    Vocabulary,
)
from apps.tags.selectors.vocabularies import tag_type_find_by_key
from apps.tags.services.assignments import CURATED
from apps.tags.services.names import (
    normalise_fragment,
    tag_names_normalise,
    tag_names_split,
    tag_type_default,
    vocabulary_default,
)
from apps.tags.services.rules import rules_may_approve
from apps.tags.services.sql import rows_insert

SET_KINDS = {"curated": TagSet.Kind.CURATED, "tagger": TagSet.Kind.TAGGER, "derived": TagSet.Kind.DERIVED}
SET_KIND_NAMES = {value: name for name, value in SET_KINDS.items()}
ACTIONS = {
    "add": Operation.Kind.ADD,
    "remove": Operation.Kind.REMOVE,
    "replace": Operation.Kind.REPLACE,
    "rename": Operation.Kind.RENAME,
    "set_type": Operation.Kind.SET_TYPE,
}
_SPLIT_LIST = re.compile(r"[,\n]+")


def actor_or_none(actor: Any) -> Any:
    """The acting user, or None for anonymous/system actors (stored as "by nobody")."""
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def type_change_check(actor: Any) -> None:
    """Changing tag types in bulk needs `tags.change_tag` (a call without an actor is the system)."""
    if actor is not None and not actor.has_perm("tags.change_tag"):
        raise ForbiddenError(
            "Changing tag types needs permission to change tags.", code="tags.change_tag_required"
        )


def library_rename_check(actor: Any) -> None:
    """A library-wide rename creates an active alias: only someone who may approve rules."""
    if actor is None or not rules_may_approve(actor):
        raise ForbiddenError(
            "Renaming across the library creates an active alias; that needs permission to approve rules.",
            code="tags.approve_rules_required",
        )


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
    type_id: int | None = None  # the type a prefix named (`char:saber`), given on apply


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
            "add": [[r.name, r.id, r.entered, r.type_id] for r in self.add],
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
        return replace(self, add=tuple(replace(r, id=r.id or ids[r.name]) for r in self.add))


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
    typed = tag_names_split(raw=list(names), vocabulary=vocabulary)  # `char:saber` types saber
    clean = [name for name, _ in typed]
    type_ids = {name: t.pk for name, t in typed if t is not None}
    found = {
        t.name: t for t in Tag.objects.select_related("type").filter(vocabulary=vocabulary, name__in=clean)
    }
    _types_check(typed, found, vocabulary)
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
            refs.setdefault(ideal_name, TagRef(ideal_name, ideal_id, name, type_ids.get(name)))
        else:
            refs.setdefault(name, TagRef(name, tag.pk if tag else None, name, type_ids.get(name)))
    return list(refs.values())


def _types_check(
    typed: Sequence[tuple[str, TagType | None]], found: dict[str, Tag], vocabulary: Vocabulary
) -> None:
    """A type prefix on an existing tag of another (non-default) type is refused, as in the editor;
    applying gives default-typed and new tags the prefix's type (`tags_get_or_create`)."""
    default_id = vocabulary.default_type_id or tag_type_default().pk
    for name, tag_type in typed:
        tag = found.get(name)
        if tag_type is None or tag is None or tag.type_id in (tag_type.pk, default_id):
            continue
        raise DomainError(
            f"Tag {name!r} is a {tag.type.name} tag, not {tag_type.name}; write it without the prefix, "
            "or change its type on the tag page.",
            code="tags.type_conflict",
            details={"tag": name, "type": tag.type.key, "prefix_type": tag_type.key},
        )


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
        type_change_check(actor)
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
        if scope == "library":
            library_rename_check(actor)
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
            raise too_many(len(wanted), limit)
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
            raise too_many(len(matched), limit, more=True)
        chosen = set(matched) if chosen is None else chosen & set(matched)
    assert chosen is not None
    return sorted(chosen)


def too_many(n: int, limit: int, *, more: bool = False) -> UnprocessableError:
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


def type_changes_plan(*, spec: Spec) -> list[list[int]]:
    """[tag id, type before, type after] for the tags whose type a set_type operation changes."""
    assert spec.type_id is not None
    TagType.objects.get(pk=spec.type_id)
    return [
        [tag_id, type_id, spec.type_id]
        for tag_id, type_id in Tag.objects.filter(pk__in=spec.remove_ids).values_list("pk", "type_id")
        if type_id != spec.type_id
    ]
