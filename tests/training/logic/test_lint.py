"""§9 lint checks without files: each id has a failing fixture that reports exactly that id
(A14), and the clean counterpart reports nothing."""

from __future__ import annotations

import pytest

from apps.training.logic.buckets import BucketFit, kohya_predict
from apps.training.logic.captions import keep_entries, render
from apps.training.logic.lint import (
    Finding,
    brace_problem,
    lint_buckets,
    lint_budget,
    lint_caption,
    lint_image,
    lint_keep,
    lint_keep_entries,
    lint_lines,
    lint_ti,
    prefix_items,
)
from apps.training.plan import ImagePolicy
from tests.training.logic.factories import example_item, example_policy, group, item, tag

RENDERERS = ("kohya", "neutral", "diffusers", "ti_kohya", "ti_onetrainer", "ti_a1111")


def _codes(findings: list[Finding]) -> set[str]:
    return {finding.code for finding in findings}


def test_rendered_example_lines_are_clean() -> None:
    for renderer in RENDERERS:
        rendered = render(example_item(), example_policy(), renderer, seed=1, token="zqtok")
        assert lint_lines(rendered.lines, renderer) == []
    assert (
        lint_lines(render(example_item(), example_policy(), "kohya", seed=1).lines, "kohya", marked=True)
        == []
    )


@pytest.mark.parametrize(
    ("lines", "renderer"),
    [
        ((), "neutral"),
        (("",), "neutral"),
        (("a, , b",), "neutral"),
        ((", a",), "diffusers"),
        (("a, b,",), "ti_a1111"),
        (("mychar ||| , smile",), "kohya"),
        (("|||",), "kohya"),
        (("a ||| b;;; ;;; c",), "kohya"),
    ],
)
def test_l01(lines: tuple[str, ...], renderer: str) -> None:
    findings = lint_lines(lines, renderer)  # type: ignore[arg-type]
    assert _codes(findings) == {"L01"}
    assert all(f.severity == "error" for f in findings)


@pytest.mark.parametrize(
    ("lines", "renderer", "marked"),
    [
        (("a ||| b",), "neutral", None),
        (("a ||| b ||| c ||| d",), "kohya", True),
        (("a, b",), "kohya", True),
        (("a ||| b",), "kohya", False),
        (("a ||| b", "a, b"), "kohya", None),
    ],
)
def test_l02(lines: tuple[str, ...], renderer: str, marked: bool | None) -> None:
    assert _codes(lint_lines(lines, renderer, marked=marked)) == {"L02"}  # type: ignore[arg-type]


@pytest.mark.parametrize("line", ["a{b ||| c", "a}b |||", "{a|{b}} |||", "||| {a, b|}", "{{x} |||"])
def test_l03(line: str) -> None:
    findings = lint_lines([line], "kohya", marked=True)
    assert _codes(findings) == {"L03"}
    assert "escape" in findings[0].message or "wildcard" in findings[0].message


def test_brace_rules() -> None:
    assert brace_problem("{{x}} ||| {smile|smile|}, b") == ""
    assert brace_problem("{{{a|}}}") == ""  # an escaped brace, a wildcard, an escaped brace
    assert brace_problem("{a") != ""
    assert lint_lines(["{a"], "neutral") == []  # braces are literal outside kohya


def test_l05() -> None:
    bad = item(tag("a|||b"), tag("x,y"), group("p", "q,r"), tag("two\nlines"), short=("semi;;;colon",))
    findings = lint_caption(bad)
    assert _codes(findings) == {"L05"}
    assert len(findings) == 5
    assert lint_caption(example_item(short=("a girl, waving",))) == []


def test_l06() -> None:
    rendered = {
        renderer: [render(example_item(), example_policy(), renderer, seed=1, token="zqtok").lines]
        for renderer in ("ti_kohya", "ti_onetrainer")
    }
    assert lint_ti("zqtok", "girl", 2, rendered) == []
    merged = render(
        example_item(), example_policy(prefix_mode="merged"), "ti_onetrainer", seed=1, token="zqtok"
    )
    assert merged.lines[0].startswith("zqtok; 1girl")
    assert lint_ti("zqtok", "girl", 1, {"ti_onetrainer": [merged.lines]}) == []
    cases = [
        lint_ti("Bad-token", "girl", 1, {}),
        lint_ti("cat", "girl", 1, {}),  # a CLIP word
        lint_ti("zqtok", "mychar", 1, {}),  # two tokens
        lint_ti("zqtok", "girl", 1, {"ti_kohya": [["1girl ||| smile"]]}),
        lint_ti("zqtok", "girl", 1, {"ti_kohya": [["zqtok, zqtokens |||"]]}),
        lint_ti("zqtok", "girl", 1, {"ti_onetrainer": [["1girl, zqtok"]]}),
    ]
    for findings in cases:
        assert _codes(findings) == {"L06"}
    assert "made-up token" in cases[1][0].message


