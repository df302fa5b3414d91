"""Mapping sets and their rules: create, edit, replace, append, remove (docs/mappings.md#rules).

Every change is validated as a whole before anything is written (unknown tags and types,
duplicate `rule_key`s, targets outside the target vocabulary, cross-vocabulary `keep`, cycles of
map rules in a clean-up set), so bad input is a 400 listing each bad rule and nothing is half
saved. A change that alters any rule bumps the set's `version`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F

from apps.core.exceptions import ConflictError, DomainError
from apps.mappings.models import (
    MappingProfileStep,
    MappingSet,
    TagMapping,
    TagMappingTarget,
    rule_key,
)
from apps.mappings.selectors import ref_find
from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.services.names import tag_name_normalise, tags_get_or_create

ACTIONS = tuple(TagMapping.Action.values)
MAX_RULES = 50_000


@dataclass
class RuleInput:
    """One rule as submitted: tag names, not ids. `line` numbers errors (CSV line or index)."""

    source: str
    targets: list[str] = field(default_factory=list)
    action: str = "map"
    requires: str = ""
    unless: str = ""
    type: str = ""
    priority: int = 0
    line: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], line: int) -> RuleInput:
        targets = data.get("targets", [])
        if isinstance(targets, str):
            targets = [targets]
        return cls(
            source=str(data.get("source") or ""),
            targets=[str(t) for t in targets if str(t).strip()],
            action=str(data.get("action") or "map"),
            requires=str(data.get("requires") or ""),
            unless=str(data.get("unless") or ""),
            type=str(data.get("type") or data.get("type_override") or ""),
            priority=data.get("priority", 0) or 0,
            line=line,
        )


@dataclass
class Planned:
    """A validated rule: tag ids and its key."""

    key: str
    source: int
    action: str
    requires: int | None
    unless: int | None
    type_id: int | None
    priority: int
    targets: tuple[int, ...]


def invalid_error(errors: list[dict[str, Any]], what: str = "rules") -> DomainError:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return DomainError(
        f"Line {first['line']}: {first['message']}{more}",
        code=f"mappings.invalid_{what}",
        details={"errors": errors[:200]},
    )


def vocabulary_get(ref: Any, field_name: str) -> Vocabulary:
    """A vocabulary by slug or id; a 400 naming the field when there is none."""
    found = ref_find(Vocabulary.objects.all(), ref)
    if found is None:
        raise DomainError(
            f"{field_name}: there is no vocabulary {ref!r}.",
            code="mappings.unknown_vocabulary",
            details={"field": field_name, "vocabulary": str(ref)},
        )
    return found


class _Resolver:
    """Names → tag ids in one vocabulary, read in one query per batch."""

    def __init__(self, vocabulary: Vocabulary, names: set[str], *, create: bool) -> None:
        self.vocabulary = vocabulary
        self.normal: dict[str, str] = {}
        self.problems: dict[str, str] = {}
        for raw in names:
            try:
                self.normal[raw] = tag_name_normalise(raw=raw, vocabulary=vocabulary)
            except DomainError as err:
                self.problems[raw] = err.message
        wanted = sorted(set(self.normal.values()))
        if create and wanted:
            self.ids = {n: t.pk for n, t in tags_get_or_create(vocabulary=vocabulary, names=wanted).items()}
        else:
            self.ids = dict(
                Tag.objects.filter(vocabulary=vocabulary, name__in=wanted).values_list("name", "pk")
            )

    def get(self, raw: str, role: str, errors: list[str]) -> int | None:
        if raw in self.problems:
            errors.append(f"{role} {raw!r}: {self.problems[raw]}")
            return None
        tag_id = self.ids.get(self.normal.get(raw, ""))
        if tag_id is None:
            errors.append(
                f"{role} {raw!r} is not in vocabulary {self.vocabulary.slug!r}"
                + (" (send create_targets to create it)" if role == "target" else "")
                + "."
            )
        return tag_id


def rules_plan(
    mapping_set: MappingSet, rules: Sequence[RuleInput], *, create_targets: bool = False
) -> list[Planned]:
    """Validate submitted rules against the set's vocabularies; DomainError lists every bad one."""
    if len(rules) > MAX_RULES:
        raise DomainError(f"At most {MAX_RULES} rules per request.", code="mappings.too_many_rules")
    source_vocabulary = mapping_set.source_vocabulary
    target_vocabulary = mapping_set.target_vocabulary
    sources = _Resolver(
        source_vocabulary,
        {n for r in rules for n in (r.source, r.requires, r.unless) if n},
        create=source_vocabulary.policy == Vocabulary.Policy.OPEN,
    )
    targets = _Resolver(target_vocabulary, {t for r in rules for t in r.targets}, create=create_targets)
    types = dict(TagType.objects.values_list("key", "pk"))
    errors: list[dict[str, Any]] = []
    planned: list[Planned] = []
    seen: dict[str, int] = {}
    for rule in rules:
        problems: list[str] = []
        plan = _plan_one(mapping_set, rule, sources, targets, types, problems)
        if plan is not None and plan.key in seen:
            problems.append(f"repeats the rule of line {seen[plan.key]} (same source and guards).")
        if problems or plan is None:
            errors += [{"line": rule.line, "message": p} for p in problems]
            continue
        seen[plan.key] = rule.line
        planned.append(plan)
    if errors:
        raise invalid_error(errors)
    return planned


