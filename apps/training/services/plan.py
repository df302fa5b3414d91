"""Building an export `Plan` from the database (docs/training.md#plan).

The settings come from one session version (`TrainingSessionVersion.frozen`), so an export of
version n is the same whatever was edited since. Each dataset entry reads a snapshot part
(pinned, or frozen now when `freeze`), or the live members (lint and preview). Items are read
in sha256 keyset chunks (the bundle ids are sha256 prefixes, so that is the bundle's order),
one set-based query per kind of data per chunk; `Plan.items()` streams them again for every
call, partition by partition, and never holds a list of all items.

Partitions (§3.2): `<slug>--` + `reg`, `flip`|`noflip` (mirror = per_item), `k<K>` (OneTrainer
targeted, exact prefix mode), `r<n>` (≥ 2 effective repeat counts in the dataset); else `all`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import IO, Any

from django.core.files.storage import default_storage

from apps.core.exceptions import DomainError
from apps.datasets.services.snapshots import tags_fingerprint
from apps.mappings.models import MappingProfile
from apps.tags.models import TagType
from apps.training import conf
from apps.training.models import BaseModelProfile, TrainingSession, TrainingSessionVersion
from apps.training.plan import (
    CaptionEntry,
    CaptionPolicy,
    ExportSettings,
    ItemCaption,
    Lineage,
    Partition,
    Plan,
    PlanItem,
    Sample,
    TISpec,
    TypePolicy,
)
from apps.training.selectors.items import ChunkData, TagRow, chunk_load, tags_info
from apps.training.services.plan_entries import (
    _entries,
    _Entry,
    effective_repeats,
)
from apps.training.services.plan_values import (
    _base_spec,
    _caption_policy,
    _image_policy,
    _method,
    clean_text,
    keep_for,
    mirror_decide,
    policy_for,
    tag_text,
)
from apps.training.services.sessions import version_get

PLACE_KEY = 20  # sha256 hex digits that key an item's remembered partition

# --- the planner --------------------------------------------------------------------------------


@dataclass
class _Context:
    s: dict[str, Any]
    base: BaseModelProfile
    policy: CaptionPolicy
    types: dict[int, str]  # tag type id → key
    vocabulary_id: int | None
    prepared: Any  # mappings Prepared, or None
    onetrainer_exact: bool
    per_item_mirror: bool
    chunk: int
    tag_cache: dict[int, TagRow] = field(default_factory=dict)


def _entries_for(
    ctx: _Context, policy: CaptionPolicy, item_id: int, data: ChunkData, mapped: dict[int, Any]
) -> tuple[CaptionEntry, ...]:
    """An item's caption entries: mapped tags, or its effective tags, with types and ranks."""
    raw: list[tuple[str, str, float]] = []  # (text, type key, rank)
    if ctx.prepared is not None:
        result = mapped.get(item_id)
        compiled = ctx.prepared.compiled
        for n, out in enumerate(result.tags if result is not None else []):
            info = compiled.tags.get(out.tag_id) if out.tag_id is not None else None
            name = info.name if info is not None else out.text
            keep = bool(info.keep_underscore) if info is not None else False
            type_id = out.type_id if out.type_id is not None else (info.type_id if info is not None else None)
            key = ctx.types.get(type_id or 0, "general")
            raw.append(
                (
                    tag_text(
                        name,
                        underscores=policy.underscores_to_spaces,
                        keep_underscore=keep,
                        escape=policy.escape_parentheses,
                    ),
                    key,
                    float(n),
                )
            )
    else:
        tag_ids = data.effective.get(item_id, [])
        for tag_id in tag_ids:
            row = ctx.tag_cache.get(tag_id)
            if row is None or (ctx.vocabulary_id is not None and row.vocabulary_id != ctx.vocabulary_id):
                continue
            text = tag_text(
                row.name,
                underscores=policy.underscores_to_spaces,
                keep_underscore=row.keep_underscore,
                escape=policy.escape_parentheses,
            )
            raw.append((text, ctx.types.get(row.type_id, "general"), data.ranks.get((item_id, tag_id), 0.0)))
    entries: list[CaptionEntry] = []
    groups: dict[str, list[tuple[float, str]]] = {}
    seen: set[str] = set()
    for text, key, rank in raw:
        type_policy = policy.types.get(key)
        if not text or text in seen or (type_policy is not None and type_policy.zone == "excluded"):
            continue
        seen.add(text)
        if type_policy is not None and type_policy.atomic:
            groups.setdefault(key, []).append((rank, text))
        else:
            entries.append(CaptionEntry(text=text, type=key, key=f"t:{text}", rank=rank))
    for key, members in sorted(groups.items()):
        ordered = tuple(t for _, t in sorted(members))
        joined = ", ".join(ordered)
        entries.append(
            CaptionEntry(
                text=joined, type=key, key=f"g:{joined}", rank=min(r for r, _ in members), members=ordered
            )
        )
    entries.sort(key=lambda e: (policy.types.get(e.type, TypePolicy(e.type)).zone_order, e.rank, e.text))
    return tuple(entries)


