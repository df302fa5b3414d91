"""The OneTrainer concept, train and sample checks (apps/training/upstream/onetrainer.py) on good
and bad hand-written JSON: each failure class has its own fixture (docs/export-upstream.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from apps.training.upstream import (
    ONETRAINER_CONCEPT_DEFAULTS,
    ONETRAINER_CONCEPT_IMAGE_DEFAULTS,
    ONETRAINER_CONCEPT_IMAGE_KEYS,
    ONETRAINER_CONCEPT_KEYS,
    ONETRAINER_CONCEPT_TEXT_DEFAULTS,
    ONETRAINER_CONCEPT_TEXT_KEYS,
    ONETRAINER_ENUMS,
    ONETRAINER_MODEL_TYPE,
    ONETRAINER_TRAIN_KEYS,
    onetrainer_concepts_problems,
    onetrainer_config_problems,
    onetrainer_samples_problems,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(path: str) -> object:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


@pytest.fixture
def concepts() -> list:
    value = load("bundle/onetrainer/concepts.json")
    assert isinstance(value, list)
    return value


@pytest.fixture
def config() -> dict:
    value = load("bundle/onetrainer/config.json")
    assert isinstance(value, dict)
    return value


def test_the_fixture_bundle_files_pass(concepts: list, config: dict) -> None:
    assert onetrainer_concepts_problems(concepts) == []
    assert onetrainer_concepts_problems(load("bundle/ti/mychr/onetrainer_concepts.json")) == []
    assert onetrainer_config_problems(config) == []
    assert onetrainer_config_problems(load("bundle/ti/mychr/onetrainer_config.json")) == []
    assert onetrainer_samples_problems(load("bundle/onetrainer/samples.json")) == []


def test_a_concept_of_defaults_has_every_key_in_upstream_order() -> None:
    concept = {
        "__version": 2,
        "image": {"__version": 0, **ONETRAINER_CONCEPT_IMAGE_DEFAULTS},
        "text": {"__version": 0, **ONETRAINER_CONCEPT_TEXT_DEFAULTS},
        **ONETRAINER_CONCEPT_DEFAULTS,
        "seed": 7,
    }
    assert list(concept) == ["__version", *ONETRAINER_CONCEPT_KEYS]
    assert list(concept["image"]) == ["__version", *ONETRAINER_CONCEPT_IMAGE_KEYS]
    assert list(concept["text"]) == ["__version", *ONETRAINER_CONCEPT_TEXT_KEYS]
    assert onetrainer_concepts_problems([concept]) == []
    # to_dict() order: the nested parts come first, right after __version.
    assert list(ONETRAINER_CONCEPT_KEYS)[:3] == ["image", "text", "name"]


def test_missing_key_fails(concepts: list) -> None:
    del concepts[0]["seed"]
    del concepts[1]["text"]["keep_tags_count"]
    assert onetrainer_concepts_problems(concepts) == [
        "concept #1: missing keys ['seed']",
        "concept #2 text: missing keys ['keep_tags_count']",
    ]


def test_keys_out_of_order_fail(concepts: list) -> None:
    concept = concepts[0]
    concepts[0] = {key: concept[key] for key in reversed(concept)}
    [problem] = onetrainer_concepts_problems(concepts)
    assert problem.startswith("concept #1: keys out of order: write them as ['__version', 'image'")


def test_bad_bundle_concept_fails_on_order_bool_enum_and_float() -> None:
    assert onetrainer_concepts_problems(load("bad_bundle/onetrainer/concepts.json")) == [
        "concept #1: keys out of order: write them as " + str(["__version", *ONETRAINER_CONCEPT_KEYS]),
        "concept #1: 'enabled' must be a boolean (true/false), not 'true'",
        "concept #1: 'type' is 'REGULARIZATION', not one of ['PRIOR_PREDICTION', 'STANDARD', 'VALIDATION']",
        "concept #1: 'balancing' must be a float (write 0.0, not 0), not 2",
    ]


@pytest.mark.parametrize(
    ("part", "key", "value", "expected"),
    [
        (None, "enabled", 1, "'enabled' must be a boolean (true/false), not 1"),
        (None, "seed", 1.5, "'seed' must be an integer, not 1.5"),
        (None, "seed", True, "'seed' must be an integer, not True"),
        (None, "loss_weight", 1, "'loss_weight' must be a float (write 0.0, not 0), not 1"),
        (None, "path", None, "'path' must be a string, not None"),
        (None, "concept_stats", [], "'concept_stats' must be a table (object), not []"),
        (None, "balancing_strategy", "repeats", "'balancing_strategy' is 'repeats', not one of"),
        ("image", "enable_random_flip", "false", "'enable_random_flip' must be a boolean"),
        ("image", "resolution_override", 512, "'resolution_override' must be a string, not 512"),
        ("text", "tag_dropout_mode", "WEIGHTED", "'tag_dropout_mode' is 'WEIGHTED', not one of"),
        ("text", "tag_dropout_special_tags_mode", "ALLOW", "is 'ALLOW', not one of"),
        ("text", "prompt_source", "txt", "'prompt_source' is 'txt', not one of"),
        ("text", "tag_dropout_probability", 0, "must be a float"),
        ("text", "shuffle", True, "unknown key 'shuffle' (OneTrainer ignores it)"),
    ],
)
def test_wrong_kind_or_value_fails(
    concepts: list, part: str | None, key: str, value: object, expected: str
) -> None:
    target = concepts[1] if part is None else concepts[1][part]
    target[key] = value
    [problem] = onetrainer_concepts_problems(concepts)
    prefix = "concept #2: " if part is None else f"concept #2 {part}: "
    assert problem.startswith(prefix)
    assert expected in problem


@pytest.mark.parametrize(
    ("part", "version", "where"), [(None, 1, "concept #1"), ("image", 2, "concept #1 image")]
)
def test_wrong_version_fails(concepts: list, part: str | None, version: int, where: str) -> None:
    target = concepts[0] if part is None else concepts[0][part]
    target["__version"] = version
    [problem] = onetrainer_concepts_problems(concepts)
    assert problem.startswith(f"{where}: '__version' must be")
    assert "P31" in problem


def test_enum_members_listed_for_every_enum_key_we_check() -> None:
    enum_keys = [
        key
        for keys in (ONETRAINER_CONCEPT_KEYS, ONETRAINER_CONCEPT_TEXT_KEYS)
        for key, kind in keys.items()
        if kind == "enum"
    ]
    assert all(key in ONETRAINER_ENUMS for key in enum_keys)
    assert set(ONETRAINER_MODEL_TYPE.values()) <= ONETRAINER_ENUMS["model_type"]
    assert {"LORA", "FINE_TUNE", "EMBEDDING"} <= ONETRAINER_ENUMS["training_method"]


def test_concepts_must_be_a_list_of_objects() -> None:
    assert onetrainer_concepts_problems({"concepts": []}) == ["concepts.json must be a list of concepts"]
    assert onetrainer_concepts_problems([[]]) == ["concept #1: must be an object"]


# --- config.json ------------------------------------------------------------------------------


def test_config_is_partial_but_versioned(config: dict) -> None:
    assert onetrainer_config_problems({"__version": 11}) == []
    del config["__version"]
    [problem] = onetrainer_config_problems(config)
    assert problem.startswith("config.json: '__version' must be 11, not None")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("model_type", "SDXL", "'model_type' is 'SDXL', not one of"),
        ("training_method", "lora", "'training_method' is 'lora', not one of"),
        ("resolution", 1024, "'resolution' must be a string, not 1024"),
        ("latent_caching", "yes", "'latent_caching' must be a boolean"),
        ("dropout_probability", 0, "'dropout_probability' must be a float"),
        ("epochs", 10.0, "'epochs' must be an integer"),
        ("resolutoin", "1024", "unknown key 'resolutoin' (OneTrainer ignores it)"),
    ],
)
def test_config_wrong_key_kind_or_value_fails(config: dict, key: str, value: object, expected: str) -> None:
    config[key] = value
    [problem] = onetrainer_config_problems(config)
    assert expected in problem


def test_config_embedding_is_checked() -> None:
    ti = load("bundle/ti/mychr/onetrainer_config.json")
    assert isinstance(ti, dict)
    ti["embedding"]["token_count"] = "4"
    ti["embedding"]["placeholder_token"] = "mychr"
    assert onetrainer_config_problems(ti) == [
        "config.json embedding: 'token_count' must be an integer, not '4'",
        "config.json embedding: unknown key 'placeholder_token' (OneTrainer ignores it)",
    ]
    ti["embedding"]["token_count"] = None  # nullable upstream
    del ti["embedding"]["placeholder_token"]
    assert onetrainer_config_problems(ti) == []


def test_bad_bundle_config_fails() -> None:
    problems = onetrainer_config_problems(load("bad_bundle/onetrainer/config.json"))
    assert len(problems) == 4
    assert problems[0].startswith("config.json: '__version' must be 11, not None")
    assert problems[1].startswith("config.json: 'model_type' is 'SDXL', not one of ['ANIMA', 'CHROMA_1'")
    assert problems[2:] == [
        "config.json: 'resolution' must be a string, not 1024",
        "config.json: 'latent_caching' must be a boolean (true/false), not 'yes'",
    ]


def test_train_keys_hold_what_the_export_writes() -> None:
    written = {
        "model_type": "enum",
        "training_method": "enum",
        "base_model_name": "str",
        "resolution": "str",
        "aspect_ratio_bucketing": "bool",
        "latent_caching": "bool",
        "concept_file_name": "str",
        "sample_definition_file_name": "str",
        "workspace_dir": "str",
        "cache_dir": "str",
        "output_model_destination": "str",
        "dropout_probability": "float",
        "embedding": "config",
    }
    assert {key: ONETRAINER_TRAIN_KEYS[key] for key in written} == written


# --- samples.json -----------------------------------------------------------------------------


def test_samples_wrong_kind_version_and_unknown_key_fail() -> None:
    samples = load("bundle/onetrainer/samples.json")
    assert isinstance(samples, list)
    bad = [copy.deepcopy(samples[0]) for _ in range(3)]
    bad[0]["cfg_scale"] = 7
    bad[1]["__version"] = 1
    bad[2]["steps"] = 30
    problems = onetrainer_samples_problems(bad)
    assert len(problems) == 3
    assert problems[0] == "sample #1: 'cfg_scale' must be a float (write 0.0, not 0), not 7"
    assert problems[1].startswith("sample #2: '__version' must be 0, not 1")
    assert problems[2] == "sample #3: unknown key 'steps' (OneTrainer ignores it)"
    assert onetrainer_samples_problems({}) == ["samples.json must be a list"]
