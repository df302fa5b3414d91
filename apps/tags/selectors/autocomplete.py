"""Autocomplete: the tags a typed prefix or word most likely means, most used first, within a
time limit, with typo candidates when exact matching finds little (docs/tags.md#autocomplete)."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.db.models import F, IntegerField, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.core.db import QueryTimeout, statement_limit
from apps.tags.models import Tag, TagType, TagWord, Vocabulary

_WORD_SPLIT = re.compile(r"[\s()\[\]{}]+")
MIN_WORD_LENGTH = 2


def tag_words(*, name: str, vocabulary: Vocabulary) -> set[str]:
    """The words (≥ 2 characters, case-folded) of a name: split on the separator and brackets.

    The first word is left out where names are lower case: the (vocabulary, name) index already
    finds it as a prefix, and imports write a third fewer rows.
    """
    text = name.replace(vocabulary.word_separator, " ") if vocabulary.word_separator else name
    words = [word for word in _WORD_SPLIT.split(text.casefold()) if word]
    if vocabulary.case == Vocabulary.Case.LOWER:
        words = words[1:]
    return {word[:200] for word in words if len(word) >= MIN_WORD_LENGTH}


AUTOCOMPLETE_MAX = 50
AUTOCOMPLETE_TIME_LIMIT = 0.5  # seconds (docs/query-language.md#statement-time-guard)
AUTOCOMPLETE_CACHE_SECONDS = 300
_FUZZY_MIN_LENGTH = 4
_FUZZY_SCAN = 500
_FUZZY_BELOW = 2  # "few hits": typo candidates only when exact matching found less than this
_MAX_CHAR = "\U0010ffff"  # upper bound of a prefix range: name >= q AND name < q + MAX_CHAR


@dataclass(frozen=True)
class Suggestion:
    """One autocomplete entry; `ideal_*` are set when the tag is an alias antecedent."""

    id: int
    name: str
    type_key: str
    type_name: str
    type_color: str
    media_count: int
    match: str  # prefix | word | fuzzy
    ideal_id: int | None = None
    ideal_name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} → {self.ideal_name}" if self.ideal_name else self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "label": self.label,
            "type": self.type_key,
            "type_name": self.type_name,
            "type_color": self.type_color,
            "media_count": self.media_count,
            "match": self.match,
            "antecedent": self.ideal_id is not None,
            "ideal": {"id": self.ideal_id, "name": self.ideal_name} if self.ideal_id else None,
        }


def tag_query_normalise(q: str, vocabulary: Vocabulary) -> str:
    """Lenient normalisation of a partly typed name (no errors: it is not a tag yet)."""
    text = " ".join(unicodedata.normalize("NFC", q).split())
    text = text.lstrip("-~")
    if text and q[-1:].isspace():
        text += " "  # a finished word: `long ` looks for long_…, not longcat
    if vocabulary.word_separator:
        text = text.replace(" ", vocabulary.word_separator)
    if vocabulary.case == Vocabulary.Case.LOWER:
        text = text.lower()
    return text[:200]


def _ranked(queryset: QuerySet[Tag]) -> QuerySet[Tag]:
    """Tags with their ideal (if an antecedent), ranked by the media count of what they stand for."""
    return (
        queryset.select_related("type", "resolution__ideal_tag")
        .annotate(
            rank=Coalesce(
                F("resolution__ideal_tag__media_count"), F("media_count"), output_field=IntegerField()
            )
        )
        .order_by("-rank", "name")
    )


def _candidates(vocabulary: Vocabulary, tag_type: TagType | None) -> QuerySet[Tag]:
    queryset = Tag.objects.filter(vocabulary=vocabulary)
    if tag_type is not None:
        queryset = queryset.filter(type=tag_type)
    return queryset


def _within_one(a: str, b: str) -> bool:
    """Levenshtein distance (with adjacent transposition) between a and b is at most 1."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return a[i] == b[i + 1 : i + 2] and b[i] == a[i + 1 : i + 2] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return b[i + 1 :] == a[i:]


def _neighbours(q: str) -> set[str]:
    """Every string at edit distance 1 from q over q's own characters, a–z, 0–9 and `_`."""
    alphabet = set(string.ascii_lowercase + string.digits + "_") | set(q)
    out: set[str] = set()
    for i in range(len(q) + 1):
        head, tail = q[:i], q[i:]
        if tail:
            out.add(head + tail[1:])
            if len(tail) > 1:
                out.add(head + tail[1] + tail[0] + tail[2:])
            out.update(head + ch + tail[1:] for ch in alphabet)
        out.update(head + ch + tail for ch in alphabet)
    out.discard(q)
    return out