def _descriptions(policy: CaptionPolicy, item_id: int, data: ChunkData) -> dict[str, tuple[str, ...]]:
    desc = policy.types.get("description")
    if desc is not None and desc.zone == "excluded":
        return {}
    sets = data.descriptions.get(item_id, {})
    wanted = policy.alternates
    out = {}
    for name in sorted(sets):
        if wanted and name not in wanted:
            continue
        texts = tuple(t for t in (clean_text(x) for x in sets[name]) if t)
        if texts:
            out[name] = texts
    return out


def _lineage(media: dict[str, Any], original_name: str) -> Lineage:
    video = None
    if media["video_id"] is not None:
        box = None
        if media["box_w"]:
            box = [media["box_x"], media["box_y"], media["box_w"], media["box_h"]]
        video = {
            "video_media_id": media["video_id"],
            "frame": media["frame_index"],
            "timestamp_ms": media["timestamp_ms"],
            "box": box,
        }
    transform: tuple[str, ...] = ()
    if media["recipe"]:
        transform = (f"recipe:{media['recipe_hash'][:12]}",) if media["recipe_hash"] else ("recipe",)
    return Lineage(
        media_id=media["pk"],
        original_name=original_name or media["name"],
        source_url=media["source"],
        artist=media["artist"],
        transform=transform,
        parent_media_id=media["parent_id"],
        recipe=media["recipe"],
        video=video,
    )


@dataclass(frozen=True)
class _Placed:
    """One item with its partition components worked out (before the partition id is known)."""

    item: PlanItem
    flip: bool | None
    keep: int | None
    copy: PlanItem | None


