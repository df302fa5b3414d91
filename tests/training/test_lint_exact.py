"""A14 for the lint ids checked on a session's settings (L04, L07, L15, L16, L17) and on the
tagger's labels (L01, L18): each failing fixture, a database session one setting away from a
clean one, reports exactly its id; the clean session reports nothing
(docs/training.md#acceptance-map). Runs on SQLite and on MariaDB."""

from __future__ import annotations

from typing import Any

import pytest

from apps.training.services import lint
from apps.training.services.base_models import base_model_create
from apps.training.services.textual_inversions import ti_create
from tests.training import factories as f

pytestmark = pytest.mark.django_db

# Pictures above sd15's 512² area: the factory's small default would be an L09 warning on each
# (kohya upscales them).
SIZE = (640, 512)


@pytest.fixture
def ds():
    return f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]], size=SIZE))


def _ids(session: Any) -> set[str]:
    found = lint.session_lint(session)
    assert found["job"] is None
    return {row["id"] for row in found["findings"]}


def test_the_clean_session_reports_nothing(ds) -> None:
    assert _ids(f.session([ds], targets=["kohya"])) == set()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"extra_args": {"caption_prefix": "masterpiece"}}, "L04"),
        ({"extra_args": {"caption_suffix": "best quality"}}, "L04"),
        ({"cache_text_encoder_outputs": True}, "L15"),
        ({"cache_latents": True, "crop": "random"}, "L15"),
        ({"masked_loss": True}, "L15"),
        ({"extra_args": {"network_dimm": 8}}, "L17"),
    ],
)
def test_a_settings_fixture_reports_exactly_its_id(ds, fields: dict[str, Any], code: str) -> None:
    assert _ids(f.session([ds], targets=["kohya"], **fields)) == {code}


def test_masks_with_a_regularisation_dataset_report_exactly_l15(ds) -> None:
    reg = f.dataset("Reg", f.items([["x"]], start=9, size=SIZE))
    entries = [ds, {"dataset": reg.pk, "role": "regularization"}]
    assert _ids(f.session(entries, name="Reg clean", targets=["kohya"])) == set()
    assert _ids(f.session(entries, targets=["kohya"], kohya_masks="focus", masked_loss=True)) == {"L15"}


def test_diffusers_without_a_diffusers_model_reports_exactly_l16(ds) -> None:
    base_model_create(
        slug="hub-sd",
        name="Hub SD",
        family="sd1",
        source_kind="hub",
        source_ref="someone/some-model",
        supported_trainers=["kohya", "diffusers"],
    )
    assert _ids(f.session([ds], name="Clean", base_model="hub-sd", targets=["kohya"])) == set()
    assert _ids(f.session([ds], base_model="hub-sd", targets=["kohya", "diffusers"])) == {"L16"}


def test_caption_dropout_in_a_ti_set_reports_exactly_l07() -> None:
    from dataclasses import replace

    from apps.training.services.lint import settings_findings
    from apps.training.services.textual_inversions import ti_plan_build

    images = f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]], size=SIZE))
    ti = ti_create(name="Drop TI", base_model="sd15", token="droptok", init_word="girl", dataset=images.pk)
    plan = ti_plan_build(ti, freeze=False)
    assert settings_findings(plan) == []
    dropping = replace(plan, caption_policy=replace(plan.caption_policy, caption_dropout_rate=0.1))
    assert {row["id"] for row in settings_findings(dropping)} == {"L07"}
    assert {row["id"] for row in settings_findings(plan, {"caption_dropout_rate": 0.1})} == {"L07"}


def test_tagger_label_fixtures_report_exactly_l18_and_l01() -> None:
    """The wd-tagger target: every label on 10 images is clean; one label on a single image is
    exactly L18 (warning); an image whose only tag is of an excluded type is exactly L01."""
    f.typed(["highres"], "meta")  # meta is excluded from labels by default
    common = f.items([["mychar", "smile"]] * 10, size=SIZE, start=20)
    tagger = "wd-tagger-convnext"
    assert _ids(f.session([f.dataset("Ten", common)], name="Ten", base_model=tagger)) == set()
    rare = f.items([["mychar", "smile", "rare_label"]], size=SIZE, start=40)
    assert _ids(f.session([f.dataset("Rare", common + rare)], name="Rare", base_model=tagger)) == {"L18"}
    bare = f.items([["highres"]], size=SIZE, start=50)
    assert _ids(f.session([f.dataset("Bare", common + bare)], name="Bare", base_model=tagger)) == {"L01"}
