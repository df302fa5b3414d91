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

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import IO, Any

from django.core.files.storage import default_storage

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetGroup, Snapshot, Subset
from apps.datasets.selectors import dataset_members, subset_members
from apps.datasets.selectors.groups import group_datasets
from apps.datasets.services.snapshots import snapshot_create, tags_fingerprint
from apps.mappings.models import MappingProfile
from apps.tags.models import TagType
from apps.training import conf
from apps.training.models import BaseModelProfile, TrainingSession, TrainingSessionVersion
from apps.training.plan import (
    BaseModelSpec,
    CaptionEntry,
    CaptionPolicy,
    DatasetEntry,
    ExportSettings,
    ImagePolicy,
    ItemCaption,
    Lineage,
    MethodSpec,
    Partition,
    Plan,
    PlanItem,
    Sample,
    TISpec,
    TypePolicy,
)
from apps.training.selectors.items import ChunkData, Source, TagRow, chunk_load, tags_info
from apps.training.services.sessions import version_get

_SPACES = re.compile(r"\s+")


# --- text ---------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Whitespace collapsed (newlines too), trimmed."""
    return _SPACES.sub(" ", text).strip()


def tag_text(name: str, *, underscores: bool, keep_underscore: bool, escape: bool) -> str:
    """A tag's caption text per the profile: underscores to spaces, optional `(`/`)` escaping."""
    text = name.replace("_", " ") if underscores and not keep_underscore else name
    if escape:
        text = text.replace("(", "\\(").replace(")", "\\)")
    return clean_text(text)


# --- mirroring and keep counts ------------------------------------------------------------------


def _mirror_logic() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from apps.training.logic import mirror  # type: ignore[attr-defined]
    except ImportError:
        return None
    blocked = getattr(mirror, "mirror_blocked", None)
    swap = getattr(mirror, "swap_directional", None)
    return (blocked, swap) if blocked and swap else None


def mirror_decide(
    entries: tuple[CaptionEntry, ...], *, swap_allowed: bool
) -> tuple[bool, tuple[CaptionEntry, ...] | None]:
    """(mirror_ok, swapped entries or None): blocked items never flip; items with directional
    tags flip only as pre-flipped copies whose tags are swapped (apps/training/logic/mirror.py)."""
    logic = _mirror_logic()
    if logic is None:
        return True, None
    blocked, swap = logic
    texts = [e.text for e in entries]
    if blocked(texts):
        return False, None
    swapped = []
    changed = False
    for entry in entries:
        text = swap(entry.text)
        members = tuple(swap(m) for m in entry.members)
        if text != entry.text or members != entry.members:
            changed = True
            key = f"g:{', '.join(members)}" if members else f"t:{text}"
            swapped.append(replace(entry, text=text, members=members, key=key))
        else:
            swapped.append(entry)
    if not changed:
        return True, None
    if not swap_allowed:
        return False, None
    return True, tuple(swapped)


def _pieces(text: str) -> int:
    return len([p for p in text.split(",") if p.strip()])


def keep_count(
    entries: tuple[CaptionEntry, ...], descriptions: dict[str, tuple[str, ...]], policy: CaptionPolicy
) -> int:
    """OneTrainer's K for an image (§4.3): `,`-pieces of its prefix; 1 when the prefix can
    differ between its lines (droppable prefix items, descriptions of different shapes) or in
    merged mode; 0 with no prefix."""
    types = policy.types
    prefix = [e for e in entries if types.get(e.type, TypePolicy(e.type)).zone == "prefix"]
    desc_policy = types.get("description")
    texts = (
        [t for ts in descriptions.values() for t in ts]
        if desc_policy and desc_policy.zone == "prefix"
        else []
    )
    if not prefix and not texts:
        return 0
    if policy.prefix_mode == "merged":
        return 1
    if any(types.get(e.type, TypePolicy(e.type)).drop_rate > 0 for e in prefix):
        return 1
    base = sum(_pieces(e.text) for e in prefix)
    if texts:
        assert desc_policy is not None
        shapes = {_pieces(t) for t in texts}
        if len(shapes) > 1 or desc_policy.whole_drop_rate > 0:
            return 1
        base += shapes.pop()
    return base


# --- settings → plan values ---------------------------------------------------------------------


