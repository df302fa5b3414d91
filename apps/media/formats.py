"""The formats the library accepts: decoder names, file extensions and MIME types.

Dependency-free, so the query language and other apps can name formats without importing
the probe (Pillow, ffmpeg).
"""

# Pillow plug-in name per format we accept; nothing else may decode an upload.
PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
    "avif": "AVIF",
    "heic": "HEIF",
}
# Animated GIF and WebP are videos (timed by their frame delays) that Pillow decodes.
ANIMATION_FORMATS = frozenset({"gif", "webp"})
# What browsers show in <img>; item pages show a converted preview of the rest (tiff, heic).
BROWSER_IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "bmp", "avif"})
VIDEO_FORMATS = {"mp4", "mov", "webm", "mkv", "avi", "wmv", "vob", "flv", "mpegts"}
EXTENSIONS = {
    "jpeg": "jpg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tif",
    "avif": "avif",
    "heic": "heic",
    "mp4": "mp4",
    "mov": "mov",
    "webm": "webm",
    "mkv": "mkv",
    "avi": "avi",
    "wmv": "wmv",
    "vob": "vob",
    "flv": "flv",
    "mpegts": "ts",
}
MIME_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "avif": "image/avif",
    "heic": "image/heic",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "wmv": "video/x-ms-wmv",
    "vob": "video/mpeg",
    "flv": "video/x-flv",
    "mpegts": "video/mp2t",
}
