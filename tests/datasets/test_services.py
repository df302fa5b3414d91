"""Datasets: membership services and selectors, requirements checks and the validation report
(docs/datasets.md), on real ingested items; runs on SQLite and on MariaDB."""

from __future__ import annotations

import io

import pytest

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets import selectors, services
from apps.datasets.models import Dataset, DatasetItem, Requirements
from apps.tags.models import TagSet
from tests import mediafiles
from tests.tags.factories import assign, effective_build, make_item, tags_make

pytestmark = pytest.mark.django_db


def _ids(dataset: Dataset) -> list[int]:
    return sorted(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))


def test_members_are_explicit_union_query_minus_exclusions() -> None:
    tagged = [make_item(["landscape"], seed=i) for i in range(3)]
    other = make_item(["portrait"], seed=10)
    dataset = services.dataset_create(name="Scenery", query="landscape")
    services.members_edit(owner=dataset, action="add", item_ids=[other.pk])
    services.members_edit(owner=dataset, action="exclude", item_ids=[tagged[0].pk])
    assert _ids(dataset) == sorted([tagged[1].pk, tagged[2].pk, other.pk])


def test_add_is_idempotent_and_clears_an_exclusion() -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="D")
    services.members_edit(owner=dataset, action="exclude", item_ids=[item.pk])
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk, item.pk])
    assert _ids(dataset) == [item.pk]
    assert DatasetItem.objects.filter(dataset=dataset).count() == 1


def test_unknown_ids_refused_and_nothing_saved() -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="D")
    with pytest.raises(DomainError) as err:
        services.members_edit(owner=dataset, action="add", item_ids=[item.pk, 99_999_999])
    assert err.value.code == "datasets.unknown_items"
    assert not DatasetItem.objects.filter(dataset=dataset).exists()


@pytest.mark.parametrize("raw", [[], "1", [0], [-3], ["x"], [None], [2**40], [True]])
def test_bad_ids_refused(raw: object) -> None:
    dataset = services.dataset_create(name="D")
    with pytest.raises(DomainError) as err:
        services.members_edit(owner=dataset, action="add", item_ids=raw)
    assert err.value.status_code == 400


def test_remove_of_a_non_member_refused_and_nothing_removed() -> None:
    a, b = make_item(seed=1), make_item(seed=2)
    dataset = services.dataset_create(name="D")
    services.members_edit(owner=dataset, action="add", item_ids=[a.pk])
    with pytest.raises(DomainError) as err:
        services.members_edit(owner=dataset, action="remove", item_ids=[a.pk, b.pk])
    assert err.value.code == "datasets.not_members"
    assert _ids(dataset) == [a.pk]


def test_remove_drops_explicit_membership() -> None:
    a, b = make_item(seed=1), make_item(seed=2)
    dataset = services.dataset_create(name="D")
    services.members_edit(owner=dataset, action="add", item_ids=[a.pk, b.pk])
    result = services.members_edit(owner=dataset, action="remove", item_ids=[a.pk])
    assert result == {"changed": 1}
    assert _ids(dataset) == [b.pk]


def test_bad_query_refused_with_datasets_code() -> None:
    with pytest.raises(DomainError) as err:
        services.dataset_create(name="D", query="(unclosed")
    assert err.value.code == "datasets.bad_query"
    assert not Dataset.objects.exists()


def test_duplicate_name_conflicts() -> None:
    services.dataset_create(name="D")
    with pytest.raises(ConflictError):
        services.dataset_create(name="D")


@pytest.mark.parametrize(
    "requirements",
    [
        {"min_width": 512, "max_width": 256},
        {"exact_width": 100, "min_width": 512},
        {"alpha": "required", "formats": ["jpeg"]},
        {"alpha": "flatten", "flatten_color": "white"},
        {"near_duplicate_max_distance": 9},
        {"required_tag_types": ["no-such-type"]},
    ],
)
def test_contradicting_requirements_refused_and_nothing_saved(requirements: dict) -> None:
    with pytest.raises(DomainError) as err:
        services.dataset_create(name="D", requirements=requirements)
    assert err.value.code == "datasets.bad_requirements"
    assert not Dataset.objects.exists()


def test_members_page_is_keyset_by_id() -> None:
    items = [make_item(seed=i) for i in range(5)]
    dataset = services.dataset_create(name="D")
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    members = selectors.dataset_members(dataset=dataset)
    first = selectors.members_page(members=members, limit=2)
    second = selectors.members_page(members=members, after=first.next_after or 0, limit=2)
    third = selectors.members_page(members=members, after=second.next_after or 0, limit=2)
    seen = [i.pk for page in (first, second, third) for i in page.items]
    assert seen == sorted(i.pk for i in items)
    assert third.next_after is None


def test_subset_has_its_own_membership() -> None:
    a, b = make_item(["cat"], seed=1), make_item(["dog"], seed=2)
    dataset = services.dataset_create(name="Pets", query="cat or dog")
    subset = services.subset_create(dataset=dataset, name="Cats", query="cat")
    services.members_edit(owner=subset, action="add", item_ids=[b.pk])
    services.members_edit(owner=subset, action="exclude", item_ids=[a.pk])
    members = sorted(selectors.subset_members(subset=subset).values_list("pk", flat=True))
    assert members == [b.pk]


def _report(dataset: Dataset) -> dict[str, dict]:
    return {r["requirement"]: r for r in selectors.validation_report(dataset=dataset)["requirements"]}


def _dataset_of(items: list, **requirements: object) -> Dataset:
    dataset = services.dataset_create(name="V", requirements=requirements)
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    return dataset


