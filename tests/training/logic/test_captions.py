"""§2, §4 and §8 of the export spec: zones, renderers, native and materialised lines, budget."""

from __future__ import annotations

import pytest

from apps.training.logic.captions import (
    diffusers_row,
    keep_entries,
    materialized,
    primary_text,
    render,
    trainer_tag_dropout,
    wildcard_options,
    wildcard_residual,
)
from apps.training.logic.rand import u
from apps.training.logic.tokens import count_tokens
from apps.training.plan import TypePolicy
from tests.training.logic.factories import ITEM_ID, example_item, example_policy, group, item, policy, tag

EXAMPLE_LINE = (
    "mychar, 1girl, a girl waving in the snow ||| smile, red scarf;;; blue mittens, snow ||| masterpiece"
)


def test_kohya_marked_line_is_the_spec_example() -> None:
    rendered = render(example_item(), example_policy(), "kohya", seed=1234)
    assert rendered.lines == (EXAMPLE_LINE,)
    assert rendered.materialized is False
    assert rendered.keep is None


def test_kohya_marked_form_without_zones() -> None:
    pol = example_policy()
    no_prefix = item(tag("smile"), tag("snow", rank=1), tag("masterpiece", "quality"))
    only_prefix = item(tag("mychar", "trigger"), tag("1girl", "count"))
    no_flex = item(tag("mychar", "trigger"), tag("1girl", "count"), tag("masterpiece", "quality"))
    assert render(no_prefix, pol, "kohya", seed=1).lines == ("||| smile, snow ||| masterpiece",)
    assert render(only_prefix, pol, "kohya", seed=1).lines == ("mychar, 1girl |||",)
    assert render(no_flex, pol, "kohya", seed=1).lines == ("mychar, 1girl ||| ||| masterpiece",)


def test_kohya_plain_form_without_shuffle_or_dropout() -> None:
    types = {
        "general": TypePolicy("general", "flex", 0),
        "group": TypePolicy("group", "flex", 0, atomic=True),
    }
    pol = example_policy(shuffle=False, types=types)
    (line,) = render(example_item(), pol, "kohya", seed=1).lines
    assert (
        line == "mychar, 1girl, a girl waving in the snow, smile, red scarf, blue mittens, snow, masterpiece"
    )


def test_kohya_escapes_braces_everywhere() -> None:
    it = item(tag("{x}", "trigger"), tag("a{b"), tag("c}", "quality"))
    (line,) = render(it, example_policy(), "kohya", seed=1).lines
    assert line == "{{x}} ||| a{{b ||| c}}"


def test_descriptions_in_flex_use_the_secondary_separator() -> None:
    types = {"description": TypePolicy("description", "flex", 5, drop_rate=0.1)}
    pol = example_policy(types=types)
    it = item(tag("smile"), short=("a girl, waving",))
    assert render(it, pol, "kohya", seed=1).lines == ("||| smile, a girl;;; waving",)
    assert render(it, pol, "neutral", seed=1).lines == ("smile, a girl; waving",)


def test_neutral_exact_and_merged() -> None:
    exact = render(example_item(), example_policy(), "neutral", seed=1)
    assert exact.lines == (
        "mychar, 1girl, a girl waving in the snow, smile, red scarf; blue mittens, snow, masterpiece",
    )
    assert exact.keep == 3
    merged = render(example_item(), example_policy(prefix_mode="merged"), "neutral", seed=1)
    assert merged.lines == (
        "mychar; 1girl; a girl waving in the snow, smile, red scarf; blue mittens, snow, masterpiece",
    )
    assert merged.keep == 1


def test_neutral_falls_back_to_merged_when_k_differs_between_lines() -> None:
    it = example_item(short=("waving", "waving, in the snow"))
    rendered = render(it, example_policy(), "neutral", seed=1)
    assert rendered.keep == 1
    assert [line.split(", ")[0] for line in rendered.lines] == [
        "mychar; 1girl; waving",
        "mychar; 1girl; waving; in the snow",
    ]


def test_neutral_keep_is_zero_without_prefix() -> None:
    rendered = render(item(tag("smile")), example_policy(prefix_mode="merged"), "neutral", seed=1)
    assert rendered.keep == 0
    assert render(item(tag("smile")), example_policy(), "neutral", seed=1).keep == 0


