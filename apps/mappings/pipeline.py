"""The per-item mapping pipeline of docs/mappings.md#pipeline, in plain Python (no database).

`services/compile.py` reads a profile, its rules, the alias/implication maps and each chunk's
input tags in a few set-based queries into a `Compiled`; `map_item` then turns one item's input
tags into output tags with a trace each, the rendered caption and flags. Keeping this free of
the ORM lets preview, apply, the benchmark and the property test share one implementation.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

MAP, DROP, KEEP = "map", "drop", "keep"
NO_POSITION = 1 << 30


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a batch of `map_item` calls.

    The pipeline allocates many small, acyclic objects (refcounting frees them all), while the
    rule and alias maps it reads hold millions of live objects: with the collector on, each
    generation-2 pass rescans those and a chunk ran 2–4× slower (bench/mappings.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def name_key(name: str) -> str:
    """What `match_name` compares: lower case, a space and an underscore alike."""
    return name.lower().replace(" ", "_")


@dataclass(frozen=True, slots=True)
class TagInfo:
    id: int
    name: str
    vocabulary_id: int
    type_id: int
    media_count: int
    keep_underscore: bool


@dataclass(frozen=True, slots=True)
class TypeInfo:
    id: int
    key: str
    pinned: bool
    droppable: bool
    caption_order: int


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as the pipeline reads it: source and guards alias-resolved to their ideal tags."""

    id: int
    set_slug: str
    source: int
    action: str
    requires: int | None
    unless: int | None
    type_override: int | None
    priority: int
    targets: tuple[int, ...] = ()

    def preference(self) -> tuple[int, int, int]:
        """Highest priority first, then the more guarded rule, then the older one."""
        return (-self.priority, -((self.requires is not None) + (self.unless is not None)), self.id)

    def applies(self, present: set[int] | frozenset[int]) -> bool:
        if self.requires is not None and self.requires not in present:
            return False
        return self.unless is None or self.unless not in present


@dataclass
class Config:
    unmapped_policy: str = "match_name"
    implication_policy: str = "as_is"
    drop_types: frozenset[str] = frozenset()
    type_order: tuple[str, ...] = ()
    prefix_text: str = ""
    separator: str = ", "
    underscore_to_space: bool = True
    escape_parentheses: bool = True
    max_tags: int = 0


@dataclass
class Compiled:
    """Everything `map_item` reads. `steps`: per profile step, source tag → rules in preference
    order. `name_match`: source tag → target tag of the same normalised name (filled per chunk)."""

    config: Config
    steps: list[dict[int, list[Rule]]]
    ideal: dict[int, int]
    ancestors: dict[int, set[int]]
    tags: dict[int, TagInfo]
    types: dict[int, TypeInfo]
    name_match: dict[int, int] = field(default_factory=dict)
    # Target names that lower() changes, by name_key: loaded once, when a source name first
    # misses every exact spelling (docs/mappings.md#profiles).
    folded_targets: dict[str, tuple[int, str]] | None = None
    prepared: set[int] = field(default_factory=set)  # input tags whose outputs are loaded
    target_vocabulary_id: int = 0


@dataclass(frozen=True, slots=True)
class Trace:
    """Why an output tag is there: `via` rule | keep | name | text | implication, the input
    tags it came from, the rule (and its set), the tag it was aliased from, the implying tag."""

    via: str
    inputs: tuple[int, ...]
    rule_id: int | None = None
    set_slug: str = ""
    aliased_from: int | None = None
    implied_by: int | None = None


@dataclass(slots=True)
class OutTag:
    tag_id: int | None  # None for keep_text entries
    text: str
    type_id: int | None
    trace: Trace
    position: int = NO_POSITION


@dataclass
class Result:
    tags: list[OutTag]
    caption: str
    flags: tuple[str, ...]
    mapped: list[int]
    dropped: list[int]
    unmapped: list[int]
    truncated: int = 0

    @property
    def tag_ids(self) -> list[int]:
        return [t.tag_id for t in self.tags if t.tag_id is not None]


def inputs_resolve(inputs: Iterable[tuple[int, int | None]], ideal: dict[int, int]) -> dict[int, int]:
    """Step 1: input (tag, position) pairs → ideal tag → its first position, in input order."""
    out: dict[int, int] = {}
    for tag_id, position in sorted(inputs, key=lambda p: (NO_POSITION if p[1] is None else p[1], p[0])):
        resolved = ideal.get(tag_id, tag_id)
        out.setdefault(resolved, NO_POSITION if position is None else position)
    return out


def decide(compiled: Compiled, tag_id: int, present: set[int]) -> Rule | None:
    """Step 2: the first step with an applicable rule for this tag decides; its best rule wins."""
    for step in compiled.steps:
        for rule in step.get(tag_id, ()):
            if rule.applies(present):
                return rule
    return None


def map_item(compiled: Compiled, inputs: Sequence[tuple[int, int | None]], *, caption: bool = True) -> Result:
    """Steps 1–6 for one item's input tags (tag id, position or None); `caption=False` leaves
    step 6 out (the caption is ""), for aggregates that only count."""
    positions = inputs_resolve(inputs, compiled.ideal)
    present = set(positions)
    emitted: list[OutTag] = []
    mapped: list[int] = []
    dropped: list[int] = []
    unmapped: list[int] = []
    for tag_id, position in positions.items():
        rule = decide(compiled, tag_id, present)
        if rule is not None:
            if rule.action == DROP:
                dropped.append(tag_id)
                continue
            mapped.append(tag_id)
            targets = rule.targets if rule.action == MAP else (tag_id,)
            via = "rule" if rule.action == MAP else "keep"
            for target in targets:
                trace = Trace(via, (tag_id,), rule.id, rule.set_slug)
                emitted.append(OutTag(target, "", rule.type_override, trace, position))
            continue
        unmapped_step(compiled, tag_id, position, emitted, mapped, unmapped)
    policy = compiled.config.unmapped_policy
    out = cleanup(compiled, emitted)
    out, truncated = order(compiled, out)
    flags = []
    if not out:
        flags.append("empty")
    if truncated:
        flags.append("over_max_tags")
    if unmapped:
        flags.append("unmapped")
        if policy == "flag":
            flags.append("incomplete")
    text = render(compiled, out) if caption else ""
    return Result(out, text, tuple(flags), mapped, dropped, unmapped, truncated)


