"""Image transforms: apply a recipe (crop, scale, rotate, flip, convert) to make a new item.

The parent is never modified; the result remembers its parent and exact recipe, and the same
recipe on the same parent returns the existing result.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from apps.core.exceptions import DomainError, UnprocessableError
from apps.jobs import services as job_services
from apps.jobs.models import Job, JobItem
from apps.media import conf, events
from apps.media.exceptions import MediaBombError, MediaCorruptError
from apps.media.formats import PIL_FORMATS
from apps.media.models import MediaItem
from apps.media.services import probe
from apps.media.services.animation import ANIMATION_FORMATS
from apps.media.services.batch import batches, ingest_threads, internal_error
from apps.media.services.ingest import (
    Derived,
    IngestResult,
    Origin,
    derived_name,
    media_ingest_derived,
)
from apps.media.services.recipes import (
    BUCKETS,
    MAX_UPSCALE,
    RecipeError,
    recipe_clean,
    recipe_hash,
    recipe_label,
)

_FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_ORIENT = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


logger = logging.getLogger(__name__)


class TransformError(UnprocessableError):
    default_code = "media.transform_failed"


@dataclass
class _Canvas:
    """The working image and its nominal size (what it would be without draft decoding)."""

    image: Image.Image
    width: float
    height: float

    @property
    def unit(self) -> float:
        return self.image.width / self.width


def _aspect_box(
    width: float, height: float, aspect: str, focus: list[float]
) -> tuple[float, float, float, float]:
    if aspect in BUCKETS:
        ratio = min((bw / bh for bw, bh in BUCKETS[aspect]), key=lambda r: abs(math.log(r * height / width)))
    else:
        a, b = (int(p) for p in aspect.split(":"))
        ratio = a / b
    w, h = (width, width / ratio) if width / height <= ratio else (height * ratio, height)
    x = min(max(focus[0] * width - w / 2, 0), width - w)
    y = min(max(focus[1] * height - h / 2, 0), height - h)
    return x, y, w, h


def _crop_box(width: float, height: float, step: dict[str, Any]) -> tuple[float, float, float, float]:
    """The crop rectangle in nominal pixels; raises when a pixel box leaves the image."""
    if "box" in step:
        x, y, w, h = step["box"]
        if x + w > width + 0.5 or y + h > height + 0.5:
            raise DomainError(
                f"The crop box {step['box']} reaches outside the {round(width)}×{round(height)} image.",
                code="media.box_outside",
                details={"box": step["box"], "width": round(width), "height": round(height)},
            )
        return x, y, w, h
    if "fbox" in step:
        fx, fy, fw, fh = step["fbox"]
        return fx * width, fy * height, fw * width, fh * height
    return _aspect_box(width, height, step["aspect"], step["focus"])


def _crop(canvas: _Canvas, step: dict[str, Any]) -> _Canvas:
    x, y, w, h = _crop_box(canvas.width, canvas.height, step)
    u = canvas.unit
    box = (round(x * u), round(y * u), round((x + w) * u), round((y + h) * u))
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        raise DomainError("The crop leaves no pixels.", code="media.box_empty")
    return _Canvas(canvas.image.crop(box), w, h)


def _target(canvas: _Canvas, step: dict[str, Any]) -> tuple[int, int, tuple[int, int] | None]:
    """Output size before a final centre crop (fill and buckets), and that crop's size."""
    w, h = canvas.width, canvas.height
    if "bucket" in step:
        bw, bh = min(BUCKETS[step["bucket"]], key=lambda b: abs(math.log((b[0] / b[1]) / (w / h))))
        factor = max(bw / w, bh / h)
        return max(bw, round(w * factor)), max(bh, round(h * factor)), (bw, bh)
    if "megapixels" in step:
        factor = math.sqrt(step["megapixels"] * 1e6 / (w * h))
    elif "long" in step:
        factor = step["long"] / max(w, h)
    elif "short" in step:
        factor = step["short"] / min(w, h)
    elif step["mode"] == "exact":
        return step["width"], step["height"], None
    elif step["mode"] == "fill":
        factor = max(step["width"] / w, step["height"] / h)
        return (
            max(step["width"], round(w * factor)),
            max(step["height"], round(h * factor)),
            (step["width"], step["height"]),
        )
    else:
        factor = min(step[k] / v for k, v in (("width", w), ("height", h)) if k in step)
    return max(1, round(w * factor)), max(1, round(h * factor)), None


