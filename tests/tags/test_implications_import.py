"""Implications from CSV into any tag template (issue 12: rules inside any vocabulary from the
API, pages and CSV alike; docs/tags.md#implications)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.tags.models import RuleStatus, TagClosure, TagImplication
from apps.tags.services.vocabularies import vocabulary_create

pytestmark = pytest.mark.django_db

TEXT = "child,parent\ndomestic_cat,felid\nfelid,mammal\nbad line without parent\ncat,cat\n"


@pytest.fixture
def approver_api():
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def test_an_import_into_a_tag_template_keeps_good_lines_and_lists_bad_ones(approver_api):
    e621 = vocabulary_create(slug="e621", name="e621")
    response = approver_api.post(
        "/api/tag-implications/import", {"text": TEXT, "vocabulary": "e621", "activate": True}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["lines"], body["created"], body["activated"], body["existing"]) == (4, 2, 2, 0)
    assert [e["line"] for e in body["errors"]] == [4, 5]
    rules = TagImplication.objects.filter(vocabulary=e621)
    assert {(r.child.name, r.parent.name, r.status) for r in rules} == {
        ("domestic_cat", "felid", RuleStatus.ACTIVE),
        ("felid", "mammal", RuleStatus.ACTIVE),
    }
    assert TagClosure.objects.filter(descendant__name="domestic_cat", ancestor__name="mammal").exists()
    assert not TagImplication.objects.exclude(vocabulary=e621).exists()
    again = approver_api.post(
        "/api/tag-implications/import", {"text": TEXT, "vocabulary": "e621", "activate": True}, format="json"
    ).json()
    assert (again["created"], again["existing"]) == (0, 2)


def test_a_file_upload_and_a_cycle_is_a_line_error(approver_api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    vocabulary_create(slug="e621", name="e621")
    upload = SimpleUploadedFile("rules.csv", b"a,b\nb,c\nc,a\n", content_type="text/csv")
    body = approver_api.post(
        "/api/tag-implications/import", {"file": upload, "vocabulary": "e621", "activate": "true"}
    ).json()
    assert (body["created"], [e["line"] for e in body["errors"]]) == (2, [3])
    assert TagImplication.objects.count() == 2


def test_without_approval_they_stay_pending_and_bad_input_is_4xx():
    from django.contrib.auth.models import Permission

    proposer = User.objects.create_user("proposer", password="pw-proposer-1")
    proposer.user_permissions.add(Permission.objects.get(codename="add_tagimplication"))
    api = APIClient()
    api.force_authenticate(proposer)
    vocabulary_create(slug="e621", name="e621")
    body = api.post(
        "/api/tag-implications/import",
        {"text": "x,y\n", "vocabulary": "e621", "activate": True},
        format="json",
    ).json()
    assert (body["created"], body["activated"]) == (1, 0)
    assert TagImplication.objects.get().status == RuleStatus.PENDING
    unknown = api.post("/api/tag-implications/import", {"text": "x,y", "vocabulary": "nope"}, format="json")
    assert unknown.status_code == 404
    empty = api.post("/api/tag-implications/import", {"vocabulary": "e621"}, format="json")
    assert empty.status_code == 400
    from django.core.files.uploadedfile import SimpleUploadedFile

    latin = SimpleUploadedFile("r.csv", "caf\xe9,b\n".encode("latin-1"), content_type="text/csv")
    assert api.post("/api/tag-implications/import", {"file": latin}).status_code == 422


def test_a_viewer_cannot_import(viewer):
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post("/api/tag-implications/import", {"text": "x,y"}, format="json").status_code == 403
    assert not TagImplication.objects.exists()


def test_the_rules_page_imports_into_the_chosen_tag_template(client):
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-12345"))
    e621 = vocabulary_create(slug="e621", name="e621")
    page = client.get("/tags/rules/")
    assert b"/tags/rules/implications/import" in page.content
    response = client.post(
        "/tags/rules/implications/import",
        {"vocabulary": "e621", "text": "domestic_cat,felid\nnope\n", "activate": "on"},
    )
    assert response.status_code == 422
    assert b"Line 2: expected child,parent" in response.content
    assert b"1 created (1 active)" in response.content
    assert TagImplication.objects.get().vocabulary == e621