def unmapped_step(
    compiled: Compiled,
    tag_id: int,
    position: int,
    emitted: list[OutTag],
    mapped: list[int],
    unmapped: list[int],
) -> None:
    """Step 3 for a tag no rule decided."""
    policy = compiled.config.unmapped_policy
    if policy == "match_name" and tag_id in compiled.name_match:
        mapped.append(tag_id)
        emitted.append(OutTag(compiled.name_match[tag_id], "", None, Trace("name", (tag_id,)), position))
        return
    unmapped.append(tag_id)
    if policy == "keep_text":
        emitted.append(OutTag(None, compiled.tags[tag_id].name, None, Trace("text", (tag_id,)), position))


def _type_of(compiled: Compiled, out: OutTag) -> TypeInfo | None:
    if out.tag_id is None:
        return None
    type_id = out.type_id if out.type_id is not None else compiled.tags[out.tag_id].type_id
    return compiled.types.get(type_id)


def _dedupe(tags: Iterable[OutTag]) -> list[OutTag]:
    seen: set[tuple[int | None, str]] = set()
    out = []
    for t in tags:
        key = (t.tag_id, "" if t.tag_id is not None else t.text)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def cleanup(compiled: Compiled, emitted: list[OutTag]) -> list[OutTag]:
    """Step 4: target aliases, the implication policy, dropped types, de-duplication."""
    aliased = []
    for t in emitted:
        ideal = compiled.ideal.get(t.tag_id, t.tag_id) if t.tag_id is not None else None
        if ideal != t.tag_id:
            trace = Trace(
                t.trace.via, t.trace.inputs, t.trace.rule_id, t.trace.set_slug, aliased_from=t.tag_id
            )
            t = OutTag(ideal, t.text, t.type_id, trace, t.position)
        aliased.append(t)
    out = _dedupe(aliased)
    policy = compiled.config.implication_policy
    if policy == "add_parents":
        present = {t.tag_id for t in out}
        parents = []
        for t in out:
            if t.tag_id is None:
                continue
            for parent in sorted(compiled.ancestors.get(t.tag_id, ())):
                if parent not in present:
                    present.add(parent)
                    trace = Trace("implication", t.trace.inputs, implied_by=t.tag_id)
                    parents.append(OutTag(parent, "", None, trace, t.position))
        out += parents
    elif policy == "prune_implied":
        implied: set[int] = set()
        for t in out:
            if t.tag_id is not None:
                implied |= compiled.ancestors.get(t.tag_id, set()) - {t.tag_id}
        out = [t for t in out if t.tag_id is None or t.tag_id not in implied]
    drop = compiled.config.drop_types
    if drop:
        out = [t for t in out if (kind := _type_of(compiled, t)) is None or kind.key not in drop]
    return out


def order(compiled: Compiled, tags: list[OutTag]) -> tuple[list[OutTag], int]:
    """Step 5: pinned types, type order, input position, media count desc, name; then truncate
    to max_tags, dropping droppable types (and literal text) from the end first."""
    ranks = {key: n for n, key in enumerate(compiled.config.type_order)}
    last = len(ranks)

    def key(t: OutTag) -> tuple[int, int, int, int, int, str]:
        kind = _type_of(compiled, t)
        if kind is None:
            return (1, last + 1, 0, t.position, 0, t.text)
        info = compiled.tags[t.tag_id or 0]
        rank = ranks.get(kind.key, last)
        return (0 if kind.pinned else 1, rank, kind.caption_order, t.position, -info.media_count, info.name)

    ordered = sorted(tags, key=key)
    limit = compiled.config.max_tags
    if not limit or len(ordered) <= limit:
        return ordered, 0
    excess = len(ordered) - limit
    drop: set[int] = set()
    for n in range(len(ordered) - 1, -1, -1):
        if len(drop) == excess:
            break
        kind = _type_of(compiled, ordered[n])
        if kind is None or kind.droppable:
            drop.add(n)
    for n in range(len(ordered) - 1, -1, -1):
        if len(drop) == excess:
            break
        drop.add(n)
    return [t for n, t in enumerate(ordered) if n not in drop], excess


def render_name(compiled: Compiled, out: OutTag) -> str:
    """Step 6 for one tag: underscores to spaces (unless keep_underscore), escaped parentheses."""
    config = compiled.config
    text = out.text if out.tag_id is None else compiled.tags[out.tag_id].name
    keep = out.tag_id is not None and compiled.tags[out.tag_id].keep_underscore
    if config.underscore_to_space and not keep:
        text = text.replace("_", " ")
    if config.escape_parentheses:
        text = text.replace("(", "\\(").replace(")", "\\)")
    return text


def render(compiled: Compiled, tags: list[OutTag]) -> str:
    """Step 6: the caption, prefix text first."""
    parts = [compiled.config.prefix_text] if compiled.config.prefix_text else []
    parts += [render_name(compiled, t) for t in tags]
    return compiled.config.separator.join(parts)
