"""Reads: mapping sets, profiles, the compiled pipeline and each chunk's input tags
(docs/mappings.md). Every read over items is set-based: a few queries per chunk, never per item."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from apps.core.exceptions import NotFoundError
from apps.core.ints import INT_MAX
from apps.core.lookups import UnicodeLower
from apps.mappings.models import (
    MappedSet,
    MappingProfile,
    MappingProfileStep,
    MappingSet,
    TagMapping,
    TagMappingTarget,
)
from apps.mappings.pipeline import Compiled, Config, Rule, TagInfo, TypeInfo, name_key
from apps.tags.models import EffectiveTag, Operation, Tag, TagAssignment, TagSet, TagType
from apps.tags.services.effective import Rules, rules_current

BATCH = 1000
INPUT_BATCH = 2000
CURRENT = TagAssignment.State.CURRENT
SCOPE_KINDS: dict[str, int] = {
    MappingProfile.Scope.CURATED: TagSet.Kind.CURATED,
    MappingProfile.Scope.SOURCE: TagSet.Kind.SOURCE,
    MappingProfile.Scope.TAGGER: TagSet.Kind.TAGGER,
}


def ref_id(ref: Any) -> int | None:
    """`ref` as a row id when it is one (ASCII digits; past INT_MAX it names no row: 0), else
    None: then it is a slug. `²` and 30-digit numbers are never handed to a query as ids."""
    text = str(ref)
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= INT_MAX else 0


def ref_find(query: QuerySet[Any], ref: Any) -> Any:
    """The row of `query` with id or slug `ref`, or None."""
    number = ref_id(ref)
    return query.filter(slug=str(ref)).first() if number is None else query.filter(pk=number).first()


def mapping_set_list() -> QuerySet[MappingSet]:
    return MappingSet.objects.select_related("source_vocabulary", "target_vocabulary").order_by("slug")


def mapping_set_get(*, ref: Any) -> MappingSet:
    """A mapping set by id or slug (NotFoundError)."""
    found = ref_find(mapping_set_list(), ref)
    if found is None:
        raise NotFoundError(f"There is no mapping set {ref!r}.", code="mappings.set_not_found")
    return found


def profile_list() -> QuerySet[MappingProfile]:
    return MappingProfile.objects.select_related("target_vocabulary").order_by("slug")


def profile_get(*, ref: Any) -> MappingProfile:
    """A profile by id or slug (NotFoundError)."""
    found = ref_find(profile_list(), ref)
    if found is None:
        raise NotFoundError(f"There is no mapping profile {ref!r}.", code="mappings.profile_not_found")
    return found


def profile_sets(profile: MappingProfile) -> list[MappingSet]:
    """The profile's mapping sets in step order."""
    steps = MappingProfileStep.objects.filter(profile=profile).select_related("mapping_set").order_by("ord")
    return [s.mapping_set for s in steps]


def sets_version(profile: MappingProfile) -> int:
    """The sum of the steps' mapping-set versions: versions only grow, so any rule change (or a
    step change, which bumps the profile's own version) changes the stamp."""
    ids = list(MappingProfileStep.objects.filter(profile=profile).values_list("mapping_set_id", flat=True))
    return int(MappingSet.objects.filter(pk__in=ids).aggregate(n=Sum("version"))["n"] or 0)


