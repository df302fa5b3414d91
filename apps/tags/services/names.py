"""Tag names: normalisation per vocabulary, defaults, creating and editing tags, autocomplete.

Names are stored normalised (NFC, trimmed, cased per vocabulary, whitespace → separator) and
compared byte-for-byte (binary collation on MariaDB), so `é` and `e` are different tags while
`Long Hair` and `long_hair` are the same one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Model
from django.db.models.constants import OnConflict

from apps.core.exceptions import ConflictError, DomainError
from apps.tags import syntax
from apps.tags.models import EffectiveTag, Tag, TagType, TagWord, Vocabulary

# Re-exported: services and interfaces have always found the defaults here.
from apps.tags.selectors.autocomplete import tag_words
from apps.tags.selectors.vocabularies import tag_type_default as tag_type_default
from apps.tags.selectors.vocabularies import type_short_keys
from apps.tags.selectors.vocabularies import vocabulary_default as vocabulary_default
from apps.tags.services.item_types import item_types_refresh_tags

MAX_TAGS_PER_SET = 1000
WRITE_BATCH = 1000
INSERT_BATCH = 5000
is_reserved_prefix = syntax.is_reserved_prefix


def tag_type_prefixes() -> dict[str, TagType]:
    """Type keys and short keys (case-folded) → type, as search reads `char:hatsune_miku`: a key
    that is also a qualifier (`artist`) is search syntax, not a type prefix."""
    prefixes: dict[str, TagType] = {}
    types = list(TagType.objects.order_by("pk"))
    for tag_type in types:
        prefixes[tag_type.key.casefold()] = tag_type
    for tag_type in types:
        for short in type_short_keys(tag_type):
            prefixes.setdefault(short, tag_type)
    return {key: t for key, t in prefixes.items() if not syntax.is_reserved_prefix(key)}


def _problem(problem: syntax.NameProblem) -> DomainError:
    return DomainError(problem.message, code=problem.code, details=problem.details)


def normalise_fragment(text: str, vocabulary: Vocabulary) -> str:
    """Part of a wildcard pattern normalised like a name (NFC, separator, case), not trimmed."""
    text = unicodedata.normalize("NFC", text)
    if vocabulary.word_separator:
        text = "".join(vocabulary.word_separator if c.isspace() else c for c in text)
    return text.lower() if vocabulary.case == Vocabulary.Case.LOWER else text


def _reserved_hint(err: DomainError) -> DomainError:
    """A reserved prefix that is also a type key (`artist:`): name the prefix that types it."""
    prefix = str(err.details.get("qualifier", "")).casefold()
    tag_type = TagType.objects.filter(key=prefix).first() if prefix else None
    shorts = (
        sorted(k for k in type_short_keys(tag_type) if not syntax.is_reserved_prefix(k)) if tag_type else []
    )
    if shorts:
        rest = str(err.details.get("tag", "")).partition(":")[2]
        err.message += f" For a {tag_type.name} tag write '{shorts[0]}:{rest}'."  # type: ignore[union-attr]
        err.details["type_prefix"] = shorts[0]
    return err


def tag_name_split(
    *, raw: Any, vocabulary: Vocabulary, types: dict[str, TagType] | None = None
) -> tuple[str, TagType | None]:
    """(name, type) of one typed name: normalised per vocabulary; a leading type key or short key
    (`char:hatsune_miku`) gives the type and is not part of the name, as search reads it.

    Raises DomainError naming the tag when it cannot be a tag name (a reserved search prefix
    such as `kind:` or `width:` included).
    """
    options = {
        "lower": vocabulary.case == Vocabulary.Case.LOWER,
        "separator": vocabulary.word_separator,
        "max_length": vocabulary.max_length,
    }
    try:
        name = syntax.normalise(raw, **options)  # type: ignore[arg-type]
    except syntax.NameProblem as problem:
        err = _problem(problem)
        raise (_reserved_hint(err) if err.code == "tags.reserved_prefix" else err) from None
    split = syntax.split_key(name)
    if split is None:
        return name, None
    prefixes = types if types is not None else tag_type_prefixes()
    tag_type = prefixes.get(split[0])
    if tag_type is None:
        return name, None
    try:
        rest = syntax.normalise(split[1], **options)  # type: ignore[arg-type]
    except syntax.NameProblem as problem:
        raise _problem(problem) from None
    inner = syntax.split_key(rest)
    if inner is not None and inner[0] in prefixes:
        raise DomainError(
            f"Tag {name!r} has two type prefixes; write one (for example '{split[0]}:{inner[1]}').",
            code="tags.invalid_name",
            details={"tag": name},
        )
    return rest, tag_type


def tag_name_normalise(*, raw: Any, vocabulary: Vocabulary, types: dict[str, TagType] | None = None) -> str:
    """Vocabulary rules applied to one name: NFC, trimmed, case, whitespace → separator; a type
    prefix (`char:`) is read off, as search reads it (use `tag_name_split` to keep the type).

    Raises DomainError naming the tag when it cannot be a tag name.
    """
    return tag_name_split(raw=raw, vocabulary=vocabulary, types=types)[0]


def tag_names_split(*, raw: Sequence[Any], vocabulary: Vocabulary) -> list[tuple[str, TagType | None]]:
    """(name, type) per distinct name, first order kept; a typed mention wins over a plain one."""
    if len(raw) > MAX_TAGS_PER_SET:
        raise DomainError(
            f"At most {MAX_TAGS_PER_SET} tags per tag set ({len(raw)} given).",
            code="tags.too_many",
        )
    types = tag_type_prefixes() if any(isinstance(r, str) and ":" in r for r in raw) else {}
    seen: dict[str, TagType | None] = {}
    for entry in raw:
        name, tag_type = tag_name_split(raw=entry, vocabulary=vocabulary, types=types)
        if seen.get(name) is None:
            seen[name] = tag_type
    return list(seen.items())


def tag_names_canonical(*, raw: Sequence[Any], vocabulary: Vocabulary) -> list[str]:
    """Validated names that keep their type as `<type key>:<name>` (metadata carried to a source
    set): `tag_names_split` reads them back to the same (name, type)."""
    out = []
    for name, tag_type in tag_names_split(raw=raw, vocabulary=vocabulary):
        prefix = _type_prefix(tag_type) if tag_type is not None else None
        out.append(f"{prefix}:{name}" if prefix else name)
    return out


def _type_prefix(tag_type: TagType) -> str | None:
    for key in [tag_type.key.casefold(), *sorted(type_short_keys(tag_type))]:
        if not syntax.is_reserved_prefix(key):
            return key
    return None


def tag_names_normalise(*, raw: Sequence[Any], vocabulary: Vocabulary) -> list[str]:
    """Normalise a list of names (type prefixes read off), dropping duplicates, first order kept."""
    return [name for name, _ in tag_names_split(raw=raw, vocabulary=vocabulary)]


# --- words for autocomplete -------------------------------------------------------------------


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{model.__name__}.{name} is not a concrete column")
    return column


def bulk_insert_values(
    model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]], *, ignore_conflicts: bool = True
) -> None:
    """INSERT plain value rows with executemany, a batch per statement; with `ignore_conflicts`
    rows whose key exists are kept (INSERT IGNORE / INSERT OR IGNORE).

    Imports write 10⁵ rows; building model instances for bulk_create costs far more Python time
    than the database spends, so checked values go straight to the driver.
    """
    ops = connection.ops
    columns = ", ".join(ops.quote_name(_column(model, name)) for name in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = ops.quote_name(model._meta.db_table)
    insert = ops.insert_statement(on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
    sql = f"{insert} {table} ({columns}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_BATCH):
            cursor.executemany(sql, rows[start : start + INSERT_BATCH])


def tag_words_add(*, vocabulary: Vocabulary, tags: Iterable[tuple[int, str]]) -> int:
    """Insert the TagWord rows of these (id, name) tags; existing rows are kept (idempotent)."""
    rows = [
        (vocabulary.pk, word, tag_id)
        for tag_id, name in tags
        for word in tag_words(name=name, vocabulary=vocabulary)
    ]
    if rows:
        bulk_insert_values(TagWord, ["vocabulary", "word", "tag"], rows)
    return len(rows)


@transaction.atomic
def tag_words_rebuild(*, vocabulary: Vocabulary) -> int:
    """Rewrite a vocabulary's TagWord rows from its tag names (after a repair or an old import)."""
    TagWord.objects.filter(vocabulary=vocabulary).delete()
    added = 0
    after = 0
    while True:
        batch = list(
            Tag.objects.filter(vocabulary=vocabulary, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "name")[:5000]
        )
        if not batch:
            return added
        added += tag_words_add(vocabulary=vocabulary, tags=batch)
        after = batch[-1][0]


