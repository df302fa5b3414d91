"""The per-host matrix cache of a space's vectors (docs/taggers.md#matrix-cache).

`BAGGINTAG_DATA_DIR/cache/emb/<space id>/manifest.json` names the current build folder, which
holds `vectors.npy` (N×D fp16) and `ids.npy` (N item ids, ascending). A build is stale when the
database's row count or highest embedding id for the space differs from the manifest's; it is
rebuilt on the next read (only the new rows are fetched when rows were only added), written to
a new folder and published by replacing the manifest atomically, so readers never see a half
build. Reads are memory-mapped. Needs numpy only (web processes may use it).

Web requests never build: `matrix_published` opens the last published build as it is and says
whether it is stale by comparing its row count with `EmbeddingSpace.embedding_count` (no
aggregate over the space's rows); the rebuild is a worker's (`taggers.cache_space`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.db.models import Count, Max

from apps.taggers import conf
from apps.taggers.engine.base import EmbeddingSpaceMismatch
from apps.taggers.models import EmbeddingSpace, ImageEmbedding

MANIFEST = "manifest.json"
FETCH_ROWS = 5_000
SCORE_CHUNK = 65_536


@dataclass(frozen=True)
class Matrix:
    space_id: int
    ids: np.ndarray  # int64, ascending
    vectors: np.ndarray  # N×D float16 (memory-mapped)
    max_embedding_id: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def cache_root() -> Path:
    return conf.cache_dir("emb")


def cache_dir(space_id: int) -> Path:
    return cache_root() / str(int(space_id))


def _db_state(space_id: int) -> tuple[int, int]:
    found = ImageEmbedding.objects.filter(space_id=space_id).aggregate(n=Count("id"), top=Max("id"))
    return int(found["n"] or 0), int(found["top"] or 0)


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _open(folder: Path, manifest: dict[str, Any]) -> Matrix | None:
    build = folder / str(manifest["build"])
    try:
        ids = np.load(build / "ids.npy", mmap_mode="r")
        vectors = np.load(build / "vectors.npy", mmap_mode="r")
    except (OSError, ValueError):
        return None
    return Matrix(int(manifest["space"]), ids, vectors, int(manifest["max_embedding_id"]))


def _fresh(manifest: dict[str, Any] | None, state: tuple[int, int], dim: int) -> bool:
    return (
        manifest is not None
        and (manifest.get("row_count"), manifest.get("max_embedding_id")) == state
        and manifest.get("dim") == dim
    )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rows(space: EmbeddingSpace, after: int) -> Iterator[list[tuple[int, int, bytes]]]:
    """(embedding id, item id, blob) in id order, in chunks (keyset on the (space, id) index)."""
    while True:
        chunk = list(
            ImageEmbedding.objects.filter(space_id=space.pk, id__gt=after)
            .order_by("id")
            .values_list("id", "item_id", "vector")[:FETCH_ROWS]
        )
        if not chunk:
            return
        yield [(int(a), int(b), bytes(c)) for a, b, c in chunk]
        after = chunk[-1][0]


def decode_blob(blob: bytes, dim: int) -> np.ndarray:
    """A stored vector (exactly dim × 2 bytes of little-endian fp16) or EmbeddingSpaceMismatch."""
    if len(blob) != dim * 2:
        raise EmbeddingSpaceMismatch(
            f"A stored vector has {len(blob)} bytes; this space's vectors have {dim * 2}.",
        )
    return np.frombuffer(blob, dtype="<f2")


def _collect(space: EmbeddingSpace, after: int) -> tuple[list[int], list[int], list[np.ndarray]]:
    embedding_ids: list[int] = []
    item_ids: list[int] = []
    vectors: list[np.ndarray] = []
    for chunk in _rows(space, after):
        for embedding_id, item_id, blob in chunk:
            embedding_ids.append(embedding_id)
            item_ids.append(item_id)
            vectors.append(decode_blob(blob, space.dim))
    return embedding_ids, item_ids, vectors


def _build(space: EmbeddingSpace, folder: Path, old: Matrix | None) -> dict[str, Any]:
    """Write a new build (old rows kept when rows were only added since) and publish it."""
    after = old.max_embedding_id if old is not None else 0
    embedding_ids, item_ids, vectors = _collect(space, after)
    new_ids = np.asarray(item_ids, dtype=np.int64)
    new_vectors = np.stack(vectors) if vectors else np.zeros((0, space.dim), dtype="<f2")
    if old is not None:
        ids = np.concatenate([np.asarray(old.ids), new_ids])
        stacked = np.concatenate([np.asarray(old.vectors), new_vectors])
    else:
        ids, stacked = new_ids, new_vectors
    order = np.argsort(ids, kind="stable")
    build = f"b{uuid.uuid4().hex[:12]}"
    target = folder / build
    target.mkdir()
    np.save(target / "ids.npy", ids[order])
    np.save(target / "vectors.npy", np.ascontiguousarray(stacked[order].astype("<f2")))
    top = max([after, *embedding_ids])
    manifest = {
        "space": space.pk,
        "dim": space.dim,
        "row_count": int(ids.shape[0]),
        "max_embedding_id": top,
        "build": build,
    }
    temporary = folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    temporary.write_text(json.dumps(manifest))
    os.replace(temporary, folder / MANIFEST)
    for other in folder.iterdir():  # earlier builds (open memory maps keep their inodes)
        if other.is_dir() and other.name != build:
            shutil.rmtree(other, ignore_errors=True)
    EmbeddingSpace.objects.filter(pk=space.pk).update(embedding_count=int(ids.shape[0]))
    return manifest


def matrix_published(*, space: EmbeddingSpace) -> tuple[Matrix | None, bool]:
    """The last build published on this host, read as it is (never built here), and whether
    it is stale: its row count differs from the space's `embedding_count` (the caller's fresh
    row; O(1), no query). (None, True) when there is no usable build yet."""
    folder = cache_dir(space.pk)
    manifest = _manifest(folder)
    if manifest is None or manifest.get("dim") != space.dim:
        return None, True
    found = _open(folder, manifest)
    if found is None:
        return None, True
    return found, int(manifest.get("row_count", -1)) != int(space.embedding_count)


def matrix_load(*, space: EmbeddingSpace) -> Matrix:
    """The space's vectors and item ids, rebuilt first when stale (one builder per host)."""
    folder = cache_dir(space.pk)
    state = _db_state(space.pk)
    manifest = _manifest(folder)
    if _fresh(manifest, state, space.dim) and manifest is not None and (found := _open(folder, manifest)):
        return found
    with _locked(folder):
        state = _db_state(space.pk)
        manifest = _manifest(folder)
        if not (_fresh(manifest, state, space.dim) and manifest is not None and _open(folder, manifest)):
            old = (
                _open(folder, manifest) if manifest is not None and manifest.get("dim") == space.dim else None
            )
            if old is not None and not _only_added(space.pk, old, state):
                old = None
            manifest = _build(space, folder, old)
    found = _open(folder, manifest)
    assert found is not None
    return found


