"""Query language: lexing, grammar, guard rails, values and every error code.

docs/query-language.md#errors
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.search.query import CODES, And, Not, Or, Qualifier, QueryError, TagTerm, canonical, parse
from apps.search.query.values import Interval, RangeList
from tests.search.queries import hostile_queries


def error(q: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse(q)
    return info.value


def tag(text: str, mode: str = "plain") -> TagTerm:
    colon = text.find(":")
    stars = tuple(i for i, c in enumerate(text) if c == "*")
    return TagTerm(0, 0, mode, text, colon, stars)


# Grammar ---------------------------------------------------------------------------------------


def test_grouping_keeps_parentheses_inside_names():  # check 13
    tree = parse("(saber_(fate) or rin) -1boy")
    assert tree == And(0, 0, (Or(0, 0, (tag("saber_(fate)"), tag("rin"))), Not(0, 0, tag("1boy"))))
    assert isinstance(tree, And)
    assert tree.children[1].pos == 22


def test_legacy_tilde_is_an_or_group():  # check 13
    assert canonical(parse("~a ~b c")) == canonical(parse("(a or b) c"))
    assert canonical(parse("c ~a ~b")) == canonical(parse("c (a or b)"))
    assert canonical(parse("~a")) == canonical(parse("a"))


def test_precedence_not_then_and_then_or():
    assert canonical(parse("a b or c -d")) == canonical(parse("(a b) or (c (-d))"))
    assert canonical(parse("a and b | c")) == canonical(parse("(a b) or c"))
    assert canonical(parse("a OR b")) == canonical(parse("a or b"))
    assert canonical(parse("-(a or b) c")) == canonical(parse("(-(a or b)) c"))


def test_empty_query_is_everything():
    assert parse("") is None
    assert parse("   \t ") is None


@pytest.mark.parametrize(
    ("q", "text"),
    [
        (":-)", ":-)"),
        ("saber_(fate)", "saber_(fate)"),
        ('"long hair"', "long hair"),
        ("long\\ hair", "long hair"),
        ('"or"', "or"),
        ("\\-a", "-a"),
        ("\\(a", "(a"),
        ("a)", "a)"),
        ("re:zero", "re:zero"),
        ("初音ミク", "初音ミク"),
    ],
)
def test_names_that_look_like_syntax(q, text):
    node = parse(q)
    assert isinstance(node, TagTerm)
    assert node.text == text
    assert node.mode == "plain"


def test_trailing_parentheses_close_only_open_groups():
    tree = parse("(smile :-))")
    assert isinstance(tree, And)
    assert [c.text for c in tree.children] == ["smile", ":-)"]  # type: ignore[attr-defined]
    tree = parse("(saber_(fate))")
    assert isinstance(tree, TagTerm)
    assert tree.text == "saber_(fate)"
    tree = parse("(a) b)")  # no group is open: `b)` is a name (an unknown tag at worst)
    assert isinstance(tree, And)
    assert tree.children[1].text == "b)"  # type: ignore[attr-defined]


def test_term_modes_and_positions():
    tree = parse('tag:or direct:vehicle unaliased:"x y" char:miku')
    assert isinstance(tree, And)
    modes = [(c.mode, c.text, c.pos, c.length) for c in tree.children]  # type: ignore[attr-defined]
    assert modes == [
        ("tag", "or", 0, 6),
        ("direct", "vehicle", 7, 14),
        ("unaliased", "x y", 22, 15),
        ("plain", "char:miku", 38, 9),
    ]


def test_wildcards_only_from_unquoted_stars():
    assert parse("*hair").stars == (0,)  # type: ignore[union-attr]
    assert parse("a*b*").stars == (1, 3)  # type: ignore[union-attr]
    assert parse('"a*b"').stars == ()  # type: ignore[union-attr]
    assert parse("a\\*b").stars == ()  # type: ignore[union-attr]


# Qualifier values ------------------------------------------------------------------------------


def value(q: str):
    node = parse(q)
    assert isinstance(node, Qualifier)
    return node.parsed


def test_range_syntax():
    assert value("width:1024") == RangeList((Interval(1024, True, 1024, True),))
    assert value("width:>1024") == RangeList((Interval(1024, False, None, True),))
    assert value("width:>=1024") == RangeList((Interval(1024, True, None, True),))
    assert value("width:<5") == RangeList((Interval(None, True, 5, False),))
    assert value("width:<=5") == RangeList((Interval(None, True, 5, True),))
    assert value("width:5..10") == RangeList((Interval(5, True, 10, True),))
    assert value("width:5..") == RangeList((Interval(5, True, None, True),))
    assert value("width:..10") == RangeList((Interval(None, True, 10, True),))
    assert value("width:1,5..6,any") == RangeList(
        (Interval(1, True, 1, True), Interval(5, True, 6, True), "any")
    )
    assert value("duration:none") == RangeList(("none",))


def test_units():
    assert value("filesize:500kb").items[0].lo == 512_000
    assert value("filesize:2.5mb").items[0].lo == 2_621_440
    assert value("duration:1:30").items[0].lo == 90_000
    assert value("duration:90").items[0].lo == 90_000
    assert value("duration:2m").items[0].lo == 120_000
    assert value("time:5s..10s").items[0] == Interval(5000, True, 10_000, True)
    assert value("mpixels:1.5").items[0].lo == 1_500_000
    assert value("fps:29.97").items[0].lo == 29_970
    assert value("age:3d").items[0].lo == 3 * 86_400
    assert value("age:6mo").items[0].lo == 180 * 86_400


def test_dates_are_half_open_days_months_years():
    day = value("date:2024-05-01").items[0]
    assert day == Interval(datetime(2024, 5, 1, tzinfo=UTC), True, datetime(2024, 5, 2, tzinfo=UTC), False)
    year = value("date:>2023").items[0]
    assert year == Interval(datetime(2024, 1, 1, tzinfo=UTC), True, None, True)
    before = value("date:<=2024-12").items[0]
    assert before == Interval(None, True, datetime(2025, 1, 1, tzinfo=UTC), False)


def test_ratio_tolerance_and_confidence():
    wide = value("ratio:16:9").items[0]
    assert wide.contains(1778)
    assert wide.contains(1769)
    assert not wide.contains(1760)
    assert value("ratio:1.778").items[0].contains(1778)
    name, ranges = value("ai:cat,>=35%,0.1..0.2")
    assert name == "cat"
    assert ranges.items == (Interval(3500, True, None, True), Interval(1000, True, 2000, True))
    assert value("conf:cat") == ("cat", None)


def test_choice_and_list_qualifiers():
    assert value("rating:sfw,e") == ("g", "s", "e")
    assert value("filetype:jpg,png") == ("jpeg", "png")
    assert value("kind:image,frame") == ("image", "frame")
    assert value("in:curated") == ("curated",)
    assert value("order:filesize_asc") == ("filesize", False)
    assert value("order:random") == ("random", None)
    assert value("limit:50") == 50
    assert value("site:A.Example,b.example") == ["a.example", "b.example"]
    assert value("model:wd@1") == "wd@1"
    assert value("sha256:" + "A" * 64) == "a" * 64


def test_range_contains_matches_sql_semantics():
    assert RangeList(("any",)).contains(3)
    assert not RangeList(("any",)).contains(0)
    assert RangeList(("none",)).contains(None)
    assert RangeList(("none",)).contains(0)
    assert not Interval(1, True, 5, True).contains(None)
    assert Interval(Decimal("1.5"), True, None, True).contains(2)


# Every error code, with its token and position (check 12) ---------------------------------------


@pytest.mark.parametrize(
    ("q", "code", "token", "position"),
    [
        ("(a or b", "search.unbalanced_parenthesis", "(", 0),
        ("a or", "search.dangling_operator", "or", 2),
        ("order:id order:random", "search.singleton_repeated", "order:random", 9),
        ("-limit:5", "search.singleton_negated", "-limit:5", 0),
        ("a or limit:5", "search.singleton_in_or", "limit:5", 5),
        ("width:abc", "search.invalid_value", "abc", 6),
        ("a ((b c) d", "search.unbalanced_parenthesis", "(", 2),
        ("a )", "search.unbalanced_parenthesis", ")", 2),
        ("a ()", "search.empty_group", "()", 2),
        ("( )", "search.empty_group", "( )", 0),
        ("or a", "search.dangling_operator", "or", 0),
        ("a or or b", "search.dangling_operator", "or", 2),
        ("a and", "search.dangling_operator", "and", 2),
        ("and a", "search.dangling_operator", "and", 0),
        ("a -", "search.dangling_operator", "-", 2),
        ("(a or) b", "search.dangling_operator", "or", 3),
        ("a ~", "search.dangling_operator", "~", 2),
        ("--a", "search.unexpected_token", "-", 1),
        ('a "b c', "search.unexpected_token", '"', 2),
        ("a \\", "search.unexpected_token", "\\", 2),
        ("width:100,abc", "search.invalid_value", "abc", 10),
        ("width:", "search.invalid_value", "", 6),
        ("ratio:16:0", "search.invalid_value", "16:0", 6),
        ("limit:500", "search.invalid_value", "500", 6),
        ("order:score", "search.invalid_value", "score", 6),
        ("order:conf", "search.invalid_value", "conf", 6),
        ("in:nowhere", "search.invalid_value", "nowhere", 3),
        ("rating:x", "search.invalid_value", "x", 7),
        ("date:2024-13-01", "search.invalid_value", "2024-13-01", 5),
        ("ai:cat,high", "search.invalid_value", "high", 7),
        ("md5:abc", "search.invalid_value", "md5:abc", 0),
        ("direct:", "search.invalid_value", "direct:", 0),
        ("(a limit:5) or b", "search.singleton_in_or", "limit:5", 3),
        ("-(a in:curated)", "search.singleton_negated", "in:curated", 4),
        ("vocab:x a vocab:y", "search.singleton_repeated", "vocab:y", 10),
        ("order:timestamp", "search.order_requires", "order:timestamp", 0),
        ("order:timestamp -video:3", "search.order_requires", "order:timestamp", 0),
    ],
)
def test_error_codes_point_at_the_token(q, code, token, position):
    err = error(q)
    assert err.code == code, err.message
    assert err.details["token"] == token
    assert err.details["position"] == position
    assert err.details["length"] == len(token)
    assert err.details["hint"]
    assert err.status_code == 400
    assert err.as_dict()["details"]["position"] == position


def test_query_too_long():
    q = "a " * 1001
    err = error(q)
    assert err.code == "search.query_too_long"
    assert err.details["position"] == 2000
    assert err.details["length"] == len(q) - 2000
    assert parse("a" * 2000) is not None


def test_too_many_tag_terms_counts_tags_not_qualifiers():
    q = " ".join(f"t{i}" for i in range(13))
    err = error(q)
    assert err.code == "search.too_many_terms"
    assert err.details["token"] == "t12"
    assert err.details["position"] == q.index("t12")
    assert parse(" ".join(f"t{i}" for i in range(12)) + " width:>1 height:>1 kind:image") is not None
    err = error(" ".join(["ai:a"] * 13))
    assert err.code == "search.too_many_terms"
    assert err.details["position"] == 12 * 5


def test_too_many_terms_in_all():
    q = " ".join(["width:>1"] * 65)
    err = error(q)
    assert err.code == "search.too_many_terms"
    assert err.details["position"] == 64 * 9


def test_nesting_depth():
    assert parse("(" * 8 + "a" + ")" * 8) is not None
    err = error("(" * 9 + "a" + ")" * 9)
    assert err.code == "search.nesting_too_deep"
    assert err.details["position"] == 8
    assert err.details["token"] == "("


def test_limits_follow_settings(settings):
    settings.SEARCH_MAX_TAG_TERMS = 2
    assert error("a b c").code == "search.too_many_terms"


# Property test (check 16) ---------------------------------------------------------------------


def test_any_string_parses_or_fails_with_a_position_inside_it():
    parsed, failures = 0, []
    for q in hostile_queries(300, seed=16):
        try:
            parse(q)
            parsed += 1
        except QueryError as err:
            failures.append((q, err))
    assert parsed
    assert failures  # the alphabet exercises both outcomes
    for q, err in failures:
        assert err.code in CODES
        position, length = err.details["position"], err.details["length"]
        assert 0 <= position <= len(q), (q, err.details)
        assert position + length <= len(q), (q, err.details)
