"""Tagger versions: artifacts in storage, loading them checked, promotion, rollback, threshold
overrides (docs/taggers.md#versions).

Artifacts are written to a local temporary folder, uploaded through Django's storage under
`taggers/<tagger>/<version>/` (a failed upload deletes what it wrote), and made read-only where
the storage is a local folder. A version becomes `ready` only after every file is stored, so a
ready version always has its files. Loading copies them into
`BAGGINTAG_DATA_DIR/cache/heads/<artifact sha256>/` (temp folder, then an atomic rename) and
checks every file's sha256 against the manifest and the manifest's against the version, on every
load.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction

from apps.core.exceptions import ConflictError, DomainError, NotFoundError
from apps.taggers import conf
from apps.taggers.engine.artifacts import HEAD_FILES, MANIFEST, ArtifactIntegrityError
from apps.taggers.engine.base import ModelIntegrityError
from apps.taggers.models import Tagger, TaggerThreshold, TaggerVersion, ThresholdOverride
from apps.tags.models import Tag

if TYPE_CHECKING:
    from apps.taggers.engine.artifacts import Head

READY = TaggerVersion.Status.READY
RETIRED = TaggerVersion.Status.RETIRED
ARTIFACT_FILES = (*HEAD_FILES, MANIFEST)


def artifact_dir(tagger: Tagger, number: int, attempt: int) -> str:
    """Where one training attempt stores a version's files: `taggers/<tagger>/<number>/a<attempt>/`,
    so an attempt that was taken over never deletes or overwrites the files of the one that
    finished (docs/taggers.md#versions)."""
    return f"taggers/{tagger.name}/{number}/a{attempt}"


def artifacts_store(*, local: Path, directory: str) -> None:
    """Upload a version's files; on any failure delete those already stored (no orphans)."""
    stored: list[str] = []
    try:
        for name in ARTIFACT_FILES:
            key = f"{directory}/{name}"
            if default_storage.exists(key):  # left by an attempt that died before `ready`
                default_storage.delete(key)
            with (local / name).open("rb") as fh:
                saved = default_storage.save(key, File(fh, name=name))
            stored.append(saved)
            if saved != key:
                raise DomainError(f"Storage renamed {key} to {saved}.", code="taggers.artifact_storage")
            with contextlib.suppress(NotImplementedError, OSError):
                os.chmod(default_storage.path(saved), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    except BaseException:
        for key in stored:
            with contextlib.suppress(Exception):
                default_storage.delete(key)
        raise


def artifacts_delete(*, directory: str) -> None:
    for name in ARTIFACT_FILES:
        with contextlib.suppress(Exception):
            default_storage.delete(f"{directory}/{name}")


def _cache_root() -> Path:
    return conf.cache_dir("heads")


def _fetch(version: TaggerVersion, target: Path) -> None:
    """Copy the version's files from storage into a new folder, published by rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        for name in ARTIFACT_FILES:
            try:
                with (
                    default_storage.open(f"{version.artifact_dir}/{name}", "rb") as src,
                    (staging / name).open("wb") as dst,
                ):
                    shutil.copyfileobj(src, dst)
            except FileNotFoundError as exc:
                raise ModelIntegrityError(
                    f"{name} of tagger version {version} is missing from storage ({version.artifact_dir}).",
                ) from exc
        try:
            os.replace(staging, target)
        except OSError:  # another process published it first
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def version_head(version: TaggerVersion) -> Head:
    """The version's head, from the local cache (filled from storage), every hash checked."""
    from apps.taggers.engine.artifacts import head_load

    if version.status not in (READY, RETIRED) or not version.artifact_sha256:
        raise ConflictError(
            f"Tagger version {version.number} is {version.status}: only a ready version can score.",
            code="taggers.version_not_ready",
        )
    target = _cache_root() / version.artifact_sha256
    if not target.is_dir():
        _fetch(version, target)
    try:
        return head_load(target, version.artifact_sha256)
    except ArtifactIntegrityError as exc:
        shutil.rmtree(target, ignore_errors=True)  # the next load fetches again
        raise ModelIntegrityError(
            f"The artifacts of tagger version {version.tagger.name}@{version.number} fail their hash "
            f"check: {exc} Train a new version.",
        ) from exc


def storage_integrity_check(version: TaggerVersion) -> None:
    """Fetch from storage into a fresh folder and verify (ignores the local cache)."""
    from apps.taggers.engine.artifacts import artifacts_verify

    target = _cache_root() / f".check-{uuid.uuid4().hex[:8]}"
    try:
        _fetch(version, target)
        artifacts_verify(target, version.artifact_sha256)
    except ArtifactIntegrityError as exc:
        raise ModelIntegrityError(f"Tagger version {version}: {exc}") from exc
    finally:
        shutil.rmtree(target, ignore_errors=True)


# --- thresholds -------------------------------------------------------------------------------


def thresholds_materialise(*, version: TaggerVersion, thresholds: dict[str, dict[str, Any]]) -> int:
    """TaggerThreshold rows from thresholds.json (tags that still exist; MCut tags get none)."""
    keys = [int(k) for k, v in thresholds.items() if v.get("threshold") is not None]
    alive = set(Tag.objects.filter(pk__in=keys).values_list("pk", flat=True))
    rows = [
        TaggerThreshold(
            version=version, tag_id=int(k), threshold=float(v["threshold"]), method=str(v["method"])[:32]
        )
        for k, v in thresholds.items()
        if v.get("threshold") is not None and int(k) in alive
    ]
    TaggerThreshold.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def _tuned(version: TaggerVersion, tag_id: int) -> tuple[float | None, str]:
    entry = (version.metrics.get("tags") or {}).get(str(tag_id)) or {}
    return entry.get("threshold"), str(entry.get("method") or "")


def _threshold_tag(version: TaggerVersion, tag_id: int) -> Tag:
    if str(tag_id) not in (version.metrics.get("tags") or {}):
        raise NotFoundError(
            f"Tag {tag_id} is not in the vocabulary of tagger version {version.number}.",
            code="taggers.tag_not_in_version",
        )
    tag = Tag.objects.filter(pk=tag_id).first()
    if tag is None:
        raise NotFoundError(f"Tag {tag_id} not found.", code="taggers.tag_not_found")
    return tag


@transaction.atomic
def threshold_override_set(
    *, version: TaggerVersion, tag_id: int, threshold: float, actor: Any = None
) -> ThresholdOverride:
    """A person's threshold for one tag of one version. Changes effective predictions only: no
    inference runs and stored scores stay (docs/taggers.md#thresholds)."""
    if not 0.0 <= threshold <= 1.0:
        raise DomainError("A threshold is between 0 and 1.", code="taggers.threshold_range")
    if version.status not in (READY, RETIRED):
        raise ConflictError(
            "Only a ready version has thresholds to override.", code="taggers.version_not_ready"
        )
    tag = _threshold_tag(version, tag_id)
    user = actor if actor is not None and actor.is_authenticated else None
    override, _ = ThresholdOverride.objects.update_or_create(
        version=version, tag=tag, defaults={"threshold": threshold, "set_by": user}
    )
    TaggerThreshold.objects.update_or_create(
        version=version, tag=tag, defaults={"threshold": threshold, "method": "override"}
    )
    return override


@transaction.atomic
def threshold_override_delete(*, version: TaggerVersion, tag_id: int) -> None:
    """Back to the tuned threshold (or none: the vocabulary's default applies)."""
    tag = _threshold_tag(version, tag_id)
    ThresholdOverride.objects.filter(version=version, tag=tag).delete()
    tuned, method = _tuned(version, tag.pk)
    if tuned is None:
        TaggerThreshold.objects.filter(version=version, tag=tag).delete()
    else:
        TaggerThreshold.objects.update_or_create(
            version=version, tag=tag, defaults={"threshold": float(tuned), "method": method}
        )


# --- promotion --------------------------------------------------------------------------------


def _ready(tagger: Tagger, number: int) -> TaggerVersion:
    version = TaggerVersion.objects.filter(tagger=tagger, number=number).first()
    if version is None:
        raise NotFoundError(
            f"Tagger {tagger.name} has no version {number}.", code="taggers.version_not_found"
        )
    if version.status != READY:
        raise ConflictError(
            f"Version {number} of {tagger.name} is {version.status}; only a ready version can be active.",
            code="taggers.version_not_ready",
            details={"status": version.status},
        )
    return version


def _activate(tagger: Tagger, version: TaggerVersion, *, copy_overrides: bool) -> Tagger:
    locked = Tagger.objects.select_for_update().get(pk=tagger.pk)
    previous_id = locked.active_version_id
    if copy_overrides and previous_id and previous_id != version.pk:
        for override in ThresholdOverride.objects.filter(version_id=previous_id):
            if str(override.tag_id) in (version.metrics.get("tags") or {}):
                threshold_override_set(
                    version=version,
                    tag_id=override.tag_id,
                    threshold=override.threshold,
                    actor=override.set_by,
                )
    fields = ["active_version", "updated_at"]
    if previous_id and previous_id != version.pk:
        locked.previous_version_id = previous_id
        fields.append("previous_version")
    if previous_id != version.pk:
        fields += _rescore(locked, version)
    locked.active_version = version
    locked.full_clean()
    locked.save(update_fields=fields)
    return locked


def _rescore(tagger: Tagger, version: TaggerVersion) -> list[str]:
    """A head's newly active version re-scores what the tagger covers (a `taggers.score` job;
    one a previous promotion queued and that has not finished is cancelled). The job is kept in
    `Tagger.rescore_job`, or why none was queued in `Tagger.rescore_skipped`; both are fields of
    their own, not `params`, so a user saving params keeps them. Returns the fields it set."""
    from apps.jobs import services as job_services
    from apps.jobs.models import Job
    from apps.taggers.services.apply import rescore_start

    if tagger.kind != Tagger.Kind.EMBEDDING_HEAD:
        return []
    old = tagger.rescore_job_id
    stale = Job.objects.filter(pk=old).exclude(status__in=Job.FINISHED).first() if old else None
    if stale is not None:
        job_services.job_cancel(job=stale)
    if tagger.embedding_space_id is None or version.space_id != tagger.embedding_space_id:
        tagger.rescore_job = None
        tagger.rescore_skipped = (
            f"Version {version.number} was trained in another embedding space; nothing was re-scored."
        )
    else:
        tagger.rescore_job = rescore_start(tagger=tagger, version=version)
        tagger.rescore_skipped = ""
    return ["rescore_job", "rescore_skipped"]


@transaction.atomic
def version_promote(*, tagger: Tagger, number: int, copy_overrides: bool = False) -> Tagger:
    """Make a ready version the active one (one transaction). Overrides of the version it
    replaces are copied only when asked (`copy_overrides`), never silently."""
    return _activate(tagger, _ready(tagger, number), copy_overrides=copy_overrides)


@transaction.atomic
def version_rollback(*, tagger: Tagger) -> Tagger:
    """Back to the version that was active before the current one."""
    locked = Tagger.objects.select_for_update().get(pk=tagger.pk)
    previous_id = locked.previous_version_id
    previous = TaggerVersion.objects.filter(pk=previous_id, tagger=locked).first() if previous_id else None
    if previous is None:
        raise ConflictError(
            f"Tagger {locked.name} has no earlier active version to roll back to.", code="taggers.no_previous"
        )
    if previous.status != READY:
        raise ConflictError(
            f"The previous version {previous.number} is {previous.status}; promote a ready version instead.",
            code="taggers.version_not_ready",
        )
    return _activate(locked, previous, copy_overrides=False)


@transaction.atomic
def version_retire(*, version: TaggerVersion) -> TaggerVersion:
    """A ready version stops being offered (its files and sets stay); not the active one."""
    locked = TaggerVersion.objects.select_for_update().get(pk=version.pk)
    if Tagger.objects.filter(active_version=locked).exists():
        raise ConflictError(
            "The active version cannot be retired; promote another first.", code="taggers.active"
        )
    if locked.status != READY:
        raise ConflictError(f"Version {locked.number} is {locked.status}.", code="taggers.version_not_ready")
    locked.status = RETIRED
    locked.save(update_fields=["status", "updated_at"])
    return locked