def _suggestions(rows: Iterable[Tag], match: str) -> list[Suggestion]:
    out = []
    for tag in rows:
        try:
            ideal: Tag | None = tag.resolution.ideal_tag
        except ObjectDoesNotExist:
            ideal = None
        out.append(
            Suggestion(
                id=tag.pk,
                name=tag.name,
                type_key=tag.type.key,
                type_name=tag.type.name,
                type_color=tag.type.color,
                media_count=ideal.media_count if ideal is not None else tag.media_count,
                match=match,
                ideal_id=ideal.pk if ideal is not None else None,
                ideal_name=ideal.name if ideal is not None else None,
            )
        )
    return out


def _usable(queryset: QuerySet[Tag]) -> QuerySet[Tag]:
    """Deprecated tags are offered only as antecedents (pointing at what to use instead)."""
    return queryset.exclude(is_deprecated=True, resolution__isnull=True)


def _autocomplete_exact(
    q: str, vocabulary: Vocabulary, tag_type: TagType | None, limit: int
) -> list[Suggestion]:
    """Name prefixes and word starts, ranked by the media count of what each tag stands for.

    Each kind of match is first counted up to SPARSE_MAX along its index. A sparse range is
    ranked whole (≤ SPARSE_MAX rows). A dense one (a short, common prefix) is answered from the
    other end: the most used tags, walked down the (vocabulary, media_count, name) index with
    the match tested inside the index and the walk bounded (MariaDB `ROWS EXAMINED`), so no
    request sorts a large range. Where the bounded walk finds too few, the full ranking runs
    under the autocomplete time limit.
    """
    base = _usable(_candidates(vocabulary, tag_type))
    in_range = base.filter(name__gte=q, name__lt=q + _MAX_CHAR)
    word_q = q.casefold()
    words = TagWord.objects.filter(vocabulary=vocabulary, word__gte=word_q, word__lt=word_q + _MAX_CHAR)
    candidates: set[int] = set()
    dense_prefix = dense_words = False
    named = list(in_range.order_by("name").values_list("pk", flat=True)[: SPARSE_MAX + 1])
    if len(named) > SPARSE_MAX:
        dense_prefix = True
    else:
        candidates.update(named)
    worded = list(words.order_by("word").values_list("tag_id", flat=True)[: SPARSE_MAX + 1])
    if len(worded) > SPARSE_MAX:
        dense_words = True
    else:
        candidates.update(worded)
    if dense_prefix or dense_words:
        walked = _most_used_matching(q, vocabulary, tag_type, limit, prefix=dense_prefix, words=dense_words)
        if walked is None:  # the bounded walk came up short: rank the ranges whole
            try:
                with statement_limit(AUTOCOMPLETE_TIME_LIMIT):
                    prefix = _suggestions(_ranked(in_range)[:limit], "prefix")
                    by_word = _suggestions(
                        _ranked(base.filter(pk__in=Subquery(words.values("tag_id"))))[:limit], "word"
                    )
                return _merge(prefix, by_word, limit=limit)
            except QueryTimeout:  # not worth waiting for: rank what the sparse side found
                walked = []
        candidates.update(walked)
    if not candidates:
        return []
    ranked = _ranked(base.filter(pk__in=sorted(candidates)))[: max(limit * 4, 40)]
    rows = list(ranked)
    prefix_rows = [t for t in rows if t.name.startswith(q)]
    word_rows = [t for t in rows if not t.name.startswith(q)]
    return _merge(_suggestions(prefix_rows, "prefix"), _suggestions(word_rows, "word"), limit=limit)


