"""Dataset pages: the list, a dataset, its validation report partial (htmx) and bad input."""

from __future__ import annotations

import pytest

from apps.datasets import services
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in_client(client, curator):  # type: ignore[no-untyped-def]
    client.force_login(curator)
    return client


def _dataset_with_a_failure():  # type: ignore[no-untyped-def]
    small, big = make_item(seed=1, size=(32, 32)), make_item(seed=2, size=(64, 64))
    dataset = services.dataset_create(name="Faces", purpose="LoRA", requirements={"min_width": 48})
    services.members_edit(owner=dataset, action="add", item_ids=[small.pk, big.pk])
    return dataset, small


def test_list_links_each_dataset(signed_in_client) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = _dataset_with_a_failure()
    html = signed_in_client.get("/datasets/").content.decode()
    assert f'href="/datasets/{dataset.pk}/"' in html


def test_report_partial_for_htmx(signed_in_client) -> None:  # type: ignore[no-untyped-def]
    dataset, small = _dataset_with_a_failure()
    response = signed_in_client.get(f"/datasets/{dataset.pk}/report", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert "<strong>1</strong> of 2 members" in html
    assert f"#{small.pk}" in html


def test_report_without_htmx_is_the_whole_page(signed_in_client) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = _dataset_with_a_failure()
    html = signed_in_client.get(f"/datasets/{dataset.pk}/report").content.decode()
    assert "<html" in html
    assert "min_width" in html


def test_detail_loads_the_report_by_htmx(signed_in_client) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = _dataset_with_a_failure()
    html = signed_in_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'hx-get="/datasets/{dataset.pk}/report"' in html


@pytest.mark.parametrize("url", ["/datasets/999999/", "/datasets/999999/report"])
def test_unknown_dataset_is_404(signed_in_client, url: str) -> None:  # type: ignore[no-untyped-def]
    assert signed_in_client.get(url).status_code == 404


@pytest.mark.parametrize("query", ["after=-5", "after=x", "after=99999999999999"])
def test_bad_after_is_422(signed_in_client, query: str) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = _dataset_with_a_failure()
    assert (
        signed_in_client.get(f"/datasets/{dataset.pk}/report?{query}").status_code == 422
    )  # pages answer input errors with 422 (apps/core/middleware.py)


def test_list_bad_after_is_422(signed_in_client) -> None:  # type: ignore[no-untyped-def]
    assert (
        signed_in_client.get("/datasets/?after=0").status_code == 422
    )  # pages answer input errors with 422 (apps/core/middleware.py)


def test_pages_need_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/datasets/")
    assert response.status_code == 302
