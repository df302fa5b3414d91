"""What each trainer makes of our captions (docs/export-captions.md#fidelity): simulations of the
trainers' caption pipelines, written from their documented behaviour at the pinned versions (no
upstream code), to check acceptance A09 (keep rates and fixed positions), A10 (no markup reaches
the text encoder) and A11 (every line within its token budget).

* kohya `process_caption`: caption dropout, a random line, wildcard choice (`{{`/`}}` literal),
  then with shuffle or tag dropout the split on `|||` into fixed / flex / fixed-suffix tokens on
  `,` (empty tokens go), flex shuffled then each dropped at the tag-dropout rate, re-joined
  `", "`; finally `;;;` → `,`.
* OneTrainer (mgds): a random line; `DropTags` in RANDOM mode (the first K tags kept, whitelisted
  tags kept, each other tag dropped at the rate); `ShuffleTags` (first K kept, the rest shuffled);
  caption dropout approximated as an empty caption.
* diffusers: `random.choice` over `text_variants`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from apps.training.logic import zones
from apps.training.logic.captions import (
    diffusers_row,
    keep_entries,
    kohya_marked,
    render,
    token_budget,
    trainer_tag_dropout,
)
from apps.training.logic.tokens import count_tokens
from apps.training.logic.zones import Piece
from apps.training.plan import CaptionPolicy, ItemCaption, Renderer

SimTrainer = Literal["kohya", "onetrainer", "diffusers"]
_WILDCARD = re.compile(r"\{([^}]+)\}")


# --- the trainers' pipelines ------------------------------------------------------------------


def kohya_process_caption(
    line: str,
    rng: random.Random,
    *,
    shuffle: bool,
    tag_dropout: float,
    separator: str = "|||",
    secondary: str = ";;;",
    wildcard: bool = True,
) -> str:
    """kohya's caption processing of one chosen line (caption dropout happens before)."""
    if wildcard:
        open_mark, close_mark = "\ue000", "\ue001"
        line = line.replace("{{", open_mark).replace("}}", close_mark)
        line = _WILDCARD.sub(lambda match: rng.choice(match.group(1).split("|")), line)
        line = line.replace(open_mark, "{").replace(close_mark, "}")
    if shuffle or tag_dropout > 0:
        fixed: list[str] = []
        suffix: list[str] = []
        if separator in line:
            head, flex_text = line.split(separator, 1)
            if separator in flex_text:
                flex_text, tail = flex_text.split(separator, 1)
                suffix = _split(tail)
            fixed, flex = _split(head), _split(flex_text)
        else:
            flex = [token.strip() for token in line.strip().split(",")]
        if shuffle:
            rng.shuffle(flex)
        if tag_dropout > 0:
            flex = [token for token in flex if rng.random() >= tag_dropout]
        line = ", ".join(fixed + flex + suffix)
    return line.replace(secondary, ",")


def _split(text: str) -> list[str]:
    return [token.strip() for token in text.split(",") if token.strip()]


def mgds_drop_tags(
    text: str, rng: random.Random, *, probability: float, keep_count: int, whitelist: Collection[str]
) -> str:
    """mgds `DropTags`, RANDOM mode with a whitelist: the first `keep_count` tags and the
    whitelisted ones stay, every other tag goes with `probability`."""
    tags = [tag.strip() for tag in text.split(",")]
    kept = tags[:keep_count] + [
        tag for tag in tags[keep_count:] if tag in whitelist or rng.random() >= probability
    ]
    return ", ".join(kept)


def mgds_shuffle_tags(text: str, rng: random.Random, *, keep_count: int) -> str:
    """mgds `ShuffleTags`: the first `keep_count` tags stay, the rest are shuffled."""
    tags = [tag.strip() for tag in text.split(",")]
    rest = tags[keep_count:]
    rng.shuffle(rest)
    return ", ".join(tags[:keep_count] + rest)


# --- simulation -------------------------------------------------------------------------------