def test_excluded_types_never_appear() -> None:
    for renderer in ("kohya", "neutral", "diffusers", "ti_kohya", "ti_onetrainer", "ti_a1111"):
        rendered = render(example_item(), example_policy(), renderer, seed=1, token="zqtok")
        assert all("hidden" not in line for line in rendered.lines)
    assert "hidden" not in diffusers_row(example_item(), example_policy(), seed=1)["tags"]


def test_file_order_is_zone_order_then_rank_then_text() -> None:
    types = {"general": TypePolicy("general", "flex", 1), "meta2": TypePolicy("meta2", "flex", 0)}
    it = item(tag("b", rank=1), tag("a", rank=1), tag("z", rank=0), tag("first", "meta2", rank=9))
    pol = policy(types, shuffle=False)
    assert primary_text(it, pol) == "first, z, a, b"


def test_text_cleanup() -> None:
    it = item(tag("looking_at_viewer"), tag("  two   spaces ", rank=1), tag("saber_(fate)", rank=2))
    assert primary_text(it, policy(shuffle=False)) == "looking at viewer, two spaces, saber (fate)"
    assert (
        primary_text(it, policy(escape_parentheses=True)) == r"looking at viewer, two spaces, saber \(fate\)"
    )
    kept = primary_text(it, policy(underscores_to_spaces=False))
    assert kept == "looking_at_viewer, two spaces, saber_(fate)"
    already = item(tag(r"saber \(fate\)"))
    assert primary_text(already, policy(escape_parentheses=True)) == r"saber \(fate\)"


def test_blank_tags_leave_no_empty_item() -> None:
    it = item(tag("mychar", "trigger"), tag(" _ "), tag("smile", rank=1), group("", "scarf", rank=2))
    assert render(it, example_policy(), "kohya", seed=1).lines == ("mychar ||| smile, scarf",)


def test_an_item_with_nothing_to_say_gets_no_lines() -> None:
    empty = item(tag("hidden", "internal"))
    for renderer in ("kohya", "neutral", "diffusers", "ti_kohya", "ti_a1111"):
        assert render(empty, example_policy(), renderer, seed=1).lines == ()
    assert render(empty, example_policy(materialize_mode="always"), "kohya", seed=1).lines == ()
    assert render(empty, example_policy(), "ti_onetrainer", seed=1, token="zqtok").lines == ("zqtok",)


def test_native_weighted_alternates() -> None:
    it = example_item(short=("s1", "s2"), long=("l1",))
    pol = example_policy(alternates={"short": 2, "long": 1})
    rendered = render(it, pol, "kohya", seed=1)
    descriptions = [line.split(" ||| ")[0].split(", ")[2] for line in rendered.lines]
    # M = lcm(2, 1) = 2: long 1·2/1 = 2 lines, each short 2·2/2 = 2 lines.
    assert descriptions == ["l1", "l1", "s1", "s1", "s2", "s2"]
    assert rendered.materialized is False


def test_weightless_sets_are_left_out() -> None:
    it = example_item(short=("s1",), long=("l1",))
    rendered = render(it, example_policy(alternates={"short": 0}), "kohya", seed=1)
    assert len(rendered.lines) == 1
    assert "l1" in rendered.lines[0]


def test_over_32_native_lines_materialise_only_the_descriptions() -> None:
    it = example_item(a=("a1", "a2", "a3", "a4", "a5"), b=("b1", "b2", "b3", "b4", "b5", "b6", "b7"))
    rendered = render(it, example_policy(variants=10), "kohya", seed=7)
    assert rendered.materialized is True
    assert len(rendered.lines) == 10
    for line in rendered.lines:  # the trainer drops natively: every flex item is still there
        assert line.endswith("||| smile, red scarf;;; blue mittens, snow ||| masterpiece")
    assert len({line.split(", ")[2] for line in rendered.lines}) > 2


