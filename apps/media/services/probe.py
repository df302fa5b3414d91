"""Format sniffing and metadata probes: Pillow for images, the bundled ffmpeg for videos."""

from __future__ import annotations

import io
import math
import operator
import re
import subprocess
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageFile

from apps.core.exceptions import UnprocessableError
from apps.media import conf
from apps.media.exceptions import MediaBombError, MediaCorruptError
from apps.media.formats import EXTENSIONS, MIME_TYPES, PIL_FORMATS
from apps.media.services.animation import ANIMATION_FORMATS, animation_timing

ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BZh")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_BIT_DEPTH = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}


def configure_pillow() -> None:
    """Register HEIF and make Pillow's bomb check use our limit (warning at 1×, error at 2×)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = conf.max_image_pixels()


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, format) from the first bytes of a file, or None; the name is never trusted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "avi"
    if head[:2] == b"BM" and len(head) >= 26:
        return "image", "bmp"
    # Classic TIFF (42) and BigTIFF (43): Pillow's TIFF plug-in reads both byte orders of each.
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image", "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        compatible = {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
        if brand in _AVIF_BRANDS:
            return "image", "avif"
        if brand in _HEIF_BRANDS or (brand == b"mif1" and compatible & _HEIF_BRANDS):
            return "image", "heic"
        return "video", "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "video", "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head[:64] else "mkv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video", "wmv"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "video", "vob"
    if head.startswith(b"FLV\x01"):
        return "video", "flv"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "video", "mpegts"
    return None


@dataclass
class Probe:
    """What a file is, measured from its content."""

    kind: str
    format: str
    width: int = 0
    height: int = 0
    mode: str = ""
    bit_depth: int = 0
    has_alpha: bool = False
    animated: bool = False
    frame_count: int = 1
    duration_ms: int | None = None
    fps_milli: int | None = None
    codec: str = ""
    start_ms: int = 0
    rotation: int = 0
    thumbnail: Image.Image | None = field(default=None, repr=False)
    phash: int | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]


def _bit_depth(mode: str) -> int:
    return _BIT_DEPTH.get(mode, 8)


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)


def _open(path: Path, pil_format: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path, formats=[pil_format])


def _verify_is_noop(image: Image.Image) -> bool:
    """True when the plug-in has no integrity check of its own (JPEG, GIF, WebP, BMP, …).

    Pillow's base `ImageFile.verify` only closes the file; reopening after it would parse the
    headers a second time for nothing. Plug-ins that do check (PNG's CRCs) override it.
    """
    return type(image).verify is ImageFile.ImageFile.verify


@dataclass
class _Decoded:
    mode: str
    n_frames: int
    animated: bool
    has_alpha: bool
    orientation: int
    thumbnail: Image.Image


def _decode(image: Image.Image, fmt: str, thumb_size: int) -> _Decoded:
    """Decode every pixel (truncation shows here) and build the thumbnail."""
    mode = image.mode
    n_frames = getattr(image, "n_frames", 1)
    animated = bool(getattr(image, "is_animated", False))
    has_alpha = _has_alpha(image)
    if fmt == "jpeg":
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale; keep ≥ the thumbnail on each axis.
        # draft() must come after open and before load; it is a no-op otherwise.
        image.draft("RGB", _draft_size(image.size, thumb_size))
    image.load()
    orientation = image.getexif().get(0x0112, 1)
    thumbnail = _make_thumbnail(image, thumb_size, orientation=orientation)
    return _Decoded(
        mode=mode,
        n_frames=n_frames,
        animated=animated,
        has_alpha=has_alpha,
        orientation=orientation,
        thumbnail=thumbnail,
    )


def probe_image(path: Path, fmt: str, *, thumb_size: int) -> Probe:
    """Measure an image and build its thumbnail; decodes JPEGs at reduced scale (draft)."""
    pil_format = PIL_FORMATS[fmt]
    limit = conf.max_image_pixels()
    try:
        decoded: _Decoded | None = None
        with _open(path, pil_format) as image:
            width, height = image.size
            if width * height > limit:
                raise MediaBombError(
                    f"The image is {width}×{height} = {width * height:,} pixels; the limit is {limit:,}.",
                    details={"width": width, "height": height, "limit": limit},
                )
            if width == 0 or height == 0:
                raise MediaCorruptError("The image has no pixels.")
            if _verify_is_noop(image):
                decoded = _decode(image, fmt, thumb_size)
            else:
                image.verify()  # consumes the file: decode from a fresh open below
        if decoded is None:
            with _open(path, pil_format) as image:
                decoded = _decode(image, fmt, thumb_size)
        if decoded.orientation in (5, 6, 7, 8):
            # 90° EXIF rotations swap the dimensions people see.
            width, height = height, width
    except (MediaBombError, MediaCorruptError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaBombError(
            f"The image declares too many pixels to decode safely ({exc}).",
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        raise MediaCorruptError(
            f"The {fmt.upper()} file is damaged or truncated and cannot be decoded ({exc}).",
        ) from exc
    if decoded.animated and fmt in ANIMATION_FORMATS:
        return _animation_probe(path, fmt, width, height, decoded)
    return Probe(
        kind="image",
        format=fmt,
        width=width,
        height=height,
        mode=decoded.mode,
        bit_depth=_bit_depth(decoded.mode),
        has_alpha=decoded.has_alpha,
        animated=decoded.animated,
        frame_count=decoded.n_frames,
        thumbnail=decoded.thumbnail,
        phash=phash64(decoded.thumbnail),
    )


def _animation_probe(path: Path, fmt: str, width: int, height: int, decoded: _Decoded) -> Probe:
    """An animated GIF or WebP is a video (timed by its frame delays) whose first frame is its
    picture: the thumbnail, the hash and what a transform reads by default."""
    timing = animation_timing(path, fmt)
    thumbnail = decoded.thumbnail
    # Pillow opens every animated WebP as RGBA; say "alpha" only when a pixel is see-through.
    has_alpha = decoded.has_alpha and (thumbnail.mode != "RGBA" or _low(thumbnail.getchannel("A")) < 255)
    return Probe(
        kind="video",
        format=fmt,
        width=width,
        height=height,
        mode=decoded.mode,
        bit_depth=8,
        has_alpha=has_alpha,
        animated=True,
        frame_count=len(timing.delays_ms),
        duration_ms=timing.duration_ms,
        fps_milli=timing.fps_milli,
        codec=fmt,
        thumbnail=thumbnail,
        phash=phash64(thumbnail),
    )


_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _draft_size(size: tuple[int, int], thumb_size: int) -> tuple[int, int]:
    """The thumbnail's own (aspect-preserving) size: the least a JPEG draft may decode.

    libjpeg's scaled decode averages in the DCT domain, so a draft at (or just above) the
    thumbnail size loses nothing visible and decodes 4-16x fewer pixels than full size.
    """
    width, height = size
    if width >= height:
        return thumb_size, max(1, math.ceil(thumb_size * height / width))
    return max(1, math.ceil(thumb_size * width / height)), thumb_size


def _extrema(image: Image.Image) -> tuple[float, float]:
    """The lowest and highest sample of a one-band image."""
    low, high = image.getextrema()
    assert isinstance(low, (int, float))
    assert isinstance(high, (int, float))
    return float(low), float(high)


def _low(image: Image.Image) -> float:
    return _extrema(image)[0]


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale deeper than 8 bits as 8-bit "L", scaled rather than clipped; others unchanged.

    16-bit samples (I;16*, and the "I" Pillow opens 16-bit PNGs as) map 0–65535 onto 0–255
    as the transforms do; 32-bit integer and float images stretch their own range. Pillow's
    plain convert("L") clips, which made every 16-bit thumbnail white and every hash equal.
    """
    if image.mode not in _DEEP_MODES:
        return image
    low, high = _extrema(image)
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high <= 65535):
        scale, offset = 1 / 256, 0.0
    else:
        span = float(high - low) or 1.0
        scale, offset = 255 / span, -low * 255 / span
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    return image.point(lambda v: v * scale + offset).convert("L")  # type: ignore[no-any-return]


