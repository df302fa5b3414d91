"""One batch of one scheme step: read inputs, run the backend, write outputs with provenance
(docs/taggers.md#tagging-schemes).

`batch_compute` reads the database and calls the backend (no writes, outside any transaction:
a model may take minutes); `batch_write` writes every output of the batch and its `StepOutput`
markers in the caller's transaction. Outputs are keyed so a repeat writes nothing new:

* detector → `Region(item, version, bbox)`;
* WD on the image → the item's `tagger` TagSet `<tagger>@<version>` through the tags app's one
  writer (confidence in 1/10000; the four rating scores and the marked one in the marker's
  `detail`); WD on regions → a `Region` of the WD version per box with its top character;
* captioner → `Caption(item, region, version, prompt_sha256)`;
* head / zero-shot → the item's `tagger` TagSet `<tagger>@<version>` from stored vectors
  (`scheme_vectors.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Q
from PIL import Image, ImageOps

from apps.core.exceptions import DomainError, TransientError
from apps.media.formats import PIL_FORMATS
from apps.media.models import MediaItem
from apps.taggers import conf
from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned
from apps.taggers.engine.captioner import prompt_sha256, render
from apps.taggers.models import Caption, Region, StepOutput, Tagger, TaggerVersion, quantize
from apps.taggers.services import scheme_vectors
from apps.taggers.services.scheme_outputs import Resolved, step_slot, tag_names_resolve, tagger_sets_write
from apps.taggers.services.schemes import Step, character_step
from apps.tags.models import TagAssignment, TagSet

logger = logging.getLogger(__name__)

BACKENDS_KEPT = 4
_backends: OrderedDict[str, Any] = OrderedDict()


@dataclass
class StepContext:
    """What a batch needs to know about its step and run."""

    step: Step
    steps: dict[str, Step]
    tagger: Tagger
    version: TaggerVersion
    versions: dict[str, TaggerVersion]  # every step's resolved version
    fingerprint: str
    force: bool = False
    memo: dict[str, Any] = field(default_factory=dict)  # what a job loads once (matrix, head)


@dataclass
class BatchResult:
    """Per item: the computed output (kind-specific) or an error message."""

    outputs: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    sent: int = 0  # inputs handed to the backend (images, crops or prompts)
    resolved: Resolved | None = None  # WD names → tag ids, from `batch_prepare`


def step_fingerprint(step: Step, steps: dict[str, Step], versions: dict[str, TaggerVersion]) -> str:
    """The input fingerprint of a step: its kind, input, prompt, params and the resolved
    versions of everything upstream. Two schemes running the same version on the same input
    share outputs; a promoted upstream version makes the step's output due again."""
    from apps.taggers.services.schemes import ancestors

    upstream = {key: versions[key].pk for key in sorted(ancestors(steps, step.key)) if key in versions}
    body = {
        "kind": step.kind,
        "input": step.source,
        "ref_version": versions[step.ref].pk if step.ref in versions else None,
        "prompt": step.prompt,
        "params": step.params,
        "upstream": upstream,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --- backends -------------------------------------------------------------------------------------


def model_dir(tagger: Tagger) -> Path:
    root = conf.model_dir()
    if not tagger.model_dir:
        raise ModelNotProvisioned(
            f"Tagger {tagger.name!r} has no model directory; set model_dir (relative to "
            f"BAGGINTAG_MODEL_DIR, e.g. wd/{tagger.name}).",
            details={"tagger": tagger.name},
        )
    path = (root / tagger.model_dir).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ModelNotProvisioned(f"Tagger {tagger.name!r}: model_dir must stay inside BAGGINTAG_MODEL_DIR.")
    return path


def backend_for(tagger: Tagger, version: TaggerVersion) -> Any:
    """A loaded backend, kept per (kind, directory, params, version) in a small LRU."""
    backend_name = str(tagger.params.get("backend", ""))
    key = json.dumps([tagger.kind, tagger.model_dir, backend_name, tagger.params, version.pk], sort_keys=True)
    if key in _backends:
        _backends.move_to_end(key)
        return _backends[key]
    backend = _backend_new(tagger, backend_name)
    while len(_backends) >= BACKENDS_KEPT:
        _, old = _backends.popitem(last=False)
        old.unload()
    _backends[key] = backend
    return backend


def _backend_new(tagger: Tagger, backend_name: str) -> Any:
    from apps.taggers.engine.wd import onnx_device

    device = onnx_device()
    if tagger.kind == Tagger.Kind.WD_ONNX:
        from apps.taggers.engine.wd import WDBackend

        backend: Any = WDBackend()
        backend.load(
            BackendSpec(kind=tagger.kind, model_ref=str(model_dir(tagger)), options={"name": tagger.name}),
            device,
        )
        return backend
    if tagger.kind == Tagger.Kind.DETECTOR:
        from apps.taggers.engine.detector import FixedDetector, OnnxDetector

        backend = FixedDetector() if backend_name == "fixed" else OnnxDetector()
        spec_ref = "" if backend_name == "fixed" else str(model_dir(tagger))
        backend.load(BackendSpec(kind=tagger.kind, model_ref=spec_ref, options={"name": tagger.name}), device)
        return backend
    if tagger.kind == Tagger.Kind.CAPTIONER:
        from apps.taggers.engine.captioner import EchoCaptioner, HttpCaptioner

        if backend_name == "local-dir":  # a local HF model folder, offline
            from apps.taggers.engine.hf_captioner import LocalCaptioner

            backend = LocalCaptioner()
            options = {**tagger.params, "name": tagger.name}
            backend.load(
                BackendSpec(kind=tagger.kind, model_ref=str(model_dir(tagger)), options=options), device
            )
            return backend
        if backend_name == "echo":
            backend = EchoCaptioner()
        elif backend_name in ("", "http"):
            backend = HttpCaptioner()
        else:
            raise DomainError(
                f"Captioner {tagger.name!r}: backend {backend_name!r} is not supported "
                "(http, local-dir, echo).",
                code="taggers.backend_unsupported",
            )
        backend.load(BackendSpec(kind=tagger.kind, model_ref="", options=tagger.params), device)
        return backend
    raise DomainError(
        f"{tagger.kind} taggers cannot run in a scheme yet.", code="taggers.backend_unsupported"
    )


# --- inputs ---------------------------------------------------------------------------------------


def load_image(item: MediaItem) -> Image.Image:
    """The item's first frame, EXIF-transposed, decoded (not yet converted)."""
    fmt = PIL_FORMATS.get(item.format)
    if fmt is None:
        raise DomainError(
            f"Item {item.pk}: format {item.format} has no pixels to tag.", code="taggers.no_pixels"
        )
    try:
        with default_storage.open(item.storage_key, "rb") as handle:
            image = Image.open(handle, formats=[fmt])
            image.load()
    except FileNotFoundError as exc:
        raise DomainError(f"Item {item.pk}: the stored file is missing.", code="media.file_missing") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DomainError(
            f"Item {item.pk}: the file could not be decoded ({exc}).", code="media.corrupt"
        ) from exc
    return ImageOps.exif_transpose(image)


def _images(ids: Sequence[int], result: BatchResult) -> dict[int, Image.Image]:
    out: dict[int, Image.Image] = {}
    for item in MediaItem.objects.filter(pk__in=ids).only("pk", "format", "storage_key"):
        try:
            out[item.pk] = load_image(item)
        except DomainError as err:
            result.errors[item.pk] = err.message
    for missing in set(ids) - set(out) - set(result.errors):
        result.errors[missing] = "The item no longer exists."
    return out


def regions_of(version: TaggerVersion, ids: Sequence[int]) -> dict[int, list[Region]]:
    out: dict[int, list[Region]] = {i: [] for i in ids}
    for region in Region.objects.filter(tagger_version=version, item_id__in=ids).order_by("item_id", "id"):
        out[region.item_id].append(region)
    return out


def step_tags(
    tagger: Tagger, version: TaggerVersion, ids: Sequence[int], source: str = "image"
) -> dict[int, list[str]]:
    """A tagging step's tags per item (the tagger set of that version and input), best first,
    display names."""
    from apps.taggers.engine.wd import display_name

    slot = step_slot(tagger, version, source)
    rows = (
        TagAssignment.objects.filter(
            media_item_id__in=ids,
            tagset__kind=TagSet.Kind.TAGGER,
            tagset__slot=slot,
            state=TagAssignment.State.CURRENT,
        )
        .order_by("media_item_id", "-confidence", "tag__name")
        .values_list("media_item_id", "tag__name", "tag__display_name", "tag__keep_underscore")
    )
    out: dict[int, list[str]] = {i: [] for i in ids}
    for item_id, name, display, keep in rows:
        custom = display if display and display != name else ""
        out[item_id].append(custom or (name if keep else display_name(name)))
    return out


# --- compute --------------------------------------------------------------------------------------


def batch_compute(ctx: StepContext, ids: Sequence[int]) -> BatchResult:
    """Run the step's backend on these items (no database writes). A TransientError is retried
    up to 3 times by the caller; a DomainError from the backend fails the step."""
    result = BatchResult()
    step = ctx.step
    if step.kind in scheme_vectors.VECTOR_KINDS:  # stored vectors, no pixels
        result.outputs, result.errors, result.sent = scheme_vectors.compute(ctx, ids)
        return result
    backend = backend_for(ctx.tagger, ctx.version)
    images = _images(ids, result)
    if step.kind == Tagger.Kind.DETECTOR:
        order = sorted(images)
        boxes = backend.run([images[i] for i in order], step.params)
        result.outputs = dict(zip(order, boxes, strict=True))
        result.sent = len(order)
    elif step.kind == Tagger.Kind.WD_ONNX and step.source == "regions":
        _compute_wd_regions(ctx, backend, images, result)
    elif step.kind == Tagger.Kind.WD_ONNX:
        inputs = _masked(ctx, images) if step.source == "image_masked" else images
        order = sorted(inputs)
        outs = backend.run([inputs[i] for i in order], step.params)
        result.outputs = {i: (o, backend.labels) for i, o in zip(order, outs, strict=True)}
        result.sent = len(order)
    elif step.kind == Tagger.Kind.CAPTIONER:
        _compute_captions(ctx, backend, images, result)
    return result


def _masked(ctx: StepContext, images: dict[int, Image.Image]) -> dict[int, Image.Image]:
    from apps.taggers.engine.detector import mask

    regions = regions_of(ctx.versions[ctx.step.ref], list(images))
    return {i: mask(img, [r.box for r in regions[i]]) for i, img in images.items()}


def _compute_wd_regions(
    ctx: StepContext, backend: Any, images: dict[int, Image.Image], result: BatchResult
) -> None:
    from apps.taggers.engine.detector import crop

    regions = regions_of(ctx.versions[ctx.step.ref], list(images))
    flat = [(i, r) for i in sorted(images) for r in regions[i]]
    outs = backend.run([crop(images[i], r.box) for i, r in flat], ctx.step.params) if flat else []
    per_item: dict[int, list[tuple[Region, str, float]]] = {i: [] for i in images}
    for (item_id, region), out in zip(flat, outs, strict=True):
        best = max(out.character.items(), key=lambda p: (p[1], -p[0]), default=None)
        chosen = best if best is not None and best[1] > out.thresholds["character"] else None
        label = backend.labels[chosen[0]].name if chosen else ""
        per_item[item_id].append((region, label, float(best[1]) if best else 0.0))
    result.outputs = per_item
    result.sent = len(flat)


def _prompts(ctx: StepContext, ids: list[int]) -> dict[int, list[tuple[Region | None, str]]]:
    """Per item: (region or None, rendered prompt)."""
    step, steps = ctx.step, ctx.steps
    tag_steps = sorted({arg for name, arg in _placeholders(step.prompt) if name == "tags" and arg})
    taggers = {t.pk: t for t in Tagger.objects.filter(pk__in=[steps[s].tagger_id for s in tag_steps])}
    tags = {
        s: step_tags(taggers[steps[s].tagger_id], ctx.versions[s], ids, steps[s].source) for s in tag_steps
    }
    out: dict[int, list[tuple[Region | None, str]]] = {}
    if step.source != "regions":
        for i in ids:
            out[i] = [(None, render(step.prompt, {s: tags[s][i] for s in tag_steps}, None))]
        return out
    regions = regions_of(ctx.versions[step.ref], ids)
    who = character_step(steps, step.key)
    labels: dict[tuple[int, tuple[int, ...]], str] = {}
    if who is not None:
        for r in Region.objects.filter(tagger_version=ctx.versions[who], item_id__in=ids):
            labels[(r.item_id, (r.x0, r.y0, r.x1, r.y1))] = r.label
    from apps.taggers.engine.wd import display_name

    for i in ids:
        out[i] = []
        for region in regions[i]:
            label = labels.get((i, (region.x0, region.y0, region.x1, region.y1)), "")
            text = render(
                step.prompt, {s: tags[s][i] for s in tag_steps}, display_name(label) if label else ""
            )
            out[i].append((region, text))
    return out


def _placeholders(prompt: str) -> list[tuple[str, str | None]]:
    from apps.taggers.engine.captioner import placeholders

    return placeholders(prompt)


def _compute_captions(
    ctx: StepContext, backend: Any, images: dict[int, Image.Image], result: BatchResult
) -> None:
    from apps.taggers.engine.detector import crop

    ids = sorted(images)
    prompts = _prompts(ctx, ids)
    done = set()
    if not ctx.force:
        done = set(
            Caption.objects.filter(tagger_version=ctx.version, item_id__in=ids).values_list(
                "item_id", "region_key", "prompt_sha256"
            )
        )
    masked = _masked(ctx, images) if ctx.step.source == "image_masked" else images
    work: list[tuple[int, Region | None, str]] = []
    for i in ids:
        for region, prompt in prompts[i]:
            if (i, region.pk if region else 0, prompt_sha256(prompt)) not in done:
                work.append((i, region, prompt))
    pictures = [crop(images[i], region.box) if region else masked[i] for i, region, _ in work]
    texts = backend.run(pictures, [p for _, _, p in work], ctx.step.params) if work else []
    result.outputs = {i: [] for i in ids}
    for (i, region, prompt), text in zip(work, texts, strict=True):
        result.outputs[i].append((region, prompt, text))
    result.sent = len(work)


def batch_compute_retrying(ctx: StepContext, ids: Sequence[int], attempts: int = 3) -> BatchResult:
    """`batch_compute`, retrying transient failures (an endpoint blip) up to `attempts` times;
    after that the batch's items count as failed (the run ends `partial`, a re-run retries them)."""
    last = ""
    for _ in range(attempts):
        try:
            return batch_compute(ctx, ids)
        except TransientError as exc:
            last = str(exc)
            logger.warning("scheme step %s: transient failure (%s); retrying", ctx.step.key, exc)
    return BatchResult(errors=dict.fromkeys(ids, f"Gave up after {attempts} transient failures: {last}"))


# --- write ----------------------------------------------------------------------------------------


def batch_prepare(ctx: StepContext, result: BatchResult) -> None:
    """Before the batch's transaction: the tags a WD step on the whole image will write, created
    now in an open vocabulary, so the transaction locks items, sets, then tags in that order."""
    if ctx.step.kind == Tagger.Kind.WD_ONNX and ctx.step.source != "regions":
        result.resolved = tag_names_resolve(ctx.tagger, result.outputs)


def batch_write(ctx: StepContext, result: BatchResult, actor_id: int | None) -> dict[str, int]:
    """Write the batch's outputs and markers (caller's transaction, after `batch_prepare`);
    returns counters."""
    step = ctx.step
    counts = {"items_done": 0, "items_failed": len(result.errors), "sent": result.sent}
    if step.kind == Tagger.Kind.DETECTOR:
        counts["regions"] = _write_regions(ctx, result.outputs)
    elif step.kind == Tagger.Kind.WD_ONNX and step.source == "regions":
        counts["regions"] = _write_region_labels(ctx, result.outputs)
    elif step.kind == Tagger.Kind.WD_ONNX:
        if result.resolved is None:
            raise RuntimeError("batch_prepare must run before batch_write")
        counts.update(
            tagger_sets_write(
                ctx.tagger,
                ctx.version,
                result.outputs,
                result.resolved,
                source=step.source,
                actor_id=actor_id,
            )
        )
    elif step.kind == Tagger.Kind.CAPTIONER:
        counts["captions"] = _write_captions(ctx, result.outputs)
    elif step.kind in scheme_vectors.VECTOR_KINDS:
        counts.update(scheme_vectors.write(ctx, result.outputs, actor_id))
    details = {i: _detail(step, out) for i, out in result.outputs.items()}
    StepOutput.objects.bulk_create(
        [
            StepOutput(tagger_version=ctx.version, item_id=i, fingerprint=ctx.fingerprint, detail=details[i])
            for i in sorted(result.outputs)
        ],
        ignore_conflicts=True,
    )
    counts["items_done"] = len(result.outputs)
    return counts


def _detail(step: Step, out: Any) -> dict[str, Any]:
    if step.kind == Tagger.Kind.WD_ONNX and step.source != "regions":
        output, labels = out
        return {
            "ratings": {labels[i].name: round(s, 4) for i, s in output.ratings.items()},
            "rating": labels[output.rating].name if output.rating >= 0 else "",
        }
    return {}


def _write_regions(ctx: StepContext, outputs: dict[int, Any]) -> int:
    rows = [
        Region(
            item_id=i,
            tagger_version=ctx.version,
            x0=quantize(b.x0),
            y0=quantize(b.y0),
            x1=quantize(b.x1),
            y1=quantize(b.y1),
            label=b.label[:200],
            score=b.score,
        )
        for i, boxes in outputs.items()
        for b in boxes
    ]
    if ctx.force and outputs:
        keep = Q()
        for r in rows:
            keep |= Q(item_id=r.item_id, x0=r.x0, y0=r.y0, x1=r.x1, y1=r.y1)
        stale = Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs))
        (stale.exclude(keep) if rows else stale).delete()
    before = Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count()
    Region.objects.bulk_create(rows, ignore_conflicts=True)
    return Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count() - before


