"""Bundles GENERATED from database sessions (through the export service, not hand-written
configs) pass the upstream schema checks of apps/training/upstream (docs/export-upstream.md):
kohya dataset and args, OneTrainer concepts, config and samples, for several session shapes.
`scripts/check_bundle_upstream.py` runs the real upstream code on such bundles."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from apps.training import upstream
from apps.training.bundle.kohya import script_for
from apps.training.models import TrainingExport
from apps.training.services import exports
from apps.training.services.textual_inversions import ti_create
from tests.training import factories as f

pytestmark = pytest.mark.django_db

SAMPLES = [{"prompt": "mychar, smile", "negative_prompt": "blurry", "width": 512, "height": 512}]


def _items(start: int) -> list:
    f.typed(["mychar"], "character")
    return f.items(
        [
            ["mychar", "smile", "red_hair", "outdoors"],
            ["mychar", "snow", "hand_on_left_hip"],
            ["mychar", "sitting", "blue_eyes", "long_hair"],
        ],
        size=(96, 64),
        start=start,
    )


def _bundle(session) -> Path:  # type: ignore[no-untyped-def]
    export = exports.export_sync(session=session)
    assert export.status == TrainingExport.Status.SUCCEEDED, (export.error_code, export.findings)
    return Path(export.bundle_path)


def _check_kohya(root: Path, family: str, method: str) -> None:
    dataset = tomllib.loads((root / "kohya/dataset.toml").read_text())
    assert upstream.kohya_dataset_problems(dataset, support_dropout=True) == []
    args = (root / "kohya/args.toml").read_text()
    assert upstream.kohya_args_problems(args, script_for(family, method)) == []


def _check_onetrainer(root: Path, concepts: str = "onetrainer/concepts.json") -> list[dict]:
    loaded = json.loads((root / concepts).read_text())
    assert loaded
    assert upstream.onetrainer_concepts_problems(loaded) == []
    return loaded


def _check_onetrainer_files(root: Path) -> list[dict]:
    concepts = _check_onetrainer(root)
    assert (
        upstream.onetrainer_config_problems(json.loads((root / "onetrainer/config.json").read_text())) == []
    )
    samples = json.loads((root / "onetrainer/samples.json").read_text())
    assert upstream.onetrainer_samples_problems(samples) == []
    return concepts


def test_sd15_lora_bundle_passes_the_upstream_checks() -> None:
    ds = f.dataset("Mychar", _items(0))
    session = f.session(
        [ds],
        targets=["kohya", "onetrainer"],
        shuffle=True,
        type_policies={"general": {"drop_rate": 0.1}},
        samples=SAMPLES,
    )
    root = _bundle(session)
    _check_kohya(root, "sd1", "lora")
    concepts = _check_onetrainer_files(root)
    assert concepts[0]["text"]["tag_dropout_probability"] == pytest.approx(0.1)


def test_sdxl_per_item_mirror_exact_prefix_bundle_passes_the_upstream_checks() -> None:
    ds = f.dataset("Mychar", _items(10))
    session = f.session(
        [ds],
        base_model="sdxl",
        targets=["kohya", "onetrainer"],
        mirror="per_item",
        prefix_mode="exact",
        underscores_to_spaces=True,
        type_policies={"character": {"zone": "prefix"}},
        samples=SAMPLES,
    )
    root = _bundle(session)
    _check_kohya(root, "sdxl", "lora")
    concepts = _check_onetrainer_files(root)
    names = [c["name"] for c in concepts]
    assert any("--k1" in n for n in names), names  # OneTrainer exact prefix: k<K> partitions
    assert any("flip" in n for n in names), names
    assert all(c["text"]["keep_tags_count"] == 1 for c in concepts if "--k1" in c["name"])


def test_regularization_bundle_passes_the_upstream_checks() -> None:
    ds = f.dataset("Mychar", _items(20))
    reg = f.dataset("Girls", f.items([["1girl", "smile"], ["1girl", "sitting"]], start=25))
    session = f.session(
        [{"dataset": ds.pk}, {"dataset": reg.pk, "role": "regularization", "class_tokens": "1girl"}],
        targets=["kohya", "onetrainer"],
    )
    root = _bundle(session)
    _check_kohya(root, "sd1", "lora")
    dataset = tomllib.loads((root / "kohya/dataset.toml").read_text())
    assert any(s.get("is_reg") for s in dataset["datasets"][0]["subsets"])
    _check_onetrainer_files(root)


def test_textual_inversion_bundle_passes_the_upstream_checks() -> None:
    ds = f.dataset("Mychar", _items(30))
    ti = ti_create(
        name="Mychar TI",
        base_model="sd15",
        token="mychrtok",
        init_word="girl",
        dataset=ds.pk,
        targets=["kohya", "onetrainer", "a1111"],
    )
    export = exports.export_sync(textual_inversion=ti)
    assert export.status == TrainingExport.Status.SUCCEEDED, (export.error_code, export.findings)
    folder = Path(export.bundle_path) / "ti" / "mychrtok"
    toml = tomllib.loads((folder / "kohya_dataset.toml").read_text())
    assert upstream.kohya_dataset_problems(toml, support_dropout=False) == []  # TI scripts: no dropout
    _check_onetrainer(folder.parent.parent, "ti/mychrtok/onetrainer_concepts.json")
    config = json.loads((folder / "onetrainer_config.json").read_text())
    assert upstream.onetrainer_config_problems(config) == []
    # A13: images/ holds images only, all R×R; A1111 captions are one line without a newline
    images = sorted((folder / "images").iterdir())
    assert images
    assert all(p.suffix == ".png" for p in images)
    resolution = ti.resolution or 512
    for path in images:
        with Image.open(path) as im:
            assert im.size == (resolution, resolution)
    for txt in (folder / "captioned").glob("*.txt"):
        text = txt.read_text()
        assert text
        assert "\n" not in text


def test_ti_lint_refuses_caption_dropout() -> None:
    """L07: TI scripts reject caption-dropout keys, so a TI plan with dropout is an error."""
    from dataclasses import replace

    from apps.training.services.lint import settings_findings
    from apps.training.services.textual_inversions import ti_plan_build

    ds = f.dataset("Mychar", _items(40))
    ti = ti_create(name="Drop TI", base_model="sd15", token="droptok", init_word="girl", dataset=ds.pk)
    plan = ti_plan_build(ti, freeze=False)
    assert "L07" not in {row["id"] for row in settings_findings(plan)}
    dropping = replace(plan, caption_policy=replace(plan.caption_policy, caption_dropout_rate=0.1))
    assert "L07" in {row["id"] for row in settings_findings(dropping)}
    assert "L07" in {row["id"] for row in settings_findings(plan, {"caption_dropout_rate": 0.1})}