def test_materialised_drops_follow_u() -> None:
    it = item(tag("smile"), tag("snow"))
    # u(1234, ITEM_ID, 1, "drop", "t:smile") = 0.7568…: kept at rate 0.75, dropped at 0.76.
    keep = policy({"general": TypePolicy("general", "flex", 0, drop_rate=0.75)}, materialize_mode="always")
    drop = policy({"general": TypePolicy("general", "flex", 0, drop_rate=0.76)}, materialize_mode="always")
    assert "smile" in render(it, keep, "neutral", seed=1234).lines[0]
    assert "smile" not in render(it, drop, "neutral", seed=1234).lines[0]
    expected = []
    for variant in range(1, 13):
        kept = [name for name in ("smile", "snow") if u(1234, ITEM_ID, variant, "drop", f"t:{name}") >= 0.75]
        if kept:  # a line that lost every item is left out
            expected.append(", ".join(kept))
    assert render(it, keep, "neutral", seed=1234).lines == tuple(expected)


def test_materialised_lines_never_empty() -> None:
    pol = policy({"general": TypePolicy("general", "flex", 0, drop_rate=0.5)}, materialize_mode="always")
    rendered = render(item(tag("smile")), pol, "neutral", seed=1234)
    assert 0 < len(rendered.lines) < 12
    assert set(rendered.lines) == {"smile"}
    every = policy({"general": TypePolicy("general", "flex", 0, drop_rate=1.0)}, materialize_mode="always")
    assert render(item(tag("smile")), every, "neutral", seed=1).lines == ("smile",)


def test_materialised_diffusers_shuffles_by_order_draw() -> None:
    it = item(*(tag(name) for name in ("smile", "snow", "cat", "dog")))
    pol = policy({"general": TypePolicy("general", "flex", 0)})
    rendered = render(it, pol, "diffusers", seed=1234)
    assert rendered.materialized is True
    assert len(rendered.lines) == 12
    for variant, line in enumerate(rendered.lines, start=1):
        names = sorted(
            ("smile", "snow", "cat", "dog"), key=lambda n: (u(1234, ITEM_ID, variant, "order", f"t:{n}"), n)
        )
        assert line == ", ".join(names)
    assert rendered.lines[0].startswith("smile")  # u(…, 1, "order", "t:smile") = 0.0078…


def test_materialised_set_and_description_picks() -> None:
    it = example_item(short=("s1", "s2"), long=("l1",))
    pol = example_policy(alternates={"short": 2, "long": 1}, materialize_mode="always", variants=200)
    lines = render(it, pol, "neutral", seed=99).lines
    picked = [line.split(", ")[2] for line in lines]
    for variant, description in enumerate(picked, start=1):
        threshold = u(99, ITEM_ID, variant, "set", "") * 3
        if threshold < 1:  # sets sorted by name: "long" (1) then "short" (2)
            assert description == "l1"
        else:
            assert description == ("s1", "s2")[int(u(99, ITEM_ID, variant, "desc", "short") * 2)]
    assert 0.25 < picked.count("l1") / len(picked) < 0.42


def test_whole_drop_of_descriptions() -> None:
    types = {"description": TypePolicy("description", "prefix", 2, whole_drop_rate=0.5)}
    pol = example_policy(types=types, variants=100)
    assert materialized(pol, "kohya")
    lines = render(example_item(), pol, "kohya", seed=3).lines
    with_description = [line for line in lines if "waving" in line]
    assert 30 < len(with_description) < 70
    for variant, line in enumerate(lines, start=1):
        assert ("waving" in line) == (u(3, ITEM_ID, variant, "descdrop", "") >= 0.5)