def thumbnail_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size `Image.thumbnail((size, size))` gives a `width`×`height` picture (its own
    aspect rounding; a picture that fits is left as it is), for shrinking done elsewhere
    (ffmpeg's frame thumbnails)."""
    if size >= width and size >= height:
        return width, height
    aspect = width / height
    if aspect <= 1:  # Pillow's `x / y >= aspect` with x == y == size
        x = min(math.floor(size * aspect), math.ceil(size * aspect), key=lambda n: abs(aspect - n / size))
        return max(x, 1), size
    y = min(
        math.floor(size / aspect),
        math.ceil(size / aspect),
        key=lambda n: 0 if n == 0 else abs(aspect - size / n),
    )
    return size, max(y, 1)


def _make_thumbnail(image: Image.Image, size: int, *, orientation: int = 1) -> Image.Image:
    """A ≤ size×size RGB(A) image, EXIF orientation applied; the source image is consumed."""
    image = to_8bit(image)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if orientation in _ORIENTATION:
        image = image.transpose(_ORIENTATION[orientation])
    return image


def display_picture(image: Image.Image, size: int) -> Image.Image:
    """An opened image as people see it: ≤ size on each side, 8-bit RGB(A), EXIF orientation
    applied (what thumbnails and previews show); `image` is consumed."""
    orientation = image.getexif().get(0x0112, 1)
    image.load()
    return _make_thumbnail(image, size, orientation=orientation)


@lru_cache(maxsize=1)
def _dct_table() -> list[list[float]]:
    return [[math.cos(math.pi / 32 * (x + 0.5) * u) for x in range(32)] for u in range(8)]


def phash64(image: Image.Image) -> int:
    """64-bit DCT perceptual hash (low 8×8 frequencies of a 32×32 greyscale, above median)."""
    grey = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = list(grey.get_flattened_data())
    rows = [pixels[i * 32 : (i + 1) * 32] for i in range(32)]
    table = _dct_table()
    # Separable 2-D DCT-II, only the 8 lowest frequencies in each direction. sum(map(mul))
    # adds the same products in the same order as a generator would, so the bits are equal.
    partial = [[sum(map(operator.mul, table[u], row)) for u in range(8)] for row in rows]
    columns = [[partial[y][u] for y in range(32)] for u in range(8)]
    coeffs = [sum(map(operator.mul, table[v], columns[u])) for v in range(8) for u in range(8)]
    median = sorted(coeffs[1:])[31]
    value = 0
    for coefficient in coeffs:
        value = (value << 1) | (coefficient > median)
    return value


# --- video ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the bundled ffmpeg on local files only, without stdin, under a time limit."""
    timeout = timeout or conf.ffmpeg_timeout()
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", *args]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise UnprocessableError(
            f"ffmpeg did not finish within {timeout:g} s; the video may be damaged.",
            code="media.ffmpeg_timeout",
        ) from exc


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_START = re.compile(r"start: (-?\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: ([^\s,]+)(.*)")
_SIZE = re.compile(r"(?<!\w)([1-9]\d{0,4})x([1-9]\d{0,4})(?!\w)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)")


