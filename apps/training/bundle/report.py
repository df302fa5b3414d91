"""EXPORT_REPORT.md and the README.md dataset card, from counters gathered while the items
stream (bounded memory: counts, not item lists, except capped samples) (docs/export-bundle.md#report)."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from apps.training.bundle.context import UPSTREAM, Context

LIST_CAP = 50  # items named per list in the report; the rest are counted
CROP_OUTLIER = 0.20


@dataclass
class Stats:
    images: int = 0
    copied: int = 0
    converted: Counter[str] = field(default_factory=Counter)
    per_partition: Counter[str] = field(default_factory=Counter)
    per_dataset: Counter[str] = field(default_factory=Counter)
    buckets: dict[str, Counter[str]] = field(
        default_factory=lambda: {"kohya": Counter(), "onetrainer": Counter()}
    )
    tokens: Counter[int] = field(default_factory=Counter)  # bin (multiples of 10) → images
    tags: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    artists: Counter[str] = field(default_factory=Counter)
    crop: list[tuple[float, str]] = field(default_factory=list)  # heap of the worst crop losses
    crop_over: int = 0
    mirrored: list[str] = field(default_factory=list)
    mirrored_count: int = 0
    export_flipped: int = 0
    drifted: list[str] = field(default_factory=list)
    drifted_count: int = 0
    upscaled: int = 0
    trimmed: int = 0
    materialized: Counter[str] = field(default_factory=Counter)
    tagger_images: int = 0  # wd-tagger/images/ files
    tagger_labels: Counter[int] = field(default_factory=Counter)  # WD category → labels

    def crop_loss(self, item_id: str, loss: float) -> None:
        if loss > CROP_OUTLIER:
            self.crop_over += 1
        entry = (loss, item_id)
        if len(self.crop) < LIST_CAP:
            heapq.heappush(self.crop, entry)
        elif entry > self.crop[0]:
            heapq.heapreplace(self.crop, entry)

    def capped(self, bucket: list[str], item_id: str) -> None:
        if len(bucket) < LIST_CAP:
            bucket.append(item_id)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _histogram(counter: Counter[str]) -> list[str]:
    return _table(("size", "images"), sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


DELIVERY = (
    ("flex shuffle", "N", "N", "M"),
    ("one flex drop rate", "N (TI: M)", "N RANDOM", "M"),
    ("per-type rates; droppable prefix/suffix", "M", "M", "M"),
    ("fixed suffix", "N", "A (whitelist)", "M"),
    ("atomic group", "N ;;;", "A (; -joined)", "M"),
    ("weighted alternates", "N lines", "N lines", "N list"),
    ("description whole-drop", "M", "M", "M"),
    ("caption dropout", "N (not TI)", "A dropout_probability", "N empty entries"),
    ("per-item mirroring / weight", "partitions", "partitions", "flipped copies / -"),
)


def export_report(ctx: Context, stats: Stats, lint: list[Any]) -> str:
    plan = ctx.plan
    out = [f"# Export report: {plan.session_name}", ""]
    out += [
        f"Session `{plan.session_id}` version {plan.session_version}, seed {plan.seed}, Baggintag {plan.app_version}."  # noqa: E501
    ]
    out += [f"Upstreams: {', '.join(f'{k} {v}' for k, v in UPSTREAM.items())}.", ""]
    out += [
        f"{stats.images} image files: {stats.copied} copied as is, {sum(stats.converted.values())} written anew."  # noqa: E501
    ]
    out += [f"Targets: {', '.join(plan.targets)}.", ""]
    out += ["## Delivery (N native, A approximated, M materialised, - not delivered)", ""]
    out += _table(("behaviour", "kohya", "OneTrainer", "diffusers t2i"), list(DELIVERY))
    renderers = ", ".join(
        f"{k}: {'materialised' if v else 'native'}" for k, v in sorted(stats.materialized.items())
    )
    out += [
        "",
        f"Renderings: {renderers or 'none'}. Flex items trimmed to the token budget: {stats.trimmed}.",
    ]
    if ctx.targets("diffusers"):
        out += ["diffusers gets no regularisation images (not delivered)."]
    out += _wildcard_section(ctx)
    out += ["", "## Lint", ""]
    out += [
        f"- {getattr(f, 'code', '?')} {getattr(f, 'severity', '')}: {getattr(f, 'message', f)}" for f in lint
    ] or ["None."]
    for name in ("kohya", "onetrainer"):
        out += ["", f"## Buckets ({name})", "", *_histogram(stats.buckets[name])]
    out += ["", "## Tokens (primary caption, CLIP BPE)", ""]
    out += _table(("tokens", "images"), [(f"{b}–{b + 9}", n) for b, n in sorted(stats.tokens.items())])
    out += ["", "## Crop loss", "", f"{stats.crop_over} images over {CROP_OUTLIER:.0%}; worst:", ""]
    out += _table(
        ("item", "crop loss"), [(i, f"{loss:.1%}") for loss, i in sorted(stats.crop, reverse=True)[:20]]
    )
    out += ["", f"Upscaled by kohya (smaller than their bucket): {stats.upscaled}."]
    out += ["", "## Mirroring", "", _mirroring(ctx, stats)]
    out += ["", "## Drifted items", ""]
    out += [
        f"{stats.drifted_count} items' tags changed since their snapshot: {', '.join(stats.drifted) or 'none'}."  # noqa: E501
    ]
    if ctx.targets("wd-tagger"):
        out += ["", "## wd-tagger", ""]
        out += [
            f"{stats.tagger_images} images in `wd-tagger/images/`, "
            f"{sum(stats.tagger_labels.values())} labels in `wd-tagger/selected_tags.csv`; labels per WD "
            "category (0 general, 1 artist, 3 copyright, 4 character, 5 meta, 9 rating):",
            "",
        ]
        out += _table(("category", "labels"), sorted(stats.tagger_labels.items()))
    if plan.textual_inversion:
        out += ["", "## A1111", "", f"See `ti/{plan.textual_inversion.token}/a1111_settings.md`."]
    if plan.notes:
        out += ["", "## Planning notes", "", *[f"- {n}" for n in plan.notes]]
    return "\n".join(out) + "\n"


def _wildcard_section(ctx: Context) -> list[str]:
    """§8.3 residual dropout error per flex tag type, when a kohya dataset asks for wildcards:
    requested p_t, trainer rate r, m of n empty choices, achieved 1 - (1 - m/n)(1 - r), residual."""
    wanted = [
        d.id
        for d in ctx.plan.datasets
        if d.role == "train" and ctx.policy(d.id).kohya_per_type_dropout == "wildcard"
    ]
    if not ctx.targets("kohya") or not wanted:
        return []
    out = ["", "## kohya wildcard dropout (residual error)", ""]
    groups: dict[tuple[Any, ...], list[str]] = {}
    for dataset in wanted:
        rows = ctx.logic.captions.wildcard_rows(ctx.policy(dataset))
        groups.setdefault(tuple(rows) if rows is not None else (), []).append(dataset)
    for rows, datasets in groups.items():
        label = f"Datasets {', '.join(datasets)}: "
        if not rows:
            out += [
                label
                + "no wildcards (one flex rate, lines materialised, or no shuffle and no trainer rate).",
                "",
            ]
            continue
        out += [label + f"trainer rate r = {rows[0].trainer_rate!r}.", ""]
        out += _table(
            ("tag type", "requested p_t", "m/n", "achieved", "residual"),
            [
                (
                    r.type,
                    repr(r.requested),
                    f"{r.empty}/{r.options}",
                    f"{r.achieved:.6f}",
                    f"{r.residual:+.6f}",
                )
                for r in rows
            ],
        )
        out += [""]
    out += ["Tags holding `|`, `{`, `}` or `,` cannot be wildcards: they drop at r only."]
    return out


def _mirroring(ctx: Context, stats: Stats) -> str:
    mirror = ctx.plan.image_policy.mirror
    flip = [p.id for p in ctx.written() if p.flip]
    parts = [f"Policy `{mirror}`."]
    if flip:
        parts.append(
            f"Flipped at random by kohya (`flip_aug`) and OneTrainer (`enable_random_flip`): {', '.join(flip)}."  # noqa: E501
        )
    if stats.mirrored_count:
        parts.append(
            f"Pre-flipped copies (`-m`, tags swapped) written by the export: {stats.mirrored_count} ({', '.join(stats.mirrored)})."  # noqa: E501
        )
    if stats.export_flipped:
        parts.append(f"Flipped copies for diffusers under diffusers/images/: {stats.export_flipped}.")
    if ctx.targets("diffusers"):
        parts.append("diffusers: `--random_flip`." if ctx.random_flip() else "diffusers: no random flip.")
    return " ".join(parts)


def readme(ctx: Context, stats: Stats) -> str:
    plan = ctx.plan
    out = [
        f"# {plan.session_name}",
        "",
        f"Training bundle exported by Baggintag {plan.app_version} ({plan.session_id}).",
    ]
    out += [
        f"Base model family `{plan.base_model.family}`, method `{plan.method.kind}`, targets {', '.join(plan.targets)}.",  # noqa: E501
        "",
    ]
    out += ["## Datasets", ""]
    rows = [
        (
            d.id,
            d.name,
            d.role,
            stats.per_dataset[d.id],
            d.repeats,
            "see below" if d.dataset_licence or d.licence else "not stated",
        )
        for d in plan.datasets
    ]
    out += _table(("id", "name", "role", "images", "repeats", "licence"), rows)
    out += ["", "## Licence notes", ""]
    for d in plan.datasets:
        out += [f"### {d.id} ({d.name})", ""]
        if not d.dataset_licence and not d.licence:
            out += ["No licence notes entered.", ""]
        if d.dataset_licence:
            out += ["Dataset:", "", *_quoted(d.dataset_licence), ""]
        if d.licence:
            out += ["This session:", "", *_quoted(d.licence), ""]
    out.pop()
    out += ["", "## Partitions", ""]
    out += _table(
        ("partition", "images", "repeats"),
        [(p.id, stats.per_partition[p.id], p.repeats) for p in ctx.written()],
    )
    out += ["", "## Buckets (kohya)", "", *_histogram(stats.buckets["kohya"])]
    out += ["", "## Tag types", ""]
    out += _table(("type", "uses"), sorted(stats.types.items(), key=lambda kv: (-kv[1], kv[0])))
    out += ["", "## Most used tags", ""]
    out += _table(("tag", "images"), sorted(stats.tags.items(), key=lambda kv: (-kv[1], kv[0]))[:LIST_CAP])
    out += ["", "## Sources", ""]
    out += _table(
        ("source", "images"), sorted(stats.sources.items(), key=lambda kv: (-kv[1], kv[0]))[:LIST_CAP]
    )
    out += ["", "## Artists", ""]
    out += _table(
        ("artist", "images"), sorted(stats.artists.items(), key=lambda kv: (-kv[1], kv[0]))[:LIST_CAP]
    )
    policy = plan.caption_policy
    out += ["", "## Policies", ""]
    out += [
        f"- images: resolution {plan.image_policy.resolution}, buckets {plan.image_policy.bucket_min}–"
        f"{plan.image_policy.bucket_max} step {plan.image_policy.bucket_step}, crop {plan.image_policy.crop}, "  # noqa: E501
        f"mirror {plan.image_policy.mirror}, files `{plan.export.images}`",
        f"- captions: shuffle {policy.shuffle}, caption dropout {policy.caption_dropout_rate!r}, "
        f"materialise {policy.materialize_mode} ({policy.variants} variants), max tokens {policy.max_tokens}",
    ]
    out += [
        f"- type `{k}`: zone {t.zone}, order {t.zone_order}, drop {t.drop_rate!r}"
        for k, t in sorted(policy.types.items())
    ]
    out += [
        "",
        "Licence notes are those entered on the datasets and on the session's dataset entries; check "
        "them before publishing.",
    ]
    return "\n".join(out) + "\n"


def _quoted(text: str) -> list[str]:
    """Notes as a Markdown block quote, their lines kept."""
    return [f"> {line}".rstrip() for line in text.strip().splitlines()]
