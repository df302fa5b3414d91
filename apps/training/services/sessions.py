"""Creating, editing and deleting training sessions, and their versions (docs/training.md#sessions).

Every service checks the whole input before it writes and runs in one transaction: a refused
change is a 4xx with a `training.*` code naming the fix, and leaves no row behind. A save that
changes any setting bumps `TrainingSession.version` and records the settings it had
(`TrainingSessionVersion.frozen`); exports name the version they were built from.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.core.exceptions import ConflictError
from apps.mappings.models import MappingProfile
from apps.tags.models import TagType
from apps.training.models import (
    BaseModelProfile,
    CaptionTypePolicy,
    DescriptionSetWeight,
    SampleDefinition,
    TrainingSession,
    TrainingSessionDataset,
    TrainingSessionVersion,
)
from apps.training.services.checks import (
    DATASET_FIELDS,
    FIELDS,
    MAX_DATASETS,
    POLICY_FIELDS,
    SAMPLE_FIELDS,
    SESSION_TARGETS,
    SLUG,
    _by_ref,
    _dataset_entry,
    _samples_check,
    _weights_check,
    bad,
    default_policy,
    derived_slug_check,
    entry_slugs,
    policies_check,
    session_check,
    slug_from,
)

# --- versions -----------------------------------------------------------------------------------


def frozen(session: TrainingSession) -> dict[str, Any]:
    """Every setting of the session as plain JSON (what a version records)."""
    values: dict[str, Any] = {name: getattr(session, name) for name in FIELDS}
    values["base_model"] = session.base_model.slug
    values["mapping_profile"] = session.mapping_profile.slug if session.mapping_profile is not None else None
    values["datasets"] = [
        {
            "dataset": e.dataset_id,
            "subset": e.subset_id,
            "group": e.group_id,
            "snapshot": e.snapshot_id,
            **{name: getattr(e, name) for name in DATASET_FIELDS},
        }
        for e in TrainingSessionDataset.objects.filter(session=session).order_by("position", "id")
    ]
    values["type_policies"] = {
        p.tag_type.key: {name: getattr(p, name) for name in POLICY_FIELDS}
        for p in CaptionTypePolicy.objects.filter(session=session)
        .select_related("tag_type")
        .order_by("tag_type__key")
    }
    values["description_weights"] = dict(
        DescriptionSetWeight.objects.filter(session=session).order_by("name").values_list("name", "weight")
    )
    values["samples"] = [
        {name: getattr(s, name) for name in SAMPLE_FIELDS}
        for s in SampleDefinition.objects.filter(session=session).order_by("position", "id")
    ]
    return values


def _version_record(session: TrainingSession, actor: Any) -> TrainingSessionVersion | None:
    """Record the current settings as a new version if they differ from the last one."""
    settings_now = frozen(session)
    last = TrainingSessionVersion.objects.filter(session=session).order_by("-number").first()
    if last is not None and last.frozen == settings_now:
        return None
    number = (TrainingSessionVersion.objects.filter(session=session).aggregate(n=Max("number"))["n"] or 0) + 1
    TrainingSession.objects.filter(pk=session.pk).update(version=number)
    session.version = number
    return TrainingSessionVersion.objects.create(
        session=session, number=number, frozen=settings_now, created_by=_user(actor)
    )


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def version_get(session: TrainingSession, number: int | None = None) -> TrainingSessionVersion:
    rows = TrainingSessionVersion.objects.filter(session=session)
    found = rows.filter(number=number).first() if number is not None else rows.order_by("-number").first()
    if found is None:
        from apps.core.exceptions import NotFoundError

        raise NotFoundError(
            f"Session {session.pk} has no version {number}.", code="training.version_not_found"
        )
    return found


# --- writes -------------------------------------------------------------------------------------


def _children_save(
    session: TrainingSession,
    *,
    datasets: list[TrainingSessionDataset] | None,
    policies: dict[str, dict[str, Any]] | None,
    weights: dict[str, int] | None,
    samples: list[SampleDefinition] | None,
    fresh: bool,
) -> None:
    if datasets is not None:
        TrainingSessionDataset.objects.filter(session=session).delete()
        for entry in datasets:
            entry.session = session
        TrainingSessionDataset.objects.bulk_create(datasets)
    if fresh or policies is not None:
        _policies_save(session, policies or {}, fresh=fresh)
    if weights is not None:
        DescriptionSetWeight.objects.filter(session=session).delete()
        DescriptionSetWeight.objects.bulk_create(
            [DescriptionSetWeight(session=session, name=n, weight=w) for n, w in sorted(weights.items())]
        )
    if samples is not None:
        SampleDefinition.objects.filter(session=session).delete()
        for sample in samples:
            sample.session = session
        SampleDefinition.objects.bulk_create(samples)


def _policies_save(session: TrainingSession, given: dict[str, dict[str, Any]], *, fresh: bool) -> None:
    """One policy row per tag type: the given fields over the existing row or the type's default."""
    existing = {p.tag_type_id: p for p in CaptionTypePolicy.objects.filter(session=session)}
    for tag_type in TagType.objects.order_by("pk"):
        row = existing.get(tag_type.pk)
        if row is None:
            row = CaptionTypePolicy(
                session=session, tag_type=tag_type, **default_policy(tag_type, session.base_model)
            )
        for name, value in given.get(tag_type.key, {}).items():
            setattr(row, name, value)
        row.save()