def _walk(
    ctx: _Context,
    entry: _Entry,
    notes: list[str] | None = None,
    only: Callable[[str], bool] | None = None,
) -> Iterator[_Placed]:
    """The entry's items in bundle order, chunk by chunk (one set of queries per chunk); `only`
    (sha256 → bool) picks the rows worth loading (one partition's)."""
    after = ""
    spec = entry.spec
    policy = policy_for(ctx.policy, spec.overrides)
    while True:
        rows = entry.source.chunk(after, ctx.chunk)
        if not rows:
            return
        after = rows[-1][1]
        if only is not None:
            rows = [row for row in rows if only(row[1])]
            if not rows:
                continue
        ids = [r[0] for r in rows]
        data = chunk_load(ids)
        tags_info({t for ts in data.effective.values() for t in ts}, ctx.tag_cache)
        mapped: dict[int, Any] = {}
        if ctx.prepared is not None:
            from apps.mappings.services.apply import results_for

            present = [i for i in ids if i in data.media]
            mapped = results_for(ctx.prepared, present, caption=False) if present else {}
        for item_id, sha, tags_hash in rows:
            media = data.media.get(item_id)
            if media is None or media["sha256"] != sha:
                if notes is not None:
                    notes.append(f"dataset {spec.id}: item {item_id} is gone from the library; left out")
                continue
            plan_id = "i" + sha[:12]
            caption = ItemCaption(
                item_id=plan_id,
                entries=_entries_for(ctx, policy, item_id, data, mapped),
                descriptions=_descriptions(policy, item_id, data),
            )
            weight = entry.weights.get(item_id, 1.0)
            mirror_ok, swapped = True, None
            if ctx.s["mirror"] != "never":
                mirror_ok, swapped = mirror_decide(
                    caption, block_tags=ctx.s["mirror_block_tags"], swap_allowed=policy.swap_directional
                )
            flip: bool | None = None
            if ctx.per_item_mirror:
                flip = mirror_ok and swapped is None
            keep = keep_for(caption, policy, ctx.s["seed"]) if ctx.onetrainer_exact else None
            drifted = tags_hash is not None and tags_fingerprint(data.effective.get(item_id, [])) != tags_hash
            item = PlanItem(
                id=plan_id,
                dataset=spec.id,
                partition="",
                sha256=sha,
                storage_key=media["storage_key"],
                width=media["width"],
                height=media["height"],
                format=str(media["format"]).upper(),
                mode=media["mode"],
                has_alpha=media["has_alpha"],
                focus=_focus(media.get("focus")),
                caption=caption,
                lineage=_lineage(media, data.original_names.get(item_id, "")),
                mirror_ok=mirror_ok,
                weight=weight,
                repeats=effective_repeats(spec.repeats, weight),
                tags_drifted=drifted,
            )
            copy = None
            if ctx.per_item_mirror and swapped is not None:
                copy_id = plan_id + "-m"
                copy = replace(
                    item,
                    id=copy_id,
                    mirror_of=plan_id,
                    caption=replace(swapped, item_id=copy_id),
                    focus=mirrored_focus(item.focus),
                )
            yield _Placed(item=item, flip=flip, keep=keep, copy=copy)


def _focus(value: Any) -> tuple[float, float, float, float] | None:
    """The media item's focus box (media.services.focus_clean wrote it), or None."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    return (x0, y0, x1, y1)


def mirrored_focus(
    focus: tuple[float, float, float, float] | None,
) -> tuple[float, float, float, float] | None:
    """The focus box of the horizontally flipped picture (a `-m` copy)."""
    if focus is None:
        return None
    x0, y0, x1, y1 = focus
    return (round(1.0 - x1, 6) + 0.0, y0, round(1.0 - x0, 6) + 0.0, y1)


def partition_id(slug: str, *, reg: bool, flip: bool | None, keep: int | None, repeats: int | None) -> str:
    parts = []
    if reg:
        parts.append("reg")
    if flip is not None:
        parts.append("flip" if flip else "noflip")
    if keep is not None:
        parts.append(f"k{keep}")
    if repeats is not None:
        parts.append(f"r{repeats}")
    return f"{slug}--{'--'.join(parts) if parts else 'all'}"


def _repeat_counts(entry: _Entry) -> set[int]:
    """The distinct effective repeats among the entry's items (one query for weighted ids)."""
    weighted = entry.source.item_ids(list(entry.weights)) if entry.weights else set()
    counts = {effective_repeats(entry.spec.repeats, entry.weights[i]) for i in weighted}
    if entry.count > len(weighted):
        counts.add(effective_repeats(entry.spec.repeats, 1.0))
    return counts


def _place(entry: _Entry, placed: _Placed, split_repeats: bool) -> str:
    return partition_id(
        entry.spec.id,
        reg=entry.spec.role == "regularization",
        flip=placed.flip,
        keep=placed.keep,
        repeats=placed.item.repeats if split_repeats else None,
    )


def _session_settings(
    session: TrainingSession, version: int | None
) -> tuple[dict[str, Any], TrainingSessionVersion]:
    row = version_get(session, version)
    return row.frozen, row


def plan_build(
    session: TrainingSession,
    *,
    version: int | None = None,
    freeze: bool = True,
    actor: Any = None,
    limit: int | None = None,
    frozen: list[int] | None = None,
) -> Plan:
    """The export plan of a session version (latest by default). `freeze`: entries without a
    pinned snapshot get one frozen now (an export); without it they read live members (lint,
    preview). One pass over the items counts partitions; `items()` streams them again.
    `limit` (pages and previews, never exports): only the first `limit` items of each dataset
    are read, in one bounded chunk, and kept for `items()`; see `Plan.sampled`. `frozen` collects
    the ids of snapshots frozen for this plan (a failed export deletes them)."""
    s, row = _session_settings(session, version)
    return plan_from_settings(
        s,
        session_id=f"sess-{session.pk}",
        version=row.number,
        created=row.created_at,
        freeze=freeze,
        actor=actor,
        limit=limit,
        frozen=frozen,
    )