@dataclass
class Stats:
    """What the trainer fed its text encoder over `draws` draws."""

    draws: int = 0
    captions: int = 0  # non-empty captions
    kept: dict[str, int] = field(default_factory=dict)  # type → draws with the item present
    seen: dict[str, int] = field(default_factory=dict)  # type → draws where it could be present
    prefix_in_place: int = 0
    suffix_in_place: int = 0
    markup_leaks: list[str] = field(default_factory=list)  # A10 failures (first few)

    def keep_rates(self) -> dict[str, float]:
        return {key: self.kept.get(key, 0) / seen for key, seen in sorted(self.seen.items()) if seen}

    @property
    def caption_rate(self) -> float:
        return self.captions / self.draws if self.draws else 0.0

    @property
    def prefix_position_rate(self) -> float:
        return self.prefix_in_place / self.captions if self.captions else 1.0

    @property
    def suffix_position_rate(self) -> float:
        return self.suffix_in_place / self.captions if self.captions else 1.0


@dataclass(frozen=True)
class _Prepared:
    lines: tuple[str, ...]
    pieces: tuple[Piece, ...]  # every piece that can appear: entries and descriptions
    keep: int


def _all_pieces(item: ItemCaption, policy: CaptionPolicy) -> tuple[Piece, ...]:
    pieces = list(zones.entry_pieces(item, policy))
    for name, _, texts in zones.description_sets(item, policy):
        for index, text in enumerate(texts):
            piece = zones.description_piece(policy, name, index, text)
            if piece is not None:
                pieces.append(piece)
    return tuple(pieces)


def _prepare(item: ItemCaption, policy: CaptionPolicy, trainer: SimTrainer, seed: int) -> _Prepared:
    if trainer == "diffusers":
        variants = diffusers_row(item, policy, seed=seed)["text_variants"]
        return _Prepared(tuple(variants), _all_pieces(item, policy), 0)  # type: ignore[arg-type]
    rendered = render(item, policy, "kohya" if trainer == "kohya" else "neutral", seed=seed)
    return _Prepared(rendered.lines, _all_pieces(item, policy), rendered.keep or 0)


def _units(output: str) -> list[str]:
    """The caption's items in order, `; `-joined ones (groups, merged prefixes) taken apart."""
    return [part.strip() for token in output.split(",") for part in token.split(";")]


def _present(piece: Piece, units: list[str]) -> bool:
    return all(part in units for part in piece.parts)


def _in_place(pieces: Sequence[Piece], tokens: list[str], zone: str) -> bool:
    """Whether the tokens of `zone`'s present pieces lead (prefix) or close (suffix) the caption."""
    own = [part for piece in pieces if piece.zone == zone and _present(piece, tokens) for part in piece.parts]
    if not own:
        return True
    span = tokens[: len(own)] if zone == "prefix" else tokens[len(tokens) - len(own) :]
    return sorted(span) == sorted(own)


def _draw(
    prepared: _Prepared,
    policy: CaptionPolicy,
    trainer: SimTrainer,
    rng: random.Random,
    whitelist: Collection[str],
) -> str:
    if trainer == "diffusers":
        return rng.choice(prepared.lines)
    if rng.random() < policy.caption_dropout_rate:
        return ""
    line = rng.choice(prepared.lines)
    if trainer == "kohya":
        return kohya_process_caption(
            line,
            rng,
            shuffle=policy.shuffle and kohya_marked(policy, "kohya"),
            tag_dropout=trainer_tag_dropout(policy, "kohya"),
        )
    rate = trainer_tag_dropout(policy, "neutral")
    if rate > 0:
        line = mgds_drop_tags(line, rng, probability=rate, keep_count=prepared.keep, whitelist=whitelist)
    if policy.shuffle:
        line = mgds_shuffle_tags(line, rng, keep_count=prepared.keep)
    return line