# --- creating and editing tags ------------------------------------------------------------------


def tags_get_or_create(
    *,
    vocabulary: Vocabulary,
    names: Iterable[str],
    types: dict[str, TagType | None] | None = None,
    type_conflict: str = "keep",
    retype: bool = True,
) -> dict[str, Tag]:
    """Tags by normalised name, creating the missing ones in one statement (race-safe).

    `types` (name → type, from a `char:` prefix) types new tags and retypes existing ones that
    still have the default type; another type is kept (`type_conflict="keep"`, imports) or
    refused (`"refuse"`, what a person typed); `retype=False` only types new tags (model output
    never changes an existing tag's type). New tags get their TagWord rows; a closed
    vocabulary refuses names it does not know.
    """
    wanted = list(dict.fromkeys(names))
    typed = {name: t for name, t in (types or {}).items() if t is not None}
    found = {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=wanted)}
    if typed and retype:
        _retype(found, typed, vocabulary, type_conflict)
    missing = [name for name in wanted if name not in found]
    if missing:
        if vocabulary.policy == Vocabulary.Policy.CLOSED:
            raise DomainError(
                f"Vocabulary {vocabulary.slug!r} is closed and does not know: {', '.join(missing[:20])}.",
                code="tags.unknown_tag",
                details={"unknown": missing[:100], "vocabulary": vocabulary.slug},
            )
        tag_type = vocabulary.default_type or tag_type_default()
        Tag.objects.bulk_create(
            [
                Tag(vocabulary=vocabulary, name=name, display_name=name, type=typed.get(name) or tag_type)
                for name in missing
            ],
            ignore_conflicts=True,
        )
        created = {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=missing)}
        tag_words_add(vocabulary=vocabulary, tags=((t.pk, t.name) for t in created.values()))
        found.update(created)
    return found