def _plan_one(
    mapping_set: MappingSet,
    rule: RuleInput,
    sources: _Resolver,
    targets: _Resolver,
    types: dict[str, int],
    problems: list[str],
) -> Planned | None:
    if not rule.source.strip():
        problems.append("the source tag is empty.")
        return None
    if rule.action not in ACTIONS:
        problems.append(f"action {rule.action!r} is not one of {', '.join(ACTIONS)}.")
    if rule.action == "map" and not rule.targets:
        problems.append("a map rule needs at least one target.")
    if rule.action != "map" and rule.targets:
        problems.append(f"a {rule.action} rule takes no targets.")
    if rule.action == "keep" and not mapping_set.is_cleanup:
        problems.append(
            "keep is only allowed when source and target vocabulary are the same; map it instead."
        )
    if not isinstance(rule.priority, int) or not -32768 <= rule.priority <= 32767:
        problems.append("priority must be a whole number between -32768 and 32767.")
    if rule.type and rule.type not in types:
        problems.append(f"type {rule.type!r} is not a tag type.")
    source = sources.get(rule.source, "source", problems)
    requires = sources.get(rule.requires, "requires", problems) if rule.requires else None
    unless = sources.get(rule.unless, "unless", problems) if rule.unless else None
    target_ids = [targets.get(t, "target", problems) for t in rule.targets]
    if problems or source is None:
        return None
    return Planned(
        key=rule_key(source, requires, unless),
        source=source,
        action=rule.action,
        requires=requires,
        unless=unless,
        type_id=types.get(rule.type) if rule.type else None,
        priority=int(rule.priority),
        targets=tuple(dict.fromkeys(t for t in target_ids if t is not None)),
    )


def _cycle_check(mapping_set: MappingSet, rules: Sequence[Planned]) -> None:
    """A clean-up set may not map a tag, through its map rules, back to itself."""
    if not mapping_set.is_cleanup:
        return
    edges: dict[int, set[int]] = defaultdict(set)
    for rule in rules:
        if rule.action == "map":
            edges[rule.source] |= {t for t in rule.targets if t != rule.source}
    state: dict[int, int] = {}
    for start in list(edges):
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                names = dict(Tag.objects.filter(pk__in=cycle).values_list("pk", "name"))
                raise DomainError(
                    "Map rules form a cycle: "
                    + " → ".join(names[t] for t in cycle)
                    + "; remove one of them.",
                    code="mappings.rule_cycle",
                    details={"cycle": [names[t] for t in cycle]},
                )
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))


