"""Admin for snapshots (read-only: they are immutable) and dataset groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.datasets import services
from apps.datasets.models import Snapshot
from apps.datasets.services import groups
from apps.datasets.services.snapshots import snapshot_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/datasets/snapshot/",
        "/admin/datasets/snapshot/{snapshot}/change/",
        "/admin/datasets/datasetgroup/",
        "/admin/datasets/datasetgroup/{group}/change/",
    ],
)
def test_admin_pages_load(staff_client, url: str) -> None:  # type: ignore[no-untyped-def]
    dataset = services.dataset_create(name="D")
    services.subset_create(dataset=dataset, name="S")
    snapshot = snapshot_create(dataset=dataset)
    group = groups.group_create(name="G")
    groups.group_append(group=group, data_sets=[dataset.pk])
    assert staff_client.get(url.format(snapshot=snapshot.pk, group=group.pk)).status_code == 200


def test_admin_cannot_change_a_snapshot(staff_client) -> None:  # type: ignore[no-untyped-def]
    snapshot = snapshot_create(dataset=services.dataset_create(name="D"), note="v1")
    staff_client.post(f"/admin/datasets/snapshot/{snapshot.pk}/change/", {"note": "changed"})
    assert Snapshot.objects.get().note == "v1"