def test_validation_size_rules_report_measured_values() -> None:
    small = make_item(seed=1, size=(32, 48))
    big = make_item(seed=2, size=(64, 64))
    report = _report(_dataset_of([small, big], min_width=40, min_short_side=40, max_aspect_milli=900))
    assert report["min_width"]["items"] == [{"id": small.pk, "value": 32}]
    assert report["min_short_side"]["items"] == [{"id": small.pk, "value": 32}]
    assert report["max_aspect_milli"]["count"] == 1
    assert report["max_aspect_milli"]["items"][0]["id"] == big.pk


def test_validation_exact_size_and_pixels() -> None:
    a = make_item(seed=1, size=(32, 32))
    b = make_item(seed=2, size=(64, 32))
    report = _report(_dataset_of([a, b], exact_width=32, min_pixels=2000))
    assert report["exact_width"]["items"] == [{"id": b.pk, "value": 64}]
    assert report["min_pixels"]["items"] == [{"id": a.pk, "value": 1024}]


def test_validation_formats_alpha_and_file_size() -> None:
    png = make_item(data=mediafiles.image_bytes("png", size=(32, 32), seed=1, alpha=True))
    jpeg = make_item(seed=2, fmt="jpeg")
    report = _report(
        _dataset_of([png, jpeg], formats=["png"], alpha="forbidden", max_file_size=png.size_bytes - 1)
    )
    assert report["formats"]["items"] == [{"id": jpeg.pk, "value": "jpeg"}]
    assert report["alpha"]["items"] == [{"id": png.pk, "value": True}]
    assert {r["id"]: r["value"] for r in report["max_file_size"]["items"]}[png.pk] == png.size_bytes


def test_validation_alpha_required_and_modes() -> None:
    rgba = make_item(data=mediafiles.image_bytes("png", size=(32, 32), seed=1, alpha=True))
    rgb = make_item(seed=2)
    report = _report(_dataset_of([rgba, rgb], alpha="required", modes=["RGBA"]))
    assert report["alpha"]["items"] == [{"id": rgb.pk, "value": False}]
    assert report["modes"]["items"] == [{"id": rgb.pk, "value": rgb.mode}]


def test_validation_flatten_is_not_a_failure() -> None:
    rgba = make_item(data=mediafiles.image_bytes("png", size=(32, 32), seed=1, alpha=True))
    report = _report(_dataset_of([rgba], alpha="flatten", flatten_color="#FFFFFF"))
    assert "alpha" not in report
    assert Requirements.objects.get().flatten_color == "#ffffff"


def test_validation_tag_count_and_required_tag_types() -> None:
    character = tags_make(["saber"], type_key="character")["saber"]
    general = tags_make(["sky"])["sky"]
    with_char, without = make_item(seed=1), make_item(seed=2)
    assign([(with_char.pk, TagSet.Kind.CURATED, character.pk), (without.pk, TagSet.Kind.CURATED, general.pk)])
    effective_build([with_char.pk, without.pk])
    dataset = _dataset_of([with_char, without], required_tag_types=["character"], min_tag_count=2)
    report = _report(dataset)
    assert [r["id"] for r in report["tag_type:character"]["items"]] == [without.pk]
    assert report["min_tag_count"]["count"] == 2


def test_validation_near_duplicates() -> None:
    # A 16-bit picture and its 8-bit twin hash within 2 bits (tests/media/test_probe.py).
    a = make_item(filename="a", data=mediafiles.deep_grey_bytes(seed=7))
    out = io.BytesIO()
    mediafiles.picture((160, 120), 7, "L").save(out, "PNG")
    b = make_item(filename="b", data=out.getvalue())
    c = make_item(filename="c", data=mediafiles.deep_grey_bytes(seed=8))
    report = _report(_dataset_of([a, b, c], near_duplicate_max_distance=4))
    failing = {r["id"]: r["value"] for r in report["near_duplicate"]["items"]}
    assert failing == {a.pk: b.pk, b.pk: a.pk}


def test_validation_counts_and_paging() -> None:
    items = [make_item(seed=i, size=(32, 32)) for i in range(3)]
    dataset = _dataset_of(items, min_width=64)
    first = selectors.validation_report(dataset=dataset, limit=2)
    rule = first["requirements"][0]
    second = selectors.validation_report(dataset=dataset, after=rule["next_after"], limit=2)
    assert first["members"] == 3
    assert first["failing"] == 3
    assert rule["count"] == 3
    assert [r["id"] for r in rule["items"] + second["requirements"][0]["items"]] == [i.pk for i in items]


def test_validation_without_requirements_is_empty() -> None:
    dataset = services.dataset_create(name="D")
    report = selectors.validation_report(dataset=dataset)
    assert report["requirements"] == []
    assert report["failing"] == 0


def test_delete_removes_membership_rows() -> None:
    item = make_item(seed=1)
    dataset = _dataset_of([item], min_width=1)
    services.dataset_delete(dataset=dataset)
    assert not DatasetItem.objects.exists()
    assert not Requirements.objects.exists()


def test_update_with_empty_slug_derives_one() -> None:
    dataset = services.dataset_create(name="First")
    services.dataset_update(dataset=dataset, name="Second Name", slug="")
    assert Dataset.objects.get().slug == "second-name"


def test_update_to_a_blank_name_refused() -> None:
    dataset = services.dataset_create(name="First")
    with pytest.raises(DomainError) as err:
        services.dataset_update(dataset=dataset, name="   ")
    assert err.value.code == "datasets.invalid"
    assert Dataset.objects.get().name == "First"
