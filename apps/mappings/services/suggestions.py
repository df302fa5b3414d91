"""Suggestions for the source tags a profile leaves unmapped (docs/mappings.md#suggestions).

Evidence, each a registered suggester (apps/mappings/suggesters.py):

* `name`: the same normalised name in the target vocabulary (score 1.0);
* `alias`: a target alias whose antecedent has that name → its consequent (0.95);
* `spelling`: target tags sharing a word (or starting with the first one), ranked by difflib
  ratio ≥ 0.75 (score 0.8 × ratio);
* `cooccurrence`: on up to COOC_SAMPLE items carrying the source tag, the target-vocabulary tags
  they also carry: P(target | source), lift = P(target | source) / P(target), with counts
  (score 0.9 × P when at least COOC_MIN items agree).

Rejected pairs (`SuggestionRejection`) are not proposed again; accepting one appends a rule.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import Count

from apps.core.exceptions import DomainError
from apps.mappings.models import MappingProfile, MappingSet, SuggestionRejection, TagMapping
from apps.mappings.pipeline import TagInfo, name_key
from apps.mappings.selectors import folded_target_names, profile_sets, tags_info
from apps.mappings.services.rules import RuleInput, mapping_rules_append
from apps.media.models import MediaItem
from apps.tags.extensions import Candidate, suggester_register, suggesters
from apps.tags.models import RuleStatus, Tag, TagAlias, TagAssignment, TagSet, TagWord

COOC_SAMPLE = 2000
COOC_MIN = 3
SPELLING_MIN = 0.75
CANDIDATES = 5


def _name(sources: Sequence[TagInfo], target: int, limit: int) -> dict[int, list[Candidate]]:
    keys = defaultdict(list)
    for s in sources:
        keys[name_key(s.name)].append(s.id)
    names = sorted({v for k in keys for v in (k, k.replace("_", " "))})
    out: dict[int, list[Candidate]] = defaultdict(list)
    found: set[str] = set()
    for pk, name in Tag.objects.filter(vocabulary_id=target, name__in=names).values_list("pk", "name"):
        found.add(name_key(name))
        for source in keys.get(name_key(name), ()):
            out[source].append(Candidate(pk, 1.0, [{"kind": "name", "name": name}]))
    if keys.keys() - found:  # names that keep upper case in the target (`Long_Hair`)
        folded = folded_target_names(target)
        for key in keys.keys() - found:
            if key in folded:
                pk, name = folded[key]
                for source in keys[key]:
                    out[source].append(Candidate(pk, 1.0, [{"kind": "name", "name": name}]))
    return out


def _alias(sources: Sequence[TagInfo], target: int, limit: int) -> dict[int, list[Candidate]]:
    keys = defaultdict(list)
    for s in sources:
        keys[name_key(s.name)].append(s.id)
    names = sorted({v for k in keys for v in (k, k.replace("_", " "))})
    out: dict[int, list[Candidate]] = defaultdict(list)
    rows = TagAlias.objects.filter(
        vocabulary_id=target, status=RuleStatus.ACTIVE, antecedent__name__in=names
    ).values_list("antecedent__name", "consequent_id")
    for antecedent, consequent in rows:
        for source in keys.get(name_key(antecedent), ()):
            out[source].append(Candidate(consequent, 0.95, [{"kind": "alias", "antecedent": antecedent}]))
    return out


def _spelling(sources: Sequence[TagInfo], target: int, limit: int) -> dict[int, list[Candidate]]:
    out: dict[int, list[Candidate]] = defaultdict(list)
    for s in sources:
        words = [w for w in name_key(s.name).replace("(", "_").replace(")", "_").split("_") if len(w) >= 2]
        if not words:
            continue
        # TagWord leaves out a lower-case name's first word (the name index finds it as a prefix).
        words_of = TagWord.objects.filter(vocabulary_id=target, word__in=words[:4])
        ids = list(words_of.values_list("tag_id", flat=True)[:300])
        prefixed = Tag.objects.filter(vocabulary_id=target, name__startswith=words[0])
        ids += prefixed.values_list("pk", flat=True)[:100]
        for pk, name in Tag.objects.filter(pk__in=ids).values_list("pk", "name"):
            ratio = difflib.SequenceMatcher(None, name_key(s.name), name_key(name)).ratio()
            if ratio >= SPELLING_MIN and name_key(name) != name_key(s.name):
                out[s.id].append(
                    Candidate(pk, round(0.8 * ratio, 4), [{"kind": "spelling", "ratio": round(ratio, 3)}])
                )
    return out


def _cooccurrence(sources: Sequence[TagInfo], target: int, limit: int) -> dict[int, list[Candidate]]:
    out: dict[int, list[Candidate]] = defaultdict(list)
    total = MediaItem.objects.count() or 1
    current = TagAssignment.State.CURRENT
    for s in sources:
        items = list(
            TagAssignment.objects.filter(tag_id=s.id, state=current)
            .values_list("media_item_id", flat=True)
            .distinct()[:COOC_SAMPLE]
        )
        if len(items) < COOC_MIN:
            continue
        sets = TagSet.objects.filter(media_item_id__in=items, vocabulary_id=target).values("pk")
        counts = (
            TagAssignment.objects.filter(tagset_id__in=sets, state=current)
            .values("tag_id")
            .annotate(n=Count("media_item_id", distinct=True))
            .order_by("-n")[:CANDIDATES]
        )
        media = dict(
            Tag.objects.filter(pk__in=[c["tag_id"] for c in counts]).values_list("pk", "media_count")
        )
        for c in counts:
            if c["n"] < COOC_MIN:
                continue
            p = c["n"] / len(items)
            prior = max(media.get(c["tag_id"], 0), c["n"]) / total
            evidence = {"kind": "cooccurrence", "both": c["n"], "source_items": len(items), "p": round(p, 4)}
            evidence["lift"] = round(p / prior, 3) if prior else None
            out[s.id].append(Candidate(c["tag_id"], round(0.9 * p, 4), [evidence]))
    return out


def builtin_register() -> None:
    """Register this module's suggesters (from MappingsConfig.ready())."""
    for key, fn in (
        ("name", _name),
        ("alias", _alias),
        ("spelling", _spelling),
        ("cooccurrence", _cooccurrence),
    ):
        suggester_register(key=f"mappings.{key}", suggester=fn)