def _sample(
    ctx: _Context, entries: list[_Entry], split: dict[str, bool], notes: list[str], limit: int
) -> tuple[dict[str, int], list[tuple[str, _Placed]], int]:
    """The planning pass of a preview: the first `limit` items of each entry (one chunk of at
    most `limit` rows each), kept with their partition ids."""
    counts: dict[str, int] = {}
    kept: list[tuple[str, _Placed]] = []
    drifted = 0
    for entry in entries:
        for placed in itertools.islice(_walk(ctx, entry, notes), limit):
            pid = _place(entry, placed, split[entry.spec.id])
            counts[pid] = counts.get(pid, 0) + 1 + (placed.copy is not None)
            drifted += placed.item.tags_drifted
            kept.append((pid, placed))
    return counts, kept, drifted


def _count(
    ctx: _Context, entries: list[_Entry], split: dict[str, bool], notes: list[str]
) -> tuple[dict[str, int], dict[str, tuple[list[str], dict[str, int]]], int]:
    """The planning pass: images per partition, and for entries split into several partitions
    each item's partition (sha256 prefix → index into the entry's partition ids), so that
    `items()` loads an item only in its own partition's pass; and how many items drifted."""
    counts: dict[str, int] = {}
    drifted = 0
    placements: dict[str, tuple[list[str], dict[str, int]]] = {}
    for entry in entries:
        names: list[str] = []
        where: dict[str, int] = {}
        for placed in _walk(ctx, entry, notes):
            pid = _place(entry, placed, split[entry.spec.id])
            counts[pid] = counts.get(pid, 0) + 1 + (placed.copy is not None)
            drifted += placed.item.tags_drifted
            if pid not in names:
                names.append(pid)
            where[placed.item.sha256[:PLACE_KEY]] = names.index(pid)  # a handful of partitions
        if len(names) > 1:
            placements[entry.spec.id] = (names, where)
    return counts, placements, drifted


def _context(s: dict[str, Any], ti: bool, limit: int | None) -> _Context:
    """What every item walk of the plan shares: the base model, caption policy, tag types, the
    prepared mapping profile (when the session maps tags) and the chunk size."""
    base = BaseModelProfile.objects.filter(slug=s["base_model"]).first()
    if base is None:
        raise DomainError(
            f"Base model {s['base_model']!r} was deleted; edit the session.",
            code="training.unknown_base_model",
        )
    prepared = None
    if s["mapping_profile"]:
        from apps.mappings.services.apply import prepare

        profile = MappingProfile.objects.filter(slug=s["mapping_profile"]).first()
        if profile is None:
            raise DomainError(
                "The session's mapping profile was deleted; edit the session.",
                code="training.unknown_mapping",
            )
        prepared = prepare(profile)
    return _Context(
        s=s,
        base=base,
        policy=_caption_policy(s, base),
        types=dict(TagType.objects.values_list("pk", "key")),
        vocabulary_id=None if prepared is not None else base.vocabulary_id,
        prepared=prepared,
        onetrainer_exact="onetrainer" in s["targets"] and s["prefix_mode"] == "exact" and not ti,
        per_item_mirror=s["mirror"] == "per_item",
        chunk=conf.plan_chunk() if limit is None else max(1, min(conf.plan_chunk(), limit)),
    )