def _check_factor(canvas: _Canvas, width: int, height: int, step: dict[str, Any]) -> bool:
    """Whether the step may run; raises for forbidden or excessive upscales."""
    factor = max(width / canvas.width, height / canvas.height)
    if factor > MAX_UPSCALE + 1e-9:
        raise DomainError(
            f"This would upscale {factor:.1f}×; at most {MAX_UPSCALE:g}× is allowed.",
            code="media.upscale_too_large",
            details={"factor": round(factor, 3)},
        )
    if width * height > conf.max_image_pixels():
        raise DomainError(
            f"The output would be {width}×{height}, over the pixel limit.", code="media.output_too_large"
        )
    if factor > 1 + 1e-9 and not step["upscale"]:
        if step["mode"] == "fit" and "bucket" not in step:
            return False  # fit never enlarges unless asked: keep the image as it is
        raise DomainError(
            f'This needs a {factor:.2f}× upscale; set "upscale": true to allow it.',
            code="media.upscale_not_allowed",
            details={"factor": round(factor, 3)},
        )
    return True


def _scale(canvas: _Canvas, step: dict[str, Any]) -> _Canvas:
    width, height, final = _target(canvas, step)
    if not _check_factor(canvas, width, height, step):
        return canvas
    image = canvas.image
    if image.size != (width, height):
        # reducing_gap: a cheap integer reduce first, then a high-quality resize of the rest.
        image = image.resize((width, height), _FILTERS[step["filter"]], reducing_gap=3.0)
    if final is not None:
        left, top = (width - final[0]) // 2, (height - final[1]) // 2
        image = image.crop((left, top, left + final[0], top + final[1]))
        width, height = final
    return _Canvas(image, width, height)


def _rotate(canvas: _Canvas, step: dict[str, Any]) -> _Canvas:
    method = {
        90: Image.Transpose.ROTATE_270,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }[step["degrees"]]
    swap = step["degrees"] != 180
    return _Canvas(
        canvas.image.transpose(method),
        *((canvas.height, canvas.width) if swap else (canvas.width, canvas.height)),
    )


def _flip(canvas: _Canvas, step: dict[str, Any]) -> _Canvas:
    method = (
        Image.Transpose.FLIP_LEFT_RIGHT if step["axis"] == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM
    )
    return _Canvas(canvas.image.transpose(method), canvas.width, canvas.height)


_APPLY = {"crop": _crop, "scale": _scale, "rotate": _rotate, "flip": _flip}


def _plan_scale(width: float, height: float, recipe: dict[str, Any]) -> float:
    """The downscale factor of the recipe's first scale step (1.0 if it has none or enlarges).

    Pixels shrink uniformly, so a draft decode at this factor loses nothing the output keeps.
    """
    for step in recipe["ops"]:
        if step["op"] == "crop":
            _, _, width, height = _crop_box(width, height, step)
        elif step["op"] == "rotate" and step["degrees"] != 180:
            width, height = height, width
        elif step["op"] == "scale":
            probe_canvas = _Canvas(_DOT, width, height)
            w, h, _final = _target(probe_canvas, step)
            return min(1.0, max(w / width, h / height))
    return 1.0


_DOT = Image.new("1", (1, 1))


