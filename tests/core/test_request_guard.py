"""Issue 9 item 8: JSON 500s on the API, a throttled sign-in page, read-only pages refuse
PUT/PATCH/DELETE, and tag template CSV exports that spreadsheets cannot run as formulas."""

from __future__ import annotations

import csv
import io
import logging

import pytest
from rest_framework.test import APIClient

from apps.tags.services.vocabularies import vocabulary_create
from apps.tags.services.vocabulary_io import vocabulary_import_csv
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db


def test_an_api_500_answers_the_json_error_shape_and_is_logged(curator, monkeypatch, caplog):
    (item,) = items_make(1)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("apps.media.api.views.selectors.media_item_get", broken)
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(curator)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = api.get(f"/api/media/{item.pk}")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"code", "message", "details"}
    assert response.json()["code"] == "server_error"
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


def test_an_api_500_still_raises_in_the_test_client(curator, monkeypatch):
    """Bugs stay loud: got_request_exception is sent, as Django sends it for any 500."""
    (item,) = items_make(1)

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("apps.media.api.views.selectors.media_item_get", broken)
    api = APIClient()
    api.force_authenticate(curator)
    with pytest.raises(RuntimeError):
        api.get(f"/api/media/{item.pk}")


def test_an_api_url_no_route_matches_answers_json_404(curator):
    api = APIClient()
    api.force_authenticate(curator)
    response = api.get("/api/tags/not-a-number")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_login_page_is_throttled_per_address(viewer, client):
    for _ in range(20):
        assert client.post("/login/", {"username": "viewer", "password": "wrong"}).status_code == 200
    refused = client.post("/login/", {"username": "viewer", "password": "pw-viewer-123"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in client.session


def test_login_page_signs_in_below_the_limit(viewer, client):
    response = client.post("/login/", {"username": "viewer", "password": "pw-viewer-123"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(viewer.pk)


READ_ONLY_PAGES = [
    "/",
    "/jobs/",
    "/tags/",
    "/tags/types/",
    "/tags/bulk/",
    "/tags/operations/",
    "/tags/rules/",
]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", READ_ONLY_PAGES)
def test_read_only_pages_refuse_writes_with_405(curator, client, url, method):
    client.force_login(curator)
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert "GET" in response["Allow"]


def test_item_page_refuses_delete_with_405(curator, client):
    (item,) = items_make(1)
    client.force_login(curator)
    assert client.delete(f"/items/{item.pk}/").status_code == 405


FORMULAS = ["=cmd", "+sum", "@at", "\tTAB", "\rCR"]


def test_tag_template_export_escapes_formula_cells(curator):
    vocab = vocabulary_create(slug="risky", name="Risky")
    vocabulary_import_csv(
        vocabulary=vocab, data=b'"=_=",general,1,\n"@_@",general,1,"+_+"\nplain,general,1,\n'
    )
    api = APIClient()
    api.force_authenticate(curator)
    response = api.get(f"/api/tag-templates/{vocab.pk}/export")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    names = {row[0]: row for row in rows[1:]}
    assert set(names) == {"'=_=", "'@_@", "plain"}
    assert names["'@_@"][3] == "'+_+"


def test_escaped_export_imports_back_unchanged(curator):
    vocab = vocabulary_create(slug="risky", name="Risky")
    vocabulary_import_csv(vocabulary=vocab, data=b'"=_=",general,1,\n"@_@",general,1,"+_+"\n')
    api = APIClient()
    api.force_authenticate(curator)
    exported = b"".join(api.get(f"/api/tag-templates/{vocab.pk}/export").streaming_content)
    copy = vocabulary_create(slug="copy", name="Copy")
    result = vocabulary_import_csv(vocabulary=copy, data=exported)
    assert result.errors == []
    assert sorted(copy.tags.values_list("name", flat=True)) == ["+_+", "=_=", "@_@"]


def test_csv_cell_escape_covers_tab_and_carriage_return():
    from apps.core.csvsafe import csv_cell_escape, csv_cell_unescape

    assert [csv_cell_escape(value) for value in FORMULAS] == [f"'{value}" for value in FORMULAS]
    assert [csv_cell_unescape(csv_cell_escape(value)) for value in FORMULAS] == FORMULAS
    assert csv_cell_escape("o'neill") == "o'neill"