def _retype(
    found: dict[str, Tag], types: dict[str, TagType], vocabulary: Vocabulary, type_conflict: str
) -> None:
    """Give existing tags the type a prefix named: those still of the default type take it."""
    default = vocabulary.default_type or tag_type_default()
    retype: dict[int, list[int]] = {}
    for name, tag_type in types.items():
        tag = found.get(name)
        if tag is None or tag.type_id == tag_type.pk:
            continue
        if tag.type_id == default.pk:
            retype.setdefault(tag_type.pk, []).append(tag.pk)
            tag.type = tag_type
        elif type_conflict == "refuse":
            raise DomainError(
                f"Tag {name!r} is a {tag.type.name} tag, not {tag_type.name}; write it without the "
                "prefix, or change its type on the tag page.",
                code="tags.type_conflict",
                details={"tag": name, "type": tag.type.key, "prefix_type": tag_type.key},
            )
    for type_id, tag_ids in retype.items():
        Tag.objects.filter(pk__in=tag_ids).update(type_id=type_id)
        item_types_refresh_tags(tag_ids=tag_ids)


@transaction.atomic
def tag_create(
    *,
    vocabulary: Vocabulary,
    name: str,
    tag_type: TagType | None = None,
    display_name: str = "",
    keep_underscore: bool = False,
) -> Tag:
    """Add one known tag to a vocabulary (closed ones too); a name that normalises to an existing
    tag is a 409 naming it (`Long Hair` after `long_hair`)."""
    clean, prefix_type = tag_name_split(raw=name, vocabulary=vocabulary)
    tag_type = tag_type or prefix_type
    existing = Tag.objects.filter(vocabulary=vocabulary, name=clean).first()
    if existing is not None:
        raise _duplicate(clean, existing.pk, vocabulary)
    tag = Tag(
        vocabulary=vocabulary,
        name=clean,
        display_name=display_name.strip() or clean,
        type=tag_type or vocabulary.default_type or tag_type_default(),
        keep_underscore=keep_underscore,
    )
    tag.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError as exc:  # created by someone else since the check
        raise _duplicate(clean, None, vocabulary) from exc
    tag_words_add(vocabulary=vocabulary, tags=[(tag.pk, tag.name)])
    return tag


