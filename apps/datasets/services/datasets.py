"""Creating, editing and deleting datasets and subsets (docs/datasets.md)."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets.models import Dataset, Requirements, Subset
from apps.datasets.services.members import lock_dataset
from apps.search.query import QueryError, parse, query_resolve
from apps.tags.models import TagType

REQUIREMENT_INTS = [
    "exact_width",
    "exact_height",
    "min_width",
    "max_width",
    "min_height",
    "max_height",
    "min_short_side",
    "min_aspect_milli",
    "max_aspect_milli",
    "min_pixels",
    "max_pixels",
    "bit_depth",
    "max_file_size",
    "min_tag_count",
    "near_duplicate_max_distance",
]
PAIRS = [
    ("min_width", "max_width"),
    ("min_height", "max_height"),
    ("min_aspect_milli", "max_aspect_milli"),
    ("min_pixels", "max_pixels"),
]
NO_ALPHA_FORMATS = {"jpeg", "bmp"}
MAX_NEAR_DISTANCE = 4  # five phash bands: see selectors._near_duplicate
MAX_LICENCE_NOTES = 4000  # characters (the model field's max_length)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def _bad(field: str, message: str) -> DomainError:
    return DomainError(
        f"{field}: {message}", code="datasets.bad_requirements", details={"fields": {field: [message]}}
    )


def requirements_check(values: dict[str, Any]) -> None:
    """Contradictions between rules (docs/datasets.md#requirements): a 400 naming the field."""
    for low, high in PAIRS:
        if values.get(low) is not None and values.get(high) is not None and values[low] > values[high]:
            raise _bad(low, f"must not exceed {high} ({values[high]}).")
    for exact, low, high in (
        ("exact_width", "min_width", "max_width"),
        ("exact_height", "min_height", "max_height"),
    ):
        size = values.get(exact)
        if size is None:
            continue
        if (values.get(low) is not None and size < values[low]) or (
            values.get(high) is not None and size > values[high]
        ):
            raise _bad(exact, f"{size} is outside {low}..{high}.")
    formats = values.get("formats") or []
    alpha = values.get("alpha", Requirements.Alpha.ANY)
    if alpha == Requirements.Alpha.REQUIRED and formats and set(formats) <= NO_ALPHA_FORMATS:
        raise _bad("alpha", f"alpha is required but the allowed formats ({', '.join(formats)}) have none.")
    if alpha == Requirements.Alpha.FLATTEN and not _COLOR.fullmatch(values.get("flatten_color") or ""):
        raise _bad("flatten_color", "a colour like #ffffff is needed to flatten alpha.")
    distance = values.get("near_duplicate_max_distance")
    if distance is not None and distance > MAX_NEAR_DISTANCE:
        raise _bad("near_duplicate_max_distance", f"at most {MAX_NEAR_DISTANCE}.")


def _check_query(query: str, field: str = "query") -> None:
    if not query:
        return
    try:
        query_resolve(parse(query))
    except QueryError as exc:
        raise DomainError(
            f"{field}: {exc.message}",
            code="datasets.bad_query",
            details={"fields": {field: [exc.message]}, "query_error": exc.as_dict()},
        ) from exc


def _requirements_save(dataset: Dataset, values: dict[str, Any]) -> None:
    """Replace the dataset's requirements with `values` (validated data; missing = no rule)."""
    req, _ = Requirements.objects.get_or_create(dataset=dataset)
    merged = {f: values.get(f) for f in REQUIREMENT_INTS}
    merged["formats"] = sorted({str(f).lower() for f in values.get("formats") or []})
    merged["modes"] = sorted({str(m) for m in values.get("modes") or []})
    merged["alpha"] = values.get("alpha") or Requirements.Alpha.ANY
    merged["flatten_color"] = (values.get("flatten_color") or "").lower()
    requirements_check(merged)
    keys = sorted(set(values.get("required_tag_types") or []))
    types = list(TagType.objects.filter(key__in=keys))
    unknown = sorted(set(keys) - {t.key for t in types})
    if unknown:
        raise _bad("required_tag_types", f"no such tag types: {', '.join(unknown)}.")
    for field, value in merged.items():
        setattr(req, field, value)
    req.save()
    req.required_tag_types.set(types)


def licence_notes_check(value: Any) -> str:
    """Licence notes: text of at most MAX_LICENCE_NOTES characters, line breaks and tabs allowed,
    no other control character (they reach every bundle's README.md)."""
    if not isinstance(value, str):
        message = "text (the images' licences and terms), or empty."
    elif len(value) > MAX_LICENCE_NOTES:
        message = f"at most {MAX_LICENCE_NOTES:,} characters (got {len(value):,})."
    elif _CONTROL.search(value):
        message = "text without control characters (line breaks and tabs are fine)."
    else:
        return value.strip()
    raise DomainError(
        f"licence_notes: {message}", code="datasets.invalid", details={"fields": {"licence_notes": [message]}}
    )


def _named(row: Dataset | Subset) -> None:
    row.name = row.name.strip()
    if not row.name or not row.slug:
        raise DomainError(
            "name: a name with at least one letter or digit.",
            code="datasets.invalid",
            details={"fields": {"name": ["A name with at least one letter or digit."]}},
        )


def _unique(save: Any, what: str) -> Any:
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as exc:
        raise ConflictError(f"A {what} with this name or slug exists.", code="datasets.duplicate") from exc


@transaction.atomic
def dataset_create(
    *,
    name: str,
    slug: str = "",
    description: str = "",
    purpose: str = "",
    licence_notes: str = "",
    query: str = "",
    requirements: dict[str, Any] | None = None,
) -> Dataset:
    _check_query(query)
    dataset = Dataset(
        name=name.strip(),
        slug=slug or slugify(name)[:100],
        description=description,
        purpose=purpose,
        licence_notes=licence_notes_check(licence_notes),
        query=query.strip(),
    )
    _named(dataset)
    _unique(dataset.save, "dataset")
    _requirements_save(dataset, requirements or {})
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, requirements: dict[str, Any] | None = None, **fields: Any) -> Dataset:
    """Change the given fields; `requirements`, when given, replaces the whole rule set."""
    if "licence_notes" in fields:
        fields["licence_notes"] = licence_notes_check(fields["licence_notes"])
    if "query" in fields:
        fields["query"] = (fields["query"] or "").strip()
        _check_query(fields["query"])
    if "slug" in fields and not fields["slug"]:
        fields["slug"] = slugify(fields.get("name") or dataset.name)[:100]
    for field, value in fields.items():
        setattr(dataset, field, value)
    _named(dataset)
    _unique(dataset.save, "dataset")
    if fields.get("query"):  # again, saved: a loop through other saved queries shows now
        _check_query(fields["query"])
    if requirements is not None:
        _requirements_save(dataset, requirements)
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    dataset.delete()


@transaction.atomic
def subset_create(
    *, dataset: Dataset, name: str, slug: str = "", description: str = "", query: str = ""
) -> Subset:
    _check_query(query)
    lock_dataset(dataset.pk)  # a snapshot being frozen lists the subsets it saw
    subset = Subset(
        dataset=dataset,
        name=name.strip(),
        slug=slug or slugify(name)[:100],
        description=description,
        query=query.strip(),
    )
    _named(subset)
    _unique(subset.save, "subset")
    return subset


@transaction.atomic
def subset_update(*, subset: Subset, **fields: Any) -> Subset:
    lock_dataset(subset.dataset_id)  # a snapshot being frozen reads the subset's query
    if "query" in fields:
        fields["query"] = (fields["query"] or "").strip()
        _check_query(fields["query"])
    if "slug" in fields and not fields["slug"]:
        fields["slug"] = slugify(fields.get("name") or subset.name)[:100]
    for field, value in fields.items():
        setattr(subset, field, value)
    _named(subset)
    _unique(subset.save, "subset")
    if fields.get("query"):  # again, saved: a loop through other saved queries shows now
        _check_query(fields["query"])
    return subset


def subset_delete(*, subset: Subset) -> None:
    subset.delete()
