"""Embedding spaces: create (refs checked, files required), embed items (a job on the `ml`
queue), delete (docs/taggers.md#embedding-spaces)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.taggers.engine import clip, provision
from apps.taggers.models import EmbeddingSpace
from apps.taggers.services.provisioning import model_root

EMBED_TASK = "taggers.embed"
EMBED_KIND = "taggers.embed"


def _weights_sha256(ref: clip.ClipRef, root: Path) -> str:
    """From the directory's MANIFEST.json when provisioned, else by hashing the file."""
    directory = root / ref.directory
    relative = str(Path(ref.weights).relative_to(ref.directory)) if ref.directory != "." else ref.weights
    return provision.manifest_sha256(directory, relative) or clip.file_sha256(root / ref.weights)


def space_create(
    *,
    name: str,
    model_ref: str,
    resize_mode: str = clip.DEFAULT_RESIZE_MODE,
    description: str = "",
    source_kind: str = EmbeddingSpace.SourceKind.OPEN_CLIP,
) -> EmbeddingSpace:
    """A new open_clip space. Refuses refs that would download (400) and models whose files are
    not provisioned (409, naming the directory and files); the same weights and preprocessing
    as an existing space are that space (409)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise DomainError("A space needs a name of 1 to 200 characters.", code="taggers.space_name")
    if source_kind != EmbeddingSpace.SourceKind.OPEN_CLIP:
        raise DomainError(
            "Only open_clip spaces are created here; WD embedding spaces come with a WD tagger.",
            code="taggers.space_kind",
        )
    ref = clip.parse_ref(model_ref)
    root = model_root()
    clip.require_provisioned(ref, root, model=name)
    info = clip.model_info(ref, root, resize_mode=resize_mode)
    cfg_sha = clip.preprocess_sha256(info.preprocess_cfg)
    weights_sha = _weights_sha256(ref, root)
    same = EmbeddingSpace.objects.filter(weights_sha256=weights_sha, preprocess_sha256=cfg_sha).first()
    if same is not None:
        raise ConflictError(
            f"Space {same.name!r} already has these weights and preprocessing; use it.",
            code="taggers.space_exists",
            details={"space": same.pk},
        )
    try:
        with transaction.atomic():
            return EmbeddingSpace.objects.create(
                name=name,
                source_kind=source_kind,
                model_ref=ref.ref,
                dim=info.dim,
                preprocess_cfg=info.preprocess_cfg,
                preprocess_sha256=cfg_sha,
                weights_sha256=weights_sha,
                has_text_tower=info.has_text_tower,
                description=description,
            )
    except IntegrityError as exc:
        raise ConflictError(f"There is a space named {name!r} already.", code="taggers.space_exists") from exc


def space_update(*, space: EmbeddingSpace, description: str) -> EmbeddingSpace:
    """Only the description changes: new weights or preprocessing make a new space."""
    space.description = description
    space.save(update_fields=["description", "updated_at"])
    return space


@transaction.atomic
def space_embed(
    *, space: EmbeddingSpace, query: str = "", item_ids: list[int] | None = None, actor: Any = None
) -> Job:
    """Start (or return the running) embed job for the space over the items of `query` and/or
    `item_ids` (all images and frames when neither is given). Items that already have a vector
    are skipped, so starting again resumes. While a job for another selection runs: 409
    `taggers.embed_running` (one embed job per space)."""
    locked = EmbeddingSpace.objects.select_for_update().get(pk=space.pk)
    clip.require_provisioned(clip.parse_ref(locked.model_ref), model_root(), model=locked.name)
    if query:
        from apps.search.query import parse  # a bad query is a 400 now, not a failed job

        parse(query)
    params: dict[str, Any] = {"space": locked.pk, "query": query}
    if item_ids:
        params["item_ids"] = sorted(set(item_ids))
    current = locked.embed_job
    if current is not None and not current.is_finished:
        if _selection(current.params) == _selection(params):
            return current  # the same selection: that job is the answer
        raise ConflictError(
            f"Space {locked.name!r} is embedding another selection (job {current.pk}); wait for it "
            "to finish or cancel it, then embed these items.",
            code="taggers.embed_running",
            details={"job": current.pk},
        )
    job = job_services.job_start(
        kind=EMBED_KIND, task=EMBED_TASK, params=params, created_by=actor, title=f"Embed into {locked.name}"
    )
    locked.embed_job = job
    locked.save(update_fields=["embed_job", "updated_at"])
    return job


def _selection(params: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
    """What an embed job covers: its query and its ids."""
    return str(params.get("query") or ""), tuple(int(i) for i in params.get("item_ids") or ())


def space_delete(*, space: EmbeddingSpace) -> None:
    """Delete a space and its vectors; refused while a tagger or version uses it."""
    from apps.taggers.services import matrix

    if space.taggers.exists() or space.tagger_versions.exists():
        raise ConflictError(
            f"Space {space.name!r} is used by taggers; delete or move them first.",
            code="taggers.space_in_use",
        )
    space_id = space.pk
    space.delete()
    matrix.matrix_drop(space_id=space_id)
