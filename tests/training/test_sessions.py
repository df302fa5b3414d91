"""Training session services (docs/training.md#sessions): defaults, every refusal as a 4xx with its
`training.*` code and no rows left behind, and versions. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import math

import pytest

from apps.core.exceptions import ConflictError, DomainError
from apps.training.models import (
    BaseModelProfile,
    CaptionTypePolicy,
    TrainingSession,
    TrainingSessionDataset,
    TrainingSessionVersion,
)
from apps.training.services.sessions import frozen, session_create, session_delete, session_update
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import tag_type
from tests.training import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds():
    return f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]]))


def _refused(code: str, **kwargs: object) -> DomainError:
    before = (
        TrainingSession.objects.count(),
        TrainingSessionDataset.objects.count(),
        CaptionTypePolicy.objects.count(),
        TrainingSessionVersion.objects.count(),
    )
    with pytest.raises(DomainError) as caught:
        session_create(**{"name": "S", "base_model": "sd15", **kwargs})  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value.as_dict()
    assert 400 <= caught.value.status_code < 500
    after = (
        TrainingSession.objects.count(),
        TrainingSessionDataset.objects.count(),
        CaptionTypePolicy.objects.count(),
        TrainingSessionVersion.objects.count(),
    )
    assert after == before, "a refused create left rows behind"
    return caught.value


def test_seeded_profiles_are_there() -> None:
    slugs = set(BaseModelProfile.objects.filter(seeded=True).values_list("slug", flat=True))
    assert {
        "sd15",
        "sd2-768-v",
        "sd2-base",
        "sdxl",
        "sdxl-anime-booru",
        "sd1-furry-e621",
        "wd-tagger-convnext",
    } <= slugs
    assert BaseModelProfile.objects.get(slug="wd-tagger-convnext").kind == "tagger"
    assert BaseModelProfile.objects.get(slug="sdxl-anime-booru").score_tags_prefix


def test_create_fills_defaults_policies_and_version_one(ds) -> None:
    session = f.session([ds])
    assert session.slug == "mychar-lora"
    assert session.version == 1
    assert session.targets == ["kohya", "onetrainer", "diffusers"]
    assert session.target_root == "/srv/train/mychar-lora"
    policies = {p.tag_type.key: p for p in CaptionTypePolicy.objects.filter(session=session)}
    general = tag_type("general")
    assert set(policies) == set(tag_type("general").__class__.objects.values_list("key", flat=True))
    assert policies["general"].zone == general.caption_zone
    assert policies["general"].drop_rate == general.default_dropout / 10000
    assert policies["meta"].zone == "excluded"  # meta is not exported by default
    assert policies["character"].zone == "prefix"
    version = TrainingSessionVersion.objects.get(session=session)
    assert version.number == 1
    assert version.frozen == frozen(session)
    assert version.frozen["datasets"][0]["dataset"] == ds.pk


def test_score_tag_profiles_put_quality_and_rating_first(ds) -> None:
    session = f.session([ds], base_model="sdxl-anime-booru")
    zones = dict(CaptionTypePolicy.objects.filter(session=session).values_list("tag_type__key", "zone"))
    assert zones["quality"] == "prefix"
    assert zones["rating"] == "prefix"


def test_type_policies_given_override_the_defaults(ds) -> None:
    session = f.session([ds], type_policies={"general": {"drop_rate": 0.25, "budget_priority": 3}})
    policy = CaptionTypePolicy.objects.get(session=session, tag_type__key="general")
    assert (policy.drop_rate, policy.budget_priority) == (0.25, 3)


def test_no_datasets_refused() -> None:
    _refused("training.no_datasets", datasets=[])
    _refused("training.no_datasets", datasets=None)


def test_empty_dataset_refused() -> None:
    empty = f.dataset("Empty", [])
    err = _refused("training.empty_dataset", datasets=[{"dataset": empty.pk}])
    assert "empty" in err.message


def test_unknown_dataset_refused() -> None:
    _refused("training.unknown_dataset", datasets=[{"dataset": 999999}])


def test_dataset_whose_requirements_undercut_the_model_refused() -> None:
    small = f.dataset("Icons", f.items([["icon"]], size=(32, 32)), requirements={"max_width": 128})
    err = _refused("training.dataset_incompatible", datasets=[{"dataset": small.pk}])
    assert "max_width" in err.message


def test_mapping_profile_into_another_vocabulary_refused(ds) -> None:
    e621, other = vocabulary_make("e621"), vocabulary_make("other")
    profile = profile_make(other, [set_make(other, other)])
    BaseModelProfile.objects.filter(slug="sd1-furry-e621").update(vocabulary=e621)
    err = _refused(
        "training.vocabulary_mismatch",
        base_model="sd1-furry-e621",
        datasets=[{"dataset": ds.pk}],
        mapping_profile=profile.slug,
    )
    assert "mapping_profile" in err.details["fields"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"resolution": 512, "bucket_min": 640}, "training.bad_buckets"),
        ({"bucket_step": 48}, "training.bad_buckets"),
        ({"resolution": 500}, "training.bad_buckets"),
        ({"learning_rate": math.nan}, "training.not_finite"),
        ({"learning_rate": math.inf}, "training.not_finite"),
        ({"max_aspect": -math.inf}, "training.not_finite"),
        ({"caption_dropout_rate": 1.0}, "training.bad_rate"),
        ({"caption_dropout_rate": -0.1}, "training.bad_rate"),
        ({"targets": ["kohya", "simpletuner"]}, "training.unknown_target"),
        ({"targets": []}, "training.unknown_target"),
        ({"targets": ["a1111"]}, "training.unknown_target"),
        ({"max_tokens": 100}, "training.bad_max_tokens"),
        ({"slug": "Bad Slug"}, "training.bad_slug"),
        ({"slug": "a--b"}, "training.bad_slug"),
        ({"target_root": "relative/path"}, "training.invalid"),
        ({"target_root": "C:\\train"}, "training.invalid"),
        ({"alpha_background": "white"}, "training.invalid"),
        ({"mirror": "sometimes"}, "training.invalid"),
        ({"type_policies": {"nosuchtype": {"zone": "flex"}}}, "training.unknown_type"),
        ({"type_policies": {"general": {"drop_rate": 1.5}}}, "training.bad_rate"),
        ({"type_policies": {"general": {"whole_drop_rate": math.nan}}}, "training.not_finite"),
        ({"type_policies": {"general": {"zone": "middle"}}}, "training.invalid"),
        ({"samples": [{"prompt": "x", "width": 100}]}, "training.invalid"),
        ({"extra_args": {"network_dim": math.nan}}, "training.not_finite"),
    ],
)
def test_bad_settings_refused_with_their_code(ds, fields: dict, code: str) -> None:
    _refused(code, datasets=[{"dataset": ds.pk}], **fields)


def test_diffusers_on_a_profile_without_it_refused(ds) -> None:
    err = _refused(
        "training.unsupported_target",
        base_model="sdxl-anime-booru",
        datasets=[{"dataset": ds.pk}],
        targets=["kohya", "diffusers"],
    )
    assert "diffusers" in err.message


def test_tagger_profiles_take_the_tagger_target_alone(ds) -> None:
    for targets in (["kohya"], ["wd-tagger", "kohya"]):
        _refused(
            "training.unsupported_target",
            base_model="wd-tagger-convnext",
            datasets=[{"dataset": ds.pk}],
            targets=targets,
        )
    _refused("training.unsupported_target", datasets=[{"dataset": ds.pk}], targets=["wd-tagger"])


def test_dataset_entry_rules(ds) -> None:
    other = f.dataset("Other", f.items([["x"]], start=10))
    _refused("training.duplicate_dataset", datasets=[{"dataset": ds.pk}, {"dataset": ds.pk}])
    _refused("training.invalid", datasets=[{"dataset": ds.pk, "loss_weight": 0}])
    _refused("training.not_finite", datasets=[{"dataset": ds.pk, "loss_weight": math.nan}])
    _refused(
        "training.bad_rate", datasets=[{"dataset": ds.pk, "overrides": {"types.general.drop_rate": 2.0}}]
    )
    _refused("training.invalid", datasets=[{"dataset": ds.pk, "group": 1}])
    _refused("training.bad_snapshot", datasets=[{"dataset": ds.pk, "snapshot": 424242}])
    from apps.datasets.services.snapshots import snapshot_create

    foreign = snapshot_create(dataset=other)
    _refused("training.bad_snapshot", datasets=[{"dataset": ds.pk, "snapshot": foreign.pk}])


def test_duplicate_name_is_a_conflict(ds) -> None:
    f.session([ds])
    with pytest.raises(ConflictError) as caught:
        f.session([ds])
    assert caught.value.code == "training.duplicate"
    assert TrainingSession.objects.count() == 1


def test_update_bumps_the_version_only_when_settings_change(ds) -> None:
    session = f.session([ds])
    same = session_update(session=session, epochs=session.epochs)
    assert same.version == 1
    changed = session_update(session=session, epochs=20, type_policies={"general": {"drop_rate": 0.2}})
    assert changed.version == 2
    versions = {v.number: v.frozen for v in TrainingSessionVersion.objects.filter(session=session)}
    assert versions[1]["epochs"] == 10
    assert versions[2]["epochs"] == 20
    assert versions[2]["type_policies"]["general"]["drop_rate"] == 0.2
    again = session_update(session=changed, datasets=[{"dataset": ds.pk, "repeats": 3}])
    assert again.version == 3
    assert TrainingSessionDataset.objects.get(session=session).repeats == 3


def test_refused_update_changes_nothing(ds) -> None:
    session = f.session([ds], epochs=7)
    with pytest.raises(DomainError) as caught:
        session_update(session=session, epochs=8, caption_dropout_rate=1.0)
    assert caught.value.code == "training.bad_rate"
    session.refresh_from_db()
    assert (session.epochs, session.version) == (7, 1)
    with pytest.raises(DomainError):
        session_update(session=session, datasets=[{"dataset": 999999}])
    assert TrainingSessionDataset.objects.filter(session=session).count() == 1
    assert TrainingSessionVersion.objects.filter(session=session).count() == 1


def test_delete_removes_children_and_versions(ds) -> None:
    session = f.session([ds])
    session_delete(session=session)
    assert not TrainingSession.objects.exists()
    assert not TrainingSessionVersion.objects.exists()
    assert not CaptionTypePolicy.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"types.general.dropp_rate": 0.1},
        {"types.nosuchtype.drop_rate": 0.1},
        {"shuffle": "yes"},
        {"seed": 3},
        {"types.general.zone": "middle"},
        {"item_weights": {"12": 0}},
        {"item_weights": ["12"]},
    ],
)
def test_dataset_overrides_are_checked(ds, overrides: dict) -> None:
    err = _refused(err_code(overrides), datasets=[{"dataset": ds.pk, "overrides": overrides}])
    assert "overrides" in err.message


def err_code(overrides: dict) -> str:
    return "training.invalid" if "item_weights" in overrides else "training.bad_override"


def test_valid_overrides_are_kept(ds) -> None:
    session = f.session([{"dataset": ds.pk, "overrides": {"types.general.drop_rate": 0.3, "shuffle": False}}])
    entry = TrainingSessionDataset.objects.get(session=session)
    assert entry.overrides == {"types.general.drop_rate": 0.3, "shuffle": False}