def _parse_children(
    base: BaseModelProfile, datasets: Any, type_policies: Any, description_weights: Any, samples: Any
) -> tuple[
    list[TrainingSessionDataset] | None,
    dict[str, dict[str, Any]] | None,
    dict[str, int] | None,
    list[SampleDefinition] | None,
]:
    entries = None
    if datasets is not None:
        if not isinstance(datasets, list) or not datasets:
            raise bad("datasets", "at least one dataset.", "training.no_datasets")
        if len(datasets) > MAX_DATASETS:
            raise bad("datasets", f"at most {MAX_DATASETS} entries.")
        entries = [_dataset_entry(raw, n, base) for n, raw in enumerate(datasets)]
        slugs = entry_slugs(entries)
        repeated = sorted({s for s in slugs if slugs.count(s) > 1})
        if repeated:
            raise bad(
                "datasets",
                f"bundle id(s) {', '.join(repeated)} used twice; give entries distinct slugs.",
                "training.duplicate_dataset",
            )
        for slug in slugs:
            if not SLUG.fullmatch(slug) or "--" in slug:
                raise bad(
                    "datasets",
                    f"bundle id {slug!r} is not a valid slug; set the entry's slug.",
                    "training.bad_slug",
                )
    policies = policies_check(type_policies) if type_policies is not None else None
    weights = _weights_check(description_weights) if description_weights is not None else None
    sample_rows = _samples_check(samples) if samples is not None else None
    return entries, policies, weights, sample_rows


def _unique_save(session: TrainingSession) -> None:
    try:
        with transaction.atomic():
            session.save()
    except IntegrityError as exc:
        raise ConflictError(
            "A training session with this name or slug exists.", code="training.duplicate"
        ) from exc


def _mapping(ref: Any) -> MappingProfile | None:
    return (
        None
        if ref in (None, "")
        else _by_ref(MappingProfile, ref, "mapping_profile", "training.unknown_mapping")
    )


@transaction.atomic
def session_create(
    *,
    name: str,
    base_model: Any,
    datasets: Any = None,
    actor: Any = None,
    slug: str = "",
    mapping_profile: Any = None,
    type_policies: Any = None,
    description_weights: Any = None,
    samples: Any = None,
    **fields: Any,
) -> TrainingSession:
    """A new session at version 1 with one policy row per tag type (defaults from the types)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise bad(unknown[0], "not a session setting.")
    base = (
        base_model
        if isinstance(base_model, BaseModelProfile)
        else _by_ref(BaseModelProfile, base_model, "base_model", "training.unknown_base_model")
    )
    if not slug and isinstance(name, str):
        slug = slug_from(name)
        derived_slug_check(slug, name)
    session = TrainingSession(name=name, slug=slug, base_model=base)
    session.mapping_profile = (
        _mapping(mapping_profile) if mapping_profile is not None else base.mapping_profile
    )
    targets = fields.pop("targets", None)
    default = [t for t in SESSION_TARGETS if t in base.supported_trainers]
    session.targets = default if targets is None else targets
    session.target_root = fields.pop("target_root", "") or f"/srv/train/{session.slug}"
    for field, value in fields.items():
        setattr(session, field, value)
    session.created_by = _user(actor)
    session_check(session)
    if datasets is None:
        raise bad("datasets", "at least one dataset.", "training.no_datasets")
    entries, policies, weights, sample_rows = _parse_children(
        base, datasets, type_policies, description_weights, samples
    )
    _unique_save(session)
    _children_save(
        session, datasets=entries, policies=policies, weights=weights, samples=sample_rows, fresh=True
    )
    _version_record(session, actor)
    return session


@transaction.atomic
def session_update(
    *,
    session: TrainingSession,
    actor: Any = None,
    datasets: Any = None,
    type_policies: Any = None,
    description_weights: Any = None,
    samples: Any = None,
    **fields: Any,
) -> TrainingSession:
    """Change the given settings; children given replace the old ones (datasets, samples,
    weights) or are merged per type (policies). A change bumps the version; a save that changes
    nothing does not."""
    locked = (
        TrainingSession.objects.select_for_update()
        .select_related("base_model", "mapping_profile")
        .get(pk=session.pk)
    )
    if "base_model" in fields:
        locked.base_model = _by_ref(
            BaseModelProfile, fields.pop("base_model"), "base_model", "training.unknown_base_model"
        )
    if "mapping_profile" in fields:
        locked.mapping_profile = _mapping(fields.pop("mapping_profile"))
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise bad(unknown[0], "not a session setting.")
    for field, value in fields.items():
        setattr(locked, field, value)
    session_check(locked)
    entries, policies, weights, sample_rows = _parse_children(
        locked.base_model, datasets, type_policies, description_weights, samples
    )
    _unique_save(locked)
    _children_save(
        locked, datasets=entries, policies=policies, weights=weights, samples=sample_rows, fresh=False
    )
    _version_record(locked, actor)
    locked.refresh_from_db()
    return locked


def session_delete(*, session: TrainingSession) -> None:
    """Delete the session with its versions and exports' rows (bundle folders: `exports`)."""
    from apps.training.services.exports import export_files_delete

    with transaction.atomic():
        paths = list(session.exports.exclude(bundle_path="").values_list("bundle_path", flat=True))
        session.delete()
    for path in paths:
        export_files_delete(path)
