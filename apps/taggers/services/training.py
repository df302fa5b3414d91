"""Training an `embedding_head` tagger as a job (`taggers.train`, queue `ml_cpu`;
docs/taggers.md#training).

`tagger_train` creates a queued `TaggerVersion` and its job (one queued or training version per
tagger: asking again returns it). The job freezes the labels (one transaction), trains on the
stored vectors (`apps.taggers.engine.train`), compares with the active version and the zero-shot
baseline on the same validation split, stores the artifacts, marks the version ready with its
thresholds, and promotes it when no version is active or its macro mAP is at least the active
one's on the tags both evaluate.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job
from apps.taggers import conf
from apps.taggers.engine.base import VersionFrozen
from apps.taggers.models import ImageEmbedding, Tagger, TaggerVersion
from apps.taggers.selectors.labels import FrozenLabels, labels_freeze
from apps.taggers.services import retrain, versions
from apps.taggers.services.matrix import matrix_load
from apps.tags.models import TagAssignment, TagSet

logger = logging.getLogger(__name__)

TRAIN_TASK = "taggers.train"
TRAIN_KIND = "taggers.train"
LIBRARIES = ("torch", "scikit-learn", "numpy", "safetensors", "iterative-stratification")
HYPERPARAMS = (
    "loss",
    "precision_target",
    "max_steps",
    "min_steps",
    "lr",
    "weight_decay",
    "hidden",
    "dropout",
)


class TrainingFailed(DomainError):
    default_code = "taggers.training_failed"
    default_message = "The tagger could not be trained."


def _check_trainable(tagger: Tagger) -> None:
    if tagger.kind != Tagger.Kind.EMBEDDING_HEAD:
        raise DomainError(
            f"Tagger {tagger.name} is a {tagger.get_kind_display()}; "
            "only embedding-head taggers are trained.",
            code="taggers.not_trainable",
        )
    if tagger.embedding_space_id is None:
        raise DomainError(
            f"Tagger {tagger.name} has no embedding space; set one first.", code="taggers.no_space"
        )
    if not ImageEmbedding.objects.filter(space_id=tagger.embedding_space_id).exists():
        raise ConflictError(
            f"No item has a vector in space {tagger.embedding_space}; embed items first "
            "(POST /api/embedding-spaces/{id}/embed).",
            code="taggers.no_embeddings",
        )
    if not TagAssignment.objects.filter(
        kind=TagSet.Kind.CURATED,
        state=TagAssignment.State.CURRENT,
        tagset__vocabulary_id=tagger.vocabulary_id,
    ).exists():
        raise DomainError(
            f"No item has curated tags in vocabulary {tagger.vocabulary.slug}, so there is nothing to "
            "learn from. Curate some items first.",
            code="taggers.no_labels",
        )


@transaction.atomic
def tagger_train(*, tagger: Tagger, actor: Any = None, seed: int | None = None) -> TaggerVersion:
    """Queue a training job for a new version (or return the one queued or training). A
    zero-shot tagger trains nothing: it gets a ready version at once (`zeroshot.py`)."""
    if tagger.kind == Tagger.Kind.CLIP_ZEROSHOT:
        from apps.taggers.services.zeroshot import zeroshot_version_create

        return zeroshot_version_create(tagger=tagger)
    locked = Tagger.objects.select_for_update().get(pk=tagger.pk)
    pending = (
        TaggerVersion.objects.filter(
            tagger=locked, status__in=[TaggerVersion.Status.QUEUED, TaggerVersion.Status.TRAINING]
        )
        .select_related("job")
        .first()
    )
    if pending is not None:
        return pending
    _check_trainable(locked)
    number = (TaggerVersion.objects.filter(tagger=locked).aggregate(n=Max("number"))["n"] or 0) + 1
    version = TaggerVersion(
        tagger=locked,
        number=number,
        space_id=locked.embedding_space_id,
        split_seed=seed if seed is not None else secrets.randbelow(2**31),
    )
    version.full_clean()
    version.save()
    job = job_services.job_start(
        kind=TRAIN_KIND,
        task=TRAIN_TASK,
        params={"version": version.pk, "tagger": locked.pk},
        created_by=actor,
        total=4,
        title=f"Train {locked.name} v{number}",
    )
    TaggerVersion.objects.filter(pk=version.pk).update(job=job)
    version.job = job
    retrain.label_changes_reset(tagger_id=locked.pk)  # debounced retraining counts from here
    return version


def _config(tagger: Tagger, seed: int) -> Any:
    from apps.taggers.engine.train import HeadConfig, TrainingError

    params = dict(tagger.params or {})
    options = {k: params[k] for k in HYPERPARAMS if params.get(k) is not None}
    network = tagger.network_type or "linear"
    try:
        return HeadConfig(seed=seed, network=network, **options)
    except (TrainingError, TypeError) as exc:
        raise TrainingFailed(f"The tagger's training settings are invalid: {exc}") from exc


def _library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _evaluated(output: Any, tag_ids: list[int]) -> list[int]:
    """Columns that count in macro mAP: shared-head tags with ≥5 validation positives."""
    skip = {"not_trainable", "indicative", "low_val"}
    tags = output.metrics["tags"]
    return [n for n, key in enumerate(tag_ids) if not skip & set(tags[str(key)]["flags"])]


def _delta_prev(
    tagger: Tagger, output: Any, x_val: np.ndarray, tag_ids: list[int]
) -> tuple[float, float] | None:
    """(m_new, m_old) on the new split over tags both versions evaluate, or None."""
    from apps.taggers.engine import evaluate as ev

    active = tagger.active_version
    if active is None or active.space_id != tagger.embedding_space_id:
        return None
    head = versions.version_head(active)
    old_col = {key: n for n, key in enumerate(head.keys)}
    evaluated = [n for n in _evaluated(output, tag_ids) if tag_ids[n] in old_col]
    if not evaluated:
        return None
    old_scores = head.score(x_val)[:, [old_col[tag_ids[n]] for n in evaluated]]
    labels = output.eval_labels[:, evaluated]
    m_new = ev.macro_map(output.val_scores[:, evaluated], labels, list(range(len(evaluated))))
    m_old = ev.macro_map(old_scores, labels, list(range(len(evaluated))))
    if m_new is None or m_old is None:
        return None
    return m_new, m_old


def _zeroshot(
    tagger: Tagger, output: Any, x_val: np.ndarray, tag_ids: list[int], names: list[str]
) -> float | None:
    """Macro mAP of the CLIP zero-shot baseline on the same split and tags (text tower needed)."""
    from apps.taggers.engine import evaluate as ev

    space = tagger.embedding_space
    evaluated = _evaluated(output, tag_ids)
    if space is None or not space.has_text_tower or not evaluated:
        return None
    from apps.taggers.engine.clip import DEFAULT_TEMPLATES
    from apps.taggers.services.text_matrices import text_matrix_get

    prompts = [names[n].replace("_", " ") for n in evaluated]
    matrix = text_matrix_get(space, prompts, DEFAULT_TEMPLATES).matrix
    scores = (x_val.astype(np.float32) @ matrix + 1.0) / 2.0
    return ev.macro_map(scores, output.eval_labels[:, evaluated], list(range(len(evaluated))))


def _train(version: TaggerVersion, job: Job) -> tuple[Any, FrozenLabels, dict[str, Any]]:
    from apps.taggers.engine.artifacts import labels_sha256
    from apps.taggers.engine.train import TrainingError, head_train

    tagger = version.tagger
    space = tagger.embedding_space
    assert space is not None
    matrix = matrix_load(space=space)
    frozen = labels_freeze(tagger=tagger, embedded_ids=np.asarray(matrix.ids))
    if frozen.labels.size == 0:
        raise TrainingFailed(
            f"No item with a vector in {space.name} has curated tags or review marks in "
            f"{tagger.vocabulary.slug}; curate and embed some items first.",
        )
    counts = {
        "items": int(frozen.labels.shape[0]),
        "tags": int(frozen.labels.shape[1]),
        "positive": int((frozen.labels == 1).sum()),
        "negative": int((frozen.labels == 0).sum()),
        "unknown": int((frozen.labels == -1).sum()),
    }
    TaggerVersion.objects.filter(pk=version.pk).update(
        labels_sha256=labels_sha256(frozen.item_ids, frozen.tag_ids, frozen.labels), counts=counts
    )
    job = job_services.job_progress(job=job, done=1)
    rows = np.searchsorted(np.asarray(matrix.ids), frozen.item_ids)
    x = np.asarray(matrix.vectors[rows], dtype=np.float32)
    config = _config(tagger, version.split_seed)
    try:
        output = head_train(
            embeddings=x,
            labels=frozen.labels,
            keys=frozen.tag_ids,
            names=frozen.names,
            config=config,
            threads=conf.train_threads(),
        )
    except TrainingError as exc:
        raise TrainingFailed(str(exc)) from exc
    job_services.job_progress(job=job, done=2)
    x_val = x[output.val_idx]
    compared = _delta_prev(tagger, output, x_val, frozen.tag_ids)
    extra: dict[str, Any] = {"compared": compared}
    if compared is not None:
        output.metrics["delta_prev"] = round(compared[0] - compared[1], 6)
    try:
        zeroshot = _zeroshot(tagger, output, x_val, frozen.tag_ids, frozen.names)
    except DomainError as exc:  # the space's model is not provisioned on this host
        zeroshot, extra["zeroshot_error"] = None, exc.message
    if zeroshot is not None and output.metrics["macro_map"] is not None:
        output.metrics["zeroshot_macro_map"] = round(zeroshot, 6)
        output.metrics["delta_zeroshot"] = round(output.metrics["macro_map"] - zeroshot, 6)
    extra["counts"] = counts
    return output, frozen, extra


def _store(version: TaggerVersion, output: Any, frozen: FrozenLabels, directory: str) -> str:
    from apps.taggers.engine.artifacts import artifacts_write

    space = version.tagger.embedding_space
    assert space is not None
    local = Path(tempfile.mkdtemp(prefix="tagger-version-"))
    try:
        sha = artifacts_write(
            output,
            local,
            item_ids=frozen.item_ids,
            labels=frozen.labels,
            space={
                "id": space.pk,
                "name": space.name,
                "weights_sha256": space.weights_sha256,
                "dim": space.dim,
            },
            library_versions=_library_versions(),
        )
        versions.artifacts_store(local=local, directory=directory)
    finally:
        shutil.rmtree(local, ignore_errors=True)
    return sha


def _finish(
    version: TaggerVersion, job: Job, output: Any, directory: str, sha: str, extra: dict[str, Any]
) -> bool:
    """Ready + thresholds + the promotion decision, in one transaction; True when promoted.
    Fenced: an attempt that was taken over raises JobSuperseded and writes nothing; a version
    that is ready already is never overwritten (VersionFrozen)."""
    with transaction.atomic():
        job_services.job_fence(job=job)
        locked = TaggerVersion.objects.select_for_update().get(pk=version.pk)
        if locked.status != TaggerVersion.Status.TRAINING:
            raise VersionFrozen(
                f"Tagger version {version.tagger.name} v{locked.number} is {locked.status}; this training "
                "attempt does not overwrite it.",
                details={"version": locked.pk, "status": locked.status},
            )
        locked.status = TaggerVersion.Status.READY
        locked.artifact_dir, locked.artifact_sha256 = directory, sha
        locked.hyperparams = output.hyperparams
        locked.library_versions = _library_versions()
        locked.metrics = output.metrics
        locked.counts = {**locked.counts, "steps": output.steps, "best_step": output.best_step}
        if extra.get("zeroshot_error"):
            locked.counts["zeroshot_error"] = extra["zeroshot_error"]
        locked.save()
        versions.thresholds_materialise(version=locked, thresholds=output.thresholds)
        tagger = Tagger.objects.select_for_update().get(pk=locked.tagger_id)
        compared = extra.get("compared")
        promote = tagger.active_version_id is None or (compared is not None and compared[0] >= compared[1])
        if promote:
            versions.version_promote(tagger=tagger, number=locked.number)
    return promote


def _fail(version_id: int, message: str) -> None:
    """Mark the version failed, unless it is no longer training (a ready version stays ready)."""
    with transaction.atomic():
        version = (
            TaggerVersion.objects.select_for_update()
            .filter(pk=version_id, status__in=[TaggerVersion.Status.QUEUED, TaggerVersion.Status.TRAINING])
            .first()
        )
        if version is None:
            return
        version.status = TaggerVersion.Status.FAILED
        version.counts = {**version.counts, "error": message[:2000]}
        version.save(update_fields=["status", "counts", "updated_at"])


def train_run(*, job_id: int) -> None:
    """Job body of `taggers.train`."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    version_id = int(job.params["version"])
    directory = ""
    try:
        version = TaggerVersion.objects.select_related("tagger__embedding_space", "tagger__vocabulary").get(
            pk=version_id
        )
        if version.status not in (TaggerVersion.Status.QUEUED, TaggerVersion.Status.TRAINING):
            job_services.job_finish(job=job, result={"status": version.status})
            return
        TaggerVersion.objects.filter(pk=version_id).update(status=TaggerVersion.Status.TRAINING)
        output, frozen, extra = _train(version, job)
        directory = versions.artifact_dir(version.tagger, version.number, job.attempts)
        sha = _store(version, output, frozen, directory)
        job = job_services.job_progress(job=job, done=3)
        promoted = _finish(version, job, output, directory, sha, extra)
    except JobSuperseded:
        # Another attempt owns the job now: drop this attempt's own files, write nothing more.
        if directory:
            versions.artifacts_delete(directory=directory)
        raise
    except DomainError as err:
        if directory:
            versions.artifacts_delete(directory=directory)
        _fail(version_id, err.message)
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    except Exception:
        logger.exception("training of tagger version %s failed", version_id)
        if directory:
            versions.artifacts_delete(directory=directory)
        _fail(version_id, "An internal error stopped the training; it was logged.")
        job_services.job_fail(
            job=job, code="taggers.internal_error", message="An internal error stopped the training."
        )
        raise
    job_services.job_progress(job=job, done=4)
    job_services.job_finish(
        job=job,
        result={
            "version": version_id,
            "number": version.number,
            "macro_map": output.metrics["macro_map"],
            "promoted": promoted,
        },
    )