def test_materialized_matrix() -> None:
    one_rate = example_policy()
    assert not materialized(one_rate, "kohya")
    assert not materialized(one_rate, "neutral")
    assert materialized(one_rate, "diffusers")  # shuffle and drops happen at export
    assert materialized(one_rate, "ti_kohya")  # TI: no trainer-side tag dropout
    assert not materialized(one_rate, "ti_a1111")
    per_type = policy({})  # seeded defaults: general 0.10, group 0.05
    assert materialized(per_type, "kohya")
    assert materialized(per_type, "neutral")
    assert not materialized(policy({}, kohya_per_type_dropout="wildcard"), "kohya")
    # Wildcards need parsed lines: without shuffle and with a 0 rate kohya would not parse `|||`.
    zero_floor = {
        "general": TypePolicy("general", "flex", 0, 0.1),
        "pose": TypePolicy("pose", "flex", 0, 0.0),
    }
    assert not materialized(policy(zero_floor, kohya_per_type_dropout="wildcard"), "kohya")
    assert materialized(policy(zero_floor, kohya_per_type_dropout="wildcard", shuffle=False), "kohya")
    zero_and_rate = policy(
        {
            "general": TypePolicy("general", "flex", 0, drop_rate=0.1),
            "group": TypePolicy("group", "flex", 1, drop_rate=0.0, atomic=True),
        }
    )
    assert materialized(zero_and_rate, "kohya")  # kohya cannot spare the 0-rate type
    assert not materialized(zero_and_rate, "neutral")  # OneTrainer whitelists it
    droppable_suffix = example_policy(types={"quality": TypePolicy("quality", "suffix", 0, drop_rate=0.2)})
    assert materialized(droppable_suffix, "kohya")
    assert materialized(droppable_suffix, "neutral")
    quiet = example_policy(
        shuffle=False, types={"general": TypePolicy("general"), "group": TypePolicy("group")}
    )
    assert not materialized(quiet, "diffusers")
    assert materialized(example_policy(materialize_mode="always"), "kohya")
    assert not materialized(per_type.__class__(types={}, materialize_mode="never"), "diffusers")


def test_trainer_tag_dropout() -> None:
    assert trainer_tag_dropout(example_policy(), "kohya") == 0.1
    assert trainer_tag_dropout(example_policy(), "neutral") == 0.1
    assert trainer_tag_dropout(policy({}), "kohya") == 0.0  # materialised
    assert trainer_tag_dropout(example_policy(), "ti_kohya") == 0.0
    assert trainer_tag_dropout(example_policy(), "ti_onetrainer") == 0.1
    assert trainer_tag_dropout(example_policy(), "diffusers") == 0.0


def test_materialised_kohya_keeps_the_marked_form() -> None:
    rendered = render(example_item(), policy({}), "kohya", seed=5)
    assert rendered.materialized is True
    assert len(rendered.lines) == 12
    assert all(" ||| " in line or line.endswith("|||") for line in rendered.lines)


def test_token_budget_trims_lowest_priority_then_last() -> None:
    types = {
        "general": TypePolicy("general", "flex", 0, drop_rate=0.1, budget_priority=1),
        "weak": TypePolicy("weak", "flex", 1, drop_rate=0.1, budget_priority=0),
        "group": TypePolicy("group", "flex", 0, drop_rate=0.1),
    }
    words = [f"word{n}" for n in range(30)]  # about 115 tokens in all
    it = item(
        tag("mychar", "trigger"), *(tag(w, rank=i) for i, w in enumerate(words)), tag("weakone", "weak")
    )
    rendered = render(it, policy(types), "neutral", seed=1)
    (line,) = rendered.lines
    assert count_tokens(line) <= 75
    assert "weakone" not in line  # the lowest budget priority went first
    assert line.startswith("mychar, word0, word1")
    kept = line.split(", ")[1:]
    assert kept == words[: len(kept)]  # then the last in file order
    assert rendered.trimmed == 31 - len(kept)
    repeated = render(item(*it.entries, short=("s1", "s2")), policy(types), "neutral", seed=1)
    assert len(repeated.lines) == 2
    assert repeated.trimmed == 2 * (31 - len(kept))  # counted on every line
    wide = render(it, policy(types, max_tokens=150), "kohya", seed=1)
    assert wide.trimmed == 0
    assert (
        count_tokens(render(it, policy(types, max_tokens=150), "ti_onetrainer", seed=1, token="zqx").lines[0])
        <= 75
    )


def test_diffusers_row() -> None:
    pol = example_policy(caption_dropout_rate=0.2)
    row = diffusers_row(example_item(), pol, seed=1234)
    assert list(row) == ["text", "text_variants", "tags"]
    assert (
        row["text"]
        == "mychar, 1girl, a girl waving in the snow, smile, red scarf, blue mittens, snow, masterpiece"
    )
    assert row["tags"] == "smile, red scarf, blue mittens, snow"
    variants = row["text_variants"]
    assert isinstance(variants, list)
    assert len(variants) == 12 + 3  # E = round_half_even(12·0.2/0.8) = 3
    assert variants[12:] == ["", "", ""]
    assert all(line.startswith("mychar, 1girl, a girl waving in the snow") for line in variants[:12])
    assert (
        diffusers_row(example_item(), example_policy(caption_dropout_rate=0.05), seed=1)["text_variants"][-1]
        == ""
    )
    with pytest.raises(ValueError, match="caption_dropout_rate"):
        diffusers_row(example_item(), example_policy(caption_dropout_rate=1.0), seed=1)


