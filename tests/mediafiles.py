"""Real media files for tests, made with Pillow and the bundled ffmpeg (cached per session)."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw

IMAGE_FORMATS = ["jpeg", "png", "gif", "webp", "bmp", "tiff", "avif", "heic"]
# Encoder settings known to work with the bundled ffmpeg (docs/operations.md).
VIDEO_RECIPES: dict[str, list[str]] = {
    "mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mp4"],
    "mov": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mov"],
    "webm": ["-c:v", "libvpx", "-b:v", "500k", "-c:a", "libvorbis", "-f", "webm"],
    "mkv": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "matroska"],
    "avi": ["-c:v", "mpeg4", "-c:a", "mp3", "-f", "avi"],
    "wmv": ["-c:v", "wmv2", "-c:a", "wmav2", "-f", "asf"],
    "vob": ["-c:v", "mpeg2video", "-b:v", "2M", "-c:a", "mp2", "-ar", "48000", "-f", "vob"],
}


def picture(size: tuple[int, int] = (320, 240), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A deterministic, non-uniform picture (distinct seeds give distinct content and hashes)."""
    image = Image.new("RGB", size, (20 + seed * 37 % 200, 80, 140))
    draw = ImageDraw.Draw(image)
    w, h = size
    for i in range(8):
        x = (seed * 53 + i * 41) % max(1, w - 20)
        y = (seed * 29 + i * 67) % max(1, h - 20)
        draw.rectangle(
            [x, y, x + w // 5, y + h // 5], fill=((i * 31 + seed) % 255, (i * 97) % 255, (seed * 7 + i) % 255)
        )
    draw.ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], outline=(255, 255, 255), width=3)
    return image.convert(mode) if mode != "RGB" else image


def image_bytes(
    fmt: str = "jpeg",
    *,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    alpha: bool = False,
    animated: bool = False,
    exif_orientation: int | None = None,
) -> bytes:
    """Encode a picture in `fmt` (see IMAGE_FORMATS)."""
    image = picture(size, seed, "RGBA" if alpha else "RGB")
    out = io.BytesIO()
    kwargs: dict = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    if animated:
        frames = [picture(size, seed + i) for i in range(3)]
        frames[0].save(
            out,
            {"gif": "GIF", "webp": "WEBP"}[fmt],
            save_all=True,
            append_images=frames[1:],
            duration=100,
            loop=0,
        )
        return out.getvalue()
    if fmt == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    pil = {
        "jpeg": "JPEG",
        "png": "PNG",
        "gif": "GIF",
        "webp": "WEBP",
        "bmp": "BMP",
        "tiff": "TIFF",
        "avif": "AVIF",
        "heic": "HEIF",
    }[fmt]
    if fmt in ("jpeg", "bmp") and image.mode == "RGBA":
        image = image.convert("RGB")
    image.save(out, pil, **kwargs)
    return out.getvalue()


def bigtiff_bytes(*, size: tuple[int, int] = (320, 240), seed: int = 0) -> bytes:
    """A BigTIFF (signature `II+`, 64-bit offsets), as Pillow writes it."""
    out = io.BytesIO()
    picture(size, seed).save(out, "TIFF", big_tiff=True)
    return out.getvalue()


def deep_grey(size: tuple[int, int] = (160, 120), seed: int = 0) -> Image.Image:
    """A 16-bit greyscale picture (mode I;16) using the whole 0–65535 range, distinct per seed."""
    grey = picture(size, seed, "L")
    return grey.convert("I").point(lambda v: v * 257).convert("I;16")


def deep_grey_bytes(fmt: str = "png", *, size: tuple[int, int] = (160, 120), seed: int = 0) -> bytes:
    out = io.BytesIO()
    deep_grey(size, seed).save(out, {"png": "PNG", "tiff": "TIFF"}[fmt])
    return out.getvalue()


def animation_frames(count: int, size: tuple[int, int] = (96, 64)) -> list[Image.Image]:
    """Frames that differ clearly from each other: frame i is a flat colour with i marked on it."""
    frames = []
    for i in range(count):
        image = Image.new("RGB", size, ((i * 67) % 256, (i * 149 + 40) % 256, (255 - i * 23) % 256))
        draw = ImageDraw.Draw(image)
        draw.rectangle([4 + (i * 7) % (size[0] - 24), 4, 20 + (i * 7) % (size[0] - 24), 20], fill=(0, 0, 0))
        frames.append(image)
    return frames


def animation_bytes(fmt: str, delays: list[int], *, size: tuple[int, int] = (96, 64)) -> bytes:
    """An animated GIF or WebP with one frame per delay (ms), frames from `animation_frames`."""
    frames = animation_frames(len(delays), size)
    out = io.BytesIO()
    kwargs = {"lossless": True} if fmt == "webp" else {}
    frames[0].save(
        out,
        {"gif": "GIF", "webp": "WEBP"}[fmt],
        save_all=True,
        append_images=frames[1:],
        duration=delays,
        loop=0,
        **kwargs,
    )
    return out.getvalue()


def video_file(directory: Path, fmt: str, *, seconds: float = 2.0, size: str = "320x240") -> Path:
    """Encode a short test clip (testsrc2 + sine) into `directory`, reusing an existing one."""
    path = directory / f"clip-{seconds:g}s-{size}.{fmt}"
    if not path.exists():
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-shortest",
            *VIDEO_RECIPES[fmt],
            str(path),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return path


def zip_bytes(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A zip with the given members (names used verbatim, so hostile paths are possible)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return out.getvalue()
