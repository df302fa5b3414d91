"""Tag types and tag templates (vocabularies): editing, CSV import and export, building a
template from the tags in use, and the keyset-paged tag list the pages and the API share.

CSV files hold `name,type,count,aliases` (header optional), as Danbooru/e621 autocomplete lists
do. Imports are set-based (a bounded number of statements per thousand lines), idempotent (a
re-import updates types and never duplicates tags or aliases) and report errors per line.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from apps.core.csvsafe import csv_cell_escape, csv_cell_unescape
from apps.core.exceptions import (
    ConflictError,
    DomainError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableError,
)
from apps.tags import conf
from apps.tags.models import RuleStatus, Tag, TagAlias, TagAssignment, TagSet, TagType, Vocabulary
from apps.tags.services.names import (
    bulk_insert_values,
    is_reserved_prefix,
    tag_name_normalise,
    tag_name_split,
    tag_type_default,
    tag_type_prefixes,
    tag_words_add,
)

IMPORT_MAX_ERRORS = 1000  # listed; all are counted
ALIAS_ACTIVATE_MAX = 2000  # one rule change each; more stay pending for review in bulk
APPROVE_PERM = "tags.approve_rules"
READ_BATCH = 2000

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
WORD_SEPARATORS = {"_": "underscore", " ": "space", "-": "hyphen", "": "none (kept as typed)"}


def _invalid(field_name: str, message: str, code: str = "tags.invalid") -> DomainError:
    return DomainError(message, code=code, details={"fields": {field_name: [message]}})


def _batches(values: list[Any], size: int = READ_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- tag types ------------------------------------------------------------------------------------

TYPE_FIELDS = (
    "key",
    "name",
    "short_keys",
    "color",
    "display_order",
    "caption_order",
    "caption_zone",
    "pinned",
    "droppable",
    "shuffleable",
    "default_dropout",
    "exported",
    "max_per_item",
)


def _type_check(tag_type: TagType) -> None:
    key = tag_type.key = (tag_type.key or "").strip().lower()
    if not _KEY.match(key):
        raise _invalid("key", "Keys are 1–32 lower-case letters, digits or '_', starting with a letter.")
    stored = (
        TagType.objects.filter(pk=tag_type.pk).values_list("key", flat=True).first() if tag_type.pk else None
    )
    if is_reserved_prefix(key) and key != stored:  # a seeded key that became a qualifier (artist) stays
        raise _invalid("key", f"'{key}' is a search qualifier; choose another key.", "tags.reserved_key")
    short = [k.strip().lower() for k in (tag_type.short_keys or "").split(",") if k.strip()]
    for item in short:
        if not _KEY.match(item) or is_reserved_prefix(item):
            raise _invalid("short_keys", f"Short key '{item}' is not a slug or is a search qualifier.")
    tag_type.short_keys = ",".join(dict.fromkeys(short))
    taken = set()
    for other in TagType.objects.exclude(pk=tag_type.pk).only("key", "short_keys"):
        taken.add(other.key)
        taken.update(k.strip() for k in other.short_keys.split(",") if k.strip())
    if clash := sorted(({key} | set(short)) & taken):
        raise ConflictError(
            f"Another tag type already uses the key '{clash[0]}'.",
            code="tags.duplicate_type",
            details={"fields": {"key": [f"'{clash[0]}' is taken."]}},
        )
    if not _COLOR.match(tag_type.color or ""):
        raise _invalid("color", "Colours are written #rrggbb.")
    tag_type.color = tag_type.color.lower()
    if not 0 <= tag_type.default_dropout <= 10000:
        raise _invalid("default_dropout", "The dropout rate is 0–10000 (1/10000, so 1000 = 10 %).")
    if tag_type.max_per_item is not None and tag_type.max_per_item < 1:
        raise _invalid("max_per_item", "Leave empty for no limit, or give at least 1.")
    if not (tag_type.name or "").strip():
        raise _invalid("name", "A tag type needs a name.")
    tag_type.full_clean(validate_unique=False, validate_constraints=False)


def tag_type_validate(tag_type: TagType) -> None:
    """Check a (possibly unsaved) type as the services would, without saving (admin forms)."""
    _type_check(tag_type)


def _type_save(tag_type: TagType, is_default: bool | None) -> TagType:
    _type_check(tag_type)
    if is_default:
        TagType.objects.exclude(pk=tag_type.pk).filter(is_default_key=True).update(is_default_key=None)
        tag_type.is_default_key = True
    try:
        with transaction.atomic():
            tag_type.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"Another tag type already uses the key '{tag_type.key}'.", code="tags.duplicate_type"
        ) from exc
    return tag_type


@transaction.atomic
def tag_type_create(*, key: str, name: str, is_default: bool = False, **fields: Any) -> TagType:
    """Create a tag type; keys are slugs and never a search qualifier."""
    _only(fields, TYPE_FIELDS)
    return _type_save(TagType(key=key, name=name, **fields), is_default)


@transaction.atomic
def tag_type_update(*, tag_type: TagType, is_default: bool | None = None, **changes: Any) -> TagType:
    """Change a tag type's settings (`is_default=True` makes it the type new tags get)."""
    _only(changes, TYPE_FIELDS)
    tag_type = TagType.objects.select_for_update().get(pk=tag_type.pk)
    if is_default is False and tag_type.is_default_key:
        raise ConflictError(
            "Make another type the default instead; there is always one.", code="tags.type_default"
        )
    for name, value in changes.items():
        setattr(tag_type, name, value)
    return _type_save(tag_type, is_default)


