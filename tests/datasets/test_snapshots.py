"""Snapshots (docs/datasets.md#snapshots): exact members, sha256 and tag fingerprints; the diff
of two snapshots (added, removed, retagged) in SQL. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.core.exceptions import DomainError, NotFoundError
from apps.datasets import services
from apps.datasets.models import Snapshot, SnapshotItem, SnapshotPart
from apps.datasets.selectors import snapshots as snaps
from apps.datasets.services.snapshots import snapshot_create, tags_fingerprint
from apps.tags.models import EffectiveTag, TagSet
from tests.tags.factories import assign, effective_build, make_item, tags_make

pytestmark = pytest.mark.django_db


def _frozen(snapshot: Snapshot, part: int = 0) -> dict[int, tuple[str, int, int]]:
    rows = SnapshotItem.objects.filter(snapshot=snapshot, part=part)
    return {r.item_id: (r.sha256, r.tags_hash, r.tag_count) for r in rows}


def _expected(item_ids: list[int]) -> dict[int, tuple[str, int, int]]:
    from apps.media.models import MediaItem

    out = {}
    for item in MediaItem.objects.filter(pk__in=item_ids):
        tags = list(EffectiveTag.objects.filter(media_item=item).values_list("tag_id", flat=True))
        out[item.pk] = (item.sha256, tags_fingerprint(tags), len(tags))
    return out


def test_freeze_records_exact_members_hashes_and_tag_fingerprints() -> None:
    tagged = [make_item(["landscape", "sky"], seed=i) for i in range(3)]
    bare = make_item(seed=20)
    excluded = tagged[2]
    dataset = services.dataset_create(name="Scenery", query="landscape")
    services.members_edit(owner=dataset, action="add", item_ids=[bare.pk])
    services.members_edit(owner=dataset, action="exclude", item_ids=[excluded.pk])
    snapshot = snapshot_create(dataset=dataset, note="first")
    members = [tagged[0].pk, tagged[1].pk, bare.pk]
    assert _frozen(snapshot) == _expected(members)
    assert snapshot.member_count == 3
    assert snapshot.number == 1
    assert snapshot.query == "landscape"


def test_fingerprint_of_no_tags_is_zero_and_of_tags_is_not() -> None:
    bare, tagged = make_item(seed=1), make_item(["sky"], seed=2)
    dataset = services.dataset_create(name="D")
    services.members_edit(owner=dataset, action="add", item_ids=[bare.pk, tagged.pk])
    frozen = _frozen(snapshot_create(dataset=dataset))
    assert frozen[bare.pk][1] == 0
    assert frozen[tagged.pk][1] != 0


def test_subsets_are_frozen_as_parts() -> None:
    a, b = make_item(["sky"], seed=1), make_item(["sea"], seed=2)
    dataset = services.dataset_create(name="D", query="sky")
    subset = services.subset_create(dataset=dataset, name="Sea", query="sea")
    snapshot = snapshot_create(dataset=dataset)
    part = SnapshotPart.objects.get(snapshot=snapshot)
    assert (part.position, part.slug, part.member_count, part.subset_id) == (1, "sea", 1, subset.pk)
    assert list(_frozen(snapshot, 1)) == [b.pk]
    assert list(_frozen(snapshot)) == [a.pk]


def test_numbers_count_up_per_dataset() -> None:
    dataset = services.dataset_create(name="D")
    other = services.dataset_create(name="E")
    numbers = [snapshot_create(dataset=dataset).number for _ in range(2)]
    assert [*numbers, snapshot_create(dataset=other).number] == [1, 2, 1]


def test_a_snapshot_does_not_follow_later_edits() -> None:
    item = make_item(["sky"], seed=1)
    dataset = services.dataset_create(name="D", query="sky")
    snapshot = snapshot_create(dataset=dataset)
    services.members_edit(owner=dataset, action="exclude", item_ids=[item.pk])
    assert list(_frozen(snapshot)) == [item.pk]


def test_long_note_refused() -> None:
    dataset = services.dataset_create(name="D")
    with pytest.raises(DomainError):
        snapshot_create(dataset=dataset, note="x" * 501)
    assert not Snapshot.objects.exists()


def _retag(item_id: int, names: list[str]) -> None:
    """Curated tags replace the source tags in the effective set (docs/tags.md)."""
    tags = tags_make(names)
    assign([(item_id, TagSet.Kind.CURATED, tags[n].pk) for n in names])
    effective_build([item_id])


def test_diff_finds_added_removed_and_retagged() -> None:
    kept, retagged, dropped = (make_item(["sky"], seed=i) for i in range(3))
    newcomer = make_item(seed=9)
    dataset = services.dataset_create(name="D", query="sky")
    first = snapshot_create(dataset=dataset)
    services.members_edit(owner=dataset, action="exclude", item_ids=[dropped.pk])
    services.members_edit(owner=dataset, action="add", item_ids=[newcomer.pk])
    _retag(retagged.pk, ["sky", "cloud"])
    second = snapshot_create(dataset=dataset)
    diff = snaps.snapshot_diff(a=first, b=second)
    assert [r["id"] for r in diff["added"]["items"]] == [newcomer.pk]
    assert [r["id"] for r in diff["removed"]["items"]] == [dropped.pk]
    assert [r["id"] for r in diff["retagged"]["items"]] == [retagged.pk]
    assert diff["retagged"]["count"] == 1
    assert kept.pk not in {r["id"] for kind in snaps.DIFF_KINDS for r in diff[kind]["items"]}


def test_diff_pages_by_after() -> None:
    items = [make_item(seed=i) for i in range(3)]
    dataset = services.dataset_create(name="D")
    first = snapshot_create(dataset=dataset)
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    second = snapshot_create(dataset=dataset)
    page = snaps.snapshot_diff(a=first, b=second, limit=2)
    assert page["added"]["next_after"] == items[1].pk
    rest = snaps.snapshot_diff(a=first, b=second, limit=2, after=page["added"]["next_after"])
    assert [r["id"] for r in rest["added"]["items"]] == [items[2].pk]


def test_diff_of_an_unknown_subset_is_404() -> None:
    dataset = services.dataset_create(name="D")
    a, b = snapshot_create(dataset=dataset), snapshot_create(dataset=dataset)
    with pytest.raises(NotFoundError):
        snaps.snapshot_diff(a=a, b=b, subset="nope")


def test_api_create_list_detail_and_diff(api: APIClient) -> None:
    item = make_item(["sky"], seed=1)
    dataset = services.dataset_create(name="D", query="sky")
    base = f"/api/datasets/{dataset.pk}/snapshots"
    first = api.post(base, {"note": "v1"}, format="json")
    assert first.status_code == 201, first.json()
    services.members_edit(owner=dataset, action="exclude", item_ids=[item.pk])
    second = api.post(base, {}, format="json").json()
    assert [s["number"] for s in api.get(base).json()["results"]] == [2, 1]
    detail = api.get(f"{base}/{first.json()['id']}").json()
    assert (detail["member_count"], detail["note"]) == (1, "v1")
    members = api.get(f"{base}/{first.json()['id']}/members").json()
    assert [m["id"] for m in members["items"]] == [item.pk]
    diff = api.get(f"{base}/{first.json()['id']}/diff/{second['id']}").json()
    assert diff["removed"]["count"] == 1


@pytest.mark.parametrize("path", ["/999999", "/999999/diff/1", "/x"])
def test_api_unknown_snapshot_is_404(api: APIClient, path: str) -> None:
    dataset = services.dataset_create(name="D")
    assert api.get(f"/api/datasets/{dataset.pk}/snapshots{path}").status_code == 404


def test_api_snapshot_of_another_dataset_is_404(api: APIClient) -> None:
    one, two = services.dataset_create(name="D"), services.dataset_create(name="E")
    foreign = snapshot_create(dataset=two)
    assert api.get(f"/api/datasets/{one.pk}/snapshots/{foreign.pk}").status_code == 404


def test_api_diff_unknown_subset_is_404(api: APIClient) -> None:
    dataset = services.dataset_create(name="D")
    a, b = snapshot_create(dataset=dataset), snapshot_create(dataset=dataset)
    response = api.get(f"/api/datasets/{dataset.pk}/snapshots/{a.pk}/diff/{b.pk}?subset=nope")
    assert response.status_code == 404
    assert response.json()["code"] == "datasets.subset_not_found"


def test_api_snapshot_is_immutable(api: APIClient) -> None:
    dataset = services.dataset_create(name="D")
    snapshot = snapshot_create(dataset=dataset)
    url = f"/api/datasets/{dataset.pk}/snapshots/{snapshot.pk}"
    assert api.patch(url, {"note": "x"}, format="json").status_code == 405
    assert api.delete(url).status_code == 405


def test_diff_of_one_subset(api: APIClient) -> None:
    a, b = make_item(["sea"], seed=1), make_item(["sea"], seed=2)
    dataset = services.dataset_create(name="D")
    subset = services.subset_create(dataset=dataset, name="Sea", query="sea")
    first = snapshot_create(dataset=dataset)
    services.members_edit(owner=subset, action="exclude", item_ids=[a.pk])
    second = snapshot_create(dataset=dataset)
    url = f"/api/datasets/{dataset.pk}/snapshots/{first.pk}/diff/{second.pk}?subset=sea"
    body = api.get(url).json()
    assert [r["id"] for r in body["removed"]["items"]] == [a.pk]
    assert body["added"]["count"] == 0
    members = api.get(f"/api/datasets/{dataset.pk}/snapshots/{second.pk}/members?subset=sea").json()
    assert [m["id"] for m in members["items"]] == [b.pk]


def test_members_of_an_unknown_subset_is_404(api: APIClient) -> None:
    dataset = services.dataset_create(name="D")
    snapshot = snapshot_create(dataset=dataset)
    response = api.get(f"/api/datasets/{dataset.pk}/snapshots/{snapshot.pk}/members?subset=nope")
    assert response.status_code == 404
    assert response.json()["code"] == "datasets.subset_not_found"


def test_viewer_cannot_freeze(viewer) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(viewer)
    dataset = services.dataset_create(name="D")
    assert client.post(f"/api/datasets/{dataset.pk}/snapshots", {}, format="json").status_code == 403
    assert not Snapshot.objects.exists()