def _base_spec(base: BaseModelProfile) -> BaseModelSpec:
    return BaseModelSpec(
        family=base.family,  # type: ignore[arg-type]
        profile=base.slug,
        prediction=base.prediction,  # type: ignore[arg-type]
        clip_skip=base.clip_skip,
        source_kind=base.source_kind,  # type: ignore[arg-type]
        source_ref=base.source_ref,
        source_sha256=base.source_sha256,
        diffusers_ref=base.diffusers_ref or None,
        resolution=base.resolution,
        bucket_min=base.bucket_min,
        bucket_max=base.bucket_max,
        bucket_step=base.bucket_step,
        onetrainer_quantum=base.onetrainer_quantum,
        max_tokens=base.max_tokens,
        score_tags_prefix=base.score_tags_prefix,
        booru_text=base.booru_text,
    )


def _caption_policy(s: dict[str, Any], base: BaseModelProfile) -> CaptionPolicy:
    types = {
        key: TypePolicy(
            key=key,
            zone=p["zone"],
            zone_order=p["zone_order"],
            drop_rate=p["drop_rate"],
            atomic=p["atomic"],
            budget_priority=p["budget_priority"],
            whole_drop_rate=p["whole_drop_rate"],
        )
        for key, p in sorted(s["type_policies"].items())
    }
    underscores = s["underscores_to_spaces"]
    return CaptionPolicy(
        types=types,
        underscores_to_spaces=base.booru_text if underscores is None else bool(underscores),
        escape_parentheses=s["escape_parentheses"],
        shuffle=s["shuffle"],
        caption_dropout_rate=s["caption_dropout_rate"],
        alternates={k: v for k, v in sorted(s["description_weights"].items()) if v > 0},
        materialize_mode=s["materialize_mode"],
        variants=s["materialize_variants"],
        max_tokens=s["max_tokens"] or base.max_tokens,
        prefix_mode=s["prefix_mode"],
        kohya_per_type_dropout=s["kohya_per_type_dropout"],
        swap_directional=s["swap_directional"],
    )


def _image_policy(s: dict[str, Any], base: BaseModelProfile) -> ImagePolicy:
    return ImagePolicy(
        resolution=s["resolution"] or base.resolution,
        bucket_min=s["bucket_min"] or base.bucket_min,
        bucket_max=s["bucket_max"] or base.bucket_max,
        bucket_step=s["bucket_step"] or base.bucket_step,
        no_upscale=s["no_upscale"],
        resize_to_bucket=s["images"] == "bucket",
        min_source_side=s["min_source_side"],
        max_aspect=s["max_aspect"],
        crop=s["crop"],
        mirror=s["mirror"],
        color_jitter=s["color_jitter"],
        alpha_background=s["alpha_background"],
    )


def _method(s: dict[str, Any]) -> MethodSpec:
    return MethodSpec(
        kind=s["method"],
        rank=s["rank"],
        alpha=s["alpha"],
        train_text_encoder=s["train_text_encoder"],
        batch_size=s["batch_size"],
        epochs=s["epochs"],
        learning_rate=s["learning_rate"],
        mixed_precision=s["mixed_precision"],
        cache_latents=s["cache_latents"],
        cache_text_encoder_outputs=s["cache_text_encoder_outputs"],
        masked_loss=s["masked_loss"],
    )


# --- dataset entries ----------------------------------------------------------------------------


@dataclass
class _Entry:
    """One dataset of the plan with its source and what its items share."""

    spec: DatasetEntry
    source: Source
    count: int = 0
    weights: dict[int, float] = field(default_factory=dict)  # media id → item weight


def _source(
    dataset: Dataset,
    subset: Subset | None,
    snapshot: Snapshot | None,
    *,
    freeze: bool,
    actor: Any,
    notes: list[str],
) -> tuple[Source, Snapshot | None]:
    if snapshot is None and freeze:
        snapshot = snapshot_create(dataset=dataset, note="frozen for a training export", user=actor)
        notes.append(f"dataset {dataset.slug}: snapshot #{snapshot.number} frozen for this export")
    if snapshot is None:
        members = subset_members(subset=subset) if subset is not None else dataset_members(dataset=dataset)
        return Source(members=members), None
    part = 0
    if subset is not None:
        found = snapshot.parts.filter(subset_id=subset.pk).values_list("position", flat=True).first()
        if found is None:
            raise DomainError(
                f"Snapshot #{snapshot.number} of {dataset.slug} has no part for subset {subset.slug!r}; "
                "pin a newer snapshot or none.",
                code="training.bad_snapshot",
            )
        part = int(found)
    return Source(snapshot_id=snapshot.pk, part=part), snapshot