def parse_ffmpeg_banner(text: str) -> dict[str, float | int | str | None]:
    """Duration, start, codec, size and fps from `ffmpeg -i FILE`'s banner (no ffprobe ships)."""
    info: dict[str, float | int | str | None] = {}
    if match := _DURATION.search(text):
        hours, minutes, seconds = match.groups()
        info["duration"] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if match := _START.search(text):
        info["start"] = float(match.group(1))
    for line in text.splitlines():
        video = _VIDEO.search(line)
        if not video:
            continue
        info["codec"] = video.group(1)
        rest = video.group(2)
        if size := _SIZE.search(rest):
            info["width"], info["height"] = int(size.group(1)), int(size.group(2))
        if fps := _FPS.search(rest):
            info["fps"] = float(fps.group(1)) * (1000 if fps.group(2) else 1)
        break
    if match := _ROTATION.search(text):
        # A display matrix of -90° means "show turned 90° clockwise"; ffmpeg applies it on decode.
        info["rotation"] = round(-float(match.group(1))) % 360
    return info


def probe_video(path: Path, fmt: str, *, thumb_size: int) -> Probe:
    """Measure a video with ffmpeg and grab a poster frame; refuses files ffmpeg can't decode."""
    banner = run_ffmpeg(["-i", str(path)]).stderr.decode("utf-8", "replace")
    info = parse_ffmpeg_banner(banner)
    if "codec" not in info or not info.get("width"):
        raise MediaCorruptError(
            f"ffmpeg found no decodable video stream in this {fmt} file.",
            details={"ffmpeg": banner.strip().splitlines()[-1][:300] if banner.strip() else ""},
        )
    duration = float(info.get("duration") or 0.0)
    fps = info.get("fps")
    rotation = int(info.get("rotation") or 0)
    width, height = int(info["width"]), int(info["height"])  # type: ignore[arg-type]
    if rotation in (90, 270):
        width, height = height, width  # the size people see, as decoded frames have it
    poster = None
    for seek in (min(1.0, duration * 0.1), 0.0):
        poster = _grab_frame(path, seek, thumb_size)
        if poster is not None:
            break
    if poster is None:
        raise MediaCorruptError(f"ffmpeg could not decode any frame of this {fmt} file.")
    return Probe(
        kind="video",
        format=fmt,
        width=width,
        height=height,
        rotation=rotation,
        mode="RGB",
        bit_depth=8,
        animated=True,
        frame_count=max(1, round(duration * float(fps))) if fps else 1,
        duration_ms=round(duration * 1000),
        fps_milli=round(float(fps) * 1000) if fps else None,
        codec=str(info["codec"]).rstrip(",")[:32],
        start_ms=round(float(info.get("start") or 0) * 1000),
        thumbnail=poster,
        phash=phash64(poster),
    )


def _grab_frame(path: Path, seconds: float, size: int) -> Image.Image | None:
    result = run_ffmpeg(
        [
            "-loglevel",
            "error",
            "-ss",
            f"{seconds:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            f"scale={size}:{size}:force_original_aspect_ratio=decrease",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "pipe:1",
        ]
    )
    if not result.stdout:
        return None
    try:
        frame = Image.open(io.BytesIO(result.stdout), formats=["PNG"])
        frame.load()
    except OSError:
        return None
    return frame.convert("RGB")
