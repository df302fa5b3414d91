"""Builders for mapping tests: vocabularies, mapping sets from tuples, profiles."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from apps.mappings.models import MappingProfile, MappingSet
from apps.mappings.services.profiles import profile_create
from apps.mappings.services.rules import RuleInput, mapping_set_create
from apps.tags.models import Vocabulary

_serial = itertools.count(1)


def vocabulary_make(slug: str = "", **fields: Any) -> Vocabulary:
    slug = slug or f"voc{next(_serial)}"
    return Vocabulary.objects.create(slug=slug, name=slug, **fields)


def rules(*rows: tuple[Any, ...] | dict[str, Any]) -> list[RuleInput]:
    """RuleInputs from (source, targets, action='map', requires='', unless='', priority=0)
    tuples or dicts."""
    out = []
    for n, row in enumerate(rows, 1):
        if isinstance(row, dict):
            out.append(RuleInput.from_dict(row, n))
            continue
        source, targets, *rest = row
        action, requires, unless, priority = (list(rest) + ["map", "", "", 0][len(rest) :])[:4]
        targets = [targets] if isinstance(targets, str) else list(targets)
        out.append(RuleInput(source, targets, action, requires, unless, "", priority, n))
    return out


def set_make(
    source: Vocabulary, target: Vocabulary, rows: Sequence[Any] = (), slug: str = "", **kw: Any
) -> MappingSet:
    return mapping_set_create(
        slug=slug or f"set{next(_serial)}",
        source_vocabulary=source.slug,
        target_vocabulary=target.slug,
        rules=rules(*rows),
        create_targets=kw.pop("create_targets", True),
        **kw,
    )


def profile_make(
    target: Vocabulary, sets: Sequence[MappingSet], slug: str = "", **fields: Any
) -> MappingProfile:
    return profile_create(
        slug=slug or f"prof{next(_serial)}",
        target_vocabulary=target.slug,
        steps=[s.slug for s in sets],
        **fields,
    )