def test_primary_text_takes_the_first_set_by_name() -> None:
    it = example_item(short=("s1",), long=("l1", "l2"))
    assert primary_text(it, example_policy()).startswith("mychar, 1girl, l1, smile")


def test_ti_renderings() -> None:
    pol = example_policy()
    kohya = render(example_item(), pol, "ti_kohya", seed=1, token="zqtok")
    assert all(line.startswith("zqtok, 1girl") for line in kohya.lines)
    assert all("mychar" not in line for line in kohya.lines)
    onetrainer = render(example_item(), pol, "ti_onetrainer", seed=1, token="zqtok")
    assert all(line.startswith("zqtok, 1girl") for line in onetrainer.lines)
    assert onetrainer.keep == 3
    a1111 = render(example_item(), pol, "ti_a1111", seed=1, token="zqtok")
    assert a1111.lines == (
        "1girl, a girl waving in the snow, smile, red scarf, blue mittens, snow, masterpiece",
    )
    bare = render(item(tag("smile")), pol, "ti_onetrainer", seed=1, token="zqtok")
    assert bare.keep == 1


def test_keep_entries() -> None:
    types = {**{"meta": TypePolicy("meta", "suffix", 1)}, "pose": TypePolicy("pose", "flex", 0)}
    it = example_item()
    it = item(*it.entries, tag("standing", "pose"), group("a", "b", type_="pose"), tag("absurdres", "meta"))
    assert keep_entries(it, example_policy(types=types)) == ["a; b", "absurdres", "masterpiece", "standing"]


def test_wildcard_options() -> None:
    assert wildcard_options(0.3, 0.1) == (1, 5)  # q = 0.222…, nearest m/n with n ≤ 8
    assert wildcard_options(0.1, 0.1) == (0, 1)
    assert wildcard_options(0.55, 0.1) == (1, 2)
    assert wildcard_residual(0.3, 0.1) == pytest.approx(1 - 0.8 * 0.9 - 0.3)


def test_kohya_wildcard_lines() -> None:
    types = {
        "general": TypePolicy("general", "flex", 0, drop_rate=0.3),
        "group": TypePolicy("group", "flex", 0, drop_rate=0.1, atomic=True),
        "braces": TypePolicy("braces", "flex", 0, drop_rate=0.3),
    }
    pol = example_policy(types=types, kohya_per_type_dropout="wildcard")
    it = item(
        tag("mychar", "trigger"),
        tag("smile"),
        group("red scarf", "blue mittens", rank=1),
        tag("{x}", "braces", 2),
    )
    (line,) = render(it, pol, "kohya", seed=1).lines
    assert line == "mychar ||| {smile|smile|smile|smile|}, red scarf;;; blue mittens, {{x}}"
    assert trainer_tag_dropout(pol, "kohya") == 0.1


def test_one_changed_tag_moves_no_other_decision() -> None:
    pol = policy({}, materialize_mode="always")
    before = item(tag("a"), tag("b"), tag("c"), tag("d", rank=1))
    after = item(tag("a"), tag("b"), tag("c"), tag("e", rank=1))
    for old, new in zip(
        render(before, pol, "neutral", seed=4).lines, render(after, pol, "neutral", seed=4).lines, strict=True
    ):
        assert [x for x in old.split(", ") if x != "d"] == [x for x in new.split(", ") if x != "e"]


def test_render_is_deterministic() -> None:
    pol = policy({})
    assert render(example_item(), pol, "diffusers", seed=8) == render(
        example_item(), pol, "diffusers", seed=8
    )
    assert render(example_item(), pol, "diffusers", seed=8) != render(
        example_item(), pol, "diffusers", seed=9
    )
