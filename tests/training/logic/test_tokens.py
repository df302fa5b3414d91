"""The pure-Python CLIP tokenizer against open_clip's own (installed in the dev environment)."""

from __future__ import annotations

import random

import pytest

from apps.training.logic.tokens import clean, count_joined, count_tokens, in_vocab, is_single_token, token_ids

TAGS = [
    "1girl",
    "solo",
    "long_hair",
    "looking_at_viewer",
    "smile",
    "open_mouth",
    "blue_eyes",
    "red_scarf",
    "blue_mittens",
    "snow",
    "masterpiece",
    "best_quality",
    "absurdres",
    "highres",
    "short_hair",
    "thighhighs",
    "holding_umbrella",
    ":d",
    ":3",
    "^_^",
    ">_<",
    "o_o",
    "x_x",
    "hatsune_miku",
    "vocaloid",
    "fate/grand_order",
    "re:zero_kara_hajimeru_isekai_seikatsu",
    "jojo_no_kimyou_na_bouken",
    "pokemon_(creature)",
    "saber_(fate)",
    "c.c.",
    "k-on!",
    "yuri!!!_on_ice",
    "score_9",
    "score_8_up",
    "rating:safe",
    "nsfw",
    "2girls",
    "3boys",
    "greyscale",
    "monochrome",
    "left_hand",
    "right_hand",
    "looking_to_the_side",
    "hand_on_hip",
    "from_behind",
    "cowboy_shot",
    "upper_body",
    "depth_of_field",
    "bokeh",
    "lens_flare",
    "chromatic_aberration",
    "year_2023",
    "artist:wlop",
    "(artist)",
    "{braces}",
    "[brackets]",
]
SENTENCES = [
    "a girl waving in the snow",
    "mychar, 1girl, a girl waving in the snow ||| smile, red scarf;;; blue mittens, snow ||| masterpiece",
    "A Photo of an Astronaut riding a horse on the moon.",
    "It's a dog's life, isn't it? We're here, they've gone, I'm fine, you'll see, he'd know.",
    "IT'S LOUD, ISN'T IT",
    "rock & roll &amp; jazz &lt;3 &quot;quoted&quot; &#39;single&#39; &amp;amp;",
    "“curly double” ‘curly single’ ʼmodifierʼ",
    "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ！ １２３",
    "ﬁne ﬂowers ﬀ ﬃ ĳssel Ǆ",
    "日本語のテキスト、東方プロジェクト",
    "初音ミク ｶﾀｶﾅ 한국어 텍스트",
    "Ελληνικά κείμενο, русский текст, עברית, العربية",
    "emoji 🎉👍🏽 ❤️ 🇯🇵 👨‍👩‍👧 ☃",
    "tabs\tand\nnewlines\r\nand   many    spaces",
    "   leading and trailing   ",
    "numbers 1234567890 3.14159 1,000,000 0x1F 1e-5",
    "punctuation!!! ??? ... --- ___ *** ### @@@ $$$ %%% ^^^ ~~~ ``` |||",
    "café naïve résumé coöperate Zürich façade",
    "e\u0301 combining accents a\u0308",  # NFC composes them
    "zero\u200bwidth and \u00a0non-breaking",
    "control\x07chars\x1bhere\x7f",
    "<start_of_text> and <end_of_text> inside text",
    "url https://example.com/path?q=1&x=2#frag",
    "email someone@example.org",
    "",
    "   ",
    "a",
    "I",
    "{red|blue} scarf, {{literal}}",
    "masterpiece, best quality, very aesthetic, absurdres, newest",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
]


def _corpus() -> list[str]:
    rng = random.Random(20261207)
    corpus = [*TAGS, *(tag.replace("_", " ") for tag in TAGS), *SENTENCES]
    for _ in range(80):
        picked = rng.sample(TAGS, rng.randint(2, 12))
        separator = rng.choice([", ", ",", " ", "; ", ";;; "])
        corpus.append(separator.join(picked))
    return corpus


def test_corpus_is_large_enough() -> None:
    assert len(_corpus()) >= 200


def test_counts_and_ids_equal_open_clip() -> None:
    tokenizer_module = pytest.importorskip("open_clip.tokenizer")
    reference = tokenizer_module.SimpleTokenizer()
    mismatches = [
        (text, token_ids(text), reference.encode(text))
        for text in _corpus()
        if token_ids(text) != reference.encode(text)
    ]
    assert mismatches == []


def test_count_joined_equals_the_joined_count() -> None:
    rng = random.Random(7)
    corpus = _corpus()
    for _ in range(300):
        parts = [text.strip() for text in rng.sample(corpus, rng.randint(1, 12)) if text.strip()]
        assert count_joined(parts) == count_tokens(", ".join(parts)), parts
    assert count_joined([]) == 0


def test_known_counts() -> None:
    assert count_tokens("") == 0
    assert count_tokens("a girl waving in the snow") == 6
    assert count_tokens("looking_at_viewer") == 5  # underscores are their own pieces
    assert count_tokens("looking at viewer") == 3


def test_clean() -> None:
    assert clean("  Hello\t\nWORLD  &amp;amp; ") == "hello world &"
    assert clean("ｆｕｌｌ“x”ﬁ") == 'full"x"fi'


def test_single_token_and_vocab() -> None:
    assert is_single_token("cat")
    assert not is_single_token("mychar")
    assert not is_single_token("")
    assert in_vocab("cat")
    assert in_vocab("Cat")
    assert not in_vocab("mychar")
    assert not in_vocab("two words")
    assert not in_vocab("")


def test_token_ids_are_cached_tables_not_rebuilt() -> None:
    assert token_ids("snow") == token_ids("snow")
    assert len(token_ids("snow, snow")) == 3