def rules_rows(set_ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """(id, set, source, action, requires, unless, type_override, priority, targets) per rule."""
    rules = list(
        TagMapping.objects.filter(mapping_set_id__in=list(set_ids))
        .order_by("id")
        .values_list(
            "id",
            "mapping_set_id",
            "source_tag_id",
            "action",
            "requires_tag_id",
            "unless_tag_id",
            "type_override_id",
            "priority",
        )
    )
    targets: dict[int, list[int]] = defaultdict(list)
    for mapping_id, tag_id in (
        TagMappingTarget.objects.filter(mapping__mapping_set_id__in=list(set_ids))
        .order_by("mapping_id", "ord")
        .values_list("mapping_id", "target_tag_id")
    ):
        targets[mapping_id].append(tag_id)
    return [(*r, tuple(targets.get(r[0], ()))) for r in rules]


def tags_info(ids: Iterable[int], into: dict[int, TagInfo]) -> dict[int, TagInfo]:
    """Adds the named tags' rows (not yet in `into`) to it, 1,000 per query."""
    missing = sorted(set(ids) - into.keys())
    for start in range(0, len(missing), BATCH):
        for row in Tag.objects.filter(pk__in=missing[start : start + BATCH]).values_list(
            "pk", "name", "vocabulary_id", "type_id", "media_count", "keep_underscore"
        ):
            into[row[0]] = TagInfo(*row)
    return into


_step_cache: dict[tuple[Any, ...], list[dict[int, list[Rule]]]] = {}
_step_cache_lock = threading.Lock()
STEP_CACHE_SIZE = 8


def steps_index(sets: Sequence[MappingSet], rules: Rules) -> list[dict[int, list[Rule]]]:
    """Per step, source tag → rules in preference order; cached per process by the sets'
    versions and the alias rules (every rule change bumps a version, so entries never go stale;
    the index is read-only once built)."""
    key = (tuple((s.pk, s.version, s.slug, s.created_at) for s in sets), rules.signature)
    with _step_cache_lock:
        if key in _step_cache:
            return _step_cache[key]
    built = _steps_build(sets, rules)
    with _step_cache_lock:
        if len(_step_cache) >= STEP_CACHE_SIZE:
            _step_cache.pop(next(iter(_step_cache)))
        _step_cache[key] = built
    return built


def _steps_build(sets: Sequence[MappingSet], rules: Rules) -> list[dict[int, list[Rule]]]:
    slugs = {s.pk: s.slug for s in sets}
    by_set: dict[int, dict[int, list[Rule]]] = {s.pk: defaultdict(list) for s in sets}
    for rid, set_id, source, action, requires, unless, override, priority, targets in rules_rows(list(slugs)):
        rule = Rule(
            id=rid,
            set_slug=slugs[set_id],
            source=rules.ideal.get(source, source),
            action=action,
            requires=None if requires is None else rules.ideal.get(requires, requires),
            unless=None if unless is None else rules.ideal.get(unless, unless),
            type_override=override,
            priority=priority,
            targets=targets,
        )
        by_set[set_id][rule.source].append(rule)
    for per_source in by_set.values():
        for candidates in per_source.values():
            candidates.sort(key=Rule.preference)
    return [dict(by_set[s.pk]) for s in sets]


def compile_profile(profile: MappingProfile, rules: Rules | None = None) -> tuple[Compiled, list[int]]:
    """The pipeline's inputs that do not depend on items, and the source vocabularies."""
    rules = rules or rules_current()
    sets = profile_sets(profile)
    config = Config(
        unmapped_policy=profile.unmapped_policy,
        implication_policy=profile.implication_policy,
        drop_types=frozenset(profile.drop_types or ()),
        type_order=tuple(profile.type_order or ()),
        prefix_text=profile.prefix_text,
        separator=profile.separator,
        underscore_to_space=profile.underscore_to_space,
        escape_parentheses=profile.escape_parentheses,
        max_tags=profile.max_tags,
    )
    types = {
        t[0]: TypeInfo(*t)
        for t in TagType.objects.values_list("pk", "key", "pinned", "droppable", "caption_order")
    }
    compiled = Compiled(
        config=config,
        steps=steps_index(sets, rules),
        ideal=rules.ideal,
        ancestors=rules.ancestors,
        tags={},
        types=types,
        target_vocabulary_id=profile.target_vocabulary_id,
    )
    return compiled, sorted({s.source_vocabulary_id for s in sets})


def _reach(ids: set[int], rules: Rules | Compiled) -> set[int]:
    """The tags an output of these tags can become: their ideals and the ideals' ancestors."""
    out = set(ids)
    for tag_id in ids:
        ideal = rules.ideal.get(tag_id, tag_id)
        out.add(ideal)
        out |= rules.ancestors.get(ideal, set())
    return out


def _fetch(query: Any) -> list[tuple[Any, ...]]:
    """A values query's rows through a plain cursor (integers only: no per-value converters)."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


Inputs = dict[int, list[tuple[int, int | None]]]


def inputs_load(*, profile: MappingProfile, item_ids: Sequence[int], vocabulary_ids: Sequence[int]) -> Inputs:
    """Per item, its input (tag, position) pairs from the profile's scope in the source
    vocabularies: two queries per 1,000 items (the scope's sets, then their rows)."""
    out: Inputs = {item_id: [] for item_id in item_ids}
    ids = sorted(item_ids)
    for start in range(0, len(ids), INPUT_BATCH):
        chunk = ids[start : start + INPUT_BATCH]
        if profile.input_scope == MappingProfile.Scope.EFFECTIVE:
            rows = EffectiveTag.objects.filter(
                media_item_id__in=chunk, tag__vocabulary_id__in=list(vocabulary_ids)
            ).values_list("media_item_id", "tag_id")
            for item_id, tag_id in _fetch(rows):
                out[item_id].append((tag_id, None))
            continue
        sets = [
            row[0]
            for row in _fetch(
                TagSet.objects.filter(
                    media_item_id__in=chunk,
                    kind=SCOPE_KINDS[profile.input_scope],
                    vocabulary_id__in=list(vocabulary_ids),
                ).values_list("pk")
            )
        ]
        if not sets:
            continue
        query = TagAssignment.objects.filter(tagset_id__in=sets, state=CURRENT)
        if profile.input_scope == MappingProfile.Scope.TAGGER:
            query = query.filter(confidence__gte=profile.min_confidence)
        for item_id, tag_id, position in _fetch(query.values_list("media_item_id", "tag_id", "position")):
            out[item_id].append((tag_id, position))
    return out


def name_matches(*, compiled: Compiled, tag_ids: Iterable[int], target_vocabulary_id: int) -> None:
    """Fills `compiled.name_match` for these source tags: the target tag of the same normalised
    name (the tag itself when it is in the target vocabulary already)."""
    wanted = [t for t in set(tag_ids) if t not in compiled.name_match]
    tags_info(wanted, compiled.tags)
    keys: dict[str, list[int]] = defaultdict(list)
    variants: set[str] = set()
    for tag_id in wanted:
        info = compiled.tags[tag_id]
        if info.vocabulary_id == target_vocabulary_id:
            compiled.name_match[tag_id] = tag_id
        else:
            keys[name_key(info.name)].append(tag_id)
            variants |= {info.name, info.name.replace("_", " "), info.name.replace(" ", "_")}
    names = sorted(variants | {v for key in keys for v in (key, key.replace("_", " "))})
    for start in range(0, len(names), BATCH):
        for pk, name in (
            Tag.objects.filter(vocabulary_id=target_vocabulary_id, name__in=names[start : start + BATCH])
            .order_by("pk")
            .values_list("pk", "name")
        ):
            for source in keys.get(name_key(name), ()):
                compiled.name_match.setdefault(source, pk)
    missed = {key: sources for key, sources in keys.items() if sources[0] not in compiled.name_match}
    if not missed:
        return
    if compiled.folded_targets is None:
        compiled.folded_targets = folded_target_names(target_vocabulary_id)
    for key, sources in missed.items():
        if key in compiled.folded_targets:
            for source in sources:
                compiled.name_match.setdefault(source, compiled.folded_targets[key][0])


def folded_target_names(vocabulary_id: int) -> dict[str, tuple[int, str]]:
    """The vocabulary's names that keep upper case, by `name_key` (the lowest id wins): one read
    of the names lower() changes, so `match_name` finds `Long_Hair` for `long hair`."""
    out: dict[str, tuple[int, str]] = {}
    rows = (
        Tag.objects.filter(vocabulary_id=vocabulary_id)
        .exclude(name=UnicodeLower("name"))
        .order_by("pk")
        .values_list("pk", "name")
    )
    for pk, name in rows.iterator(chunk_size=BATCH):
        out.setdefault(name_key(name), (pk, name))
    return out


def chunk_prepare(
    *, profile: MappingProfile, compiled: Compiled, vocabulary_ids: Sequence[int], item_ids: Sequence[int]
) -> Inputs:
    """One chunk's inputs, with every tag they name (and their name matches) loaded."""
    inputs = inputs_load(profile=profile, item_ids=item_ids, vocabulary_ids=vocabulary_ids)
    seen: set[int] = set()
    for pairs in inputs.values():  # distinct tags first, at C speed: ~30 pairs per item
        seen.update(map(itemgetter(0), pairs))
    ideal = compiled.ideal
    outputs_load(compiled, {ideal.get(t, t) for t in seen})
    return inputs


def outputs_load(compiled: Compiled, seen: set[int]) -> None:
    """Load what the pipeline reads for these (resolved) input tags, once per compile: their
    rows, their rules' targets, name matches when the policy needs them, and the aliases and
    ancestors those can become."""
    fresh = seen - compiled.prepared
    if not fresh:
        return
    tags_info(fresh, compiled.tags)
    outputs = {t for step in compiled.steps for s in fresh for r in step.get(s, ()) for t in r.targets}
    if compiled.config.unmapped_policy == "match_name":
        name_matches(compiled=compiled, tag_ids=fresh, target_vocabulary_id=compiled.target_vocabulary_id)
        outputs |= {compiled.name_match[t] for t in fresh if t in compiled.name_match}
    tags_info(_reach(fresh | outputs, compiled), compiled.tags)
    compiled.prepared |= fresh


def stale_condition(outer: str = "pk") -> Q:
    """Items holding a profile's derived set made from an older profile or mapping-set version,
    or whose applying operation was undone since (`has:stale_mapping`)."""
    stale = Q(pk__in=[])
    for profile in MappingProfile.objects.all():
        stale |= Q(profile_id=profile.pk) & (
            ~Q(profile_version=profile.version) | ~Q(sets_version=sets_version(profile))
        )
    undone = Operation.objects.filter(status=Operation.Status.UNDONE).values("pk")
    mapped = MappedSet.objects.filter(media_item_id=OuterRef(outer)).filter(
        stale | Q(operation_id__in=undone)
    )
    return Q(Exists(mapped))


def rules_page(
    *,
    mapping_set: MappingSet,
    after: int = 0,
    limit: int = 100,
    action: str = "",
    guarded: bool | None = None,
    tag: str = "",
) -> list[dict[str, Any]]:
    """One keyset page (by rule id) of a set's rules with names, filtered by action, guards or a
    source tag name prefix."""
    query = TagMapping.objects.filter(mapping_set=mapping_set, id__gt=after)
    if action:
        query = query.filter(action=action)
    if guarded is not None:
        has_guard = Q(requires_tag__isnull=False) | Q(unless_tag__isnull=False)
        query = query.filter(has_guard) if guarded else query.exclude(has_guard)
    if tag:
        query = query.filter(source_tag__name__startswith=tag)
    rows = list(
        query.order_by("id").values_list(
            "id",
            "source_tag__name",
            "action",
            "requires_tag__name",
            "unless_tag__name",
            "type_override__key",
            "priority",
            "rule_key",
        )[: max(1, min(limit, 1000))]
    )
    targets: dict[int, list[str]] = defaultdict(list)
    for mapping_id, name in (
        TagMappingTarget.objects.filter(mapping_id__in=[r[0] for r in rows])
        .order_by("mapping_id", "ord")
        .values_list("mapping_id", "target_tag__name")
    ):
        targets[mapping_id].append(name)
    keys = ("id", "source", "action", "requires", "unless", "type", "priority", "rule_key")
    return [{**dict(zip(keys, r, strict=True)), "targets": targets.get(r[0], [])} for r in rows]


def unmapped_in_set(*, mapping_set: MappingSet, limit: int = 200, tag: str = "") -> list[dict[str, Any]]:
    """The set's source-vocabulary tags in use that no rule of the set has as its source, most
    used first (the rules page's `unmapped` filter), optionally by name prefix."""
    ruled = TagMapping.objects.filter(mapping_set=mapping_set).values("source_tag_id")
    query = Tag.objects.filter(vocabulary_id=mapping_set.source_vocabulary_id, media_count__gt=0).exclude(
        pk__in=ruled
    )
    if tag:
        query = query.filter(name__startswith=tag)
    rows = query.order_by("-media_count", "pk").values_list("id", "name", "media_count")[:limit]
    return [{"id": pk, "name": name, "media_count": n} for pk, name, n in rows]


def mapping_set_search(*, text: str = "", tag: str = "") -> QuerySet[MappingSet]:
    """Sets whose slug or name contains `text` and/or that have a rule from or to tag `tag`."""
    query = mapping_set_list()
    if text:
        query = query.filter(Q(slug__icontains=text) | Q(name__icontains=text))
    if tag:
        from_tag = TagMapping.objects.filter(source_tag__name=tag).values("mapping_set_id")
        to_tag = TagMappingTarget.objects.filter(target_tag__name=tag).values("mapping__mapping_set_id")
        query = query.filter(Q(pk__in=from_tag) | Q(pk__in=to_tag))
    return query


def mapping_operations(*, profile: MappingProfile, limit: int = 20) -> QuerySet[Operation]:
    """The profile's latest apply operations (newest first)."""
    return Operation.objects.filter(kind=Operation.Kind.MAP, params__profile=profile.pk).order_by("-id")[
        :limit
    ]


def mapping_operation_get(*, profile: MappingProfile, operation_id: int) -> Operation:
    """One of the profile's apply operations (NotFoundError)."""
    found = Operation.objects.filter(
        pk=operation_id, kind=Operation.Kind.MAP, params__profile=profile.pk
    ).first()
    if found is None:
        raise NotFoundError(
            f"Operation {operation_id} is not an apply of profile {profile.slug!r}.",
            code="mappings.operation_not_found",
        )
    return found
