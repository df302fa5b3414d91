"""Property test: the service's pipeline against a straightforward reference of
docs/mappings.md#pipeline on random vocabularies, rules (guards, priorities, several steps),
aliases, implications and every policy. Runs on SQLite and on MariaDB (TEST_DATABASE_URL)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from apps.mappings.models import MappingProfile, MappingProfileStep, TagMapping
from apps.mappings.pipeline import name_key
from apps.mappings.services.apply import prepare, results_for
from apps.tags.models import AliasResolution, EffectiveTag, Tag, TagAssignment, TagClosure, TagSet, TagType
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import effective_build, items_make, rules_fresh

pytestmark = pytest.mark.django_db
BIG = 1 << 30
KIND = {"curated": TagSet.Kind.CURATED, "source": TagSet.Kind.SOURCE, "tagger": TagSet.Kind.TAGGER}


# --- the reference: one item at a time, straight from the tables ---------------------------------


def _ideal(tag_id: int) -> int:
    row = AliasResolution.objects.filter(tag_id=tag_id).values_list("ideal_tag_id", flat=True).first()
    return row or tag_id


def _inputs(profile: MappingProfile, item_id: int, vocabularies: set[int]) -> list[int]:
    if profile.input_scope == "effective":
        pairs = [
            (e.tag_id, BIG)
            for e in EffectiveTag.objects.filter(media_item_id=item_id)
            if Tag.objects.get(pk=e.tag_id).vocabulary_id in vocabularies
        ]
    else:
        pairs = []
        for a in TagAssignment.objects.filter(media_item_id=item_id, kind=KIND[profile.input_scope], state=1):
            if a.tagset.vocabulary_id not in vocabularies:
                continue
            if profile.input_scope == "tagger" and (a.confidence or 0) < profile.min_confidence:
                continue
            pairs.append((a.tag_id, BIG if a.position is None else a.position))
    out: dict[int, int] = {}
    for tag_id, position in sorted(pairs, key=lambda p: (p[1], p[0])):
        out.setdefault(_ideal(tag_id), position)
    return list(out.items())  # type: ignore[return-value]


def _rule_for(profile: MappingProfile, tag_id: int, present: set[int]) -> TagMapping | None:
    for step in MappingProfileStep.objects.filter(profile=profile).order_by("ord"):
        fits = []
        for rule in TagMapping.objects.filter(mapping_set_id=step.mapping_set_id):
            if _ideal(rule.source_tag_id) != tag_id:
                continue
            if rule.requires_tag_id and _ideal(rule.requires_tag_id) not in present:
                continue
            if rule.unless_tag_id and _ideal(rule.unless_tag_id) in present:
                continue
            fits.append(rule)
        if fits:
            guards = lambda r: (r.requires_tag_id is not None) + (r.unless_tag_id is not None)  # noqa: E731
            return sorted(fits, key=lambda r: (-r.priority, -guards(r), r.id))[0]
    return None


def _ancestors(tag_id: int) -> set[int]:
    return set(TagClosure.objects.filter(descendant_id=tag_id).values_list("ancestor_id", flat=True))


def reference(profile: MappingProfile, item_id: int) -> dict[str, Any]:
    steps = MappingProfileStep.objects.filter(profile=profile).select_related("mapping_set")
    vocabularies = {s.mapping_set.source_vocabulary_id for s in steps}
    inputs = _inputs(profile, item_id, vocabularies)
    present = {t for t, _p in inputs}
    out: list[dict[str, Any]] = []  # tag, text, type, via, inputs, position
    unmapped = []
    for tag_id, position in inputs:
        rule = _rule_for(profile, tag_id, present)
        if rule is None:
            unmapped_tag(profile, tag_id, position, out, unmapped)
        elif rule.action == "map":
            for target in rule.targets.order_by("ord"):
                out.append(
                    {
                        "tag": target.target_tag_id,
                        "type": rule.type_override_id,
                        "via": "rule",
                        "i": (tag_id,),
                        "p": position,
                    }
                )
        elif rule.action == "keep":
            out.append(
                {"tag": tag_id, "type": rule.type_override_id, "via": "keep", "i": (tag_id,), "p": position}
            )
    for o in out:
        if o["tag"] is not None:
            o["tag"] = _ideal(o["tag"])
    out = _dedupe(out)
    if profile.implication_policy == "add_parents":
        have = {o["tag"] for o in out}
        for o in list(out):
            for parent in sorted(_ancestors(o["tag"]) if o["tag"] else ()):
                if parent not in have:
                    have.add(parent)
                    out.append({"tag": parent, "type": None, "via": "implication", "i": o["i"], "p": o["p"]})
    elif profile.implication_policy == "prune_implied":
        implied = set().union(*[_ancestors(o["tag"]) - {o["tag"]} for o in out if o["tag"]])
        out = [o for o in out if o["tag"] not in implied]
    types = {t.pk: t for t in TagType.objects.all()}
    type_of = lambda o: None if o["tag"] is None else types[o["type"] or Tag.objects.get(pk=o["tag"]).type_id]  # noqa: E731
    out = [o for o in out if type_of(o) is None or type_of(o).key not in profile.drop_types]
    ranks = {k: n for n, k in enumerate(profile.type_order)}

    def key(o: dict[str, Any]) -> tuple[Any, ...]:
        kind = type_of(o)
        if kind is None:
            return (1, len(ranks) + 1, 0, o["p"], 0, o["text"])
        tag = Tag.objects.get(pk=o["tag"])
        return (
            0 if kind.pinned else 1,
            ranks.get(kind.key, len(ranks)),
            kind.caption_order,
            o["p"],
            -tag.media_count,
            tag.name,
        )

    out.sort(key=key)
    truncated = 0
    if profile.max_tags and len(out) > profile.max_tags:
        truncated = len(out) - profile.max_tags
        for droppable_only in (True, False):
            for n in range(len(out) - 1, -1, -1):
                if len(out) == profile.max_tags:
                    break
                if not droppable_only or type_of(out[n]) is None or type_of(out[n]).droppable:
                    del out[n]
    words = [profile.prefix_text] if profile.prefix_text else []
    for o in out:
        tag = Tag.objects.get(pk=o["tag"]) if o["tag"] else None
        text = o["text"] if tag is None else tag.name
        if profile.underscore_to_space and not (tag and tag.keep_underscore):
            text = text.replace("_", " ")
        if profile.escape_parentheses:
            text = text.replace("(", "\\(").replace(")", "\\)")
        words.append(text)
    flags = (["empty"] if not out else []) + (["over_max_tags"] if truncated else [])
    if unmapped:
        flags += ["unmapped"] + (["incomplete"] if profile.unmapped_policy == "flag" else [])
    return {
        "tags": [o["tag"] for o in out if o["tag"] is not None],
        "traces": [(o["via"], o["i"]) for o in out],
        "caption": profile.separator.join(words),
        "flags": flags,
        "unmapped": unmapped,
    }


def unmapped_tag(
    profile: MappingProfile, tag_id: int, position: int, out: list[Any], unmapped: list[int]
) -> None:
    tag = Tag.objects.get(pk=tag_id)
    if profile.unmapped_policy == "match_name":
        if tag.vocabulary_id == profile.target_vocabulary_id:
            match: int | None = tag.pk
        else:
            match = next(
                (
                    t.pk
                    for t in Tag.objects.filter(vocabulary=profile.target_vocabulary).order_by("pk")
                    if name_key(t.name) == name_key(tag.name)
                ),
                None,
            )
        if match is not None:
            out.append({"tag": match, "type": None, "via": "name", "i": (tag_id,), "p": position})
            return
    unmapped.append(tag_id)
    if profile.unmapped_policy == "keep_text":
        out.append(
            {"tag": None, "text": tag.name, "type": None, "via": "text", "i": (tag_id,), "p": position}
        )


def _dedupe(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, kept = set(), []
    for o in out:
        o.setdefault("text", "")
        key = (o["tag"], o["text"] if o["tag"] is None else "")
        if key not in seen:
            seen.add(key)
            kept.append(o)
    return kept


# --- random worlds --------------------------------------------------------------------------------


def _world(rng: random.Random) -> tuple[list[MappingProfile], list[int]]:
    cleanup = rng.random() < 0.3
    source = vocabulary_make()
    target = source if cleanup else vocabulary_make()
    types = list(TagType.objects.values_list("key", flat=True))
    names = [f"t{n}" for n in range(14)] + ["Same_Name", "shared"]
    src = _tags(source, names, types, rng)
    tgt = (
        _tags(target, [f"u{n}" for n in range(10)] + ["same name", "shared_"], types, rng)
        if not cleanup
        else src
    )
    _aliases(rng, list(src.values()))
    if not cleanup:
        _aliases(rng, list(tgt.values()))
    _closure(rng, sorted(t.pk for t in tgt.values()))
    rows = []
    pool = list(src)
    outs = list(tgt) if not cleanup else pool
    for _ in range(rng.randint(3, 16)):
        action = rng.choice(["map", "map", "map", "drop"] + (["keep"] if cleanup else []))
        targets = rng.sample(outs, rng.randint(1, 3)) if action == "map" else []
        rows.append(
            {
                "source": rng.choice(pool),
                "targets": targets,
                "action": action,
                "requires": rng.choice(pool) if rng.random() < 0.3 else "",
                "unless": rng.choice(pool) if rng.random() < 0.2 else "",
                "priority": rng.randint(-2, 2),
                "type": rng.choice(types) if rng.random() < 0.15 else "",
            }
        )
    sets = [_set(source, target, rows, rng, cleanup) for _ in range(rng.randint(1, 2))]
    items = items_make(8)
    _sets(rng, items, source, list(src.values()))
    effective_build([i.pk for i in items])
    profiles = [
        profile_make(
            target,
            sets,
            input_scope=scope,
            min_confidence=rng.choice([0, 5000]),
            unmapped_policy=rng.choice(list(MappingProfile.Unmapped.values)),
            implication_policy=rng.choice(list(MappingProfile.Implications.values)),
            drop_types=rng.sample(types, rng.randint(0, 1)),
            type_order=rng.sample(types, rng.randint(0, 3)),
            prefix_text=rng.choice(["", "sks style"]),
            separator=rng.choice([", ", " "]),
            underscore_to_space=rng.random() < 0.5,
            escape_parentheses=rng.random() < 0.5,
            max_tags=rng.choice([0, 2, 4]),
        )
        for scope in MappingProfile.Scope.values
    ]
    return profiles, [i.pk for i in items]


def _tags(vocabulary: Any, names: list[str], types: list[str], rng: random.Random) -> dict[str, Tag]:
    kinds = {t.key: t for t in TagType.objects.all()}
    Tag.objects.bulk_create(
        [
            Tag(
                vocabulary=vocabulary,
                name=n.lower().replace(" ", "_") if "same" not in n else n,
                display_name=n,
                type=kinds[rng.choice(types)],
                media_count=rng.randint(0, 3),
                keep_underscore=rng.random() < 0.1,
            )
            for n in names
        ]
    )
    return {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary)}


def _aliases(rng: random.Random, tags: list[Tag]) -> None:
    rng.shuffle(tags)
    for antecedent, ideal in zip(tags[:2], tags[2:4], strict=True):
        AliasResolution.objects.create(tag=antecedent, ideal_tag=ideal)


def _closure(rng: random.Random, ids: list[int]) -> None:
    ideal_of = set(AliasResolution.objects.values_list("tag_id", flat=True))
    nodes = [i for i in ids if i not in ideal_of]
    parents: dict[int, set[int]] = {n: set() for n in nodes}
    for n, child in enumerate(nodes):
        for parent in nodes[:n]:
            if rng.random() < 0.15:
                parents[child].add(parent)
    rows = []
    for node in nodes:
        seen, stack = {}, [(p, 1) for p in parents[node]]
        while stack:
            p, depth = stack.pop()
            if p not in seen:
                seen[p] = depth
                stack += [(q, depth + 1) for q in parents[p]]
        rows += [TagClosure(descendant_id=node, ancestor_id=a, depth=d) for a, d in seen.items()]
    TagClosure.objects.bulk_create(rows)


def _set(source: Any, target: Any, rows: list[dict[str, Any]], rng: random.Random, cleanup: bool) -> Any:
    picked, keys = [], set()
    for row in rng.sample(rows, len(rows)):
        key = (row["source"], row["requires"], row["unless"])
        if key not in keys:
            keys.add(key)
            picked.append(row)
    if cleanup:  # no cycles: map only to tags named later than the source
        picked = [dict(r, targets=[t for t in r["targets"] if t > r["source"]]) for r in picked]
        picked = [r for r in picked if r["action"] != "map" or r["targets"]]
    return set_make(source, target, picked)


def _sets(rng: random.Random, items: list[Any], vocabulary: Any, tags: list[Tag]) -> None:
    for item in items:
        for kind in (TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.TAGGER):
            if rng.random() < 0.2:
                continue
            tag_set = TagSet.objects.create(
                media_item=item, kind=kind, vocabulary=vocabulary, slot="" if kind == 2 else f"s{kind}"
            )
            chosen = rng.sample(tags, rng.randint(0, 6))
            TagAssignment.objects.bulk_create(
                [
                    TagAssignment(
                        tagset=tag_set,
                        tag=t,
                        media_item=item,
                        kind=kind,
                        state=1 if rng.random() < 0.9 else 0,
                        position=rng.choice([None, n, 7 - n]),
                        confidence=rng.randint(0, 10000) if kind == TagSet.Kind.TAGGER else None,
                        added_via="import",
                    )
                    for n, t in enumerate(chosen)
                ]
            )


@pytest.mark.parametrize("seed", range(12))
def test_pipeline_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    profiles, item_ids = _world(rng)
    rules = rules_fresh()
    for profile in profiles:
        results = results_for(prepare(profile, rules), item_ids)
        for item_id in item_ids:
            got = results[item_id]
            want = reference(profile, item_id)
            context = f"seed {seed}, profile {profile.input_scope}, item {item_id}"
            assert (got.tag_ids, got.caption) == (want["tags"], want["caption"]), context
            assert [(t.trace.via, t.trace.inputs) for t in got.tags] == want["traces"], context
            assert (list(got.flags), got.unmapped) == (want["flags"], want["unmapped"]), context