SPARSE_MAX = 1000
_WALK_ROWS = 30_000


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _most_used_matching(
    q: str, vocabulary: Vocabulary, tag_type: TagType | None, limit: int, *, prefix: bool, words: bool
) -> list[int] | None:
    """Ids of the most used tags whose name starts with q (`prefix`) or has a word starting with
    it (`words`), walking at most _WALK_ROWS index entries; None when that finds fewer than
    `limit` (or on SQLite, where nothing bounds the walk: the caller ranks the ranges)."""
    if connection.vendor != "mysql" or not getattr(connection, "mysql_is_mariadb", False):  # MariaDB only
        return None
    if vocabulary.case != Vocabulary.Case.LOWER:
        return None  # the walk compares bytes; words and prefixes of mixed-case names fold case
    table = Tag._meta.db_table
    pattern = (_like_escape(q) + "%") if prefix and not words else ("%" + _like_escape(q) + "%")
    params: list[Any] = [vocabulary.pk, pattern]
    type_sql = ""
    if tag_type is not None:
        type_sql = " AND type_id = %s"
        params.append(tag_type.pk)
    want = max(limit * 4, 40)
    sql = (
        f"SELECT id, name FROM {table} FORCE INDEX (tag_vocab_count_name) "  # noqa: S608 - identifiers only
        f"WHERE vocabulary_id = %s AND name LIKE %s AND is_deprecated = 0{type_sql} "
        f"ORDER BY media_count DESC LIMIT {int(want) * 4} ROWS EXAMINED {_WALK_ROWS}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    fold = q.casefold()
    found = []
    for tag_id, name in rows:
        if (prefix and name.startswith(q)) or (
            words and any(w.startswith(fold) for w in tag_words(name=name, vocabulary=vocabulary))
        ):
            found.append(tag_id)
    if len(found) < limit:  # the walk ran out (or met only infix hits): rank the ranges whole
        return None
    return found[:want]


def _merge(*groups: list[Suggestion], limit: int) -> list[Suggestion]:
    seen: dict[int, Suggestion] = {}
    for group in groups:
        for suggestion in group:
            seen.setdefault(suggestion.id, suggestion)
    shown = {s.id for s in seen.values()}
    # An antecedent whose ideal is listed anyway adds nothing but noise.
    merged = [s for s in seen.values() if s.ideal_id is None or s.ideal_id not in shown]
    merged.sort(key=lambda s: (-s.media_count, s.name))
    return merged[:limit]


def _autocomplete_fuzzy(
    q: str, vocabulary: Vocabulary, tag_type: TagType | None, limit: int
) -> list[Suggestion]:
    base = _usable(_candidates(vocabulary, tag_type))
    exact = _suggestions(_ranked(base.filter(name__in=_neighbours(q)))[:limit], "fuzzy")
    # A typo in an unfinished name: scan the most used names sharing the first two characters
    # and compare their prefixes (typos in those two are caught by the whole-name neighbours).
    head = q[:2]
    scanned = _ranked(base.filter(name__gte=head, name__lt=head + _MAX_CHAR))[:_FUZZY_SCAN]
    close = [
        tag for tag in scanned if any(_within_one(q, tag.name[:n]) for n in (len(q) - 1, len(q), len(q) + 1))
    ]
    return _merge(exact, _suggestions(close, "fuzzy"), limit=limit)


def tag_autocomplete(
    *, q: str, vocabulary: Vocabulary, tag_type: TagType | None = None, limit: int = 10
) -> list[Suggestion]:
    """Suggestions for a partly typed tag, ranked by media count (docs/tags.md#autocomplete).

    Name prefixes and word starts (TagWord); antecedents point at their ideal tag; from 4
    characters on, few hits add names one edit away. 1–2 character prefixes come from the cache.
    """
    limit = max(1, min(limit, AUTOCOMPLETE_MAX))
    text = tag_query_normalise(q, vocabulary)
    if not text:
        return []
    key = None
    if len(text) <= 2:
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        type_part = tag_type.pk if tag_type else 0
        key = f"tags:autocomplete:{vocabulary.pk}:{type_part}:{limit}:{digest}"
        cached = cache.get(key)
        if cached is not None:
            return list(cached)
    found = _autocomplete_exact(text, vocabulary, tag_type, limit)
    if len(text) >= _FUZZY_MIN_LENGTH and len(found) < min(limit, _FUZZY_BELOW):
        ideals = {s.ideal_id for s in found}  # what an exactly typed antecedent points to
        fuzzy = [s for s in _autocomplete_fuzzy(text, vocabulary, tag_type, limit) if s.id not in ideals]
        found = _merge(found, fuzzy, limit=limit)
    if key is not None:
        cache.set(key, found, AUTOCOMPLETE_CACHE_SECONDS)
    return found
