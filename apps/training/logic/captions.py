"""Caption renderers: one caption file kind per consumer (docs/export-captions.md).

`render` turns an item's caption values into the lines of one renderer — kohya `.caption`
markup, the neutral `.txt` (OneTrainer), diffusers `text_variants`, and the Textual Inversion
renderings — natively (every weighted alternate as lines, the trainer shuffles and drops) or
materialised (seeded lines with every random decision taken here, docs/export-captions.md#materialisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial

from apps.training.logic import zones
from apps.training.logic.rand import u
from apps.training.logic.tokens import count_joined, count_tokens
from apps.training.logic.zones import Piece
from apps.training.plan import CaptionPolicy, ItemCaption, Rendered, Renderer

NATIVE_LINE_LIMIT = 32  # more native lines than this: the item is materialised
DEFAULT_BUDGET = 75  # CLIP tokens every consumer but kohya reads
WILDCARD_MAX_OPTIONS = 8

KOHYA_RENDERERS: frozenset[str] = frozenset({"kohya", "ti_kohya"})
NEUTRAL_RENDERERS: frozenset[str] = frozenset({"neutral", "ti_onetrainer"})
TI_RENDERERS: frozenset[str] = frozenset({"ti_kohya", "ti_onetrainer", "ti_a1111"})


@dataclass
class Draft:
    """One caption line before its syntax: the pieces of each zone, in line order."""

    prefix: list[Piece] = field(default_factory=list)
    flex: list[Piece] = field(default_factory=list)
    suffix: list[Piece] = field(default_factory=list)

    def pieces(self) -> list[Piece]:
        return [*self.prefix, *self.flex, *self.suffix]


# --- which renderers are materialised (§8.1) -------------------------------------------------


def _flex_rates(policy: CaptionPolicy) -> set[float]:
    return {tp.drop_rate for tp in _types(policy) if tp.zone == "flex"}


def _types(policy: CaptionPolicy) -> list[zones.TypePolicy]:
    """The types the decision looks at: the policy's (the planner passes every tag type), or the
    seeded defaults for a policy without types."""
    return list((policy.types or zones.DEFAULT_TYPES).values())


def _fixed_zone_drops(policy: CaptionPolicy) -> bool:
    return any(
        tp.drop_rate > 0 and tp.zone in ("prefix", "suffix") and tp.key != zones.DESCRIPTION
        for tp in _types(policy)
    )


def _whole_drop(policy: CaptionPolicy) -> bool:
    return zones.type_policy(policy, zones.DESCRIPTION).whole_drop_rate > 0


def materialized(policy: CaptionPolicy, renderer: Renderer) -> bool:
    """Whether `renderer` gets seeded lines: `materialize_mode` always, or auto and the policy
    uses a behaviour its trainer cannot do (docs/export-captions.md#delivery): per-type flex
    rates (kohya without wildcards; OneTrainer beyond the keep-file whitelist), droppable
    prefix/suffix types, description whole-drop; any flex drop in kohya TI; any shuffle or drop
    for diffusers. A1111 TI is always the one primary caption."""
    if renderer == "ti_a1111" or policy.materialize_mode == "never":
        return False
    if policy.materialize_mode == "always":
        return True
    if _fixed_zone_drops(policy) or _whole_drop(policy):
        return True
    rates = _flex_rates(policy)
    if renderer == "kohya":
        return len(rates) > 1 and not _wildcards_usable(policy)
    if renderer == "ti_kohya":
        return any(rate > 0 for rate in rates)
    if renderer in NEUTRAL_RENDERERS:
        return len({rate for rate in rates if rate > 0}) > 1
    return policy.shuffle or any(rate > 0 for rate in rates)  # diffusers


def trainer_tag_dropout(policy: CaptionPolicy, renderer: Renderer) -> float:
    """The flex tag-dropout rate the trainer applies itself: kohya `caption_tag_dropout_rate`,
    OneTrainer `tag_dropout_probability` (its TI concepts too); 0 when materialised (the lines
    hold the drops), for diffusers and in kohya TI sets (no dropout key there)."""
    if renderer not in ("kohya", "neutral", "ti_onetrainer") or materialized(policy, renderer):
        return 0.0
    rates = _flex_rates(policy)
    if renderer in NEUTRAL_RENDERERS:
        rates = {rate for rate in rates if rate > 0}
    return min(rates, default=0.0)


def kohya_marked(policy: CaptionPolicy, renderer: Renderer) -> bool:
    """Whether kohya lines carry `|||` zones: only subsets with shuffle or tag dropout parse
    them (P02); otherwise the plain form."""
    return policy.shuffle or trainer_tag_dropout(policy, renderer) > 0


def _wildcards_usable(policy: CaptionPolicy) -> bool:
    """§8.3 wildcards need lines kohya parses (shuffle or a trainer rate above 0): an empty
    choice only vanishes between `|||` (P03)."""
    rates = _flex_rates(policy)
    return policy.kohya_per_type_dropout == "wildcard" and (policy.shuffle or min(rates, default=0.0) > 0)


def _wildcards_on(policy: CaptionPolicy, renderer: Renderer) -> bool:
    return (
        renderer == "kohya"
        and len(_flex_rates(policy)) > 1
        and _wildcards_usable(policy)
        and not materialized(policy, renderer)
    )


def token_budget(policy: CaptionPolicy, renderer: Renderer) -> int:
    """CLIP tokens a line may take: kohya's `max_tokens` (75, 150, 225), 75 elsewhere (P56)."""
    return policy.max_tokens if renderer in KOHYA_RENDERERS else DEFAULT_BUDGET


# --- drafts: native and materialised -------------------------------------------------------


def base_pieces(item: ItemCaption, policy: CaptionPolicy, renderer: Renderer, token: str = "") -> list[Piece]:
    """The item's tags and groups for `renderer`: in TI renderings the trigger leaves and the
    token (when given) leads the prefix, except in A1111's one line."""
    pieces = zones.entry_pieces(item, policy)
    if renderer in TI_RENDERERS:
        pieces = [piece for piece in pieces if piece.type != zones.TRIGGER and piece.text() != token]
        if token and renderer != "ti_a1111":
            pieces = [zones.token_piece(token), *pieces]
    return pieces


def _draft(pieces: list[Piece]) -> Draft:
    ordered = zones.in_file_order(pieces)
    draft = Draft()
    for piece in ordered:
        getattr(draft, piece.zone).append(piece)
    return draft


def native_drafts(item: ItemCaption, policy: CaptionPolicy, base: list[Piece]) -> list[Draft] | None:
    """One draft per (description set, description), repeated w·M/n times (M the lcm of the set
    sizes), or one draft without descriptions; None over NATIVE_LINE_LIMIT lines."""
    sets = zones.description_sets(item, policy)
    if not sets:
        return [_draft(base)]
    lcm = math.lcm(*(len(texts) for _, _, texts in sets))
    if lcm * sum(weight for _, weight, _ in sets) > NATIVE_LINE_LIMIT:
        return None
    drafts: list[Draft] = []
    for name, weight, texts in sets:
        for index, text in enumerate(texts):
            description = zones.description_piece(policy, name, index, text)
            pieces = [*base, description] if description else base
            drafts.extend(_draft(pieces) for _ in range(weight * lcm // len(texts)))  # trimmed apart
    return drafts


def materialised_drafts(
    item: ItemCaption,
    policy: CaptionPolicy,
    base: list[Piece],
    *,
    seed: int,
    shuffle_here: bool,
    drops: bool = True,
) -> list[Draft]:
    """`policy.variants` seeded drafts (docs/export-captions.md#materialisation): pick a set by
    weight, a description in it, whole-drop it when u(descdrop) < the rate; keep each other item
    iff u(drop) ≥ its type's rate; shuffle flex by (u(order), key) when the trainer cannot.
    Without `drops` (an item materialised only for its many alternates while its trainer drops
    natively) only the description is drawn. A draft that lost every item is left out (trainers
    drop empty lines anyway); when all are empty, one draft keeps everything."""
    sets = zones.description_sets(item, policy)
    whole_drop = zones.type_policy(policy, zones.DESCRIPTION).whole_drop_rate if drops else 0.0
    drafts = []
    for variant in range(1, policy.variants + 1):
        draw = partial(_decision, seed, item.item_id, variant)
        chosen = [
            piece
            for piece in base
            if not drops or piece.kind == "token" or draw("drop", piece.key) >= piece.drop_rate
        ]
        description = _pick_description(policy, sets, draw)
        if description is not None and draw("descdrop", "") >= whole_drop:
            chosen.append(description)
        draft = _draft(chosen)
        if shuffle_here:
            draft.flex.sort(key=lambda piece: (draw("order", piece.key), piece.key))
        if draft.pieces():  # a line that lost every item is left out, as loaders drop empty lines
            drafts.append(draft)
    return drafts or [_draft(base)]


@lru_cache(maxsize=16384)  # an item's renderers take the same decisions
def _decision(seed: int, item_id: str, variant: int, kind: str, key: str) -> float:
    return u(seed, item_id, variant, kind, key)


def _pick_description(
    policy: CaptionPolicy, sets: list[tuple[str, int, tuple[str, ...]]], draw: Callable[[str, str], float]
) -> Piece | None:
    if not sets:
        return None
    threshold = draw("set", "") * sum(weight for _, weight, _ in sets)
    cumulative = 0
    for name, weight, texts in sets:
        cumulative += weight
        if threshold < cumulative:
            index = math.floor(draw("desc", name) * len(texts))
            return zones.description_piece(policy, name, index, texts[index])
    return None


# --- budget, syntax, public API ----------------------------------------------------------------


def neutral_text(pieces: list[Piece]) -> str:
    """Markup-free text of a line (groups and descriptions with `", "`): what the budget counts."""
    return ", ".join(piece.text() for piece in pieces)


def _neutral_size(draft: Draft) -> int:
    """Tokens of a neutral `.txt` line, whichever prefix form it gets (`;` and `,` may merge
    differently with neighbouring punctuation)."""
    rest = [piece.text("; ") for piece in (*draft.flex, *draft.suffix)]
    exact = [piece.text() for piece in draft.prefix]
    merged = [neutral_line(Draft(prefix=draft.prefix), merged=True)] if draft.prefix else []
    return max(count_joined(exact + rest), count_joined(merged + rest))


def _plain_size(draft: Draft) -> int:
    return count_joined([piece.text() for piece in draft.pieces()])


def trim(draft: Draft, budget: int, size: Callable[[Draft], int] = _plain_size, separator: str = ", ") -> int:
    """Drop flex items until the line fits `budget` CLIP tokens (`size` measures it in the
    renderer's text, flex items written with `separator` inside): lowest budget_priority first,
    then the last in file order. Returns how many went (prefix and suffix never go; a line that
    still does not fit is lint L11). A line's count is the sum of its items' counts with their
    commas (`count_joined`), so each removal saves a known amount; one exact count checks."""
    if not draft.flex or size(draft) <= budget:
        return 0
    order = sorted(draft.flex, key=lambda piece: piece.order, reverse=True)
    order.sort(key=lambda piece: piece.budget_priority)  # stable: the last in file order first
    estimate = size(draft)
    gone: set[int] = set()
    for piece in order:
        if estimate <= budget:
            break
        gone.add(id(piece))
        estimate -= count_tokens(piece.text(separator) + ",")
    draft.flex = [piece for piece in draft.flex if id(piece) not in gone]
    for piece in order:  # removing a line's last item can save a token less than estimated
        if not draft.flex or size(draft) <= budget:
            break
        if id(piece) not in gone:
            gone.add(id(piece))
            draft.flex = [kept for kept in draft.flex if kept is not piece]
    return len(gone)


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def wildcard_options(rate: float, trainer_rate: float) -> tuple[int, int]:
    """§8.3: m empty choices of n ≤ 8 with m/n nearest q = 1 - (1 - rate)/(1 - trainer_rate)
    (fewest options on ties)."""
    target = 1.0 - (1.0 - rate) / (1.0 - trainer_rate)
    best = (0, 1)
    best_error = abs(target)
    for options in range(1, WILDCARD_MAX_OPTIONS + 1):
        for empty in range(options + 1):
            error = abs(empty / options - target)
            if error < best_error - 1e-12:
                best, best_error = (empty, options), error
    return best


def wildcard_residual(rate: float, trainer_rate: float) -> float:
    """Effective drop rate of a §8.3 wildcard tag minus the wanted rate (reported)."""
    empty, options = wildcard_options(rate, trainer_rate)
    return 1.0 - (1.0 - empty / options) * (1.0 - trainer_rate) - rate


@dataclass(frozen=True)
class WildcardRow:
    """One flex tag type under §8.3 wildcards, for EXPORT_REPORT.md."""

    type: str
    requested: float  # p_t
    trainer_rate: float  # r, kohya's caption_tag_dropout_rate
    empty: int  # m
    options: int  # n
    achieved: float  # 1 - (1 - m/n)(1 - r)
    residual: float  # achieved - p_t


def wildcard_rows(policy: CaptionPolicy) -> list[WildcardRow] | None:
    """Per flex tag type (sorted by key) the rate asked for, the rate kohya's lines give and the
    residual (docs/export-captions.md#wildcards); None when kohya lines carry no wildcards."""
    if not _wildcards_on(policy, "kohya"):
        return None
    trainer_rate = min(_flex_rates(policy))
    rows = []
    for tp in sorted(_types(policy), key=lambda t: t.key):
        if tp.zone != "flex":
            continue
        empty, options = (0, 1)
        if tp.drop_rate > trainer_rate:
            empty, options = wildcard_options(tp.drop_rate, trainer_rate)
        achieved = 1.0 - (1.0 - empty / options) * (1.0 - trainer_rate) if empty else trainer_rate
        rows.append(
            WildcardRow(tp.key, tp.drop_rate, trainer_rate, empty, options, achieved, achieved - tp.drop_rate)
        )
    return rows


def _wildcard(piece: Piece, trainer_rate: float) -> str | None:
    text = piece.text()
    if piece.kind != "tag" or piece.drop_rate <= trainer_rate or any(ch in text for ch in "|{},"):
        return None
    empty, options = wildcard_options(piece.drop_rate, trainer_rate)
    if empty == 0:
        return None
    return "{" + "|".join([text] * (options - empty) + [""] * empty) + "}"


def kohya_line(draft: Draft, *, marked: bool, trainer_rate: float | None = None) -> str:
    """A kohya `.caption` line: marked `P ||| F ||| S` (F's internal commas as `;;; `) or plain;
    braces escaped; with `trainer_rate`, flex tags above it become §8.3 wildcards."""

    def flex_text(piece: Piece) -> str:
        if trainer_rate is not None:
            wildcard = _wildcard(piece, trainer_rate)
            if wildcard is not None:
                return wildcard
        return _escape_braces(piece.text(";;; " if marked else ", "))

    prefix = ", ".join(_escape_braces(piece.text()) for piece in draft.prefix)
    flex = ", ".join(flex_text(piece) for piece in draft.flex)
    suffix = ", ".join(_escape_braces(piece.text()) for piece in draft.suffix)
    if not marked:
        return ", ".join(part for part in (prefix, flex, suffix) if part)
    return (
        prefix
        + (" " if prefix else "")
        + "|||"
        + (" " + flex if flex else "")
        + (" ||| " + suffix if suffix else "")
    )


def neutral_line(draft: Draft, *, merged: bool) -> str:
    """A neutral `.txt` line: zones joined `", "`, internal commas of flex/suffix items as `"; "`;
    `merged` writes the whole prefix as one item."""
    prefix = ", ".join(piece.text() for piece in draft.prefix)
    if merged:
        prefix = "; ".join(part.strip() for part in prefix.split(",") if part.strip())
    rest = [piece.text("; ") for piece in (*draft.flex, *draft.suffix)]
    return ", ".join(part for part in (prefix, *rest) if part)


def prefix_count(draft: Draft) -> int:
    """K of `prefix_mode = exact`: the non-empty `,`-pieces of the rendered prefix."""
    return sum(1 for part in ", ".join(piece.text() for piece in draft.prefix).split(",") if part.strip())


def _neutral_lines(drafts: list[Draft], policy: CaptionPolicy) -> tuple[list[str], int]:
    """Exact prefixes when every line has the same K, else merged with K = 1 (0 when no line has
    a prefix). A materialised line that dropped its whole prefix then has its first flex item
    held in place by OneTrainer: an approximation the report names."""
    counts = {prefix_count(draft) for draft in drafts}
    if policy.prefix_mode == "exact" and len(counts) == 1:
        return [neutral_line(draft, merged=False) for draft in drafts], counts.pop()
    keep = 1 if any(draft.prefix for draft in drafts) else 0
    return [neutral_line(draft, merged=True) for draft in drafts], keep


def render(
    item: ItemCaption, policy: CaptionPolicy, renderer: Renderer, *, seed: int, token: str = ""
) -> Rendered:
    """One renderer's lines for one image (docs/export-captions.md#renderers). Native unless
    `materialized(policy, renderer)` or the item has over 32 native lines; every line trimmed to
    the renderer's token budget. `token` is the Textual Inversion token (TI renderers). An item
    with nothing to caption gets no lines (the writer reports L01 or uses class tokens)."""
    if renderer == "ti_a1111":
        line, trimmed = _primary(item, policy, renderer, token=token)
        return Rendered(lines=(line,) if line else (), trimmed=trimmed)
    base = base_pieces(item, policy, renderer, token)
    mat = materialized(policy, renderer)
    drafts = None if mat else native_drafts(item, policy, base)
    item_mat = drafts is None
    if drafts is None:
        drafts = materialised_drafts(
            item, policy, base, seed=seed, shuffle_here=renderer == "diffusers" and policy.shuffle, drops=mat
        )
    budget = token_budget(policy, renderer)
    drafts = [draft for draft in drafts if draft.pieces()]  # nothing to say: no line (L01)
    size = _neutral_size if renderer in NEUTRAL_RENDERERS else _plain_size
    separator = "; " if renderer in NEUTRAL_RENDERERS else ", "
    trimmed = sum(trim(draft, budget, size, separator) for draft in drafts)
    keep: int | None = None
    if renderer in KOHYA_RENDERERS:
        marked = kohya_marked(policy, renderer)
        rate = min(_flex_rates(policy)) if _wildcards_on(policy, renderer) else None
        lines = [kohya_line(draft, marked=marked, trainer_rate=rate) for draft in drafts]
    elif renderer in NEUTRAL_RENDERERS:
        lines, keep = _neutral_lines(drafts, policy)
    else:
        lines = [neutral_text(draft.pieces()) for draft in drafts]
    return Rendered(lines=tuple(lines), keep=keep, materialized=item_mat, trimmed=trimmed)


def _primary(
    item: ItemCaption, policy: CaptionPolicy, renderer: Renderer, *, token: str = ""
) -> tuple[str, int]:
    base = base_pieces(item, policy, renderer, token)
    sets = zones.description_sets(item, policy)
    if sets:
        name, _, texts = sets[0]
        description = zones.description_piece(policy, name, 0, texts[0])
        if description is not None:
            base = [*base, description]
    draft = _draft(base)
    trimmed = trim(draft, token_budget(policy, renderer))
    return neutral_text(draft.pieces()), trimmed


def primary_text(item: ItemCaption, policy: CaptionPolicy) -> str:
    """The primary caption: first description set (by name) and its first description, no
    dropout, file order, `", "` joins, no markup; trimmed to 75 tokens. diffusers `text`."""
    return _primary(item, policy, "diffusers")[0]


def flex_tags(item: ItemCaption, policy: CaptionPolicy) -> str:
    """The flex tags and groups in file order, `", "`-joined: diffusers `tags`."""
    return ", ".join(piece.text() for piece in zones.entry_pieces(item, policy) if piece.zone == "flex")


def diffusers_row(item: ItemCaption, policy: CaptionPolicy, *, seed: int) -> dict[str, object]:
    """`text`, `text_variants`, `tags` of the item's `metadata.jsonl` row (the writer adds
    `file_name`, `dataset`, `partition`). `text_variants` = the diffusers lines, then
    E = round_half_even(N·c/(1-c)) empty strings for caption dropout c."""
    rate = policy.caption_dropout_rate
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"caption_dropout_rate {rate} must be at least 0 and below 1")
    lines = list(render(item, policy, "diffusers", seed=seed).lines)
    empties = round(len(lines) * rate / (1.0 - rate))
    return {
        "text": primary_text(item, policy),
        "text_variants": lines + [""] * empties,
        "tags": flex_tags(item, policy),
    }


def keep_entries(item: ItemCaption, policy: CaptionPolicy) -> list[str]:
    """The item's entries for OneTrainer's keep file (tag-dropout whitelist): suffix items and
    flex items whose type never drops, written as in `.txt` (internal commas `"; "`), unique,
    sorted."""
    pieces = list(zones.entry_pieces(item, policy))
    for name, _, texts in zones.description_sets(item, policy):
        pieces.extend(
            piece
            for index, text in enumerate(texts)
            if (piece := zones.description_piece(policy, name, index, text)) is not None
        )
    kept = {
        piece.text("; ")
        for piece in pieces
        if piece.zone == "suffix" or (piece.zone == "flex" and piece.drop_rate == 0)
    }
    return sorted(kept)