def _entries(s: dict[str, Any], *, freeze: bool, actor: Any, notes: list[str]) -> list[_Entry]:
    out: list[_Entry] = []
    for raw in s["datasets"]:
        options = {
            "role": raw["role"],
            "loss_weight": float(raw["loss_weight"]),
            "class_tokens": raw["class_tokens"],
            "overrides": raw["overrides"] or {},
            "licence": raw["licence_notes"],
        }
        if raw.get("query"):
            from apps.search.query import search_queryset

            members = search_queryset(q=raw["query"], viewer=actor)
            spec = DatasetEntry(id=raw["slug"], name=raw["slug"], repeats=int(raw["repeats"]), **options)
            entry = _Entry(spec=spec, source=Source(members=members))
            entry.count = entry.source.count()
            out.append((entry, ""))  # type: ignore[arg-type]
            continue
        if raw["dataset"] is not None:
            dataset = Dataset.objects.filter(pk=raw["dataset"]).first()
            if dataset is None:
                raise DomainError(
                    "A dataset of this session was deleted; edit the session.",
                    code="training.unknown_dataset",
                )
            subset = Subset.objects.filter(pk=raw["subset"]).first() if raw["subset"] else None
            snapshot = Snapshot.objects.filter(pk=raw["snapshot"]).first() if raw["snapshot"] else None
            source, snapshot = _source(dataset, subset, snapshot, freeze=freeze, actor=actor, notes=notes)
            slug = raw["slug"] or dataset.slug + (f"-{subset.slug}" if subset is not None else "")
            parts = [(dataset, slug, source, snapshot, subset)]
        else:
            group = DatasetGroup.objects.filter(pk=raw["group"]).first()
            if group is None:
                raise DomainError(
                    "A dataset group of this session was deleted; edit the session.",
                    code="training.unknown_dataset",
                )
            parts = []
            for flat in group_datasets(group=group):
                source, snapshot = _source(flat.dataset, None, None, freeze=freeze, actor=actor, notes=notes)
                parts.append((flat.dataset, flat.dataset.slug, source, snapshot, None))
        for dataset, slug, source, snapshot, subset in parts:
            spec = DatasetEntry(
                id=slug,
                name=dataset.name + (f" / {subset.name}" if subset is not None else ""),
                repeats=int(raw["repeats"]),
                snapshot=snapshot.number if snapshot is not None else None,
                description=dataset.description,
                **options,
            )
            entry = _Entry(spec=spec, source=source)
            entry.count = source.count()
            weights = options["overrides"].get("item_weights") or {}
            entry.weights = {int(k): float(v) for k, v in weights.items() if str(k).isdigit()}
            entry.spec = replace(entry.spec, repeats=int(raw["repeats"]))
            out.append((entry, raw["balance"]))  # type: ignore[arg-type]
    return _balanced(out)  # type: ignore[arg-type]


def _balanced(pairs: list[tuple[_Entry, str]]) -> list[_Entry]:
    """`equalize`: within a role, entries so marked get repeats ∝ 1/image count, the largest
    keeping its own repeats (docs/training.md#balancing)."""
    for role in ("train", "regularization"):
        marked = [e for e, rule in pairs if rule == "equalize" and e.spec.role == role and e.count]
        if not marked:
            continue
        largest = max(marked, key=lambda e: e.count)
        target = largest.count * largest.spec.repeats
        for entry in marked:
            entry.spec = replace(entry.spec, repeats=max(1, round(target / entry.count)))
    return [e for e, _ in pairs]


def effective_repeats(repeats: int, weight: float) -> int:
    """§8.4: max(1, round_half_even(repeats · weight))."""
    return max(1, round(repeats * weight))


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
    ctx: _Context, item_id: int, data: ChunkData, mapped: dict[int, Any]
) -> tuple[CaptionEntry, ...]:
    """An item's caption entries: mapped tags, or its effective tags, with types and ranks."""
    policy = ctx.policy
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


def _descriptions(ctx: _Context, item_id: int, data: ChunkData) -> dict[str, tuple[str, ...]]:
    desc = ctx.policy.types.get("description")
    if desc is not None and desc.zone == "excluded":
        return {}
    sets = data.descriptions.get(item_id, {})
    wanted = ctx.policy.alternates
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


