"""Image files of a bundle: copy as is, or decode once and write the bucket-sized, flattened,
8-bit, upright, optionally flipped file (docs/export-bundle.md#images).

One call of `export_image` handles one plan item on a worker thread: Pillow releases the GIL
while it decodes, resamples and encodes, so a thread pool uses every core without pickling the
plan. Outputs are a pure function of the source bytes and the settings below (A06)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps

# Fixed encoder settings: same source, same bytes (docs/export-bundle.md#images).
PNG_SAVE: dict[str, Any] = {"format": "PNG", "compress_level": 4, "optimize": False}
JPEG_SAVE: dict[str, Any] = {"format": "JPEG", "quality": 95, "subsampling": 0, "optimize": False}
COPY_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
LOSSY_FORMATS = {"JPEG", "WEBP"}
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0

Predict = Callable[[int, int], Any]  # (w, h) → BucketFit (bucket, resized, crop_loss, upscale)


class ImageWriteError(RuntimeError):
    """Writing an output file failed (disk full, permissions): not the source's fault."""


class ImageDecodeError(Exception):
    """The source could not be read as an image; carries the item id."""

    def __init__(self, item_id: str, reason: str) -> None:
        self.item_id = item_id
        super().__init__(f"{item_id}: {reason}")


@dataclass(frozen=True)
class ImageTask:
    item_id: str
    storage_key: str
    folder: Path  # where the file goes (created by the caller)
    mirror: bool = False  # write the horizontally flipped picture
    resize: bool = True  # images == "bucket": resize to the kohya bucket (never upscaled)
    square: int = 0  # > 0: also return an R×R square (TI sets, focus crops) in `extras`
    focus: tuple[float, float, float, float] | None = None
    diffusers_to: Path | None = None  # diffusers/images/<partition>/ when written for this item
    diffusers_flip: bool = False  # also write a flipped `<id>-m` copy there
    diffusers_square: int = 0  # > 0 (crop = focus): write R×R focus squares there, not the file
    mask_to: Path | None = None  # masks/<partition>/: write the kohya loss mask of the file there


@dataclass
class ImageOut:
    name: str  # file name written in task.folder
    sha256: str
    width: int
    height: int
    transform: tuple[str, ...]
    crop_loss: float  # kohya's predicted crop loss on the source size
    source_size: tuple[int, int]
    upscale: bool
    square_png: bytes | None = None  # the R×R square, PNG bytes (TI sets)
    diffusers: list[str] = field(default_factory=list)  # files the worker wrote in diffusers_to