def _only_added(space_id: int, old: Matrix, state: tuple[int, int]) -> bool:
    """No row of the old build was deleted: every row up to its max id is still there."""
    kept = ImageEmbedding.objects.filter(space_id=space_id, id__lte=old.max_embedding_id).count()
    return kept == len(old) and state[1] >= old.max_embedding_id


def matrix_drop(*, space_id: int) -> None:
    shutil.rmtree(cache_dir(space_id), ignore_errors=True)


def matrix_space_refresh(*, space_id: int) -> int:
    """Rebuild one space's cache on this host when stale (`taggers.cache_space`); its rows (0
    when the space is gone)."""
    space = EmbeddingSpace.objects.filter(pk=space_id).first()
    return 0 if space is None else len(matrix_load(space=space))


def matrix_refresh_all() -> dict[str, int]:
    """Rebuild every stale cache on this host (beat, nightly); returns rows per space."""
    return {space.name: len(matrix_load(space=space)) for space in EmbeddingSpace.objects.all()}


def nearest(matrix: Matrix, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k item ids whose vectors have the highest cosine with `query` (L2-normalised),
    best first, as (item id, cosine). Brute force in chunks (E @ q)."""
    if len(matrix) == 0 or k <= 0:
        return []
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != matrix.vectors.shape[1]:
        raise EmbeddingSpaceMismatch(
            f"The query vector has {q.shape[0]} dimensions; the space has {matrix.vectors.shape[1]}."
        )
    scores = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), SCORE_CHUNK):
        block = np.asarray(matrix.vectors[start : start + SCORE_CHUNK], dtype=np.float32)
        scores[start : start + block.shape[0]] = block @ q
    k = min(k, len(matrix))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((np.asarray(matrix.ids)[top], -scores[top]))]
    return [(int(matrix.ids[i]), float(scores[i])) for i in top]