def test_l06_vector_names() -> None:
    assert lint_ti("zqxv", "girl", 3, {}) == []
    # "cat" is taken; its vector names "cat1", "cat_1" are checked too.
    assert len(lint_ti("cat", "girl", 2, {})) == 1


def test_l08() -> None:
    assert lint_buckets("sdxl", 1024, 512, 2048, 64) == []
    assert lint_buckets("sdxl", 1024, 512, 2048, 32) == []
    for findings in (
        lint_buckets("sd1", 512, 256, 1024, 32),
        lint_buckets("sdxl", 1024, 1088, 2048, 64),
        lint_buckets("sdxl", 1024, 512, 960, 64),
        lint_buckets("sd1", 512, 288, 1024, 64),
        lint_buckets("sdxl", (1024, 1536), 512, 1024, 64),
    ):
        assert _codes(findings) == {"L08"}
        assert all(f.severity == "error" for f in findings)


def test_l09() -> None:
    policy = ImagePolicy(
        resolution=1024, bucket_min=512, bucket_max=2048, bucket_step=64, min_source_side=768, max_aspect=2.5
    )
    fine = kohya_predict(1344, 1792, resolution=1024, min_=512, max_=2048, step=64)
    assert lint_image(1344, 1792, fine, policy) == []
    small = kohya_predict(500, 700, resolution=1024, min_=512, max_=2048, step=64)
    findings = lint_image(500, 700, small, policy, item="i000000000001")
    assert _codes(findings) == {"L09"}
    assert {f.severity for f in findings} == {"warning"}
    assert len(findings) == 2  # too small, upscaled
    lossy = BucketFit(bucket=(512, 2048), resized=(800, 2048), crop_loss=0.36, upscale=False)
    assert len(lint_image(3000, 1000, lossy, policy)) == 2  # aspect 3 and crop loss


def test_l11() -> None:
    long_description = " ".join(f"word{n}" for n in range(40))
    over = example_item(short=(long_description,))
    findings = lint_budget(over, example_policy())
    assert _codes(findings) == {"L11"}
    assert "kohya 75" in findings[0].message
    assert lint_budget(over, example_policy(max_tokens=225), renderers=["kohya"]) == []
    assert lint_budget(example_item(), example_policy()) == []


def test_l13() -> None:
    rendered = render(example_item(), example_policy(), "neutral", seed=1)
    prefix = {"mychar", "1girl", "a girl waving in the snow"}
    assert lint_keep(rendered.lines, rendered.keep or 0, expected=3, prefix_items=prefix) == []
    for findings in (
        lint_keep(rendered.lines, 3, expected=2),
        lint_keep(["mychar, 1girl"], 3),
        lint_keep(["smile, mychar, 1girl"], 3, prefix_items=prefix),
        lint_keep(["smile; mychar, snow"], 1, prefix_items=prefix),
    ):
        assert _codes(findings) == {"L13"}
    merged = render(example_item(), example_policy(prefix_mode="merged"), "neutral", seed=1)
    assert lint_keep(merged.lines, 1, expected=1, prefix_items=prefix) == []
    assert lint_keep(["smile, snow"], 1, prefix_items=prefix) == []  # the whole prefix dropped
    assert prefix_items(example_item(), example_policy()) == prefix
    assert prefix_items(example_item(), example_policy(), token="zqtok") == prefix | {"zqtok"}


def test_l14() -> None:
    assert lint_keep_entries(keep_entries(example_item(), example_policy())) == []
    findings = lint_keep_entries(["snow", "初音ミク", "café"], path="onetrainer/keep-x.txt")
    assert _codes(findings) == {"L14"}
    assert findings[0].severity == "warning"
    assert findings[0].path == "onetrainer/keep-x.txt"
