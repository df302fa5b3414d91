"""Tag-name syntax shared by the tag services, search and imports (docs/tags.md#tag-names).

Plain Python, no Django: which prefixes are search syntax (qualifiers and term modes, so never
the start of a tag name or a type key), which characters a name may not hold, how a typed name
is normalised, and how `key:name` splits into a type key and a name. Search registers its
qualifiers in `apps.search.query.qualifiers`; a test keeps every one of them in RESERVED_PREFIXES.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# Search qualifiers (docs/query-language.md#qualifiers), including those parsed but not available yet.
QUALIFIERS = frozenset(
    {
        "in", "ai", "conf", "model", "vocab", "has", "is", "kind", "id", "width", "height",
        "mpixels", "ratio", "filesize", "duration", "fps", "tagcount", "filetype", "format",
        "rating", "date", "age", "md5", "sha256", "pixelhash", "similar", "dataset", "subset", "import",
        "op", "video", "frame", "time", "scene", "source", "site", "artist", "order", "limit",
    }
)  # fmt: skip
# Term modes (docs/query-language.md#tag-terms): `tag:<literal name>`, `direct:<name>`, `unaliased:<name>`.
TERM_MODES = frozenset({"tag", "direct", "unaliased"})
RESERVED_PREFIXES = QUALIFIERS | TERM_MODES
# `<type>tags:` (e.g. `chartags:`) counts an item's tags of a type.
_TYPE_COUNT = re.compile(r"^[a-z0-9_]+tags$")
_KEY = re.compile(r"^[a-z0-9_]+$")

FORBIDDEN_CHARS = frozenset({",", "*"})
FORBIDDEN_STARTS = ("-", "~", "(")
KEYWORDS = frozenset({"or", "and"})


@dataclass
class NameProblem(ValueError):
    """Why a text cannot be a tag name: a message saying what to fix, a code, details."""

    message: str
    code: str = "tags.invalid_name"
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def is_reserved_prefix(prefix: str) -> bool:
    """Whether `prefix:` is search syntax, so no tag name or type key may use it."""
    prefix = prefix.casefold()
    return prefix in RESERVED_PREFIXES or bool(_TYPE_COUNT.match(prefix))


def split_key(name: str) -> tuple[str, str] | None:
    """`key:rest` → (key casefolded, rest) when the text before the first ':' could be a type key
    or qualifier (letters, digits, '_') and something follows; else None (`:-)`, `a:`)."""
    key, colon, rest = name.partition(":")
    if not colon or not key or not rest:
        return None
    key = key.casefold()
    return (key, rest) if _KEY.match(key) else None


def _has_control(text: str) -> bool:
    if text.isprintable():  # fast path: printable strings have no "Other" (C*) characters
        return False
    return any(unicodedata.category(ch)[0] == "C" for ch in text)


def normalise(raw: Any, *, lower: bool, separator: str, max_length: int) -> str:
    """One name: NFC, trimmed, whitespace → separator, lower-cased when asked; raises NameProblem.

    Refuses control characters, ',' and '*', a leading '-', '~' or '(', the keywords or/and and
    a reserved `<qualifier>:` prefix; a type prefix (`char:`) is left for the caller to read.
    """
    if not isinstance(raw, str):
        raise NameProblem("Tags must be strings.")
    name = unicodedata.normalize("NFC", raw).strip()
    if _has_control(name):
        raise NameProblem(f"Tag {name!r} contains control characters.", details={"tag": name})
    name = " ".join(name.split())
    if separator:
        name = name.replace(" ", separator)
    if lower:
        name = name.lower()
    if not name:
        raise NameProblem("Empty tag names are not allowed.")
    if len(name) > max_length:
        raise NameProblem(
            f"Tag {name[:40]!r}… is longer than {max_length} characters.", details={"tag": name[:200]}
        )
    bad = sorted(ch for ch in FORBIDDEN_CHARS if ch in name)
    if bad or name.startswith(FORBIDDEN_STARTS) or name in KEYWORDS:
        raise NameProblem(
            f"Tag {name!r} may not contain {', '.join(bad) or 'that'}: names cannot contain ',' "
            "or '*', start with '-', '~' or '(', or be 'or'/'and'.",
            details={"tag": name},
        )
    split = split_key(name)
    if split is not None and is_reserved_prefix(split[0]):
        prefix = name.partition(":")[0]
        raise NameProblem(
            f"Tag {name!r} starts with the search qualifier '{prefix}:', so search could never "
            "find it by name; choose another name (for example without the colon).",
            code="tags.reserved_prefix",
            details={"tag": name, "qualifier": prefix},
        )
    return name
