"""Scheme steps that score stored vectors instead of pixels: `embedding_head` and `clip_zeroshot`
(docs/taggers.md#steps-on-stored-vectors).

Both read the items' vectors from the tagger's embedding space (the matrix cache), score them on
the CPU and write the item's `tagger` set `<tagger>@<version>` through `apply.sets_replace`, the
slot `taggers.score` writes too, so a head run and a head step share their sets. An item
without a vector in the space counts as failed ("embed it first"); a re-run retries it.

* head: the version's head (`versions.version_head`); kept: scores ≥ `params.threshold`
  (default the tagger's `stored_threshold`), best first, at most `params.top_k` (512).
* zero-shot: the version's frozen prompts and templates (`zeroshot.py`) → the stored D×T text
  matrix (`text_matrices.py`: built by the space's text tower once, then reused by every job);
  score = (cosine + 1) / 2, or sigmoid(scale·cosine + bias) for a SigLIP-style model
  (`params.scoring`: auto, cosine, sigmoid); kept: per item the tags above its MCut threshold
  (`params.mcut`, default true) and ≥ `params.threshold` (default 0), at most `params.top_k`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from apps.core.exceptions import DomainError
from apps.taggers.models import SCALE, Tagger
from apps.taggers.services import versions
from apps.taggers.services.apply import MAX_PER_ITEM, known_tags, sets_replace, version_slot
from apps.taggers.services.matrix import matrix_load
from apps.taggers.services.text_matrices import TextMatrix
from apps.tags.models import Tag

if TYPE_CHECKING:
    from apps.taggers.services.scheme_steps import StepContext

VECTOR_KINDS = (Tagger.Kind.EMBEDDING_HEAD, Tagger.Kind.CLIP_ZEROSHOT)
SCORINGS = ("auto", "cosine", "sigmoid")


def _space(ctx: StepContext) -> Any:
    space = ctx.tagger.embedding_space
    if space is None:
        raise DomainError(
            f"Step {ctx.step.key!r}: tagger {ctx.tagger.name!r} has no embedding space.",
            code="taggers.no_space",
        )
    if ctx.version.space_id is not None and ctx.version.space_id != space.pk:
        raise DomainError(
            f"Step {ctx.step.key!r}: version {ctx.version.number} of {ctx.tagger.name!r} was made for "
            "another embedding space; train or create a new version.",
            code="taggers.space_mismatch",
        )
    return space


def _vectors(ctx: StepContext, ids: Sequence[int]) -> tuple[list[int], np.ndarray, list[int]]:
    """(items with a vector, their vectors N×D fp32, items without one), the matrix loaded once
    per job (`ctx.memo`)."""
    matrix = ctx.memo.get("matrix")
    if matrix is None:
        matrix = ctx.memo["matrix"] = matrix_load(space=_space(ctx))
    known = np.asarray(matrix.ids)
    wanted = np.asarray(sorted(ids), dtype=np.int64)
    rows = np.searchsorted(known, wanted)
    if known.size == 0:  # nothing embedded in the space yet
        found = np.zeros(wanted.shape, dtype=bool)
    else:
        found = (rows < known.size) & (known[np.minimum(rows, known.size - 1)] == wanted)
    present = wanted[found].tolist()
    if not present:
        return [], np.zeros((0, 0), dtype=np.float32), wanted.tolist()
    vectors = np.asarray(matrix.vectors[rows[found].tolist()], dtype=np.float32)
    return present, vectors, wanted[~found].tolist()


def _top(row: np.ndarray, keys: np.ndarray, keep: np.ndarray, limit: int) -> list[tuple[int, int]]:
    hits = np.flatnonzero(keep)
    hits = hits[np.argsort(-row[hits], kind="stable")[:limit]]
    confidence = np.clip(np.rint(row[hits] * SCALE), 0, SCALE).astype(np.int64)
    return list(zip(keys[hits].tolist(), confidence.tolist(), strict=True))


def _head_scores(ctx: StepContext, vectors: np.ndarray) -> list[list[tuple[int, int]]]:
    head = ctx.memo.get("head")
    if head is None:
        head = ctx.memo["head"] = versions.version_head(ctx.version)
        ctx.memo["known"] = known_tags(ctx.version, head)
    keys = np.asarray(head.keys, dtype=np.int64)
    usable = np.isin(keys, np.asarray(sorted(ctx.memo["known"]), dtype=np.int64))
    floor = float(ctx.step.params.get("threshold", ctx.tagger.stored_threshold))
    limit = int(ctx.step.params.get("top_k", MAX_PER_ITEM))
    return [_top(row, keys, (row >= floor) & usable, limit) for row in head.score(vectors)]


def _text_matrix(ctx: StepContext) -> tuple[np.ndarray, TextMatrix]:
    """(tag ids, the stored text matrix of the version's frozen prompts), read once per job; its
    columns are narrowed to the tags that still exist."""
    if "text" not in ctx.memo:
        from apps.taggers.services import zeroshot

        space = _space(ctx)
        if not space.has_text_tower:
            raise DomainError(
                f"Step {ctx.step.key!r}: space {space.name!r} has no text tower, so "
                f"{ctx.tagger.name!r} cannot score zero-shot.",
                code="taggers.no_text_tower",
            )
        keys, stored = zeroshot.text_matrix(ctx.version, space)
        alive = set(
            Tag.objects.filter(pk__in=keys.tolist(), vocabulary_id=ctx.tagger.vocabulary_id).values_list(
                "pk", flat=True
            )
        )  # tags deleted since the version was made are not written
        usable = np.isin(keys, np.asarray(sorted(alive), dtype=np.int64))
        ctx.memo["text"] = (keys[usable], dataclasses.replace(stored, matrix=stored.matrix[:, usable]))
    text: tuple[np.ndarray, TextMatrix] = ctx.memo["text"]
    return text


def _sigmoid(ctx: StepContext, stored: TextMatrix) -> bool:
    """`params.scoring`: `auto` (default) is sigmoid for a SigLIP-style model, cosine else."""
    scoring = str(ctx.step.params.get("scoring", "auto"))
    if scoring not in SCORINGS:
        raise DomainError(
            f"Step {ctx.step.key!r}: scoring is one of {', '.join(SCORINGS)}.", code="taggers.bad_scoring"
        )
    if scoring == "sigmoid" and not stored.sigmoid:
        raise DomainError(
            f"Step {ctx.step.key!r}: sigmoid scoring needs a SigLIP-style model (one with a logit "
            f"bias); {ctx.tagger.embedding_space} has none.",
            code="taggers.bad_scoring",
        )
    return stored.sigmoid and scoring != "cosine"


def _zeroshot_scores(ctx: StepContext, vectors: np.ndarray) -> list[list[tuple[int, int]]]:
    from apps.taggers.engine.wd import mcut_threshold

    keys, stored = _text_matrix(ctx)
    floor = float(ctx.step.params.get("threshold", 0.0))
    limit = int(ctx.step.params.get("top_k", MAX_PER_ITEM))
    mcut = bool(ctx.step.params.get("mcut", True))
    scores = stored.probabilities(vectors) if _sigmoid(ctx, stored) else (vectors @ stored.matrix + 1.0) / 2.0
    out = []
    for row in scores:
        cut = mcut_threshold(row) if mcut else None
        keep = row >= max(floor, cut if cut is not None else floor)
        out.append(_top(row, keys, keep, limit))
    return out


def compute(ctx: StepContext, ids: Sequence[int]) -> tuple[dict[int, Any], dict[int, str], int]:
    """(outputs {item: [(tag id, confidence 1/10000), …]}, errors {item: message}, vectors
    scored) of one batch; no database writes."""
    present, vectors, missing = _vectors(ctx, ids)
    space = ctx.tagger.embedding_space
    message = f"The item has no vector in space {space.name if space else '?'}; embed it first."
    errors = dict.fromkeys(missing, message)
    if not present:
        return {}, errors, 0
    if ctx.step.kind == Tagger.Kind.EMBEDDING_HEAD:
        scored = _head_scores(ctx, vectors)
    else:
        scored = _zeroshot_scores(ctx, vectors)
    return dict(zip(present, scored, strict=True)), errors, len(present)


def write(ctx: StepContext, outputs: Mapping[int, Any], actor_id: int | None) -> dict[str, int]:
    """Each item's tagger set of the version made equal to its predictions (caller's
    transaction; the tags exist already: they are the vocabulary's)."""
    from apps.media.models import MediaItem

    alive = set(MediaItem.objects.filter(pk__in=list(outputs)).values_list("pk", flat=True))
    written = sets_replace(
        tagger=ctx.tagger,
        version=ctx.version,
        wanted={i: p for i, p in outputs.items() if i in alive},
        slot=version_slot(ctx.version),
        actor_id=actor_id,
    )
    return {"tags_written": written.changes, "sets_created": written.sets_created}
