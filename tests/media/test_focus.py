"""Focus boxes (docs/training.md#focus-boxes): the service's checks, PATCH /api/media/{id}, the
item page's form (plain and htmx) and the admin. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import math

import pytest
from django.contrib.auth.models import User

from apps.core.exceptions import DomainError
from apps.media import services
from apps.media.models import MediaItem
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db

BAD_BOXES = [
    [0.1, 0.1, 0.5],  # three numbers
    [0.1, 0.1, 0.5, 0.9, 1.0],  # five
    [0.5, 0.1, 0.4, 0.9],  # x0 > x1
    [0.1, 0.6, 0.5, 0.6],  # y0 == y1
    [-0.1, 0.1, 0.5, 0.9],  # below 0
    [0.1, 0.1, 1.5, 0.9],  # above 1
    [0.1, 0.1, True, 0.9],  # a boolean is not a number
    [0.1, 0.1, "0.5", 0.9],  # a string is not a number
    "0.1,0.1,0.5,0.9",  # not a list
    {"x0": 0.1},
]


def test_focus_clean_accepts_boxes_and_clears() -> None:
    assert services.focus_clean([0, 0, 1, 1]) == [0.0, 0.0, 1.0, 1.0]
    assert services.focus_clean((0.25, 0.1, 0.75, 0.9)) == [0.25, 0.1, 0.75, 0.9]
    assert services.focus_clean([0.1234567891, 0, 0.5, 1]) == [0.123457, 0.0, 0.5, 1.0]
    assert services.focus_clean(None) is None
    assert services.focus_clean([]) is None


@pytest.mark.parametrize("box", [*BAD_BOXES, [math.nan, 0, 1, 1], [0, 0, math.inf, 1]])
def test_focus_clean_refuses_bad_boxes(box) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        services.focus_clean(box)
    assert caught.value.code == "media.bad_focus"
    assert caught.value.status_code == 400


def test_api_round_trip(api) -> None:  # type: ignore[no-untyped-def]
    item = make_item()
    assert api.get(f"/api/media/{item.pk}").json()["focus"] is None
    response = api.patch(f"/api/media/{item.pk}", {"focus": [0.25, 0.1, 0.75, 0.9]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["focus"] == [0.25, 0.1, 0.75, 0.9]
    assert api.get(f"/api/media/{item.pk}").json()["focus"] == [0.25, 0.1, 0.75, 0.9]
    item.refresh_from_db()
    assert item.focus == [0.25, 0.1, 0.75, 0.9]
    cleared = api.patch(f"/api/media/{item.pk}", {"focus": None}, format="json")
    assert cleared.status_code == 200
    assert cleared.json()["focus"] is None
    assert MediaItem.objects.get(pk=item.pk).focus is None


@pytest.mark.parametrize("box", BAD_BOXES)
def test_api_refuses_bad_boxes_with_a_code(api, box) -> None:  # type: ignore[no-untyped-def]
    item = make_item()
    api.patch(f"/api/media/{item.pk}", {"focus": [0.1, 0.1, 0.2, 0.2]}, format="json")
    response = api.patch(f"/api/media/{item.pk}", {"focus": box}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "media.bad_focus"
    assert MediaItem.objects.get(pk=item.pk).focus == [0.1, 0.1, 0.2, 0.2]  # nothing saved


def test_api_ordering_and_range_errors_carry_the_focus_code(api) -> None:  # type: ignore[no-untyped-def]
    item = make_item()
    for box in ([0.5, 0.1, 0.4, 0.9], [0.1, 0.1, 1.5, 0.9], [0.1, 0.2, 0.3]):
        response = api.patch(f"/api/media/{item.pk}", {"focus": box}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "media.bad_focus"), box


def test_api_needs_change_permission(viewer) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    item = make_item()
    client = APIClient()
    client.force_authenticate(viewer)
    response = client.patch(f"/api/media/{item.pk}", {"focus": [0, 0, 1, 1]}, format="json")
    assert response.status_code == 403
    assert MediaItem.objects.get(pk=item.pk).focus is None


def test_item_page_form_sets_and_clears_the_focus(client, curator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(curator)
    item = make_item()
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert 'id="focus-form"' in page
    url = f"/items/{item.pk}/focus"
    box = {"x0": "0.2", "y0": "0.1", "x1": "0.6", "y1": "0.9"}
    plain = client.post(url, box)
    assert plain.status_code == 303
    assert MediaItem.objects.get(pk=item.pk).focus == [0.2, 0.1, 0.6, 0.9]
    swapped = client.post(url, {"x0": "0.2", "y0": "0.1", "x1": "0.1", "y1": "0.9"}, HTTP_HX_REQUEST="true")
    assert swapped.status_code == 400
    html = swapped.content.decode()
    assert 'id="focus-form"' in html
    assert "x0 &lt; x1" in html
    assert "<html" not in html  # the partial, for the htmx swap
    assert MediaItem.objects.get(pk=item.pk).focus == [0.2, 0.1, 0.6, 0.9]
    out_of_range = client.post(url, {**box, "x1": "1.5"}, HTTP_HX_REQUEST="true")
    assert out_of_range.status_code == 400
    assert "between 0 and 1" in out_of_range.content.decode()
    saved = client.post(url, {**box, "x0": "0.3"}, HTTP_HX_REQUEST="true")
    assert saved.status_code == 200
    assert "Focus box saved" in saved.content.decode()
    assert MediaItem.objects.get(pk=item.pk).focus == [0.3, 0.1, 0.6, 0.9]
    cleared = client.post(url, {**box, "clear": "1"}, HTTP_HX_REQUEST="true")
    assert cleared.status_code == 200
    assert "Focus box removed" in cleared.content.decode()
    assert MediaItem.objects.get(pk=item.pk).focus is None


def test_item_page_form_needs_change_permission(client, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    item = make_item()
    assert 'id="focus-form"' not in client.get(f"/items/{item.pk}/").content.decode()
    response = client.post(f"/items/{item.pk}/focus", {"x0": "0", "y0": "0", "x1": "1", "y1": "1"})
    assert response.status_code == 403


def _admin_post(client, item: MediaItem, focus: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/admin/media/mediaitem/{item.pk}/change/",
        {
            "name": item.name,
            "artist": "",
            "source": "",
            "rating": "u",
            "notes": "",
            "focus": focus,
            "sources-TOTAL_FORMS": 0,
            "sources-INITIAL_FORMS": 1,
            "sources-MIN_NUM_FORMS": 0,
            "sources-MAX_NUM_FORMS": 0,
        },
    )


def test_admin_edits_the_focus_through_the_service_checks(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    item = make_item()
    bad = _admin_post(client, item, "[0.6, 0.1, 0.2, 0.9]")
    assert bad.status_code == 200  # the form again, with the error
    assert "x0 &lt; x1" in bad.content.decode()
    assert MediaItem.objects.get(pk=item.pk).focus is None
    ok = _admin_post(client, item, "[0.1, 0.1, 0.2, 0.9]")
    assert ok.status_code == 302, ok.content.decode()[:2000]
    assert MediaItem.objects.get(pk=item.pk).focus == [0.1, 0.1, 0.2, 0.9]
    assert _admin_post(client, item, "null").status_code == 302
    assert MediaItem.objects.get(pk=item.pk).focus is None
