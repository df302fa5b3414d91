"""Authentication and permissions across the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


def test_auth_token_returns_a_token_that_authenticates(curator):
    client = APIClient()
    response = client.post(
        "/api/auth/token", {"username": "curator", "password": "pw-curator-123"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/media/").status_code == 200
    # Asking again returns the same token.
    again = APIClient().post(
        "/api/auth/token", {"username": "curator", "password": "pw-curator-123"}, format="json"
    )
    assert again.json()["token"] == token


@pytest.mark.parametrize(
    "body",
    [
        {"username": "curator", "password": "wrong"},
        {"username": "nobody", "password": "pw-curator-123"},
    ],
)
def test_auth_token_refuses_wrong_credentials(curator, body):
    response = APIClient().post("/api/auth/token", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "auth.invalid_credentials"


def test_auth_token_missing_fields_name_the_field():
    response = APIClient().post("/api/auth/token", {"username": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "password" in body["details"]["fields"]


@pytest.mark.parametrize("url", ["/api/media/", "/api/jobs/", "/api/media/1", "/api/media/search"])
def test_api_requires_a_signed_in_user(url):
    response = APIClient().get(url)
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"code", "message", "details"}


def test_schema_and_docs_are_for_signed_in_users_and_local(viewer):
    client = APIClient()
    client.force_login(viewer)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/media/upload" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()


def test_schema_refuses_anonymous_callers_with_401():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 401
    assert b"/api/media/upload" not in response.content


def test_docs_page_sends_anonymous_visitors_to_sign_in():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/api/docs/")


def test_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/media/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_reader_without_permissions_cannot_upload_or_delete(viewer, curator):
    item = make_item(added_by=curator)
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(f"/api/media/{item.pk}").status_code == 200
    upload = client.post("/api/media/upload", {"url": "https://example.com/x.jpg"}, format="json")
    assert upload.status_code == 403
    assert upload.json()["code"] == "permission_denied"
    assert client.delete(f"/api/media/{item.pk}").status_code == 403
    assert (
        client.post(
            f"/api/media/{item.pk}/tag-sets", {"tags": ["a"], "tag_source": "x"}, format="json"
        ).status_code
        == 403
    )


def test_staff_only_admin(client, curator):
    client.force_login(curator)
    assert client.get("/admin/").status_code == 302  # curators are not staff
    staff = User.objects.create_user("boss", password="pw-boss-123", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
