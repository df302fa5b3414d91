"""The kohya dataset-config and script-option checks (apps/training/upstream/kohya.py) on good
and bad hand-written configs: each failure class has its own fixture (docs/export-upstream.md)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from apps.training.upstream import (
    KOHYA_ARGS,
    KOHYA_FLOAT_ONLY,
    KOHYA_NOT_WRITTEN,
    KOHYA_SANITIZER_FLAGS,
    KOHYA_TI_SCRIPTS,
    kohya_args_problems,
    kohya_dataset_problems,
    kohya_level_keys,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(path: str) -> dict:
    return tomllib.loads((FIXTURES / path).read_text(encoding="utf-8"))


@pytest.fixture
def good() -> dict:
    return load("bundle/kohya/dataset.toml")


def test_the_fixture_bundle_configs_pass(good: dict) -> None:
    assert kohya_dataset_problems(good, support_dropout=True) == []
    ti = load("bundle/ti/mychr/kohya_dataset.toml")
    assert kohya_dataset_problems(ti, support_dropout=False) == []
    args = (FIXTURES / "bundle/kohya/args.toml").read_text(encoding="utf-8")
    assert kohya_args_problems(args, "sdxl_train_network.py") == []


def test_unknown_top_level_key_fails(good: dict) -> None:
    good["dataset"] = [{}]
    assert kohya_dataset_problems(good, support_dropout=True) == [
        "unknown top-level key 'dataset': kohya reads only [general] and [[datasets]] (P12)"
    ]


@pytest.mark.parametrize(
    ("where", "key", "value", "expected"),
    [
        ("general", "caption_extention", ".txt", "[general]: unknown key 'caption_extention'"),
        ("dataset", "image_dir", "/x", "[[datasets]] #1: unknown key 'image_dir'"),
        ("subset", "min_bucket_reso", 256, "[[datasets]] #1 subset #1: unknown key 'min_bucket_reso'"),
        ("subset", "metadata_file", "/m.json", "[[datasets]] #1 subset #1: unknown key 'metadata_file'"),
        ("subset", "conditioning_data_dir", "/m", "subset #1: unknown key 'conditioning_data_dir'"),
    ],
)
def test_unknown_key_per_level_fails(good: dict, where: str, key: str, value: object, expected: str) -> None:
    table = {
        "general": good["general"],
        "dataset": good["datasets"][0],
        "subset": good["datasets"][0]["subsets"][0],
    }[where]
    table[key] = value
    problems = kohya_dataset_problems(good, support_dropout=True)
    assert len(problems) == 1
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("enable_bucket", 1, "a boolean (true/false)"),
        ("enable_bucket", "true", "a boolean (true/false)"),
        ("batch_size", 4.0, "an integer"),
        ("batch_size", True, "an integer"),
        ("resolution", "1024", "an integer or [width, height] integers"),
        ("resolution", [1024, 768, 1], "an integer or [width, height] integers"),
        ("caption_dropout_rate", "0.1", "a number"),
        ("keep_tokens_separator", 3, "a string"),
    ],
)
def test_wrong_kind_fails(good: dict, key: str, value: object, wanted: str) -> None:
    good["datasets"][0][key] = value
    problems = kohya_dataset_problems(good, support_dropout=True)
    assert problems == [f"[[datasets]] #1: '{key}' must be {wanted}, not {value!r}"]


def test_resolution_pair_and_number_keys_accept_ints_and_floats(good: dict) -> None:
    good["datasets"][0]["resolution"] = [1024, 768]
    good["datasets"][0]["caption_dropout_rate"] = 0
    good["datasets"][0]["subsets"][0]["caption_tag_dropout_rate"] = 0.25
    assert kohya_dataset_problems(good, support_dropout=True) == []


@pytest.mark.parametrize("key", ["validation_split", "network_multiplier"])
def test_float_only_keys_reject_ints(good: dict, key: str) -> None:
    assert key in KOHYA_FLOAT_ONLY
    good["datasets"][0][key] = 0
    [problem] = kohya_dataset_problems(good, support_dropout=True)
    assert f"'{key}' must be a float" in problem
    assert "P13" in problem
    good["datasets"][0][key] = 0.0
    assert kohya_dataset_problems(good, support_dropout=True) == []


def test_dropout_keys_fail_on_every_level_without_support_dropout(good: dict) -> None:
    good["general"]["caption_dropout_every_n_epochs"] = 2
    problems = kohya_dataset_problems(good, support_dropout=False)
    assert problems == [
        f"{where}: unknown key '{key}': textual-inversion scripts reject caption-dropout keys (P11)"
        for where, key in [
            ("[general]", "caption_dropout_every_n_epochs"),
            ("[[datasets]] #1", "caption_dropout_rate"),
            ("[[datasets]] #1 subset #1", "caption_tag_dropout_rate"),
        ]
    ]
    assert kohya_dataset_problems(good, support_dropout=True) == []


def test_image_dir_is_required(good: dict) -> None:
    del good["datasets"][0]["subsets"][1]["image_dir"]
    assert kohya_dataset_problems(good, support_dropout=True) == [
        "[[datasets]] #1 subset #2: 'image_dir' is required"
    ]


def test_repeated_image_dir_in_a_block_fails(good: dict) -> None:
    subsets = good["datasets"][0]["subsets"]
    subsets[1]["image_dir"] = subsets[0]["image_dir"]
    [problem] = kohya_dataset_problems(good, support_dropout=True)
    assert "image_dir" in problem
    assert "repeats" in problem
    assert "P15" in problem


def test_resolution_is_required_on_the_block_or_general(good: dict) -> None:
    resolution = good["datasets"][0].pop("resolution")
    assert kohya_dataset_problems(good, support_dropout=True) == [
        "[[datasets]] #1: no 'resolution' here or in [general]: kohya requires one"
    ]
    good["general"]["resolution"] = resolution
    assert kohya_dataset_problems(good, support_dropout=True) == []


def test_empty_configs_train_nothing(good: dict) -> None:
    assert kohya_dataset_problems({"general": {}}, support_dropout=True) == [
        "no [[datasets]]: the config trains nothing"
    ]
    good["datasets"][0]["subsets"] = []
    assert kohya_dataset_problems(good, support_dropout=True) == [
        "[[datasets]] #1: no [[datasets.subsets]]: the block trains nothing"
    ]


def test_tables_must_be_tables(good: dict) -> None:
    assert kohya_dataset_problems({"general": [], "datasets": [1]}, support_dropout=True) == [
        "[general]: must be a table, not list",
        "[[datasets]] #1: must be a table",
    ]


def test_masked_blocks_are_controlnet_style(good: dict) -> None:
    masked = copy.deepcopy(good)
    for subset in masked["datasets"][0]["subsets"]:
        subset["conditioning_data_dir"] = subset["image_dir"].replace("/data/", "/masks/")
    # A masked block holds no regularisation subset (P14).
    [problem] = kohya_dataset_problems(masked, support_dropout=True, masked=True)
    assert "unknown key 'is_reg'" in problem
    assert "P14" in problem
    del masked["datasets"][0]["subsets"][1]["is_reg"]
    assert kohya_dataset_problems(masked, support_dropout=True, masked=True) == []
    # Without --masked_loss the same file fails on every subset.
    assert len(kohya_dataset_problems(masked, support_dropout=True)) == 2


def test_masked_and_unmasked_subsets_do_not_share_a_block(good: dict) -> None:
    good["datasets"][0]["subsets"][0]["conditioning_data_dir"] = "/srv/masks/a"
    [problem] = kohya_dataset_problems(good, support_dropout=True, masked=True)
    assert "unknown key 'conditioning_data_dir'" in problem


def test_level_keys_follow_the_sanitizer() -> None:
    general = kohya_level_keys("general", support_dropout=True)
    subset = kohya_level_keys("subset", support_dropout=True)
    dataset = kohya_level_keys("dataset", support_dropout=False)
    assert {"resolution", "caption_extension", "caption_dropout_rate"} <= set(general)
    assert "image_dir" not in general
    assert "is_reg" not in dataset
    assert {"image_dir", "is_reg", "num_repeats"} <= set(subset)
    assert "resolution" not in subset
    assert not {"caption_dropout_rate", "caption_tag_dropout_rate"} & set(dataset)
    assert "metadata_file" in KOHYA_NOT_WRITTEN
    assert "caption_prefix" in KOHYA_NOT_WRITTEN
    with pytest.raises(ValueError, match="unknown kohya level"):
        kohya_level_keys("datasets.subsets", support_dropout=True)


# --- args.toml (L17) -----------------------------------------------------------------------------


def test_args_unknown_and_repeated_keys_fail() -> None:
    text = (FIXTURES / "bad_bundle/kohya/args.toml").read_text(encoding="utf-8")
    assert kohya_args_problems(text, "train_network.py") == [
        "[train]: 'network_dim' repeats [network]: kohya keeps the last one (P21)",
        "[train]: 'learnin_rate' is not an option of train_network.py",
    ]


def test_args_key_repeated_inside_a_section_fails_as_text() -> None:
    [problem] = kohya_args_problems("[train]\nseed = 1\nseed = 2\n", "train_db.py")
    assert problem.startswith("not valid TOML")


def test_args_accept_parsed_dicts_and_top_level_keys() -> None:
    args = {"seed": 1, "model": {"pretrained_model_name_or_path": "x", "v2": True}}
    assert kohya_args_problems(args, "train_db.py") == []
    assert kohya_args_problems({"a": {"b": {"c": 1}}}, "train_db.py") == [
        "[a]: 'b' is a nested table: kohya reads one level"
    ]


def test_args_options_differ_per_script() -> None:
    lora = {"network": {"network_module": "networks.lora", "network_dim": 8}}
    assert kohya_args_problems(lora, "sdxl_train_network.py") == []
    assert kohya_args_problems(lora, "train_db.py") == [
        "[network]: 'network_module' is not an option of train_db.py",
        "[network]: 'network_dim' is not an option of train_db.py",
    ]
    ti = {"ti": {"token_string": "mychr", "init_word": "woman", "num_vectors_per_token": 4}}
    assert kohya_args_problems(ti, "train_textual_inversion.py") == []
    assert len(kohya_args_problems(ti, "train_network.py")) == 3
    # The TI scripts have no caption-dropout options either.
    for script in KOHYA_TI_SCRIPTS:
        assert "caption_dropout_rate" not in KOHYA_ARGS[script]
        assert KOHYA_SANITIZER_FLAGS[script][2] is False
    # SDXL-only options stay out of the SD 1/2 scripts.
    assert "cache_text_encoder_outputs" in KOHYA_ARGS["sdxl_train_network.py"]
    assert "cache_text_encoder_outputs" not in KOHYA_ARGS["train_network.py"]
    with pytest.raises(ValueError, match="unknown kohya script"):
        kohya_args_problems({}, "train.py")


def test_bad_bundle_dataset_configs_fail() -> None:
    bad = load("bad_bundle/kohya/dataset.toml")
    assert kohya_dataset_problems(bad, support_dropout=True) == [
        "[general]: unknown key 'caption_extention': kohya rejects it (extra keys not allowed)",
        "[[datasets]] #1: 'validation_split' must be a float (write 0.0, not 0), not 0"
        " (kohya accepts only floats here, P13)",
    ]
    ti = load("bad_bundle/ti/mychr/kohya_dataset.toml")
    assert kohya_dataset_problems(ti, support_dropout=False) == [
        "[[datasets]] #1: unknown key 'caption_dropout_rate':"
        " textual-inversion scripts reject caption-dropout keys (P11)"
    ]
