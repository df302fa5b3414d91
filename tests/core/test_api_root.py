"""`/api/` answers with the API root: a link to every resource (docs/api.md#the-api-root)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_api_root_answers_200(api):
    assert api.get("/api/").status_code == 200


def test_api_root_links_the_main_resources(api):
    resources = api.get("/api/").json()["resources"]
    for name in ("media-list", "job-list", "tag-list", "tag-operation-list", "media-search"):
        assert resources[name].startswith("http://testserver/api/"), name


def test_api_root_links_docs_and_schema(api):
    body = api.get("/api/").json()
    assert (body["docs"], body["schema"]) == ("http://testserver/api/docs/", "http://testserver/api/schema/")


def test_every_link_of_the_api_root_exists(api):
    resources = api.get("/api/").json()["resources"]
    missing = [url for url in resources.values() if api.get(url).status_code == 404]
    assert missing == []


def test_api_root_answers_without_signing_in(client):
    assert client.get("/api/").status_code == 200