@transaction.atomic
def tag_type_delete(*, tag_type: TagType) -> None:
    """Delete an unused tag type; the default type and types with tags are refused (409)."""
    tag_type = TagType.objects.select_for_update().get(pk=tag_type.pk)
    if tag_type.is_default_key:
        raise ConflictError(
            f"'{tag_type.name}' is the default type; make another type the default first.",
            code="tags.type_default",
            details={"type": tag_type.key},
        )
    used = Tag.objects.filter(type=tag_type).count()
    if used:
        raise ConflictError(
            f"'{tag_type.name}' is used by {used} tag{'s' if used != 1 else ''}; "
            "give them another type first.",
            code="tags.type_in_use",
            details={"type": tag_type.key, "tags": used},
        )
    try:
        tag_type.delete()
    except ProtectedError as exc:
        raise ConflictError(
            f"'{tag_type.name}' is still referenced.", code="tags.type_in_use", details={"type": tag_type.key}
        ) from exc


def _only(fields: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise DomainError(
            f"Unknown fields: {', '.join(sorted(unknown))}.",
            code="tags.not_editable",
            details={"fields": {name: ["Not editable."] for name in sorted(unknown)}},
        )


def tag_type_get(*, type_id: int) -> TagType:
    """One tag type; NotFoundError otherwise."""
    tag_type = TagType.objects.filter(pk=type_id).first()
    if tag_type is None:
        raise NotFoundError(f"No tag type {type_id}.", code="tags.type_not_found", details={"id": type_id})
    return tag_type


def tag_type_list() -> QuerySet[TagType]:
    """Tag types in display order, each with how many tags use it."""
    return TagType.objects.annotate(tag_count=Count("tags")).order_by("display_order", "id")


# --- vocabularies ---------------------------------------------------------------------------------

VOCABULARY_FIELDS = (
    "slug",
    "name",
    "kind",
    "policy",
    "case",
    "word_separator",
    "max_length",
    "default_type",
    "default_tagger_threshold",
)
_RULE_FIELDS = ("case", "word_separator")


def _vocabulary_check(vocabulary: Vocabulary) -> None:
    vocabulary.slug = (vocabulary.slug or "").strip().lower()
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", vocabulary.slug):
        raise _invalid("slug", "Slugs are lower-case letters, digits, '-' or '_'.")
    if not (vocabulary.name or "").strip():
        raise _invalid("name", "A tag template needs a name.")
    if vocabulary.word_separator not in WORD_SEPARATORS:
        raise _invalid("word_separator", "The word separator is '_', ' ', '-' or nothing.")
    if not 1 <= vocabulary.max_length <= 200:
        raise _invalid("max_length", "Names may be 1–200 characters long.")
    if not 0 <= vocabulary.default_tagger_threshold <= 10000:
        raise _invalid("default_tagger_threshold", "The threshold is 0–10000 (1/10000).")
    if Vocabulary.objects.exclude(pk=vocabulary.pk).filter(slug=vocabulary.slug).exists():
        raise ConflictError(
            f"A tag template with the slug '{vocabulary.slug}' exists.",
            code="tags.duplicate_vocabulary",
            details={"fields": {"slug": ["This slug is taken."]}},
        )
    vocabulary.full_clean(validate_unique=False, validate_constraints=False)


def vocabulary_validate(vocabulary: Vocabulary) -> None:
    """Check a (possibly unsaved) template as the services would, without saving (admin forms)."""
    _vocabulary_check(vocabulary)


def _vocabulary_save(vocabulary: Vocabulary, is_default: bool | None) -> Vocabulary:
    _vocabulary_check(vocabulary)
    if is_default:
        Vocabulary.objects.exclude(pk=vocabulary.pk).filter(is_default_key=True).update(is_default_key=None)
        vocabulary.is_default_key = True
    try:
        with transaction.atomic():
            vocabulary.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"A tag template with the slug '{vocabulary.slug}' exists.", code="tags.duplicate_vocabulary"
        ) from exc
    return vocabulary


