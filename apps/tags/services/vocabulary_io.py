"""Tag templates in and out: CSV import (danbooru/e621 lists, aliases), CSV export, and building
a template from the tags in use (docs/tags.md#csv-format). Tags are upserted by name in batches;
aliases an importer may approve are activated through the rules service, others stay pending.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from apps.core.csvsafe import csv_cell_escape, csv_cell_unescape
from apps.core.exceptions import DomainError, PayloadTooLargeError, UnprocessableError
from apps.tags import conf
from apps.tags.models import RuleStatus, Tag, TagAlias, TagAssignment, TagSet, TagType, Vocabulary
from apps.tags.services import rules
from apps.tags.services.item_types import item_types_refresh_tags
from apps.tags.services.names import (
    bulk_insert_values,
    tag_name_normalise,
    tag_name_split,
    tag_type_default,
    tag_type_prefixes,
    tag_words_add,
)
from apps.tags.services.vocabularies import batches, invalid_field

IMPORT_MAX_ERRORS = 1000  # listed; all are counted
ALIAS_ACTIVATE_MAX = 2000  # one rule change each; more stay pending for review in bulk


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
    for batch in batches(names):
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
        for batch in batches(ids):
            Tag.objects.filter(pk__in=batch).update(type_id=type_id)
            item_types_refresh_tags(tag_ids=batch)
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
    if actor is None or not rules.rules_may_approve(actor):
        return None
    return rules.alias_activate


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
    for batch in batches([tags[a][0] for _line, a, _c in pairs]):
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
    for batch in batches(list(line_of)):
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
        raise invalid_field("scope", f"Choose one of: {', '.join(USAGE_SCOPES)}.")
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
