"""Admin for datasets: every model's pages load; requirements edited there get the same
contradiction checks as the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.datasets import services
from apps.datasets.models import Requirements
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/datasets/dataset/",
        "/admin/datasets/dataset/{dataset}/change/",
        "/admin/datasets/subset/",
        "/admin/datasets/datasetitem/",
        "/admin/datasets/subsetitem/",
        "/admin/datasets/requirements/",
        "/admin/datasets/requirements/{requirements}/change/",
    ],
)
def test_admin_pages_load(staff_client, url: str) -> None:  # type: ignore[no-untyped-def]
    item = make_item(seed=1)
    dataset = services.dataset_create(name="D", requirements={"min_width": 8})
    subset = services.subset_create(dataset=dataset, name="S")
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk])
    services.members_edit(owner=subset, action="exclude", item_ids=[item.pk])
    path = url.format(dataset=dataset.pk, requirements=Requirements.objects.get().pk)
    assert staff_client.get(path).status_code == 200


def test_admin_refuses_contradicting_requirements(staff_client) -> None:  # type: ignore[no-untyped-def]
    dataset = services.dataset_create(name="D", requirements={"min_width": 8})
    req = Requirements.objects.get()
    response = staff_client.post(
        f"/admin/datasets/requirements/{req.pk}/change/",
        {
            "dataset": dataset.pk,
            "min_width": 100,
            "max_width": 10,
            "formats": "[]",
            "modes": "[]",
            "alpha": "any",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "must not exceed max_width" in response.content.decode()
    assert Requirements.objects.get().min_width == 8