@transaction.atomic
def vocabulary_create(*, slug: str, name: str, is_default: bool = False, **fields: Any) -> Vocabulary:
    """Create a tag template (vocabulary): naming rules, policy, default type and threshold."""
    _only(fields, VOCABULARY_FIELDS)
    fields.setdefault("default_type", tag_type_default())
    return _vocabulary_save(Vocabulary(slug=slug, name=name, **fields), is_default)


@transaction.atomic
def vocabulary_update(
    *, vocabulary: Vocabulary, is_default: bool | None = None, **changes: Any
) -> Vocabulary:
    """Change a template's settings. Case and separator are locked once it has tags: existing
    names were normalised under the old rules."""
    _only(changes, VOCABULARY_FIELDS)
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)
    if is_default is False and vocabulary.is_default_key:
        raise ConflictError(
            "Make another template the default instead; there is always one.", code="tags.vocabulary_default"
        )
    locked = [f for f in _RULE_FIELDS if f in changes and changes[f] != getattr(vocabulary, f)]
    if locked and Tag.objects.filter(vocabulary=vocabulary).exists():
        raise ConflictError(
            f"'{vocabulary.name}' has tags, so its naming rules ({', '.join(locked)}) cannot change; "
            "create a new template and build it from this one instead.",
            code="tags.vocabulary_rules_locked",
            details={"fields": {f: ["Locked: the template has tags."] for f in locked}},
        )
    for name, value in changes.items():
        setattr(vocabulary, name, value)
    return _vocabulary_save(vocabulary, is_default)


@transaction.atomic
def vocabulary_delete(*, vocabulary: Vocabulary) -> None:
    """Delete an empty, non-default template; one with tags or tag sets is refused (409)."""
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)
    if vocabulary.is_default_key:
        raise ConflictError(
            f"'{vocabulary.name}' is the default template and cannot be deleted.",
            code="tags.vocabulary_default",
        )
    if (
        Tag.objects.filter(vocabulary=vocabulary).exists()
        or TagSet.objects.filter(vocabulary=vocabulary).exists()
    ):
        raise ConflictError(
            f"'{vocabulary.name}' has tags or tag sets; only empty templates can be deleted.",
            code="tags.vocabulary_in_use",
            details={"vocabulary": vocabulary.slug},
        )
    try:
        vocabulary.delete()
    except ProtectedError as exc:
        raise ConflictError(f"'{vocabulary.name}' is in use.", code="tags.vocabulary_in_use") from exc


def vocabulary_list() -> QuerySet[Vocabulary]:
    """Tag templates, the default first, with their default type."""
    return Vocabulary.objects.select_related("default_type").order_by("-is_default_key", "name", "id")


# --- upserting tags by name (import and build share it) ------------------------------------------


@dataclass
class ImportResult:
    """What an import or build did; `errors` lists the first IMPORT_MAX_ERRORS line errors."""

    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    aliases_created: int = 0
    aliases_existing: int = 0
    aliases_activated: int = 0
    aliases_pending: int = 0
    scheme: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_total: int = 0
    notes: list[str] = field(default_factory=list)

    def error(self, line: int, reason: str, value: str = "") -> None:
        self.errors_total += 1
        if len(self.errors) < IMPORT_MAX_ERRORS:
            self.errors.append({"line": line, "reason": reason, "value": value[:200]})

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "aliases_created": self.aliases_created,
            "aliases_existing": self.aliases_existing,
            "aliases_activated": self.aliases_activated,
            "aliases_pending": self.aliases_pending,
            "scheme": self.scheme,
            "errors": self.errors,
            "errors_total": self.errors_total,
            "errors_truncated": self.errors_total > len(self.errors),
            "notes": self.notes,
        }