def unmapped_sources(profile: MappingProfile, limit: int) -> list[TagInfo]:
    """The source-vocabulary tags no step has a rule for, most used first."""
    sets = profile_sets(profile)
    vocabularies = sorted({s.source_vocabulary_id for s in sets})
    ruled = TagMapping.objects.filter(mapping_set__in=sets).values("source_tag_id")
    rows = (
        Tag.objects.filter(vocabulary_id__in=vocabularies, media_count__gt=0)
        .exclude(pk__in=ruled)
        .order_by("-media_count", "pk")
        .values_list("pk", "name", "vocabulary_id", "type_id", "media_count", "keep_underscore")[:limit]
    )
    return [TagInfo(*r) for r in rows]


def mapping_suggestions(*, profile: MappingProfile, limit: int = 50) -> list[dict[str, Any]]:
    """Per unmapped source tag (most used first): up to CANDIDATES targets, best score first."""
    sources = unmapped_sources(profile, limit)
    target = profile.target_vocabulary_id
    merged: dict[int, dict[int, Candidate]] = defaultdict(dict)
    for suggester in suggesters().values():
        for source, candidates in suggester(sources, target, limit).items():
            for c in candidates:
                best = merged[source].get(c.target_id)
                if best is None:
                    merged[source][c.target_id] = Candidate(c.target_id, c.score, list(c.evidence))
                else:
                    best.score = max(best.score, c.score)
                    best.evidence += c.evidence
    rejected = set(
        SuggestionRejection.objects.filter(
            profile=profile, source_tag_id__in=[s.id for s in sources]
        ).values_list("source_tag_id", "target_tag_id")
    )
    names = tags_info({t for per in merged.values() for t in per}, {})
    out = []
    for s in sources:
        ranked = sorted(merged.get(s.id, {}).values(), key=lambda c: (-c.score, c.target_id))
        ranked = [c for c in ranked if (s.id, c.target_id) not in rejected][:CANDIDATES]
        out.append(
            {
                "source": s.name,
                "source_id": s.id,
                "count": s.media_count,
                "candidates": [
                    {
                        "target": names[c.target_id].name,
                        "target_id": c.target_id,
                        "score": c.score,
                        "evidence": c.evidence,
                    }
                    for c in ranked
                ],
            }
        )
    return out


def suggestion_accept(
    *, profile: MappingProfile, source: str, targets: Sequence[str], mapping_set: MappingSet | None = None
) -> int:
    """Accept (or edit, then accept) a suggestion: a map rule in `mapping_set` (default: the
    profile's first step). Returns how many rules changed."""
    chosen = mapping_set or profile_sets(profile)[0]
    return mapping_rules_append(
        mapping_set=chosen, rules=[RuleInput(source=source, targets=list(targets), line=1)]
    )


def suggestion_reject(*, profile: MappingProfile, source_id: int, target_id: int) -> None:
    """Never propose this target for this source again in this profile."""
    if Tag.objects.filter(pk__in=[source_id, target_id]).count() != len({source_id, target_id}):
        raise DomainError("Unknown source or target tag.", code="mappings.unknown_tag")
    SuggestionRejection.objects.get_or_create(
        profile=profile, source_tag_id=source_id, target_tag_id=target_id
    )