def recipe_output_size(width: int, height: int, recipe: dict[str, Any]) -> tuple[int, int]:
    """The size `transform_image` gives a `width` × `height` image under a clean recipe, by its
    own arithmetic (crop boxes in nominal pixels, scale targets, the final rounding), without
    decoding anything. Steps the transform would refuse (too large an upscale) are sized as if
    allowed; only a `fit` that may not enlarge keeps the size, as the transform does."""
    w, h = float(width), float(height)
    for step in recipe["ops"]:
        if step["op"] == "crop":
            _, _, w, h = _crop_box(w, h, step)
        elif step["op"] == "rotate" and step["degrees"] != 180:
            w, h = h, w
        elif step["op"] == "scale":
            tw, th, final = _target(_Canvas(_DOT, w, h), step)
            enlarges = max(tw / w, th / h) > 1 + 1e-9
            if enlarges and not step["upscale"] and step["mode"] == "fit" and "bucket" not in step:
                continue
            w, h = map(float, final or (tw, th))
    return round(w), round(h)


def _to_output(image: Image.Image, output: dict[str, Any]) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    has_alpha = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        if output["alpha"] == "refuse":
            raise DomainError(
                "The image has an alpha channel and the recipe says alpha: refuse.",
                code="media.alpha_refused",
            )
        rgba = image.convert("RGBA")
        if output["alpha"] == "flatten":
            background = Image.new("RGBA", rgba.size, output["background"])
            image = Image.alpha_composite(background, rgba).convert("RGB")
        else:
            image = rgba
    elif image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if "mode" in output and image.mode != output["mode"]:
        if output["format"] == "jpeg" and "A" in output["mode"]:
            raise RecipeError("JPEG output cannot have an alpha channel (mode RGBA or LA).")
        image = image.convert(output["mode"])
    return image


def transform_image(source: Image.Image, recipe: dict[str, Any], *, orientation: int = 1) -> Image.Image:
    """Apply a clean recipe to an opened image (pure: nothing is stored)."""
    raw_w, raw_h = source.size
    if orientation in (5, 6, 7, 8):
        raw_w, raw_h = raw_h, raw_w
    if source.format == "JPEG":
        factor = _plan_scale(raw_w, raw_h, recipe)
        if factor < 0.5:
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below the size asked for.
            need = (math.ceil(source.width * factor), math.ceil(source.height * factor))
            source.draft(source.mode if source.mode in ("RGB", "L") else "RGB", need)
    frame = recipe["frame"]
    n_frames = getattr(source, "n_frames", 1)
    if frame >= n_frames:
        raise DomainError(
            f"Frame {frame} does not exist; the image has {n_frames} frame(s).",
            code="media.frame_out_of_range",
        )
    if frame:
        source.seek(frame)
    source.load()
    image = source if source.mode != "P" else source.convert("RGBA")
    for method in _ORIENT.get(orientation, []):
        image = image.transpose(method)
    canvas = _Canvas(image, raw_w, raw_h)
    for step in recipe["ops"]:
        canvas = _APPLY[step["op"]](canvas, step)
    image = canvas.image
    if image.size != (round(canvas.width), round(canvas.height)):
        # Only a draft-decoded image with no scale step can differ: bring it to full size.
        image = image.resize((round(canvas.width), round(canvas.height)), Image.Resampling.LANCZOS)
    return _to_output(image, recipe["output"])