def plan_from_settings(
    s: dict[str, Any],
    *,
    session_id: str,
    version: int,
    created: Any,
    freeze: bool,
    actor: Any = None,
    textual_inversion: TISpec | None = None,
    limit: int | None = None,
    frozen: list[int] | None = None,
) -> Plan:
    """A plan from frozen settings (`sessions.frozen`'s shape; TI sets build the same shape)."""
    ctx = _context(s, textual_inversion is not None, limit)
    base, policy, targets = ctx.base, ctx.policy, list(s["targets"])
    notes: list[str] = []
    entries = _entries(s, freeze=freeze, actor=actor, notes=notes, frozen=frozen)
    repeat_counts = {e.spec.id: _repeat_counts(e) for e in entries}
    split = {slug: len(found) >= 2 for slug, found in repeat_counts.items()}
    kept: list[tuple[str, _Placed]] = []
    placements: dict[str, tuple[list[str], dict[str, int]]] = {}
    if limit is None:
        counts, placements, drifted = _count(ctx, entries, split, notes)
    else:
        counts, kept, drifted = _sample(ctx, entries, split, notes, limit)
    sampled = limit is not None and any(e.count > limit for e in entries)
    if drifted:
        notes.append(f"{drifted} item(s) were retagged since their snapshot; their current tags are exported")
    by_slug = {e.spec.id: e for e in entries}
    owner = {pid: by_slug[pid.split("--")[0]] for pid in counts}  # slugs never hold "--"
    partitions = [
        _partition(pid, owner[pid], counts[pid], repeat_counts[owner[pid].spec.id]) for pid in counts
    ]
    partitions.sort(key=lambda p: p.id)

    def sample_items() -> Iterator[PlanItem]:
        for pid, placed in sorted(kept, key=lambda pair: (pair[0], pair[1].item.id)):
            yield replace(placed.item, partition=pid)
            if placed.copy is not None:
                yield replace(placed.copy, partition=pid)

    def items() -> Iterator[PlanItem]:
        for partition in partitions:
            entry = owner[partition.id]
            only = None
            if entry.spec.id in placements:
                names, where = placements[entry.spec.id]
                index = names.index(partition.id)
                only = lambda sha, where=where, index=index: where.get(sha[:PLACE_KEY]) == index  # noqa: E731
            for placed in _walk(ctx, entry, only=only):
                if only is None and _place(entry, placed, split[entry.spec.id]) != partition.id:
                    continue
                yield replace(placed.item, partition=partition.id)
                if placed.copy is not None:
                    yield replace(placed.copy, partition=partition.id)

    return Plan(
        session_id=session_id,
        session_name=s["name"],
        session_version=version,
        created=created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seed=s["seed"],
        app_version=conf.app_version(),
        base_model=_base_spec(base),
        method=_method(s),
        image_policy=_image_policy(s, base),
        caption_policy=policy,
        datasets=[e.spec for e in entries],
        partitions=partitions,
        targets=targets,  # type: ignore[arg-type]
        export=ExportSettings(
            target_root=s["target_root"],
            prefix_mode=s["prefix_mode"],
            kohya_per_type_dropout=s["kohya_per_type_dropout"],
            images=s["images"],
            kohya_masks=s.get("kohya_masks", "none"),  # versions frozen before the setting: none
        ),
        items=sample_items if limit is not None else items,
        open_original=open_original,
        textual_inversion=textual_inversion,
        samples=[Sample(**sample) for sample in s["samples"]],
        item_count=sum(e.count for e in entries) if sampled else sum(counts.values()),
        notes=notes,
        sampled=sampled,
        kohya_extra_args=dict(s.get("extra_args") or {}),
    )


def _partition(pid: str, entry: _Entry, count: int, repeat_counts: set[int]) -> Partition:
    parts = pid[len(entry.spec.id) + 2 :].split("--")
    flip = True if "flip" in parts else False if "noflip" in parts else None
    keep = next((int(p[1:]) for p in parts if p.startswith("k")), None)
    repeats = next((int(p[1:]) for p in parts if p.startswith("r") and p != "reg"), None)
    return Partition(
        id=pid,
        dataset=entry.spec.id,
        role=entry.spec.role,
        flip=flip,
        keep=keep,
        repeats=repeats if repeats is not None else min(repeat_counts or {entry.spec.repeats}),
        loss_weight=entry.spec.loss_weight,
        class_tokens=entry.spec.class_tokens,
        item_count=count,
    )


def open_original(storage_key: str) -> IO[bytes]:
    """The source bytes of an item, from the media storage."""
    return default_storage.open(storage_key, "rb")  # type: ignore[no-any-return]