def _existing(mapping_set: MappingSet) -> dict[str, Planned]:
    targets: dict[int, list[int]] = defaultdict(list)
    for mapping_id, tag_id in (
        TagMappingTarget.objects.filter(mapping__mapping_set=mapping_set)
        .order_by("mapping_id", "ord")
        .values_list("mapping_id", "target_tag_id")
    ):
        targets[mapping_id].append(tag_id)
    out = {}
    for m in TagMapping.objects.filter(mapping_set=mapping_set).order_by("id"):
        out[m.rule_key] = Planned(
            key=m.rule_key,
            source=m.source_tag_id,
            action=m.action,
            requires=m.requires_tag_id,
            unless=m.unless_tag_id,
            type_id=m.type_override_id,
            priority=m.priority,
            targets=tuple(targets.get(m.pk, ())),
        )
    return out


def _write(mapping_set: MappingSet, keep: dict[str, Planned], before: dict[str, Planned]) -> int:
    """Make the set's rules equal `keep`; returns how many rules changed (bumps the version)."""
    gone = [k for k in before if k not in keep or keep[k] != before[k]]
    new = [p for k, p in keep.items() if before.get(k) != p]
    if gone:
        for start in range(0, len(gone), 1000):
            TagMapping.objects.filter(
                mapping_set=mapping_set, rule_key__in=gone[start : start + 1000]
            ).delete()
    TagMapping.objects.bulk_create(
        [
            TagMapping(
                mapping_set=mapping_set,
                source_tag_id=p.source,
                action=p.action,
                requires_tag_id=p.requires,
                unless_tag_id=p.unless,
                type_override_id=p.type_id,
                priority=p.priority,
                rule_key=p.key,
            )
            for p in new
        ],
        batch_size=1000,
    )
    ids = dict(
        TagMapping.objects.filter(mapping_set=mapping_set, rule_key__in=[p.key for p in new]).values_list(
            "rule_key", "pk"
        )
    )
    TagMappingTarget.objects.bulk_create(
        [
            TagMappingTarget(mapping_id=ids[p.key], ord=n, target_tag_id=t)
            for p in new
            for n, t in enumerate(p.targets)
        ],
        batch_size=1000,
    )
    changed = len(set(gone) | {p.key for p in new})
    if changed:
        MappingSet.objects.filter(pk=mapping_set.pk).update(version=F("version") + 1)
        mapping_set.refresh_from_db(fields=["version", "updated_at"])
    return changed


def _locked(mapping_set: MappingSet, version: int | None) -> MappingSet:
    locked = (
        MappingSet.objects.select_for_update()
        .select_related("source_vocabulary", "target_vocabulary")
        .get(pk=mapping_set.pk)
    )
    if version is not None and locked.version != version:
        raise ConflictError(
            f"Mapping set {locked.slug!r} is at version {locked.version}, not {version}; "
            "reload and try again.",
            code="mappings.version_conflict",
            details={"version": locked.version},
        )
    return locked


@transaction.atomic
def mapping_set_create(
    *,
    slug: str,
    source_vocabulary: Any,
    target_vocabulary: Any,
    name: str = "",
    description: str = "",
    rules: Sequence[RuleInput] = (),
    create_targets: bool = False,
) -> MappingSet:
    """A new mapping set with its rules (all valid, or nothing is saved)."""
    source = vocabulary_get(source_vocabulary, "source_vocabulary")
    target = vocabulary_get(target_vocabulary, "target_vocabulary")
    if MappingSet.objects.filter(slug=slug).exists():
        raise ConflictError(f"A mapping set {slug!r} exists already.", code="mappings.duplicate_slug")
    mapping_set = MappingSet(
        slug=slug,
        name=name or slug,
        description=description,
        source_vocabulary=source,
        target_vocabulary=target,
    )
    mapping_set.full_clean()
    mapping_set.save()
    planned = rules_plan(mapping_set, rules, create_targets=create_targets)
    _cycle_check(mapping_set, planned)
    _write(mapping_set, {p.key: p for p in planned}, {})
    MappingSet.objects.filter(pk=mapping_set.pk).update(version=1)
    mapping_set.refresh_from_db()
    return mapping_set