def _walk(ctx: _Context, entry: _Entry, notes: list[str] | None = None) -> Iterator[_Placed]:
    """The entry's items in bundle order, chunk by chunk (one set of queries per chunk)."""
    after = ""
    spec = entry.spec
    while True:
        rows = entry.source.chunk(after, ctx.chunk)
        if not rows:
            return
        after = rows[-1][1]
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
            entries = _entries_for(ctx, item_id, data, mapped)
            descriptions = _descriptions(ctx, item_id, data)
            plan_id = "i" + sha[:12]
            weight = entry.weights.get(item_id, 1.0)
            mirror_ok, swapped = True, None
            if ctx.s["mirror"] != "never":
                mirror_ok, swapped = mirror_decide(entries, swap_allowed=ctx.policy.swap_directional)
            flip: bool | None = None
            if ctx.per_item_mirror:
                flip = mirror_ok and swapped is None
            keep = keep_count(entries, descriptions, ctx.policy) if ctx.onetrainer_exact else None
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
                caption=ItemCaption(item_id=plan_id, entries=entries, descriptions=descriptions),
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
                    caption=ItemCaption(item_id=copy_id, entries=swapped, descriptions=descriptions),
                )
            yield _Placed(item=item, flip=flip, keep=keep, copy=copy)


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
    session: TrainingSession, *, version: int | None = None, freeze: bool = True, actor: Any = None
) -> Plan:
    """The export plan of a session version (latest by default). `freeze`: entries without a
    pinned snapshot get one frozen now (an export); without it they read live members (lint,
    preview). One pass over the items counts partitions; `items()` streams them again."""
    s, row = _session_settings(session, version)
    return plan_from_settings(
        s,
        session_id=f"sess-{session.pk}",
        version=row.number,
        created=row.created_at,
        freeze=freeze,
        actor=actor,
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
) -> Plan:
    """A plan from frozen settings (`sessions.frozen`'s shape; TI sets build the same shape)."""
    base = BaseModelProfile.objects.filter(slug=s["base_model"]).first()
    if base is None:
        raise DomainError(
            f"Base model {s['base_model']!r} was deleted; edit the session.",
            code="training.unknown_base_model",
        )
    notes: list[str] = []
    policy = _caption_policy(s, base)
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
    targets = list(s["targets"])
    ctx = _Context(
        s=s,
        base=base,
        policy=policy,
        types=dict(TagType.objects.values_list("pk", "key")),
        vocabulary_id=None if prepared is not None else base.vocabulary_id,
        prepared=prepared,
        onetrainer_exact="onetrainer" in targets
        and s["prefix_mode"] == "exact"
        and textual_inversion is None,
        per_item_mirror=s["mirror"] == "per_item",
        chunk=conf.plan_chunk(),
    )
    entries = _entries(s, freeze=freeze, actor=actor, notes=notes)
    repeat_counts = {e.spec.id: _repeat_counts(e) for e in entries}
    split = {slug: len(found) >= 2 for slug, found in repeat_counts.items()}
    counts: dict[str, int] = {}
    drifted = 0
    for entry in entries:
        for placed in _walk(ctx, entry, notes):
            pid = _place(entry, placed, split[entry.spec.id])
            counts[pid] = counts.get(pid, 0) + 1 + (placed.copy is not None)
            drifted += placed.item.tags_drifted
    if drifted:
        notes.append(f"{drifted} item(s) were retagged since their snapshot; their current tags are exported")
    by_slug = {e.spec.id: e for e in entries}
    owner = {pid: by_slug[pid.split("--")[0]] for pid in counts}  # slugs never hold "--"
    partitions = [
        _partition(pid, owner[pid], counts[pid], repeat_counts[owner[pid].spec.id]) for pid in counts
    ]
    partitions.sort(key=lambda p: p.id)

    def items() -> Iterator[PlanItem]:
        for partition in partitions:
            entry = owner[partition.id]
            for placed in _walk(ctx, entry):
                if _place(entry, placed, split[entry.spec.id]) != partition.id:
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
        ),
        items=items,
        open_original=open_original,
        textual_inversion=textual_inversion,
        samples=[Sample(**sample) for sample in s["samples"]],
        item_count=sum(counts.values()),
        notes=notes,
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
