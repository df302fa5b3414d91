"""The qualifier table: names, how each value is read, and which are singletons.

docs/query-language.md#qualifiers
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.media.formats import MIME_TYPES
from apps.search import extensions
from apps.search.query import values as v
from apps.search.query.values import ValueProblem
from apps.tags import syntax

SCOPES = ("effective", "curated", "source", "tagger", "derived", "any")
ORDERS = (
    "id",
    "date",
    "filesize",
    "mpixels",
    "ratio",
    "duration",
    "tagcount",
    "random",
    "timestamp",
    "similarity",
)
UNSUPPORTED_ORDERS = ("conf",)
HAS = ("curated", "source", "tagger", "derived", "crop")
IS = ("image", "video", "frame", "stale")
KINDS = ("image", "video", "frame")
RATINGS = {"g": "g", "s": "s", "q": "q", "e": "e", "u": "u", "general": "g", "sensitive": "s"}
RATINGS |= {"questionable": "q", "explicit": "e", "unknown": "u"}
RATING_GROUPS: dict[str, tuple[str, ...]] = {"sfw": ("g", "s"), "nsfw": ("q", "e")}
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "mkv": "mkv", "heif": "heic", "ts": "mpegts"}
SINGLETONS = frozenset({"order", "limit", "in", "vocab"})
TAG_QUALIFIERS = frozenset({"ai", "conf"})
TERM_MODES = syntax.TERM_MODES  # tag-name syntax owns the term modes; names may not start with them
NOT_AVAILABLE = frozenset({"md5", "pixelhash", "dataset", "import", "op", "scene"})
SIMILAR_MAX_DISTANCE = 4  # five 13/12-bit bands find every hash within 4 bits (pigeonhole)


@dataclass(frozen=True)
class Spec:
    """How one qualifier reads its value: `read(value)` returns the parsed form or raises."""

    read: Callable[[str], Any]
    help: str


def _range(convert: v.Converter, what: str, hint: str) -> Spec:
    return Spec(lambda text: v.parse_range(text, convert, what=what, hint=hint), hint)


def _choice(
    options: tuple[str, ...], *, many: bool = True, more: Callable[[], tuple[str, ...]] | None = None
) -> Spec:
    """Values from `options` (and from `more()`, values other apps registered, read per query)."""
    hint = "One of: " + ", ".join(options) + (" (comma-separated for several)" if many else "")

    def read(text: str) -> tuple[str, ...]:
        nonlocal options, hint
        if more is not None and (extra := tuple(o for o in more() if o not in options)):
            options = options + extra
            hint = "One of: " + ", ".join(options) + (" (comma-separated for several)" if many else "")
        parts = text.lower().split(",") if many else [text.lower()]
        offset = 0
        for part in parts:
            if part not in options:
                raise ValueProblem(f"{part!r} is not a valid value.", token=part, offset=offset, hint=hint)
            offset += len(part) + 1
        return tuple(dict.fromkeys(parts))

    return Spec(read, hint)


def _list(mapping: dict[str, str], groups: dict[str, tuple[str, ...]], hint: str) -> Spec:
    def read(text: str) -> tuple[str, ...]:
        out: list[str] = []
        offset = 0
        for part in text.lower().split(","):
            if part in groups:
                out.extend(groups[part])
            elif part in mapping:
                out.append(mapping[part])
            else:
                raise ValueProblem(f"{part!r} is not a valid value.", token=part, offset=offset, hint=hint)
            offset += len(part) + 1
        return tuple(dict.fromkeys(out))

    return Spec(read, hint)


def _formats() -> dict[str, str]:
    return {**{f: f for f in MIME_TYPES}, **FORMAT_ALIASES}


def _format_spec() -> Spec:
    def read(text: str) -> tuple[str, ...]:
        known = _formats()
        return _list(known, {}, "A file format: " + ", ".join(sorted(set(known.values())))).read(text)

    return Spec(read, "A file format such as jpeg, png, webp, mp4")


def _text(what: str, *, lower: bool = False) -> Spec:
    def read(text: str) -> str:
        if not text:
            raise ValueProblem(f"{what} is missing.", token=text, offset=0, hint=f"Write {what} after ':'.")
        return text.lower() if lower else text

    return Spec(read, what)


def _limit(text: str) -> int:
    hint = "A number from 1 to 200."
    if not text.isdigit() or not text.isascii() or not 1 <= int(text[:6]) <= 200:
        raise ValueProblem(f"{text!r} is not a page size from 1 to 200.", token=text, offset=0, hint=hint)
    return int(text)


def _order(text: str) -> tuple[str, bool | None]:
    hint = "One of: " + ", ".join(ORDERS) + ", optionally with _asc or _desc."
    name, direction = text.lower(), None
    for suffix, desc in (("_asc", False), ("_desc", True)):
        if name.endswith(suffix):
            name, direction = name[: -len(suffix)], desc
    if name in UNSUPPORTED_ORDERS:
        raise ValueProblem(f"order:{name} is not available yet.", token=text, offset=0, hint=hint)
    if name not in ORDERS:
        raise ValueProblem(f"{text!r} is not an order.", token=text, offset=0, hint=hint)
    return name, direction


def _ai(text: str) -> tuple[str, v.RangeList | None]:
    name, _, rest = text.partition(",")
    if not name:
        raise ValueProblem("The tagger tag is missing.", token=text, offset=0, hint="ai:<tag>[,<range>]")
    if not rest:
        return name, None
    try:
        ranges = v.parse_range(rest, v.conv_confidence, what="a confidence", hint="0.35 or 35%, e.g. >=0.5")
    except ValueProblem as exc:
        exc.offset += len(name) + 1
        raise
    return name, ranges


@dataclass(frozen=True)
class SimilarBy:
    """`similar:<id>,<mode>…` for a mode another app registered: `parsed` is its read value."""

    mode: str
    parsed: Any


def _similar(text: str) -> tuple[int, int] | SimilarBy:
    """`<item id>[,<distance>]`: perceptual-hash neighbours of an item, distance 0–4 bits; or
    `<item id>,<mode>…` for a registered mode (e.g. `emb`: nearest by embedding)."""
    hint = f"similar:<item id>[,<distance 0–{SIMILAR_MAX_DISTANCE}>], e.g. similar:123,4"
    modes = extensions.similar_modes()
    if modes:
        hint += "; or similar:<item id>," + " / ".join(f"{m}…" for m in modes)
    item, _, distance = text.partition(",")
    if not item.isascii() or not item.isdigit() or len(item) > 18:
        raise ValueProblem(f"{item!r} is not an item id.", token=item, offset=0, hint=hint)
    if not distance:
        return int(item), 0
    mode_name = distance.split(",")[0].split("=")[0].lower()
    if (mode := extensions.similar_mode(mode_name)) is not None:
        try:
            return SimilarBy(mode_name, mode.read(text))
        except ValueProblem as exc:
            raise ValueProblem(
                exc.message, token=exc.token, offset=exc.offset, hint=exc.hint or mode.help
            ) from None
    offset = len(item) + 1
    if not distance.isascii() or not distance.isdigit() or int(distance[:3]) > SIMILAR_MAX_DISTANCE:
        raise ValueProblem(
            f"{distance!r} is not a distance from 0 to {SIMILAR_MAX_DISTANCE}.",
            token=distance,
            offset=offset,
            hint=hint,
        )
    return int(item), int(distance)


_INT = "a whole number, a range like 100..200 or >=512"
SPECS: dict[str, Spec] = {
    "in": _choice(SCOPES, many=False),
    "vocab": _text("a vocabulary slug"),
    "has": _choice(HAS, more=extensions.has_values),
    "is": _choice(IS),
    "kind": _choice(KINDS),
    "id": _range(v.conv_int, "an id", _INT),
    "width": _range(v.conv_int, "a width", _INT),
    "height": _range(v.conv_int, "a height", _INT),
    "tagcount": _range(v.conv_int, "a tag count", _INT),
    "frame": _range(v.conv_int, "a frame index", _INT),
    "video": _range(v.conv_int, "a video id", _INT),
    "mpixels": _range(v.conv_scaled(1_000_000), "megapixels", "e.g. 2, >=1.5 or 1..4"),
    "fps": _range(v.conv_scaled(1000), "frames per second", "e.g. 30, >=29.97"),
    "ratio": _range(v.conv_ratio, "an aspect ratio", "e.g. 16:9, 1.778 or >1"),
    "filesize": _range(v.conv_size, "a file size", "e.g. 500kb, >2.5mb, 1mb..4mb"),
    "duration": _range(v.conv_duration, "a duration", "e.g. 90, 1:30, 5s, >2m"),
    "time": _range(v.conv_duration, "a timestamp", "e.g. 1:30, 5s..10s"),
    "date": _range(v.conv_date, "a date", "e.g. 2024, 2024-05, 2024-05-01, >=2024-01-01"),
    "age": _range(v.conv_age, "an age", "e.g. <3d, >1y, 12h..2w (units s min h d w mo y)"),
    "filetype": _format_spec(),
    "format": _format_spec(),
    "rating": _list(RATINGS, RATING_GROUPS, "g, s, q, e, u, sfw or nsfw (comma-separated)"),
    "source": _text("a source URL (a trailing * matches a prefix)"),
    "site": Spec(lambda t: _text("a host name", lower=True).read(t).split(","), "a host name"),
    "artist": _text("an artist name"),
    "sha256": Spec(lambda t: _hex(t, 64), "64 hexadecimal digits"),
    "model": _text("a tagger model name, optionally @version"),
    "order": Spec(_order, "an order"),
    "limit": Spec(_limit, "1 to 200"),
    "ai": Spec(_ai, "ai:<tag>[,<confidence range>]"),
    "conf": Spec(_ai, "conf:<tag>[,<confidence range>]"),
    "similar": Spec(_similar, "similar:<item id>[,<distance 0–4>]"),
}
QUALIFIER_NAMES = frozenset(SPECS) | TERM_MODES | NOT_AVAILABLE


def _hex(text: str, digits: int) -> str:
    text = text.lower()
    if len(text) != digits or any(c not in "0123456789abcdef" for c in text):
        raise ValueProblem(
            f"{text!r} is not {digits} hexadecimal digits.", token=text, offset=0, hint=f"{digits} hex digits"
        )
    return text


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of neighbours costs 1)."""
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def spec_of(name: str) -> Spec | None:
    """The built-in qualifier `name`, or one another app registered (ranked qualifiers)."""
    if name in SPECS:
        return SPECS[name]
    ranked = extensions.ranked_qualifier(name)
    return Spec(ranked.read, ranked.help) if ranked is not None else None


def nearest_qualifier(prefix: str, extra: frozenset[str] = frozenset()) -> str | None:
    """The qualifier a mistyped prefix most likely meant (distance ≤ 2, ≤ 1 for short words)."""
    prefix = prefix.lower()
    if len(prefix) > 40:
        return None
    allowed = 1 if len(prefix) <= 4 else 2
    best: tuple[int, str] | None = None
    for name in sorted(QUALIFIER_NAMES | extensions.ranked_qualifiers() | extra):
        distance = edit_distance(prefix, name)
        if distance <= allowed and distance < len(prefix) and (best is None or distance < best[0]):
            best = (distance, name)
    return best[1] if best else None
