"""A09-A11: our captions through simulations of each trainer's caption pipeline."""

from __future__ import annotations

import random

import pytest

from apps.training.logic.captions import render, wildcard_options
from apps.training.logic.fidelity import (
    expected_keep,
    kohya_process_caption,
    line_text,
    markup_leaks,
    mgds_drop_tags,
    mgds_shuffle_tags,
    over_budget,
    process_all,
    simulate,
)
from apps.training.plan import TypePolicy
from tests.training.logic.factories import example_item, example_policy, group, item, tag

RNG_SEED = 11


def _items(count: int) -> list:
    base = example_item(
        short=("a girl waving in the snow", "snowy day, waving girl"), long=("a girl, outside",)
    )
    return [item(*base.entries, item_id=f"i{n:012x}", **base.descriptions) for n in range(count)]


def _assert_rates(stats, policy, types) -> None:  # type: ignore[no-untyped-def]
    rates = stats.keep_rates()
    for type_key in types:
        assert abs(rates[type_key] - expected_keep(policy, type_key)) <= 0.01, (type_key, rates[type_key])


def test_kohya_process_caption() -> None:
    rng = random.Random(RNG_SEED)
    line = "mychar, 1girl ||| smile, red scarf;;; blue mittens, {{x}}, {a|} ||| masterpiece"
    outputs = {kohya_process_caption(line, rng, shuffle=True, tag_dropout=0.0) for _ in range(200)}
    for output in outputs:
        assert output.startswith("mychar, 1girl, ")
        assert output.endswith(", masterpiece")
        assert "red scarf, blue mittens" in output  # the group stays together
        assert "{x}" in output
    assert any(", a," in output for output in outputs)
    assert any(", a," not in output for output in outputs)  # the empty choice vanished
    plain = kohya_process_caption("a, b;;; c", rng, shuffle=False, tag_dropout=0.0)
    assert plain == "a, b, c"


def test_mgds_modules() -> None:
    rng = random.Random(RNG_SEED)
    dropped = [
        mgds_drop_tags("k, a, b, c", rng, probability=1.0, keep_count=1, whitelist={"b"}) for _ in range(5)
    ]
    assert set(dropped) == {"k, b"}
    shuffled = {mgds_shuffle_tags("k1, k2, a, b, c", rng, keep_count=2) for _ in range(50)}
    assert all(text.startswith("k1, k2, ") for text in shuffled)
    assert len(shuffled) > 1


def test_a09_kohya_native() -> None:
    policy = example_policy()
    stats = simulate(example_item(), policy, "kohya", seed=RNG_SEED, draws=10000)
    _assert_rates(stats, policy, ["trigger", "count", "description", "general", "group", "quality"])
    assert stats.prefix_position_rate == 1.0
    assert stats.suffix_position_rate == 1.0
    assert stats.markup_leaks == []


def test_a09_onetrainer_native() -> None:
    policy = example_policy()
    stats = simulate(example_item(), policy, "onetrainer", seed=RNG_SEED, draws=10000)
    _assert_rates(stats, policy, ["trigger", "count", "description", "general", "group", "quality"])
    assert stats.prefix_position_rate == 1.0
    # The suffix is whitelisted (never dropped) but shuffles with the flex tags (approximated).
    assert stats.suffix_position_rate < 1.0


MATERIALISED_TYPES = {
    "description": TypePolicy("description", "prefix", 2, whole_drop_rate=0.2),
    "general": TypePolicy("general", "flex", 0, drop_rate=0.15),
    "group": TypePolicy("group", "flex", 0, drop_rate=0.05, atomic=True),
    "quality": TypePolicy("quality", "suffix", 0, drop_rate=0.3),
}


@pytest.mark.parametrize("trainer", ["kohya", "onetrainer", "diffusers"])
def test_a09_materialised(trainer: str) -> None:
    policy = example_policy(
        types=MATERIALISED_TYPES, caption_dropout_rate=0.2, variants=200, alternates={"short": 2, "long": 1}
    )
    stats = simulate(_items(100), policy, trainer, seed=RNG_SEED, draws=40000)  # type: ignore[arg-type]
    _assert_rates(stats, policy, ["trigger", "count", "description", "general", "group", "quality"])
    assert abs(stats.caption_rate - 0.8) <= 0.01
    assert stats.prefix_position_rate == 1.0
    if trainer != "onetrainer":
        assert stats.suffix_position_rate == 1.0
    assert stats.markup_leaks == []


def test_a09_kohya_wildcards() -> None:
    types = {
        "general": TypePolicy("general", "flex", 0, drop_rate=0.3),
        "group": TypePolicy("group", "flex", 0, drop_rate=0.1, atomic=True),
    }
    policy = example_policy(types=types, kohya_per_type_dropout="wildcard")
    stats = simulate(example_item(), policy, "kohya", seed=RNG_SEED, draws=20000)
    empty, options = wildcard_options(0.3, 0.1)
    rates = stats.keep_rates()
    assert abs(rates["general"] - (1 - empty / options) * 0.9) <= 0.01  # the residual is reported
    assert abs(rates["group"] - 0.9) <= 0.01
    assert stats.markup_leaks == []


def test_a10_no_markup_reaches_the_text_encoder() -> None:
    types = {
        "general": TypePolicy("general", "flex", 0, drop_rate=0.3),
        "group": TypePolicy("group", "flex", 0, drop_rate=0.1, atomic=True),
        "description": TypePolicy("description", "flex", 3, drop_rate=0.1),
    }
    odd = item(
        tag("{brace}", "trigger"),
        tag("a}b", "count"),
        tag("smile"),
        group("red scarf", "blue mittens"),
        tag("c{d"),
        tag("masterpiece", "quality"),
        short=("a girl, waving",),
    )
    bare = item(tag("mychar", "trigger"))
    suffix_only = item(tag("masterpiece", "quality"))
    for policy in (
        example_policy(types=types, kohya_per_type_dropout="wildcard"),
        example_policy(types=types),
        example_policy(),
        example_policy(shuffle=False),
    ):
        for it in (odd, bare, suffix_only, example_item()):
            lines = render(it, policy, "kohya", seed=3).lines
            for seed in range(20):
                assert markup_leaks(process_all(lines, policy, seed=seed)) == []
    assert markup_leaks(["a, , b", "x ||| y", "a;;; b", "{{"]) == ["a, , b", "x ||| y", "a;;; b", "{{"]


def test_a11_every_line_fits() -> None:
    words = [f"word{n}" for n in range(60)]
    long_item = item(
        tag("mychar", "trigger"), *(tag(w, rank=i) for i, w in enumerate(words)), short=("a girl",)
    )
    for policy in (
        example_policy(),
        example_policy(max_tokens=150),
        example_policy(materialize_mode="always"),
    ):
        for renderer in ("kohya", "neutral", "diffusers", "ti_kohya", "ti_onetrainer", "ti_a1111"):
            lines = render(long_item, policy, renderer, seed=1, token="zqtok").lines
            assert over_budget(lines, policy, renderer) == []  # type: ignore[arg-type]
    assert over_budget([", ".join(words)], example_policy(), "neutral") == [", ".join(words)]


def test_line_text() -> None:
    assert line_text("mychar ||| {smile|}, red scarf;;; blue mittens, {{x}} ||| best") == (
        "mychar, smile, red scarf, blue mittens, {x}, best"
    )
    assert line_text("mychar |||") == "mychar"
