"""Seeded random items and policies: whatever the renderers write passes the text lint (L01-L03,
L13), reaches kohya's text encoder without markup (A10) and fits the budget (A11)."""

from __future__ import annotations

import random

from apps.training.logic.captions import kohya_marked, render
from apps.training.logic.fidelity import line_text, markup_leaks, over_budget, process_all
from apps.training.logic.lint import lint_budget, lint_keep, lint_lines, lint_ti, prefix_items
from apps.training.plan import CaptionPolicy, ItemCaption, TypePolicy
from tests.training.logic.factories import group, item, tag

WORDS = [
    "smile", "long_hair", "saber_(fate)", "{brace}", "a}b", "c{d", "初音ミク", "café", "k-on!", ":d",
    "looking_at_viewer", "red scarf", "blue mittens", "snow", "x" * 40, "score_9", "1girl", "solo",
]  # fmt: skip
TYPES = [
    "trigger",
    "count",
    "character",
    "description",
    "general",
    "pose",
    "group",
    "quality",
    "meta",
    "internal",
]
RENDERERS = ("kohya", "neutral", "diffusers", "ti_kohya", "ti_onetrainer", "ti_a1111")
TOKEN = "zqtok"


def _policy(rng: random.Random) -> CaptionPolicy:
    def rate() -> float:
        return rng.choice([0.0, 0.0, 0.05, 0.1, 0.3])

    types = {
        "trigger": TypePolicy("trigger", "prefix", 0),
        "count": TypePolicy("count", "prefix", rng.randint(1, 3)),
        "character": TypePolicy("character", rng.choice(["prefix", "flex"]), 2, drop_rate=rate()),
        "description": TypePolicy(
            "description", rng.choice(["prefix", "flex", "suffix"]), 1, whole_drop_rate=rng.choice([0.0, 0.2])
        ),
        "general": TypePolicy("general", "flex", 0, drop_rate=rate(), budget_priority=1),
        "pose": TypePolicy("pose", "flex", 1, drop_rate=rate()),
        "group": TypePolicy("group", "flex", 2, drop_rate=rate(), atomic=True),
        "quality": TypePolicy("quality", "suffix", 0, drop_rate=rng.choice([0.0, 0.0, 0.2])),
        "meta": TypePolicy("meta", rng.choice(["suffix", "prefix"]), 1),
        "internal": TypePolicy("internal", "excluded"),
    }
    return CaptionPolicy(
        types=types,
        shuffle=rng.random() < 0.7,
        escape_parentheses=rng.random() < 0.3,
        alternates={"long": rng.randint(0, 2), "short": rng.randint(1, 3)},
        materialize_mode=rng.choice(["auto", "auto", "always", "never"]),
        variants=rng.randint(1, 12),
        max_tokens=rng.choice([75, 150]),
        prefix_mode=rng.choice(["exact", "merged"]),
        kohya_per_type_dropout=rng.choice(["", "wildcard"]),
    )


def _item(rng: random.Random, number: int) -> ItemCaption:
    entries = [tag("mychar", "trigger")] if rng.random() < 0.8 else []
    used: set[str] = set()
    for _ in range(rng.randint(0, 30)):
        text = rng.choice(WORDS) + ("" if rng.random() < 0.5 else f" {rng.randint(0, 99)}")
        if text in used:
            continue
        used.add(text)
        type_ = rng.choice(TYPES[1:])
        if type_ == "group":
            entries.append(group(text, rng.choice(WORDS) + " 2", rank=rng.random()))
        elif type_ != "description":
            entries.append(tag(text, type_, rank=rng.random()))
    descriptions = {}
    if rng.random() < 0.6:
        descriptions["short"] = tuple(
            rng.choice(["a girl, waving", "snowy day", "she waves"]) for _ in range(2)
        )
    if rng.random() < 0.3:
        descriptions["long"] = ("a girl in a red scarf, waving at the viewer in the snow",)
    return item(*entries, item_id=f"i{number:012x}", **descriptions)


def test_rendered_lines_pass_the_text_checks() -> None:
    rng = random.Random(20261207)
    for number in range(150):
        policy = _policy(rng)
        it = _item(rng, number)
        prefix = prefix_items(it, policy, token=TOKEN)
        for renderer in RENDERERS:
            rendered = render(it, policy, renderer, seed=number, token=TOKEN)
            if not any(line_text(line) for line in rendered.lines):
                continue  # an item with nothing to say: L01 reports it (tested in test_lint)
            marked = kohya_marked(policy, renderer) if renderer in ("kohya", "ti_kohya") else None
            context = (number, renderer, rendered.lines)
            assert lint_lines(rendered.lines, renderer, marked=marked) == [], context
            if not lint_budget(it, policy, [renderer], token=TOKEN):  # else L11 stops the export
                assert over_budget(rendered.lines, policy, renderer) == [], context
            if renderer == "kohya":
                assert markup_leaks(process_all(rendered.lines, policy, seed=number)) == [], context
            if renderer in ("neutral", "ti_onetrainer"):
                assert rendered.keep is not None
                assert lint_keep(rendered.lines, rendered.keep, prefix_items=prefix) == [], context
            if renderer in ("ti_kohya", "ti_onetrainer"):
                assert lint_ti(TOKEN, "girl", 1, {renderer: [rendered.lines]}) == [], context
