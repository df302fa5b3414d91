"""plan_build (docs/training.md#plan): entries, zones and texts from real items, descriptions,
lineage, snapshots (pinned, frozen, drift, deleted items), partitions (§3.2), repeats (§8.4),
balancing and versions. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import re

import pytest

from apps.datasets.models import Snapshot
from apps.datasets.services import members_edit
from apps.datasets.services.snapshots import snapshot_create
from apps.tags.models import Description
from apps.training.logic import mirror
from apps.training.plan import Plan
from apps.training.services.plan import plan_build
from apps.training.services.sessions import session_update
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import tagger_set_make
from tests.training import factories as f

pytestmark = pytest.mark.django_db


def _items(plan: Plan) -> list:
    return list(plan.items())


def _by_media(plan: Plan) -> dict[int, object]:
    return {item.lineage.media_id: item for item in _items(plan) if item.mirror_of is None}


def test_entries_carry_types_zones_and_policy_text() -> None:
    f.typed(["mychar"], "character")
    f.typed(["highres"], "meta")
    (item,) = f.items([["mychar", "red_scarf", "highres"]])
    ds = f.dataset("Mychar", [item])
    plan = plan_build(f.session([ds], underscores_to_spaces=True), freeze=False)
    (got,) = _items(plan)
    entries = {e.text: e for e in got.caption.entries}
    assert set(entries) == {"mychar", "red scarf"}  # meta is excluded by default
    assert entries["mychar"].type == "character"
    assert entries["red scarf"].key == "t:red scarf"
    assert plan.caption_policy.types["character"].zone == "prefix"
    assert plan.caption_policy.types["meta"].zone == "excluded"
    kept = plan_build(f.session([ds], name="Kept"), freeze=False)
    assert {e.text for e in _items(kept)[0].caption.entries} == {"mychar", "red_scarf"}  # sd15: not booru


def test_atomic_types_become_one_group_entry() -> None:
    (item,) = f.items([["scarf", "mittens"]])
    ds = f.dataset("Winter", [item])
    session = f.session([ds], type_policies={"general": {"atomic": True}})
    (got,) = _items(plan_build(session, freeze=False))
    (group,) = got.caption.entries
    assert group.members == ("mittens", "scarf")
    assert group.text == "mittens, scarf"
    assert group.key == "g:mittens, scarf"


def test_tagger_confidence_orders_entries() -> None:
    (item,) = f.items([[]])
    tagger_set_make(item, {"sky": 9000, "cloud": 5000, "tree": 7000})
    ds = f.dataset("Sky", [item])
    (got,) = _items(plan_build(f.session([ds]), freeze=False))
    assert [e.text for e in got.caption.entries] == ["sky", "tree", "cloud"]


def test_descriptions_grouped_by_set_and_filtered_by_weights() -> None:
    (item,) = f.items([["mychar"]])
    Description.objects.create(media_item=item, kind="whole", text="a girl\nin the snow")
    Description.objects.create(media_item=item, kind="custom", label="short", text="girl, snow")
    Description.objects.create(media_item=item, kind="custom", label="short", text="snowy girl")
    ds = f.dataset("Mychar", [item])
    (got,) = _items(plan_build(f.session([ds]), freeze=False))
    assert got.caption.descriptions == {
        "short": ("girl, snow", "snowy girl"),
        "whole": ("a girl in the snow",),
    }
    weighted = plan_build(
        f.session([ds], name="W", description_weights={"short": 2, "whole": 0}), freeze=False
    )
    assert weighted.caption_policy.alternates == {"short": 2}
    assert _items(weighted)[0].caption.descriptions == {"short": ("girl, snow", "snowy girl")}


def test_item_fields_and_lineage() -> None:
    (item,) = f.items([["mychar"]])
    ds = f.dataset("Mychar", [item])
    plan = plan_build(f.session([ds]), freeze=False)
    (got,) = _items(plan)
    assert re.fullmatch(r"i[0-9a-f]{12}", got.id)
    assert got.id == "i" + item.sha256[:12]
    assert (got.width, got.height, got.format, got.mode) == (64, 48, "PNG", "RGB")
    assert got.lineage.media_id == item.pk
    assert got.lineage.original_name == "pic0.png"
    assert got.storage_key == item.storage_key
    with plan.open_original(got.storage_key) as handle:
        import hashlib

        assert hashlib.sha256(handle.read()).hexdigest() == got.sha256


def test_plan_header_from_the_version() -> None:
    ds = f.dataset("Mychar", f.items([["mychar"]]))
    session = f.session([ds], base_model="sdxl", seed=77, mirror="per_item", crop="random")
    plan = plan_build(session, freeze=False)
    assert plan.session_id == f"sess-{session.pk}"
    assert plan.session_version == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", plan.created)
    assert plan.seed == 77
    assert plan.base_model.family == "sdxl"
    assert plan.base_model.diffusers_ref == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (plan.image_policy.resolution, plan.image_policy.bucket_min, plan.image_policy.bucket_max) == (
        1024,
        512,
        2048,
    )
    assert plan.image_policy.crop == "random"
    assert plan.targets == ["kohya", "onetrainer", "diffusers"]
    assert plan.export.target_root == "/srv/train/mychar-lora"
    assert plan.caption_policy.max_tokens == 75


def test_export_freezes_a_snapshot_and_later_members_stay_out() -> None:
    first, later = f.items([["a"], ["b"]])
    ds = f.dataset("D", [first])
    session = f.session([ds])
    plan = plan_build(session)
    assert Snapshot.objects.filter(dataset=ds).count() == 1
    assert plan.datasets[0].snapshot == 1
    assert any("snapshot #1 frozen" in note for note in plan.notes)
    members_edit(owner=ds, action="add", item_ids=[later.pk])
    assert [i.lineage.media_id for i in _items(plan)] == [first.pk]  # the plan reads its snapshot


def test_a_pinned_snapshot_is_used_not_the_live_members() -> None:
    first, later = f.items([["a"], ["b"]])
    ds = f.dataset("D", [first])
    pinned = snapshot_create(dataset=ds)
    members_edit(owner=ds, action="add", item_ids=[later.pk])
    session = f.session([{"dataset": ds.pk, "snapshot": pinned.pk}])
    plan = plan_build(session)
    assert Snapshot.objects.filter(dataset=ds).count() == 1  # nothing frozen: one was pinned
    assert [i.lineage.media_id for i in _items(plan)] == [first.pk]
    live = plan_build(f.session([ds], name="Live"), freeze=False)
    assert live.item_count == 2


def test_retagged_items_are_flagged_and_deleted_items_left_out() -> None:
    kept, retagged, deleted = f.items([["a"], ["b"], ["c"]])
    ds = f.dataset("D", [kept, retagged, deleted])
    pinned = snapshot_create(dataset=ds)
    tagger_set_make(retagged, {"newtag": 9000})
    deleted.delete()
    plan = plan_build(f.session([{"dataset": ds.pk, "snapshot": pinned.pk}]))
    got = _by_media(plan)
    assert set(got) == {kept.pk, retagged.pk}
    assert got[retagged.pk].tags_drifted  # type: ignore[attr-defined]
    assert not got[kept.pk].tags_drifted  # type: ignore[attr-defined]
    assert "newtag" in {e.text for e in got[retagged.pk].caption.entries}  # type: ignore[attr-defined]
    assert any("gone from the library" in note for note in plan.notes)
    assert any("retagged" in note for note in plan.notes)


def test_items_are_sorted_by_partition_and_id_and_stream_again(settings) -> None:
    settings.BAGGINTAG_TRAINING_PLAN_CHUNK = 2  # several chunks per partition
    f.typed(["solo"], "character")
    f.typed(["duo", "pair"], "character")
    tag_lists = [["solo"], ["duo", "pair"], ["solo"], ["duo", "pair"], ["solo"]]
    ds = f.dataset("Mix", f.items(tag_lists))
    plan = plan_build(f.session([ds], targets=["kohya", "onetrainer"]), freeze=False)
    got = _items(plan)
    keys = [(i.partition, i.id) for i in got]
    assert keys == sorted(keys)
    assert [p.id for p in plan.partitions] == ["mix--k1", "mix--k2"]
    assert [p.item_count for p in plan.partitions] == [3, 2]
    assert [p.keep for p in plan.partitions] == [1, 2]
    assert plan.item_count == len(got) == 5
    assert [(i.partition, i.id) for i in plan.items()] == keys


def test_merged_prefix_mode_and_no_onetrainer_mean_no_keep_partitions() -> None:
    f.typed(["duo", "pair"], "character")
    ds = f.dataset("Mix", f.items([["duo", "pair"]]))
    merged = plan_build(f.session([ds], prefix_mode="merged"), freeze=False)
    assert [p.id for p in merged.partitions] == ["mix--all"]  # k<K> only in exact mode (§3.2)
    kohya = plan_build(f.session([ds], name="K", targets=["kohya"]), freeze=False)
    assert [p.id for p in kohya.partitions] == ["mix--all"]
    assert kohya.partitions[0].keep is None


def test_regularisation_and_repeat_partitions() -> None:
    a, b, c = f.items([["x"], ["y"], ["z"]])
    train = f.dataset("Mychar", [a, b])
    reg = f.dataset("Reg Girls", [c])
    session = f.session(
        [
            {"dataset": train.pk, "repeats": 2, "overrides": {"item_weights": {str(a.pk): 2.0}}},
            {"dataset": reg.pk, "role": "regularization", "class_tokens": "1girl"},
        ],
        targets=["kohya"],
    )
    plan = plan_build(session, freeze=False)
    parts = {p.id: p for p in plan.partitions}
    assert set(parts) == {"mychar--r2", "mychar--r4", "reg-girls--reg"}
    assert parts["mychar--r4"].repeats == 4
    assert parts["mychar--r2"].repeats == 2
    assert parts["reg-girls--reg"].role == "regularization"
    assert parts["reg-girls--reg"].class_tokens == "1girl"
    got = _by_media(plan)
    assert got[a.pk].repeats == 4  # type: ignore[attr-defined]
    assert got[a.pk].weight == 2.0  # type: ignore[attr-defined]
    assert got[b.pk].partition == "mychar--r2"  # type: ignore[attr-defined]


def test_one_repeat_count_gives_no_r_component() -> None:
    ds = f.dataset("Mychar", f.items([["x"], ["y"]]))
    session = f.session(
        [{"dataset": ds.pk, "repeats": 3, "overrides": {"item_weights": {"1": 1.0}}}], targets=["kohya"]
    )
    plan = plan_build(session, freeze=False)
    assert [(p.id, p.repeats) for p in plan.partitions] == [("mychar--all", 3)]


def test_equalize_balances_repeats_by_image_count() -> None:
    small = f.dataset("Small", f.items([["x"]]))
    big = f.dataset("Big", f.items([["y"], ["z"], ["w"]], start=5))
    session = f.session(
        [{"dataset": small.pk, "balance": "equalize"}, {"dataset": big.pk, "balance": "equalize"}],
        targets=["kohya"],
    )
    plan = plan_build(session, freeze=False)
    assert {d.id: d.repeats for d in plan.datasets} == {"small": 3, "big": 1}
    assert {p.id: p.repeats for p in plan.partitions} == {"small--all": 3, "big--all": 1}


def test_per_item_mirroring_partitions_flip_by_default() -> None:
    ds = f.dataset("Mychar", f.items([["smile"]]))
    plan = plan_build(f.session([ds], mirror="per_item", targets=["kohya"]), freeze=False)
    (partition,) = plan.partitions
    assert (partition.id, partition.flip) == ("mychar--flip", True)


def test_mirror_blocked_and_directional_items() -> None:
    plain, directional = f.items([["smile"], ["hand_on_left_hip"]])
    ds = f.dataset("Mychar", [plain, directional])
    plan = plan_build(
        f.session([ds], mirror="per_item", targets=["kohya"], underscores_to_spaces=True), freeze=False
    )
    got = _items(plan)
    copies = [i for i in got if i.mirror_of is not None]
    assert mirror.swap_text("hand on left hip") == "hand on right hip"
    (copy,) = copies
    assert copy.id == copy.mirror_of + "-m"
    assert copy.partition.endswith("--noflip")
    assert "hand on right hip" in {e.text for e in copy.caption.entries}
    assert sum(p.item_count for p in plan.partitions) == len(got)


def test_an_export_of_an_old_version_uses_its_settings() -> None:
    ds = f.dataset("Mychar", f.items([["x"]]))
    session = f.session([{"dataset": ds.pk, "repeats": 2}], targets=["kohya"])
    session_update(session=session, datasets=[{"dataset": ds.pk, "repeats": 5}], epochs=3)
    assert plan_build(session, version=1, freeze=False).partitions[0].repeats == 2
    latest = plan_build(session, freeze=False)
    assert latest.partitions[0].repeats == 5
    assert latest.method.epochs == 3
    assert latest.session_version == 2


def test_mapping_profile_names_tags_in_the_target_vocabulary() -> None:
    from apps.tags.services.names import vocabulary_default

    (item,) = f.items([["smile", "sky"]])
    target = vocabulary_make("e621")
    profile = profile_make(
        target, [set_make(vocabulary_default(), target, [("smile", "happy"), ("sky", "blue_sky")])]
    )
    ds = f.dataset("Mychar", [item])
    session = f.session([ds], mapping_profile=profile.slug, underscores_to_spaces=True)
    (got,) = _items(plan_build(session, freeze=False))
    assert {e.text for e in got.caption.entries} == {"happy", "blue sky"}


def test_dataset_overrides_apply_to_their_items_only() -> None:
    f.typed(["mychar"], "character")
    plain = f.dataset("Plain", f.items([["mychar", "smile"]]))
    moved = f.dataset("Moved", f.items([["mychar", "snow"]], start=5))
    session = f.session(
        [{"dataset": plain.pk}, {"dataset": moved.pk, "overrides": {"types.character.zone": "flex"}}],
        targets=["onetrainer"],
    )
    plan = plan_build(session, freeze=False)
    assert {p.id for p in plan.partitions} == {"plain--k1", "moved--k0"}


# --- bounded samples for pages (docs/training.md#preview) ------------------------------------------


def _preview_queries(n_items: int, start: int, settings) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.training.services.preview import session_preview

    settings.BAGGINTAG_TRAINING_PLAN_CHUNK = 2
    ds = f.dataset(f"Big{n_items}", f.items([["mychar", f"t{n}"] for n in range(n_items)], start=start))
    session = f.session([ds], name=f"Preview {n_items}", targets=["kohya", "onetrainer"])
    with CaptureQueriesContext(connection) as queries:
        data = session_preview(session, 2)
    return len(queries), data


def test_preview_reads_a_bounded_sample_whatever_the_size(settings) -> None:
    small, _small_data = _preview_queries(3, 100, settings)
    big, big_data = _preview_queries(12, 200, settings)
    assert big == small  # no query per item or per chunk of the whole dataset
    assert len(big_data["items"]) == 2
    assert big_data["item_count"] == 12  # the members count, not the sample's
    assert sum(p["item_count"] for p in big_data["partitions"]) == 2


def test_limited_plan_yields_only_its_sample() -> None:
    ds = f.dataset("Mychar", f.items([["mychar", f"t{n}"] for n in range(7)], start=300))
    session = f.session([ds], targets=["kohya"])
    sample = plan_build(session, freeze=False, limit=3)
    assert sample.sampled
    assert sample.item_count == 7
    whole = plan_build(session, freeze=False)
    assert not whole.sampled
    assert [i.id for i in sample.items()] == [i.id for i in whole.items()][:3]
    complete = plan_build(session, freeze=False, limit=50)
    assert not complete.sampled
    assert [i.id for i in complete.items()] == [i.id for i in whole.items()]