@transaction.atomic
def mapping_set_update(
    *,
    mapping_set: MappingSet,
    version: int | None = None,
    name: str | None = None,
    description: str | None = None,
) -> MappingSet:
    """Rename or describe a set (no version bump: the rules did not change)."""
    locked = _locked(mapping_set, version)
    if name is not None:
        locked.name = name
    if description is not None:
        locked.description = description
    locked.full_clean()
    locked.save(update_fields=["name", "description", "updated_at"])
    return locked


@transaction.atomic
def mapping_rules_replace(
    *,
    mapping_set: MappingSet,
    rules: Sequence[RuleInput],
    version: int | None = None,
    create_targets: bool = False,
) -> int:
    """PUT: the set's rules become exactly `rules`. Returns how many rules changed."""
    locked = _locked(mapping_set, version)
    planned = rules_plan(locked, rules, create_targets=create_targets)
    _cycle_check(locked, planned)
    changed = _write(locked, {p.key: p for p in planned}, _existing(locked))
    mapping_set.version = locked.version
    return changed


@transaction.atomic
def mapping_rules_append(
    *,
    mapping_set: MappingSet,
    rules: Sequence[RuleInput],
    version: int | None = None,
    create_targets: bool = False,
) -> int:
    """Add rules; a rule with the key (source and guards) of an existing one replaces it, so
    appending the same rules twice changes nothing (imports are idempotent)."""
    locked = _locked(mapping_set, version)
    planned = rules_plan(locked, rules, create_targets=create_targets)
    before = _existing(locked)
    after = {**before, **{p.key: p for p in planned}}
    _cycle_check(locked, list(after.values()))
    changed = _write(locked, after, before)
    mapping_set.version = locked.version
    return changed


@transaction.atomic
def mapping_rules_remove(
    *, mapping_set: MappingSet, rules: Sequence[RuleInput], version: int | None = None
) -> int:
    """Remove the rules with these sources and guards (all of a source's rules when
    `requires`/`unless` are "*"). Unknown ones are a 400 naming them."""
    locked = _locked(mapping_set, version)
    before = _existing(locked)
    names = {n for r in rules for n in (r.source, r.requires, r.unless) if n and n != "*"}
    resolver = _Resolver(locked.source_vocabulary, names, create=False)
    errors: list[dict[str, Any]] = []
    drop: set[str] = set()
    for rule in rules:
        problems: list[str] = []
        source = resolver.get(rule.source, "source", problems)
        if rule.requires == "*" or rule.unless == "*":
            keys = {k for k, p in before.items() if p.source == source}
        else:
            requires = resolver.get(rule.requires, "requires", problems) if rule.requires else None
            unless = resolver.get(rule.unless, "unless", problems) if rule.unless else None
            keys = {rule_key(source or 0, requires, unless)} & before.keys()
        if not problems and not keys:
            problems.append(f"there is no rule for {rule.source!r} with these guards.")
        errors += [{"line": rule.line, "message": p} for p in problems]
        drop |= keys
    if errors:
        raise invalid_error(errors)
    changed = _write(locked, {k: p for k, p in before.items() if k not in drop}, before)
    mapping_set.version = locked.version
    return changed


@transaction.atomic
def mapping_set_delete(*, mapping_set: MappingSet) -> None:
    """Delete a set and its rules; refused while a profile uses it."""
    users = list(
        MappingProfileStep.objects.filter(mapping_set=mapping_set).values_list("profile__slug", flat=True)
    )
    if users:
        raise ConflictError(
            f"Mapping set {mapping_set.slug!r} is used by profile(s) {', '.join(sorted(set(users)))}; "
            "remove it from them first.",
            code="mappings.set_in_use",
            details={"profiles": sorted(set(users))},
        )
    mapping_set.delete()


@transaction.atomic
def mapping_set_replace(
    *,
    mapping_set: MappingSet,
    rules: Sequence[RuleInput],
    version: int | None = None,
    create_targets: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> MappingSet:
    """PUT: name/description when given and the rules exactly `rules`, in one transaction."""
    updated = mapping_set_update(mapping_set=mapping_set, version=version, name=name, description=description)
    mapping_rules_replace(mapping_set=updated, rules=rules, create_targets=create_targets)
    updated.refresh_from_db()
    return updated