def _encode(image: Image.Image, output: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    if output["format"] == "jpeg":
        image.save(buffer, "JPEG", quality=output["quality"], subsampling=0 if output["quality"] >= 90 else 2)
    elif output["format"] == "webp":
        image.save(buffer, "WEBP", quality=output["quality"], method=4)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


@dataclass(frozen=True)
class _Rendered:
    """A recipe's result, encoded, with what its derived item's rows need."""

    data: bytes
    probed: probe.Probe


def _check_kind(item: MediaItem) -> None:
    if item.kind == MediaItem.Kind.VIDEO and item.format not in ANIMATION_FORMATS:
        raise UnprocessableError(
            f"Item {item.pk} is a video; capture frames from it first (POST /api/media/{item.pk}/frames), "
            "then transform the frames.",
            code="media.not_an_image",
        )


def _prepare(item: MediaItem, recipe: Any) -> tuple[dict[str, Any], str, MediaItem | None]:
    """The cleaned recipe, its hash and the existing result of it, if any (database reads)."""
    _check_kind(item)
    clean = recipe_clean(recipe)
    digest = recipe_hash(clean)
    # An id-only probe of (parent, recipe_hash): no ORDER BY, no wide row unless it is there.
    found = list(MediaItem.objects.filter(parent=item, recipe_hash=digest).values_list("pk", flat=True)[:1])
    existing = MediaItem.objects.get(pk=found[0]) if found else None
    if existing is None and PIL_FORMATS.get(item.format) is None:
        raise UnprocessableError(
            f"Items in {item.format} format cannot be transformed.", code="media.not_an_image"
        )
    return clean, digest, existing


def _render(storage_key: str, item_format: str, clean: dict[str, Any]) -> _Rendered:
    """Decode, transform, encode, thumbnail and phash: storage reads and pixels only, no database
    and no global state (the bomb limit is checked here, not through the warnings filters, which
    are process-wide), so it runs on any thread (docs/architecture.md#media-pipelines)."""
    try:
        with (
            default_storage.open(storage_key, "rb") as handle,
            Image.open(handle, formats=[PIL_FORMATS[item_format]]) as source,
        ):
            if source.width * source.height > (Image.MAX_IMAGE_PIXELS or math.inf):
                raise MediaBombError("The image is too large to decode safely.")
            orientation = source.getexif().get(0x0112, 1)
            result = transform_image(source, clean, orientation=orientation)
    except FileNotFoundError as exc:
        raise UnprocessableError(
            "The original file is missing from storage.", code="media.file_missing"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaBombError("The image is too large to decode safely.") from exc
    except OSError as exc:
        raise MediaCorruptError(f"The original could not be decoded ({exc}).") from exc
    data = _encode(result, clean["output"])
    width, height, mode, has_alpha = result.width, result.height, result.mode, "A" in result.getbands()
    # Encoded, the result is needed no more: shrink it in place into the thumbnail (no copy).
    thumbnail = result
    thumbnail.thumbnail((conf.thumbnail_size(),) * 2, Image.Resampling.LANCZOS, reducing_gap=2.0)
    if thumbnail.mode not in ("RGB", "RGBA"):
        thumbnail = thumbnail.convert("RGB")
    probed = probe.Probe(
        kind="image",
        format=clean["output"]["format"],
        width=width,
        height=height,
        mode=mode,
        bit_depth=8,
        has_alpha=has_alpha,
        thumbnail=thumbnail,
        phash=probe.phash64(thumbnail),
    )
    return _Rendered(data, probed)


def _store(
    item: MediaItem,
    clean: dict[str, Any],
    digest: str,
    rendered: _Rendered,
    *,
    added_by: Any,
    job_id: int | None,
) -> IngestResult:
    """The derived item's file, rows, lineage and inherited tags (the calling thread's database)."""
    with transaction.atomic():
        outcome = media_ingest_derived(
            data=rendered.data,
            probed=rendered.probed,
            added_by=added_by,
            origin=_origin(item, job_id),
            derived=_derived(item, clean, digest),
        )
        if not outcome.duplicate:
            events.send_item_derived(item=outcome.item, parent=item, relation="parent")
    return outcome


def _derived(item: MediaItem, clean: dict[str, Any], digest: str) -> Derived:
    return Derived(
        kind="image",
        parent_id=item.pk,
        recipe=clean,
        recipe_hash=digest,
        name=derived_name(item.name, recipe_label(clean)),
        artist=item.artist,
        source=item.source,
    )


def _origin(item: MediaItem, job_id: int | None) -> Origin:
    return Origin(kind="transform", original_filename=item.name, import_job_id=job_id)


def media_item_transform(
    *, item: MediaItem, recipe: Any, added_by: Any = None, job_id: int | None = None
) -> IngestResult:
    """Make (or find) the item that `recipe` turns `item` into; the parent is never modified.

    The result inherits the parent's tags as a `derived` tag set.
    """
    clean, digest, existing = _prepare(item, recipe)
    if existing is not None:
        return IngestResult(item=existing, duplicate=True)
    rendered = _render(item.storage_key, item.format, clean)
    return _store(item, clean, digest, rendered, added_by=added_by, job_id=job_id)


Transformed = IngestResult | Exception


BULK_JOB_KIND = "media.transform_bulk"
BULK_TASK_NAME = "media.transform_bulk"
BULK_MAX_ITEMS = 100_000


def media_transform_bulk_start(*, ids: Any, recipe: Any, added_by: Any = None) -> Job:
    """Validate the recipe and the id list, then queue one job applying it to every item."""
    clean = recipe_clean(recipe)
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise DomainError("ids must be a non-empty list of item ids.", code="media.invalid_ids")
    if len(ids) > BULK_MAX_ITEMS:
        raise DomainError(f"At most {BULK_MAX_ITEMS:,} items per job.", code="media.too_many_items")
    unique = list(dict.fromkeys(ids))
    found = set(MediaItem.objects.filter(pk__in=unique).values_list("pk", flat=True))
    missing = [i for i in unique if i not in found]
    if missing:
        raise DomainError(
            f"No such items: {', '.join(map(str, missing[:20]))}.",
            code="media.not_found",
            details={"missing": missing[:100]},
        )
    return job_services.job_start(
        title="Bulk transform",
        kind=BULK_JOB_KIND,
        task=BULK_TASK_NAME,
        created_by=added_by,
        params={"ids": unique, "recipe": clean},
        total=len(unique),
    )


def media_transform_bulk_run(*, job_id: int) -> None:
    """Transform each item of the job, recording one JobItem per input; resumable. The pixel
    work runs on every core and the rows of each batch of results, with the batch's JobItems,
    in one transaction (`media_item_transform_batches`)."""
    from django.contrib.auth import get_user_model

    from apps.media.services.transform_batches import Batch, media_item_transform_batches

    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    done = job_services.job_done_seqs(job=job)
    todo = [(seq, item_id) for seq, item_id in enumerate(job.params["ids"]) if seq not in done]
    seqs = {item_id: seq for seq, item_id in todo}
    recipe = job.params["recipe"]

    def pairs() -> Iterator[tuple[MediaItem, Any]]:
        for chunk in batches(todo, BULK_CHUNK):
            found = MediaItem.objects.in_bulk([item_id for _, item_id in chunk])
            for _, item_id in chunk:  # a deleted item passes through (recipe None)
                yield (found[item_id], recipe) if item_id in found else (MediaItem(pk=item_id), None)

    def record(batch_: Batch) -> None:
        job_services.job_items_record(
            job=job,
            outcomes=[_bulk_outcome(job, seqs[item.pk], item.pk, outcome) for item, outcome in batch_],
        )

    results = media_item_transform_batches(
        pairs(), added_by=user, job_id=job.pk, threads=ingest_threads(), record=record
    )
    try:
        for _ in results:
            if job.cancel_requested:  # job_items_record refreshes it
                break
    finally:
        results.close()
    job_services.job_finish(job=job, result={"counts": Job.objects.get(pk=job.pk).counts})


BULK_CHUNK = 64  # items read per query in a bulk transform job


def _bulk_outcome(job: Job, seq: int, item_id: int, outcome: Transformed | None) -> job_services.ItemOutcome:
    label = f"item {item_id}"
    if outcome is None:
        outcome = DomainError("The item was deleted.", code="media.not_found")
    if isinstance(outcome, Exception):
        if isinstance(outcome, DomainError):
            error = outcome
        else:
            logger.error("bulk transform job %s: item %s failed", job.pk, item_id, exc_info=outcome)
            error = internal_error()
        return job_services.ItemOutcome(seq=seq, input=label, status=JobItem.Status.FAILED, error=error)
    status = JobItem.Status.DUPLICATE if outcome.duplicate else JobItem.Status.CREATED
    return job_services.ItemOutcome(seq=seq, input=label, status=status, object_id=outcome.item.pk)
