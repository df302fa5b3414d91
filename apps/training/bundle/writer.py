"""Write a Plan to a bundle folder (docs/export-bundle.md).

Contract: `dest` is an empty folder the caller made (a temp name beside the final place); the
caller renames it on success and deletes it on any exception, so a failed export leaves nothing
half-written. Items stream from `plan.items()` in (partition, id) order, in a bounded window on
a thread pool; memory does not grow with the number of items."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.training.bundle import diffusers, kohya, manifest, onetrainer
from apps.training.bundle.check import check_bundle, is_error
from apps.training.bundle.context import STEM, Context, PartitionFacts, load_logic
from apps.training.bundle.errors import BundleError, finding
from apps.training.bundle.images import (
    ImageDecodeError,
    ImageOut,
    ImageTask,
    export_image,
    link_or_copy,
    parse_colour,
)
from apps.training.bundle.portable import json_line, json_text, normalise_root
from apps.training.bundle.report import Stats, export_report, readme
from apps.training.bundle.sorting import SortedLines
from apps.training.bundle.tagger import TaggerPart
from apps.training.logic import tokens
from apps.training.plan import PlanItem

PORTABLE = Path(__file__).with_name("portable.py")
Progress = Callable[[int, int], None]


@dataclass
class BundleResult:
    images: int
    file_count: int  # files written (counted, never listed: memory stays flat)
    findings: list[Any] = field(default_factory=list)  # warnings of the file checks
    stats: Stats | None = None

    @property
    def item_count(self) -> int:
        return self.images


def write_bundle(
    plan: Any,
    dest: Path,
    *,
    progress: Progress | None = None,
    lint: Sequence[Any] = (),
    logic: Any = None,
    workers: int | None = None,
) -> BundleResult:
    """Write the bundle of `plan` into `dest` (an empty or missing folder; made here); raise
    BundleError on a bad plan, an unreadable image or a failed file check. The caller renames
    `dest` into place on success and deletes it on any exception. `lint`: the export's lint
    findings, listed in EXPORT_REPORT.md; `logic`: the logic modules (tests inject them)."""
    ctx = Context(plan, logic or load_logic())
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    try:
        root_ok = normalise_root(plan.export.target_root) == plan.export.target_root
    except ValueError:
        root_ok = False
    if not root_ok:
        raise BundleError(
            [finding(ctx, "B02", "target_root must be absolute, /-separated, without a trailing /")]
        )
    writer = _Writer(ctx, dest, progress)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        writer.stream(pool)
    if writer.stats.images == 0:
        raise BundleError(
            [finding(ctx, "B04", "the plan has no items: add images to the session's datasets")]
        )
    extra = writer.configs(list(lint))
    findings = [*extra, *check_bundle(dest, logic=ctx.logic)]
    errors = [f for f in findings if is_error(f)]
    if errors:
        raise BundleError(errors)
    files = _count_files(str(dest))
    return BundleResult(images=writer.stats.images, file_count=files, findings=findings, stats=writer.stats)


class _Writer:
    def __init__(self, ctx: Context, dest: Path, progress: Progress | None) -> None:
        self.ctx, self.dest, self.progress = ctx, dest, progress
        self.stats = Stats()
        self.plan = ctx.plan
        self.background = parse_colour(self.plan.image_policy.alpha_background)
        image = self.plan.image_policy
        buckets = ctx.logic.buckets
        self.kohya_fit = lambda w, h: buckets.kohya_predict(
            w,
            h,
            resolution=image.resolution,
            min_=image.bucket_min,
            max_=image.bucket_max,
            step=image.bucket_step,
            no_upscale=image.no_upscale,
        )
        self.ot_fit = lambda w, h: buckets.onetrainer_predict(
            w, h, resolution=image.resolution, quantum=self.plan.base_model.onetrainer_quantum
        )
        self.last: tuple[str, str] | None = None
        self.made: set[str] = set()
        self.token = self.plan.textual_inversion.token if self.plan.textual_inversion else ""
        self.ti_lines = 0
        self.ti_keeps: set[int] = set()
        self.done = 0
        self.tagger = TaggerPart(dest) if ctx.targets("wd-tagger") else None

    def folder(self, relative: str) -> Path:
        if relative not in self.made:
            (self.dest / relative).mkdir(parents=True, exist_ok=True)
            self.made.add(relative)
        return self.dest / relative

    def _task(self, item: PlanItem) -> ImageTask:
        ctx, partition = self.ctx, self.ctx.partition(item.partition)
        train = partition.role == "train"
        diffusers_to = None
        if ctx.diffusers_images() and train:
            diffusers_to = self.folder(f"diffusers/images/{item.partition}")
        focus = self.plan.image_policy.crop == "focus"
        masked = ctx.masked(partition)
        return ImageTask(
            item_id=item.id,
            storage_key=item.storage_key,
            folder=self.folder(ctx.folder(partition)),
            mirror=item.mirror_of is not None,
            resize=self.plan.export.images == "bucket",
            square=self.plan.textual_inversion.resolution if self.plan.textual_inversion and train else 0,
            focus=item.focus,
            diffusers_to=diffusers_to,
            diffusers_flip=bool(partition.flip) and item.mirror_of is None,
            diffusers_square=self.plan.image_policy.resolution if focus else 0,
            mask_to=self.folder(f"masks/{item.partition}") if masked else None,
        )

    def _check_item(self, item: PlanItem) -> None:
        try:
            self.ctx.partition(item.partition)
        except KeyError:
            raise BundleError(
                [finding(self.ctx, "B03", f"unknown partition {item.partition}", item.id)]
            ) from None
        key = (item.partition, item.id)
        if not STEM.match(item.id) or (self.last is not None and key <= self.last):
            raise BundleError([finding(self.ctx, "L12", "item id not a stem or items not sorted", item.id)])
        self.last = key
        if item.width > 0 and item.height > 0:  # L08: an image kohya cannot bucket (no_upscale)
            _fit, found = self.ctx.logic.lint.kohya_fit(
                item.width, item.height, self.plan.image_policy, item=item.id
            )
            if found:
                raise BundleError(found)

    def stream(self, pool: ThreadPoolExecutor) -> None:
        window = (pool._max_workers or 1) * 4
        pending: collections.deque[tuple[PlanItem, Future[ImageOut]]] = collections.deque()
        meta = SortedLines(self.dest / "data/metadata.jsonl")
        dmeta = (
            SortedLines(self.dest / "diffusers/images/metadata.jsonl")
            if self.ctx.diffusers_images()
            else None
        )
        args = (self.plan.open_original, self.kohya_fit, self.background)
        with (self.dest / "items.jsonl").open("w", encoding="utf-8", newline="\n") as items:
            try:
                for item in self.plan.items():
                    self._check_item(item)
                    pending.append((item, pool.submit(export_image, self._task(item), *args)))
                    if len(pending) >= window:
                        self._finish(*pending.popleft(), items, meta, dmeta)
                while pending:
                    self._finish(*pending.popleft(), items, meta, dmeta)
            except BaseException as error:
                for _, future in pending:
                    future.cancel()
                meta.discard()
                if self.tagger is not None:
                    self.tagger.discard()
                if dmeta is not None:
                    dmeta.discard()
                if isinstance(error, ImageDecodeError):
                    raise BundleError([finding(self.ctx, "B01", str(error), error.item_id)]) from error
                raise
        if self.ctx.targets("diffusers"):
            meta.close()
            if dmeta is not None:
                dmeta.close()
        else:
            meta.discard()

    def _finish(
        self,
        item: PlanItem,
        future: Future[ImageOut],
        items: Any,
        meta: SortedLines,
        dmeta: SortedLines | None,
    ) -> None:
        out = future.result()
        ctx = self.ctx
        partition = ctx.partition(item.partition)
        folder = ctx.folder(partition)
        policy = ctx.policy(item.dataset)
        rendered = self._captions(item, partition, folder, policy)
        if partition.role == "train" and ctx.targets("diffusers"):
            row = self._diffusers_row(item, policy)
            meta.add(
                f"{item.partition}/{out.name}",
                json_line({"file_name": f"{item.partition}/{out.name}", **row}),
            )
            rendered["diffusers"] = sum(1 for t in row["text_variants"] if t)
            if dmeta is not None:
                self._diffusers_copies(item, out, row, dmeta)
        if self.tagger is not None and partition.role == "train":
            self.tagger.add(item, self.dest / folder / out.name, out.name)
        if out.square_png is not None and self.token:
            self._ti(item, out.square_png, policy)
        kfit, ofit = self.kohya_fit(out.width, out.height), self.ot_fit(out.width, out.height)
        buckets = {"kohya": list(kfit.bucket), "onetrainer": list(ofit.bucket)}
        record = manifest.item_record(
            item,
            file=f"{folder}/{out.name}",
            sha256=out.sha256,
            size=(out.width, out.height),
            transform=out.transform,
            buckets=buckets,
            rendered=rendered,
        )
        items.write(json_line(record) + "\n")
        self._count(item, out, kfit, ofit)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.plan.item_count)

    def _render(self, item: PlanItem, policy: Any, renderer: str, class_tokens: str = "") -> Any:
        rendered = self.ctx.logic.captions.render(
            item.caption, policy, renderer, seed=self.plan.seed, token=self.token
        )
        self.stats.materialized[renderer] = int(bool(rendered.materialized))
        self.stats.trimmed += rendered.trimmed
        if not [line for line in rendered.lines if line] and class_tokens:
            return type(rendered)(lines=(class_tokens,), keep=rendered.keep)
        if not rendered.lines or not all(rendered.lines):
            message = (
                f"the {renderer} caption would be empty or hold an empty line (add tags or class tokens)"
            )
            raise BundleError([finding(self.ctx, "L01", message, item.id)])
        return rendered

    def _captions(self, item: PlanItem, partition: Any, folder: str, policy: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        base = self.dest / folder
        if self.ctx.targets("kohya"):
            r = self._render(item, policy, "kohya", partition.class_tokens)
            _write_text(base / f"{item.id}.caption", "".join(f"{line}\n" for line in r.lines))
            counts["kohya"] = len(r.lines)
        if self.ctx.targets("onetrainer"):
            r = self._render(item, policy, "neutral", partition.class_tokens)
            _write_text(base / f"{item.id}.txt", "".join(f"{line}\n" for line in r.lines))
            counts["neutral"] = len(r.lines)
            facts = self.ctx.facts.setdefault(item.partition, PartitionFacts())
            facts.max_neutral_lines = max(facts.max_neutral_lines, len(r.lines))
            if r.keep is not None:
                facts.keeps.add(r.keep)
            facts.keep_entries.update(self.ctx.logic.captions.keep_entries(item.caption, policy))
        self.ctx.facts.setdefault(item.partition, PartitionFacts()).images += 1
        return counts

    def _diffusers_row(self, item: PlanItem, policy: Any) -> dict[str, Any]:
        row = self.ctx.logic.captions.diffusers_row(item.caption, policy, seed=self.plan.seed)
        self.stats.tokens[tokens.count_tokens(row["text"]) // 10 * 10] += 1
        return {
            "text": row["text"],
            "text_variants": list(row["text_variants"]),
            "tags": row["tags"],
            "dataset": item.dataset,
            "partition": item.partition,
        }

    def _diffusers_copies(
        self, item: PlanItem, out: ImageOut, row: dict[str, Any], dmeta: SortedLines
    ) -> None:
        folder = self.folder(f"diffusers/images/{item.partition}")
        names = list(out.diffusers)
        if self.plan.image_policy.crop != "focus":
            link_or_copy(self.dest / self.ctx.folder(item.partition) / out.name, folder / out.name)
            names.append(out.name)
        self.stats.export_flipped += sum(1 for n in out.diffusers if "-m." in n and item.mirror_of is None)
        for name in sorted(names):
            key = f"{item.partition}/{name}"
            dmeta.add(key, json_line({"file_name": key, **row}))

    def _ti(self, item: PlanItem, square: bytes, policy: Any) -> None:
        base = f"ti/{self.token}"
        images, captioned, ot = (
            self.folder(f"{base}/{sub}") for sub in ("images", "captioned", "onetrainer")
        )
        name = f"{item.id}.png"
        if (images / name).exists():  # the same picture in two training partitions: once
            return
        with open(images / name, "xb") as fh:
            fh.write(square)
        link_or_copy(images / name, captioned / name)
        link_or_copy(images / name, ot / name)
        r = self._render(item, policy, "ti_kohya")
        _write_text(captioned / f"{item.id}.caption", "".join(f"{line}\n" for line in r.lines))
        r = self._render(item, policy, "ti_a1111")
        _write_text(captioned / f"{item.id}.txt", r.lines[0] if r.lines else "")
        r = self._render(item, policy, "ti_onetrainer")
        _write_text(ot / f"{item.id}.txt", "".join(f"{line}\n" for line in r.lines))
        self.ti_lines = max(self.ti_lines, len(r.lines))
        if r.keep is not None:
            self.ti_keeps.add(r.keep)

    def _count(self, item: PlanItem, out: ImageOut, kfit: Any, ofit: Any) -> None:
        stats = self.stats
        stats.images += 1
        if out.transform:
            stats.converted.update(out.transform)
        else:
            stats.copied += 1
        stats.per_partition[item.partition] += 1
        stats.per_dataset[item.dataset] += 1
        stats.buckets["kohya"][f"{kfit.bucket[0]}x{kfit.bucket[1]}"] += 1
        stats.buckets["onetrainer"][f"{ofit.bucket[0]}x{ofit.bucket[1]}"] += 1
        stats.crop_loss(item.id, out.crop_loss)
        stats.upscaled += int(out.upscale)
        for entry in item.caption.entries:
            stats.tags[entry.text] += 1
            stats.types[entry.type] += 1
            if entry.type == "trigger":
                self.ctx.triggers[entry.text] = self.ctx.triggers.get(entry.text, 0) + 1
        stats.sources[_site(item.lineage.source_url)] += 1
        if item.lineage.artist:
            stats.artists[item.lineage.artist] += 1
        if item.mirror_of is not None:
            stats.mirrored_count += 1
            stats.capped(stats.mirrored, item.id)
        if item.tags_drifted:
            stats.drifted_count += 1
            stats.capped(stats.drifted, item.id)

    def configs(self, lint: list[Any]) -> list[Any]:
        """Write the configs, manifests and reports; return the writer's own warnings (L18)."""
        ctx, files = self.ctx, {}
        path_files: list[str] = []
        warnings: list[Any] = []
        if self.tagger is not None:
            tagger_files, warnings = self.tagger.finish()
            self.stats.tagger_images, self.stats.tagger_labels = self.tagger.written, self.tagger.categories
            files.update(tagger_files)
            lint = [*lint, *warnings]
        if ctx.targets("kohya"):
            files.update(kohya.files(ctx))
            path_files += ["kohya/args.toml", "kohya/dataset.toml"]
        if ctx.targets("onetrainer"):
            files.update(onetrainer.files(ctx))
            path_files += ["onetrainer/concepts.json", "onetrainer/config.json"]
        if ctx.targets("diffusers"):
            name, text = diffusers.train_script(ctx)
            files[name] = text
        if self.token:
            files.update(self._ti_configs())
            path_files += [
                f"ti/{self.token}/{n}"
                for n in ("kohya_dataset.toml", "onetrainer_concepts.json", "onetrainer_config.json")
            ]
        files["session.json"] = json_text(manifest.session(ctx, sorted(path_files)))
        files["EXPORT_REPORT.md"] = export_report(ctx, self.stats, lint)
        files["README.md"] = readme(ctx, self.stats)
        files["scripts/relocate.py"] = PORTABLE.read_text(encoding="utf-8")
        for name, text in sorted(files.items()):
            self.folder(str(Path(name).parent))
            _write_text(self.dest / name, text)
            if name.endswith((".sh", ".py")):
                os.chmod(self.dest / name, 0o755)  # noqa: S103 - launch scripts are executable
        return warnings

    def _ti_configs(self) -> dict[str, str]:
        ctx, token = self.ctx, self.token
        files = kohya.ti_files(ctx, token)
        keep = min(self.ti_keeps) if len(self.ti_keeps) == 1 else 1
        files.update(onetrainer.ti_files(ctx, token, max_lines=self.ti_lines, keep=keep))
        files[f"ti/{token}/diffusers_ti.sh"] = diffusers.ti_script(ctx, token)
        files[f"ti/{token}/a1111_template.txt"] = diffusers.a1111_template(ctx)
        files[f"ti/{token}/a1111_settings.md"] = diffusers.a1111_settings(ctx, token)
        return files


def _count_files(folder: str) -> int:
    """Files under `folder`, counted while scanning (os.walk would list each folder whole: 300,000
    names of one partition are ~25 MiB)."""
    count = 0
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                count += _count_files(entry.path)
            else:
                count += 1
    return count


def _write_text(path: Path, text: str) -> None:
    with open(path, "xb") as out:
        out.write(text.encode("utf-8"))


def _site(url: str) -> str:
    if "://" not in url:
        return url or "upload"
    return url.split("://", 1)[1].split("/", 1)[0].lower().removeprefix("www.")
