"""The stdlib serialisers shared by the writer and scripts/relocate.py."""

from __future__ import annotations

import tomllib

import pytest

from apps.training.bundle.portable import json_line, normalise_root, rewrite, toml_text


def test_toml_round_trip_is_byte_identical():
    data = {
        "general": {"a": 'x"y\\z', "b": True, "f": 1e-05, "g": 2.0, "n": 3, "l": [1, 2]},
        "datasets": [{"r": 512, "subsets": [{"image_dir": "C:/x/é"}, {"image_dir": "/y"}]}],
    }
    text = toml_text(data, ["head"])
    parsed = tomllib.loads(text)
    assert parsed == data
    assert toml_text(parsed, ["head"]) == text
    assert "f = 1.0e-05" in text
    assert "g = 2.0" in text
    assert "  [[datasets.subsets]]" in text


def test_json_line_is_compact_and_keeps_unicode():
    assert json_line({"a": "é", "b": 0.1, "c": [1.0]}) == '{"a":"é","b":0.1,"c":[1.0]}'


def test_rewrite_and_roots():
    assert rewrite({"p": ["/a/b", "/ab", "/a"]}, "/a", "/z") == {"p": ["/z/b", "/ab", "/z"]}
    assert normalise_root("C:\\train\\x\\") == "C:/train/x"
    with pytest.raises(ValueError, match="absolute"):
        normalise_root("relative/path")