def parse_colour(text: str) -> tuple[int, int, int]:
    value = text.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6:
        raise ValueError(f"alpha_background must be #rgb or #rrggbb, got {text!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _png_bit_depth(data: bytes) -> int:
    return data[24] if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 else 8


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def copyable(image: Image.Image, data: bytes, orientation: int) -> bool:
    """8-bit PNG/JPEG/WebP, RGB or L, upright, no alpha, one frame (docs/export-bundle.md#images)."""
    return (
        image.format in COPY_FORMATS
        and image.mode in ("RGB", "L")
        and "transparency" not in image.info
        and orientation == 1
        and not getattr(image, "is_animated", False)
        and (image.format != "PNG" or _png_bit_depth(data) == 8)
    )


def to_rgb_or_l(image: Image.Image, background: tuple[int, int, int], steps: list[str]) -> Image.Image:
    """8-bit RGB or L, alpha flattened on `background`."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        steps.append("to_8bit")
        scale = 1 / 257 if mode.startswith("I;16") or _max_value(image) > 255 else 1.0
        return image.convert("I").point(lambda v: v * scale + 0.5).convert("L")
    alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
    if alpha:
        steps.append("flatten_alpha")
        rgba = image.convert("RGBA")
        base = Image.new("RGB", rgba.size, background)
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    if mode in ("RGB", "L"):
        return image
    steps.append("to_rgb" if mode != "1" else "to_l")
    return image.convert("L" if mode == "1" else "RGB")


def _max_value(image: Image.Image) -> float:
    extrema = image.getextrema()
    return float(extrema[1]) if isinstance(extrema[1], int | float) else 255.0


def _encode(image: Image.Image, lossy: bool) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if lossy:
        image.save(buffer, **JPEG_SAVE)
        return buffer.getvalue(), ".jpg"
    image.save(buffer, **PNG_SAVE)
    return buffer.getvalue(), ".png"


def _write(path: Path, data: bytes) -> str:
    try:
        with open(path, "xb") as out:
            out.write(data)
    except OSError as error:
        raise ImageWriteError(f"cannot write {path.name}: {error}") from error
    return hashlib.sha256(data).hexdigest()


def focus_square(
    image: Image.Image, size: int, focus: tuple[float, float, float, float] | None
) -> Image.Image:
    """The largest square centred on the focus box (or the picture's centre), clamped, at size²."""
    width, height = image.size
    side = min(width, height)
    cx, cy = width / 2, height / 2
    if focus is not None:
        cx, cy = (focus[0] + focus[2]) / 2 * width, (focus[1] + focus[3]) / 2 * height
    left = min(max(round(cx - side / 2), 0), width - side)
    top = min(max(round(cy - side / 2), 0), height - side)
    return image.resize(
        (size, size), RESAMPLE, box=(left, top, left + side, top + side), reducing_gap=REDUCING_GAP
    )


def _decode(
    image: Image.Image, request: tuple[int, int] | None, orientation: int, steps: list[str]
) -> Image.Image:
    """Load (JPEG: at the smallest draft scale still ≥ `request`, given upright) and turn upright."""
    if request is not None and image.format == "JPEG":
        w, h = request if orientation < 5 else (request[1], request[0])
        image.draft(image.mode, (w, h))
    image.load()
    if orientation != 1:
        steps.append("exif_transpose")
        image = ImageOps.exif_transpose(image)
    return image


def export_image(
    task: ImageTask,
    open_original: Callable[[str], IO[bytes]],
    predict: Predict,
    background: tuple[int, int, int],
) -> ImageOut:
    """Write one item's image file (and its square / flipped extras). Raises ImageDecodeError."""
    try:
        with open_original(task.storage_key) as stream:
            data = stream.read()
        image = Image.open(io.BytesIO(data))
        return _export(task, data, image, predict, background)
    except (ImageDecodeError, ImageWriteError):
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(task.item_id, f"cannot read the source image ({error})") from error


def _export(
    task: ImageTask, data: bytes, image: Image.Image, predict: Predict, background: tuple[int, int, int]
) -> ImageOut:
    orientation = _orientation(image)
    width, height = image.size if orientation < 5 else (image.size[1], image.size[0])
    fit = predict(width, height)
    resize = task.resize and tuple(fit.bucket) != (width, height) and not fit.upscale
    as_is = copyable(image, data, orientation) and not resize and not task.mirror
    extra = task.diffusers_to is not None and (task.diffusers_flip or task.diffusers_square > 0)
    needs_pixels = not as_is or task.square > 0 or extra
    steps: list[str] = []
    out = ImageOut("", "", width, height, (), float(fit.crop_loss), (width, height), bool(fit.upscale))
    lossy = image.format in LOSSY_FORMATS and (resize or task.mirror)
    pixels = None
    if needs_pixels:
        request = tuple(fit.resized) if resize else None
        pixels = to_rgb_or_l(_decode(image, request, orientation, steps), background, steps)
        if resize:
            pixels = _resize_to_bucket(pixels, fit)
            steps.append(f"bucket:{fit.bucket[0]}x{fit.bucket[1]}")
    if as_is:
        ext = COPY_FORMATS[str(image.format)]
        out.name = task.item_id + ext
        out.sha256 = _write(task.folder / out.name, data)
    else:
        assert pixels is not None
        main = pixels.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if task.mirror else pixels
        if task.mirror:
            steps.append("flip")
        encoded, ext = _encode(main, lossy)
        out.name = task.item_id + ext
        out.sha256 = _write(task.folder / out.name, encoded)
        out.width, out.height = main.size
    upright = None
    if pixels is not None:
        upright = pixels.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if task.mirror else pixels
    if upright is not None and extra and task.diffusers_to is not None:
        _diffusers_extras(task, out, upright, task.diffusers_to)
    if upright is not None and task.square > 0:
        out.square_png = _encode(focus_square(upright, task.square, task.focus), False)[0]
    if task.mask_to is not None:
        mask = loss_mask(task.focus, (out.width, out.height), fit if resize else None, mirror=task.mirror)
        _write(task.mask_to / f"{task.item_id}.png", _encode(mask, False)[0])
    out.transform = tuple(steps)
    return out


def loss_mask(
    focus: tuple[float, float, float, float] | None,
    size: tuple[int, int],
    fit: Any = None,
    *,
    mirror: bool = False,
) -> Image.Image:
    """A kohya loss mask at the written file's `size` (docs/export-bundle.md#masks): white (train)
    inside the focus box, black outside; all white without a box or when the bucket crop leaves
    none of it. `fit`: the bucket fit the file was resized with (None: written at source size);
    the box goes through the same resize-then-centre-crop as the pixels. `mirror`: the file is
    the flipped copy and `focus` is already the flipped picture's box."""
    width, height = size
    white = Image.new("L", size, 255)
    if focus is None:
        return white
    x0, y0, x1, y1 = (1.0 - focus[2], focus[1], 1.0 - focus[0], focus[3]) if mirror else focus
    if fit is not None:  # _resize_to_bucket's geometry: resize to `resized`, centre-crop `bucket`
        (bw, bh), (rw, rh) = fit.bucket, fit.resized
        ox, oy = (rw - bw) // 2, (rh - bh) // 2
        box = (x0 * rw - ox, y0 * rh - oy, x1 * rw - ox, y1 * rh - oy)
    else:
        box = (x0 * width, y0 * height, x1 * width, y1 * height)
    left, right = (min(max(round(v), 0), width) for v in (box[0], box[2]))
    top, bottom = (min(max(round(v), 0), height) for v in (box[1], box[3]))
    if right <= left or bottom <= top:
        return white
    mask = Image.new("L", size, 0)
    mask.paste(255, (left, top, right, bottom))
    return mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else mask


def _diffusers_extras(task: ImageTask, out: ImageOut, picture: Image.Image, folder: Path) -> None:
    """diffusers/images/ files the worker writes: focus squares (crop = focus), flipped copies."""
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    if task.diffusers_square > 0:
        square = focus_square(picture, task.diffusers_square, task.focus)
        versions = [("", square), ("-m", square.transpose(flip))] if task.diffusers_flip else [("", square)]
        lossy = False
    else:
        versions = [("-m", picture.transpose(flip))]
        lossy = out.name.endswith((".jpg", ".webp"))
    for suffix, version in versions:
        encoded, ext = _encode(version, lossy)
        name = f"{task.item_id}{suffix}{ext}"
        _write(folder / name, encoded)
        out.diffusers.append(name)


def _resize_to_bucket(image: Image.Image, fit: Any) -> Image.Image:
    """kohya's resize-then-centre-crop, as one resample of the source box that maps to the bucket."""
    (bw, bh), (rw, rh) = fit.bucket, fit.resized
    sx, sy = image.size[0] / rw, image.size[1] / rh
    x0, y0 = (rw - bw) // 2, (rh - bh) // 2
    box = (x0 * sx, y0 * sy, (x0 + bw) * sx, (y0 + bh) * sy)
    return image.resize((bw, bh), RESAMPLE, box=box, reducing_gap=REDUCING_GAP)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link `target` to `source` where the filesystem allows, else copy the bytes."""
    try:
        os.link(source, target)
    except OSError:
        with open(source, "rb") as src, open(target, "xb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