def _existing(vocabulary: Vocabulary, names: list[str]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for batch in _batches(names):
        for name, pk, type_id in Tag.objects.filter(vocabulary=vocabulary, name__in=batch).values_list(
            "name", "pk", "type_id"
        ):
            found[name] = (pk, type_id)
    return found


TAG_INSERT_FIELDS = (
    "vocabulary",
    "name",
    "display_name",
    "type",
    "media_count",
    "is_deprecated",
    "keep_underscore",
    "created_at",
    "updated_at",
)


ALIAS_INSERT_FIELDS = (
    "vocabulary",
    "antecedent",
    "consequent",
    "status",
    "reason",
    "created_by",
    "created_at",
    "updated_at",
)


def _tags_upsert(
    *,
    vocabulary: Vocabulary,
    wanted: dict[str, int | None],
    result: ImportResult | None,
    update_types: bool,
) -> dict[str, tuple[int, int]]:
    """name → (tag id, type id) for every wanted name: missing tags created (given type or the
    default type), existing ones retyped when `update_types` and a type was given. A few
    statements per batch of names, never one per name."""
    names = list(wanted)
    existing = _existing(vocabulary, names)
    fallback = (vocabulary.default_type_id or tag_type_default().pk) if len(existing) < len(names) else 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    new = [
        (vocabulary.pk, name, name, wanted[name] or fallback, 0, False, False, now, now)
        for name in names
        if name not in existing
    ]
    if new:
        bulk_insert_values(Tag, TAG_INSERT_FIELDS, new)
    created = _existing(vocabulary, [row[1] for row in new]) if new else {}
    tag_words_add(vocabulary=vocabulary, tags=((pk, name) for name, (pk, _type) in created.items()))
    retype: dict[int, list[int]] = defaultdict(list)
    if update_types:
        for name, (pk, type_id) in existing.items():
            target = wanted[name]
            if target is not None and target != type_id:
                retype[target].append(pk)
                existing[name] = (pk, target)
    for type_id, ids in retype.items():
        for batch in _batches(ids):
            Tag.objects.filter(pk__in=batch).update(type_id=type_id)
    if result is not None:
        result.created += len(created)
        result.updated += sum(map(len, retype.values()))
        result.unchanged += len(existing) - sum(map(len, retype.values()))
    return {**existing, **created}


# --- CSV import -------------------------------------------------------------------------------------

# External category numbers → our type keys (docs/tags.md#csv-format).
CATEGORY_SCHEMES: dict[str, dict[int, str]] = {
    "danbooru": {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"},
    # e621: 2 contributor, 5 species, 6 invalid, 7 meta, 8 lore
    "e621": {
        0: "general", 1: "artist", 2: "artist", 3: "copyright", 4: "character",
        5: "general", 6: "meta", 7: "meta", 8: "general",
    },
}  # fmt: skip
_E621_ONLY = {2, 6, 7, 8}
# Category names some lists carry instead of numbers.
_CATEGORY_WORDS = {"species": "general", "lore": "general", "invalid": "meta", "contributor": "artist"}


@dataclass
class _Line:
    line: int
    name: str
    type_raw: str
    count_raw: str
    aliases_raw: str


def _read_limited(data: bytes | IO[bytes]) -> bytes:
    max_bytes = conf.vocab_import_max_bytes()
    raw = bytes(data) if isinstance(data, bytes | bytearray) else data.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(
            f"CSV files may be at most {max_bytes // (1024 * 1024)} MiB; split the file.",
            code="tags.import_too_large",
            details={"max_bytes": max_bytes},
        )
    return raw


def _csv_lines(raw: bytes) -> list[_Line]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnprocessableError(
            f"The file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.",
            code="tags.import_encoding",
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[_Line] = []
    max_lines = conf.vocab_import_max_lines()
    try:
        for row in reader:
            cells = [csv_cell_unescape(cell).strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if not lines and _is_header(cells):
                continue
            cells += [""] * (4 - len(cells))
            lines.append(_Line(reader.line_num, cells[0], cells[1], cells[2], cells[3]))
            if len(lines) > max_lines:
                raise PayloadTooLargeError(
                    f"CSV files may have at most {max_lines} lines; split the file.",
                    code="tags.import_too_large",
                    details={"max_lines": max_lines},
                )
    except csv.Error as exc:
        raise UnprocessableError(
            f"The CSV cannot be read at line {reader.line_num}: {exc}.",
            code="tags.import_malformed",
            details={"line": reader.line_num},
        ) from exc
    return lines


def _is_header(cells: list[str]) -> bool:
    return cells[0].lower() == "name" and (len(cells) == 1 or cells[1].lower() in ("type", "category"))


def _type_lookup() -> tuple[dict[str, int], dict[str, int]]:
    """(anything a file may write for a type → type id, key → type id)."""
    types = list(TagType.objects.all())
    by_key = {tag_type.key: tag_type.pk for tag_type in types}
    lookup = dict(by_key)
    for tag_type in types:
        for short in (k.strip().lower() for k in tag_type.short_keys.split(",")):
            if short:
                lookup.setdefault(short, tag_type.pk)
        lookup.setdefault(tag_type.name.strip().lower(), tag_type.pk)
    for word, key in _CATEGORY_WORDS.items():
        if key in by_key:
            lookup.setdefault(word, by_key[key])
    return lookup, by_key


def _scheme_detect(lines: list[_Line], scheme: str) -> str:
    if scheme in CATEGORY_SCHEMES:
        return scheme
    numbers = {int(entry.type_raw) for entry in lines if entry.type_raw.isdigit()}
    return "e621" if numbers & _E621_ONLY else "danbooru"


def _split_aliases(raw: str) -> list[str]:
    parts = raw.split(",") if "," in raw else raw.split()
    return [part.strip() for part in parts if part.strip()]


@dataclass
class _Entry:
    line: int
    type_id: int | None
    aliases: list[str]


def _entries(
    lines: list[_Line], vocabulary: Vocabulary, scheme: str, result: ImportResult
) -> dict[str, _Entry]:
    """Validate every line: name, type, count and aliases; bad lines become errors."""
    lookup, by_key = _type_lookup()
    prefixes = tag_type_prefixes()
    numbers = CATEGORY_SCHEMES[scheme]
    entries: dict[str, _Entry] = {}
    for entry in lines:
        try:
            # `char:x` reads as search reads it (type char); reserved prefixes are line errors.
            name, prefix_type = tag_name_split(raw=entry.name, vocabulary=vocabulary, types=prefixes)
        except DomainError as err:
            result.error(entry.line, err.message, entry.name)
            continue
        type_id: int | None = prefix_type.pk if prefix_type is not None else None
        if entry.type_raw:
            raw_type = entry.type_raw.lower()
            if raw_type.lstrip("-").isdigit():
                key = numbers.get(int(raw_type))
                if key is None:
                    result.error(entry.line, f"Unknown {scheme} category {raw_type}.", entry.type_raw)
                    continue
                type_id = by_key.get(key)
                if type_id is None:
                    result.error(entry.line, f"Category {raw_type} means type '{key}', which does not exist.")
                    continue
            else:
                type_id = lookup.get(raw_type)
                if type_id is None:
                    result.error(entry.line, f"Unknown tag type '{entry.type_raw}'.", entry.type_raw)
                    continue
            if prefix_type is not None and type_id != prefix_type.pk:
                result.error(
                    entry.line,
                    f"The name's prefix says type '{prefix_type.key}' but the type column says "
                    f"'{entry.type_raw}'; drop one.",
                    entry.name,
                )
                continue
        if entry.count_raw and not entry.count_raw.isdigit():
            result.error(entry.line, "The count must be a whole number ≥ 0.", entry.count_raw)
            continue
        if name in entries:
            result.error(entry.line, f"'{name}' repeats line {entries[name].line}.", entry.name)
            continue
        aliases = []
        for alias in _split_aliases(entry.aliases_raw):
            try:
                clean = tag_name_normalise(raw=alias, vocabulary=vocabulary)
            except DomainError as err:
                result.error(entry.line, f"Alias skipped: {err.message}", alias)
                continue
            if clean != name:
                aliases.append(clean)
        entries[name] = _Entry(entry.line, type_id, aliases)
    return entries


def _alias_activator(actor: Any) -> Any:
    """rules.alias_activate when the importer may approve rules, else None (aliases stay pending)."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.has_perm(APPROVE_PERM):
        return None
    try:
        from apps.tags.services import rules  # owned by the rules module; looked up late
    except ImportError:
        return None
    return getattr(rules, "alias_activate", None)


def _aliases_import(
    *,
    vocabulary: Vocabulary,
    entries: dict[str, _Entry],
    tags: dict[str, tuple[int, int]],
    actor: Any,
    result: ImportResult,
) -> None:
    """Create TagAlias rows (antecedent → the line's tag): pending, or activated for approvers."""
    pairs: list[tuple[int, str, str]] = []  # line, antecedent, consequent
    claimed: dict[str, tuple[str, int]] = {}
    for name, entry in entries.items():
        for word in entry.aliases:
            if word in claimed and claimed[word][0] != name:
                other, other_line = claimed[word]
                result.error(
                    entry.line, f"Alias '{word}' is already given for '{other}' (line {other_line})."
                )
                continue
            if word not in claimed:
                claimed[word] = (name, entry.line)
                pairs.append((entry.line, word, name))
    if not pairs:
        return
    # Antecedents become tags too, typed like their ideal; an existing tag keeps its type.
    missing = {a: tags[c][1] for _line, a, c in pairs if a not in tags}
    if missing:
        tags.update(
            _tags_upsert(vocabulary=vocabulary, wanted=dict(missing), result=None, update_types=False)
        )
    # Per antecedent: the live (active, else pending) alias, and every consequent ever proposed.
    live: dict[int, tuple[int, int, str]] = {}
    proposed: set[tuple[int, int]] = set()
    for batch in _batches([tags[a][0] for _line, a, _c in pairs]):
        for pk, ante_id, cons_id, status in TagAlias.objects.filter(
            vocabulary=vocabulary, antecedent_id__in=batch
        ).values_list("pk", "antecedent_id", "consequent_id", "status"):
            proposed.add((ante_id, cons_id))
            if status == RuleStatus.ACTIVE or (status == RuleStatus.PENDING and ante_id not in live):
                live[ante_id] = (pk, cons_id, status)
    new: list[tuple[int, int, int]] = []  # line, antecedent id, consequent id
    pending_existing: list[tuple[int, int]] = []
    conflicts: list[tuple[int, str, int]] = []
    creator = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    for line, antecedent, consequent in pairs:
        a_id, c_id = tags[antecedent][0], tags[consequent][0]
        if a_id in live and live[a_id][1] != c_id:
            conflicts.append((line, antecedent, live[a_id][1]))
        elif (a_id, c_id) in proposed:  # known, including rejected or retired: not proposed again
            result.aliases_existing += 1
            if a_id in live and live[a_id][2] == RuleStatus.PENDING:
                pending_existing.append((line, live[a_id][0]))
        else:
            new.append((line, a_id, c_id))
    if conflicts:
        names = dict(Tag.objects.filter(pk__in={c for _l, _a, c in conflicts}).values_list("pk", "name"))
        for line, antecedent, consequent_id in conflicts:
            target = names.get(consequent_id)
            result.error(line, f"'{antecedent}' is already an alias of '{target}'.", antecedent)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    creator_id = creator.pk if creator is not None else None
    bulk_insert_values(
        TagAlias,
        ALIAS_INSERT_FIELDS,
        [(vocabulary.pk, a, c, RuleStatus.PENDING, "CSV import", creator_id, now, now) for _l, a, c in new],
        ignore_conflicts=False,
    )
    result.aliases_created = len(new)
    result.aliases_pending = len(new) + len(pending_existing)
    activate = _alias_activator(actor)
    if activate is None or not result.aliases_pending:
        return
    if result.aliases_pending > ALIAS_ACTIVATE_MAX:
        result.notes.append(
            f"{result.aliases_pending} aliases are more than the {ALIAS_ACTIVATE_MAX} one import "
            "activates; they stay pending for review."
        )
        return
    todo = sorted(pending_existing + _new_alias_ids(vocabulary, new))
    for line, pk in todo:
        try:
            with transaction.atomic():
                activate(alias=TagAlias.objects.get(pk=pk), actor=actor)
        except DomainError as err:
            result.error(line, f"Alias left pending: {err.message}")
        else:
            result.aliases_activated += 1
    result.aliases_pending -= result.aliases_activated


def _new_alias_ids(vocabulary: Vocabulary, new: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    line_of = {a: line for line, a, _c in new}
    found: list[tuple[int, int]] = []
    for batch in _batches(list(line_of)):
        for pk, antecedent in TagAlias.objects.filter(
            vocabulary=vocabulary, antecedent_id__in=batch, status=RuleStatus.PENDING
        ).values_list("pk", "antecedent_id"):
            found.append((line_of[antecedent], pk))
    return sorted(found)


@transaction.atomic
def vocabulary_import_csv(
    *, vocabulary: Vocabulary, data: bytes | IO[bytes], actor: Any = None, scheme: str = "auto"
) -> ImportResult:
    """Load `name,type,count,aliases` lines into a template (closed ones too).

    Types are keys, short keys, names or Danbooru/e621 category numbers (`scheme` auto-detects:
    6–8 or 2 mean e621). Re-importing updates types and adds only what is new. Aliases become
    pending TagAlias rows, activated through the rules service when `actor` may approve rules.
    Counts are checked but not stored: a tag's count is how many items here carry it.
    """
    raw = _read_limited(data)
    lines = _csv_lines(raw)
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)  # one import at a time
    result = ImportResult(lines=len(lines))
    result.scheme = _scheme_detect(lines, scheme)
    entries = _entries(lines, vocabulary, result.scheme, result)
    if entries:
        tags = _tags_upsert(
            vocabulary=vocabulary,
            wanted={name: entry.type_id for name, entry in entries.items()},
            result=result,
            update_types=True,
        )
        _aliases_import(vocabulary=vocabulary, entries=entries, tags=tags, actor=actor, result=result)
    if any(entry.count_raw for entry in lines):
        result.notes.append("Counts in the file are not stored: counts are how many items here have a tag.")
    return result


# --- building a template from the tags in use -----------------------------------------------------

USAGE_SCOPES = {
    "effective": "Effective tags (what search sees)",
    "any": "Any current tag set",
    "curated": "Curated sets",
    "source": "Source sets",
    "tagger": "Tagger sets",
    "derived": "Derived sets",
}
_SCOPE_KINDS = {
    "curated": TagSet.Kind.CURATED,
    "source": TagSet.Kind.SOURCE,
    "tagger": TagSet.Kind.TAGGER,
    "derived": TagSet.Kind.DERIVED,
}


def _tags_in_use(source: Vocabulary, scope: str, min_count: int) -> QuerySet[Tag]:
    tags = Tag.objects.filter(vocabulary=source)
    if scope == "effective":
        return tags.filter(media_count__gte=min_count)
    current = TagAssignment.objects.filter(tag_id=OuterRef("pk"), state=TagAssignment.State.CURRENT)
    if scope in _SCOPE_KINDS:
        current = current.filter(kind=_SCOPE_KINDS[scope])
    if min_count <= 1:
        return tags.filter(Exists(current))
    counted = current.values("tag_id").annotate(n=Count("media_item_id", distinct=True)).values("n")
    return tags.annotate(used=Subquery(counted)).filter(used__gte=min_count)


@transaction.atomic
def vocabulary_build_from_usage(
    *, vocabulary: Vocabulary, source: Vocabulary, scope: str = "effective", min_count: int = 1
) -> ImportResult:
    """Create or refresh a template's tags (names re-normalised, types copied) from the tags in
    use in another vocabulary, counted in one scope (effective tags or one set kind), at once."""
    if scope not in USAGE_SCOPES:
        raise _invalid("scope", f"Choose one of: {', '.join(USAGE_SCOPES)}.")
    if source.pk == vocabulary.pk:
        raise UnprocessableError(
            "A template cannot be built from itself; choose the vocabulary whose tags are in use.",
            code="tags.build_same_vocabulary",
            details={"fields": {"source": ["Choose another vocabulary."]}},
        )
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)
    result = ImportResult(scheme=scope)
    wanted: dict[str, int | None] = {}
    for name, type_id in (
        _tags_in_use(source, scope, max(1, min_count))
        .values_list("name", "type_id")
        .iterator(chunk_size=5000)
    ):
        result.lines += 1
        try:
            clean = tag_name_normalise(raw=name, vocabulary=vocabulary)
        except DomainError as err:
            result.error(0, err.message, name)
            continue
        wanted.setdefault(clean, type_id)
    if wanted:
        _tags_upsert(vocabulary=vocabulary, wanted=wanted, result=result, update_types=True)
    return result


# --- CSV export ---------------------------------------------------------------------------------------

EXPORT_BATCH = 5000


def vocabulary_export_rows(*, vocabulary: Vocabulary) -> Iterator[list[str]]:
    """`name,type,count,aliases` rows in creation order; antecedents appear as aliases of their
    ideal tag (active and pending aliases), not as rows. Reads in keyset batches by id."""
    yield ["name", "type", "count", "aliases"]
    types = dict(TagType.objects.values_list("pk", "key"))
    live = [RuleStatus.ACTIVE, RuleStatus.PENDING]
    after = 0
    while True:
        batch = list(
            Tag.objects.filter(vocabulary=vocabulary, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "name", "type_id", "media_count")[:EXPORT_BATCH]
        )
        if not batch:
            return
        ids = [row[0] for row in batch]
        aliases = TagAlias.objects.filter(vocabulary=vocabulary, status__in=live)
        antecedents = set(aliases.filter(antecedent_id__in=ids).values_list("antecedent_id", flat=True))
        by_ideal: dict[int, list[str]] = defaultdict(list)
        for consequent, name in (
            aliases.filter(consequent_id__in=ids)
            .order_by("antecedent__name")
            .values_list("consequent_id", "antecedent__name")
        ):
            by_ideal[consequent].append(name)
        for pk, name, type_id, count in batch:
            if pk not in antecedents:
                yield [
                    name,
                    types.get(type_id, ""),
                    str(count),
                    ",".join(dict.fromkeys(by_ideal.get(pk, []))),
                ]
        after = batch[-1][0]


class _Echo:
    def write(self, value: str) -> str:
        return value


def vocabulary_export_csv(*, vocabulary: Vocabulary) -> Iterator[str]:
    """The export as CSV text lines, for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    for row in vocabulary_export_rows(vocabulary=vocabulary):
        yield writer.writerow([csv_cell_escape(cell) for cell in row])  # no formulas (apps/core/csvsafe.py)


# --- the tag list (pages and API), keyset-paged --------------------------------------------------

TAG_ORDERS = {"count": "Most used", "name": "Name"}


@dataclass(frozen=True)
class TagPage:
    rows: list[Tag]
    next_cursor: str | None


def tag_list() -> QuerySet[Tag]:
    """Every tag with its vocabulary, type and (for alias antecedents) ideal tag; filter it
    with the TagFilter."""
    return Tag.objects.select_related("vocabulary", "type", "resolution__ideal_tag")


def _cursor_encode(order: str, tag: Tag) -> str:
    value: Any = tag.media_count if order == "count" else tag.name
    return base64.urlsafe_b64encode(json.dumps([order, value, tag.pk]).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, order: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        valid = kind == order and isinstance(pk, int) and isinstance(value, int if order == "count" else str)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise DomainError("This page link is no longer valid; start again.", code="tags.invalid_cursor")
    return value, pk


def tag_page(*, queryset: QuerySet[Tag], order: str = "count", cursor: str = "", size: int = 50) -> TagPage:
    """One page in `order` (count: most used first; name: A→Z), after `cursor`; no OFFSET, no COUNT."""
    if order not in TAG_ORDERS:
        raise _invalid("order", f"Order by one of: {', '.join(TAG_ORDERS)}.")
    if cursor:
        value, pk = _cursor_decode(cursor, order)
        if order == "count":
            queryset = queryset.filter(Q(media_count__lt=value) | Q(media_count=value, pk__gt=pk))
        else:
            queryset = queryset.filter(Q(name__gt=value) | Q(name=value, pk__gt=pk))
    ordering = ("-media_count", "pk") if order == "count" else ("name", "pk")
    rows = list(queryset.order_by(*ordering)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return TagPage(rows=rows, next_cursor=_cursor_encode(order, rows[-1]) if more and rows else None)


def tag_top(*, vocabulary: Vocabulary, tag_type: TagType | None = None, limit: int = 30) -> list[Tag]:
    """The most used tags of a vocabulary (optionally one type), for the frequency chart."""
    tags = Tag.objects.filter(vocabulary=vocabulary, media_count__gt=0)
    if tag_type is not None:
        tags = tags.filter(type=tag_type)
    return list(tags.select_related("type").order_by("-media_count", "pk")[:limit])


def tag_type_distribution(*, vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """Per type: how many tags and how many uses (sum of media counts) a vocabulary has."""
    rows = (
        Tag.objects.filter(vocabulary=vocabulary)
        .values("type_id")
        .annotate(tags=Count("pk"), uses=Sum("media_count"))
        .order_by()
    )
    types = {t.pk: t for t in TagType.objects.all()}
    out = [
        {"type": types[row["type_id"]], "tags": row["tags"], "uses": row["uses"] or 0}
        for row in rows
        if row["type_id"] in types
    ]
    out.sort(key=lambda row: (row["type"].display_order, row["type"].pk))
    return out