def _write_region_labels(ctx: StepContext, outputs: dict[int, list[tuple[Region, str, float]]]) -> int:
    rows = [
        Region(
            item_id=i,
            tagger_version=ctx.version,
            x0=r.x0,
            y0=r.y0,
            x1=r.x1,
            y1=r.y1,
            label=label[:200],
            score=score,
        )
        for i, found in outputs.items()
        for r, label, score in found
    ]
    if ctx.force and outputs:
        Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).delete()
    before = Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count()
    Region.objects.bulk_create(rows, ignore_conflicts=True)
    return Region.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count() - before


def _write_captions(ctx: StepContext, outputs: dict[int, list[tuple[Region | None, str, str]]]) -> int:
    rows = [
        Caption(
            item_id=i,
            region=region,
            region_key=region.pk if region else 0,
            tagger_version=ctx.version,
            text=text,
            prompt_sha256=prompt_sha256(prompt),
        )
        for i, found in outputs.items()
        for region, prompt, text in found
    ]
    if ctx.force:
        for row in rows:
            Caption.objects.filter(
                item_id=row.item_id,
                region_key=row.region_key,
                tagger_version=ctx.version,
                prompt_sha256=row.prompt_sha256,
            ).update(text=row.text)
    before = Caption.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count()
    Caption.objects.bulk_create(rows, ignore_conflicts=True)
    return Caption.objects.filter(tagger_version=ctx.version, item_id__in=list(outputs)).count() - before