def _duplicate(name: str, tag_id: int | None, vocabulary: Vocabulary) -> ConflictError:
    return ConflictError(
        f"Tag {name!r} already exists in {vocabulary.name}.",
        code="tags.duplicate",
        details={"tag": name, "id": tag_id, "vocabulary": vocabulary.slug},
    )


_UPDATABLE = ("type", "display_name", "is_deprecated", "keep_underscore")


@transaction.atomic
def tag_update(*, tag: Tag, **changes: Any) -> Tag:
    """Change a tag's type, display name, deprecation or keep_underscore (the name is fixed:
    renaming is a bulk operation). Deprecated tags are refused on human input from then on."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise DomainError(
            f"These tag fields cannot be changed here: {', '.join(sorted(unknown))}.",
            code="tags.not_editable",
            details={"fields": sorted(unknown)},
        )
    tag = Tag.objects.select_for_update().select_related("type", "vocabulary").get(pk=tag.pk)
    for field, value in changes.items():
        if field == "display_name":
            value = (value or "").strip() or tag.name
        setattr(tag, field, value)
    tag.full_clean(validate_unique=False, validate_constraints=False)
    tag.save(update_fields=[*changes, "updated_at"])
    if "type" in changes:
        item_types_refresh_tags(tag_ids=[tag.pk])
    return tag


def tags_set_deprecated(*, tag_ids: Iterable[int], deprecated: bool = True) -> int:
    """Deprecate (or restore) many tags in one statement; returns how many changed."""
    return (
        Tag.objects.filter(pk__in=list(tag_ids))
        .exclude(is_deprecated=deprecated)
        .update(is_deprecated=deprecated)
    )


@transaction.atomic
def tags_recount(*, tag_ids: Iterable[int]) -> int:
    """Recompute media_count of these tags from EffectiveTag; returns how many were wrong.

    Rows are locked in ascending id, as counter deltas lock them, so a concurrent edit either
    waits for the recount or has committed its rows before the count is taken.
    """
    ids = sorted(set(tag_ids))
    fixed = 0
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        stored = dict(
            Tag.objects.select_for_update()
            .filter(pk__in=batch)
            .order_by("pk")
            .values_list("pk", "media_count")
        )
        actual = dict(
            EffectiveTag.objects.filter(tag_id__in=batch)
            .values_list("tag_id")
            .annotate(n=Count("media_item_id"))
        )
        for tag_id, count in stored.items():
            want = actual.get(tag_id, 0)
            if want != count:
                Tag.objects.filter(pk=tag_id).update(media_count=want)
                fixed += 1
    return fixed