def simulate(
    item: ItemCaption | Sequence[ItemCaption],
    policy: CaptionPolicy,
    trainer: SimTrainer,
    *,
    seed: int,
    draws: int = 10000,
    keep: Collection[str] | None = None,
) -> Stats:
    """Feed one item's (or several items') captions through a trainer's pipeline `draws` times
    (spread evenly over the items) and count what reached the text encoder. `keep`: the
    OneTrainer whitelist (default: the items' keep entries)."""
    items = [item] if isinstance(item, ItemCaption) else list(item)
    prepared = [_prepare(one, policy, trainer, seed) for one in items]
    whitelist = set(keep) if keep is not None else {e for one in items for e in keep_entries(one, policy)}
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    stats = Stats()
    for number in range(draws):
        entry = prepared[number % len(prepared)]
        output = _draw(entry, policy, trainer, rng, whitelist)
        stats.draws += 1
        if trainer == "kohya" and _leaks(output) and len(stats.markup_leaks) < 5:
            stats.markup_leaks.append(output)
        if not output:
            continue
        stats.captions += 1
        _count(stats, entry.pieces, _units(output))
    return stats


def _count(stats: Stats, pieces: Sequence[Piece], tokens: list[str]) -> None:
    has_description = False
    for piece in pieces:
        if piece.kind == "desc":
            has_description = True
            continue
        stats.seen[piece.type] = stats.seen.get(piece.type, 0) + 1
        stats.kept[piece.type] = stats.kept.get(piece.type, 0) + _present(piece, tokens)
    if has_description:
        found = any(_present(piece, tokens) for piece in pieces if piece.kind == "desc")
        stats.seen[zones.DESCRIPTION] = stats.seen.get(zones.DESCRIPTION, 0) + 1
        stats.kept[zones.DESCRIPTION] = stats.kept.get(zones.DESCRIPTION, 0) + found
    stats.prefix_in_place += _in_place(pieces, tokens, "prefix")
    stats.suffix_in_place += _in_place(pieces, tokens, "suffix")


def _leaks(output: str) -> bool:
    """A10: markup or an empty token that reached the text encoder."""
    if any(mark in output for mark in ("|||", ";;;", "{{", "}}")):
        return True
    return bool(output) and any(not token.strip() for token in output.split(","))


def expected_keep(policy: CaptionPolicy, type_key: str) -> float:
    """The keep rate a type should reach: 1 - its drop rate (descriptions: 1 - whole-drop)."""
    tp = zones.type_policy(policy, type_key)
    return 1.0 - (tp.whole_drop_rate if type_key == zones.DESCRIPTION else tp.drop_rate)


# --- A10, A11 on lines ------------------------------------------------------------------------


def process_all(lines: Sequence[str], policy: CaptionPolicy, *, seed: int = 0) -> list[str]:
    """kohya's output for each line (one draw each, no caption dropout): for A10 checks."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    shuffle = policy.shuffle and kohya_marked(policy, "kohya")
    rate = trainer_tag_dropout(policy, "kohya")
    return [kohya_process_caption(line, rng, shuffle=shuffle, tag_dropout=rate) for line in lines]


def markup_leaks(outputs: Sequence[str]) -> list[str]:
    """The outputs that break A10 (markup or an empty token left)."""
    return [output for output in outputs if _leaks(output)]


def line_text(line: str) -> str:
    """A caption line without markup: zones and `;;;` as commas, wildcards as their first
    option, escaped braces as braces, empty items gone."""
    text = line.replace("{{", "\ue000").replace("}}", "\ue001")
    text = _WILDCARD.sub(lambda match: match.group(1).split("|")[0], text)
    text = text.replace("\ue000", "{").replace("\ue001", "}").replace("|||", ",").replace(";;;", ",")
    return ", ".join(_split(text))


def over_budget(lines: Sequence[str], policy: CaptionPolicy, renderer: Renderer) -> list[str]:
    """A11: the lines over the renderer's token budget."""
    budget = token_budget(policy, renderer)
    return [line for line in lines if count_tokens(line_text(line)) > budget]
