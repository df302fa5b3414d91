"""Mapping profiles: create, edit (version bump), delete (docs/mappings.md#profiles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from apps.core.exceptions import ConflictError, DomainError
from apps.mappings.models import MappedSet, MappingProfile, MappingProfileStep, MappingSet
from apps.mappings.selectors import ref_id
from apps.mappings.services.rules import vocabulary_get
from apps.tags.models import TagType

FIELDS = (
    "name",
    "input_scope",
    "min_confidence",
    "unmapped_policy",
    "implication_policy",
    "drop_types",
    "type_order",
    "prefix_text",
    "separator",
    "underscore_to_space",
    "escape_parentheses",
    "max_tags",
)


def _steps(profile: MappingProfile, steps: Sequence[Any]) -> list[MappingSet]:
    """The mapping sets named by slug or id, checked against the profile's target vocabulary."""
    if not steps:
        raise DomainError(
            "A profile needs at least one mapping set in steps.",
            code="mappings.no_steps",
            details={"field": "steps"},
        )
    refs = [str(s) for s in steps]
    by_slug = {s.slug: s for s in MappingSet.objects.filter(slug__in=refs)}
    numbers = [n for n in map(ref_id, refs) if n]
    by_id = {str(s.pk): s for s in MappingSet.objects.filter(pk__in=numbers)}
    sets: list[MappingSet] = []
    for ref in refs:
        found = by_slug.get(ref) or by_id.get(ref)
        if found is None:
            raise DomainError(
                f"steps: there is no mapping set {ref!r}.",
                code="mappings.unknown_set",
                details={"field": "steps", "set": ref},
            )
        if found.target_vocabulary_id != profile.target_vocabulary_id:
            raise DomainError(
                f"steps: mapping set {found.slug!r} maps into another vocabulary than the profile's "
                f"target {profile.target_vocabulary.slug!r}.",
                code="mappings.target_mismatch",
                details={"field": "steps", "set": found.slug},
            )
        if found in sets:
            raise DomainError(
                f"steps: mapping set {found.slug!r} is listed twice.", code="mappings.duplicate_step"
            )
        sets.append(found)
    return sets


def _check(profile: MappingProfile) -> None:
    keys = set(TagType.objects.values_list("key", flat=True))
    for name in ("drop_types", "type_order"):
        value = getattr(profile, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DomainError(f"{name}: a list of tag type keys.", code="mappings.invalid_profile")
        unknown = [v for v in value if v not in keys]
        if unknown:
            raise DomainError(
                f"{name}: {', '.join(map(repr, unknown))} is not a tag type "
                f"(known: {', '.join(sorted(keys))}).",
                code="mappings.invalid_profile",
                details={"field": name, "unknown": unknown},
            )
    if profile.min_confidence > 10000:
        raise DomainError("min_confidence: at most 10000 (1/10,000).", code="mappings.invalid_profile")
    try:
        profile.full_clean(exclude=["target_vocabulary"])
    except ValidationError as err:
        fields = err.message_dict
        first = next(iter(fields))
        raise DomainError(
            f"{first}: {' '.join(fields[first])}", code="mappings.invalid_profile", details={"fields": fields}
        ) from None


def _steps_write(profile: MappingProfile, sets: list[MappingSet]) -> None:
    MappingProfileStep.objects.filter(profile=profile).delete()
    MappingProfileStep.objects.bulk_create(
        [MappingProfileStep(profile=profile, ord=n, mapping_set=s) for n, s in enumerate(sets)]
    )


@transaction.atomic
def profile_create(
    *, slug: str, target_vocabulary: Any, steps: Sequence[Any], **fields: Any
) -> MappingProfile:
    """A new profile; every field and step checked before anything is saved."""
    if MappingProfile.objects.filter(slug=slug).exists():
        raise ConflictError(f"A mapping profile {slug!r} exists already.", code="mappings.duplicate_slug")
    target = vocabulary_get(target_vocabulary, "target_vocabulary")
    profile = MappingProfile(
        slug=slug, target_vocabulary=target, **{k: v for k, v in fields.items() if k in FIELDS}
    )
    profile.name = profile.name or slug
    sets = _steps(profile, steps)
    _check(profile)
    profile.save()
    _steps_write(profile, sets)
    return profile


def _fixed(profile: MappingProfile, fields: dict[str, Any]) -> None:
    """A profile's slug and target vocabulary do not change: sending other ones is a 400, not
    silently ignored (its sets and stamps belong to that vocabulary)."""
    if "slug" in fields and fields["slug"] != profile.slug:
        raise DomainError(
            f"slug: a profile's slug cannot change (it is {profile.slug!r}); create a new profile.",
            code="mappings.fixed_field",
            details={"field": "slug"},
        )
    if "target_vocabulary" in fields:
        target = vocabulary_get(fields["target_vocabulary"], "target_vocabulary")
        if target.pk != profile.target_vocabulary_id:
            raise DomainError(
                f"target_vocabulary: a profile's target vocabulary cannot change (it is "
                f"{profile.target_vocabulary.slug!r}); create a new profile for {target.slug!r}.",
                code="mappings.fixed_field",
                details={"field": "target_vocabulary"},
            )


@transaction.atomic
def profile_update(
    *, profile: MappingProfile, version: int | None = None, steps: Sequence[Any] | None = None, **fields: Any
) -> MappingProfile:
    """Change fields and/or steps; bumps `version` when anything that shapes output changed."""
    locked = MappingProfile.objects.select_for_update().select_related("target_vocabulary").get(pk=profile.pk)
    if version is not None and version != locked.version:
        raise ConflictError(
            f"Profile {locked.slug!r} is at version {locked.version}, not {version}; reload and try again.",
            code="mappings.version_conflict",
            details={"version": locked.version},
        )
    _fixed(locked, fields)
    changed = False
    for key, value in fields.items():
        if key in FIELDS and getattr(locked, key) != value:
            setattr(locked, key, value)
            changed = changed or key != "name"
    _check(locked)
    if steps is not None:
        sets = _steps(locked, steps)
        now = list(
            MappingProfileStep.objects.filter(profile=locked)
            .order_by("ord")
            .values_list("mapping_set_id", flat=True)
        )
        if now != [s.pk for s in sets]:
            _steps_write(locked, sets)
            changed = True
    locked.save()
    if changed:
        MappingProfile.objects.filter(pk=locked.pk).update(version=F("version") + 1)
        locked.refresh_from_db()
    return locked


@transaction.atomic
def profile_delete(*, profile: MappingProfile) -> None:
    """Delete a profile; refused while items carry sets it wrote (they would lose their stamp)."""
    applied = MappedSet.objects.filter(profile=profile).count()
    if applied:
        raise ConflictError(
            f"Profile {profile.slug!r} wrote tag sets on {applied} items; undo its operations or delete "
            "those sets first.",
            code="mappings.profile_in_use",
            details={"items": applied},
        )
    profile.delete()
