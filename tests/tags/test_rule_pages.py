"""The aliases and implications page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.tags.models import TagAlias, TagImplication

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver(client):
    user = User.objects.create_superuser("root", password="pw-root-123")
    client.force_login(user)
    return client


def test_rules_page_empty_states(approver):
    html = approver.get("/tags/rules/").content.decode()
    assert "No aliases yet" in html
    assert "No implications yet" in html


def test_add_alias_and_implication_and_retire(approver):
    response = approver.post(
        "/tags/rules/aliases/add",
        {"antecedent": "kitty", "consequent": "cat", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "kitty" in response.content.decode()
    alias = TagAlias.objects.get()
    assert alias.status == "active"
    approver.post(
        "/tags/rules/implications/add",
        {"child": "car", "parent": "vehicle", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert TagImplication.objects.get().status == "active"
    approver.post(f"/tags/rules/alias/{alias.pk}/retire", HTTP_HX_REQUEST="true")
    alias.refresh_from_db()
    assert alias.status == "retired"


def test_bad_rule_is_422_with_the_reason(approver):
    approver.post(
        "/tags/rules/implications/add",
        {"child": "car", "parent": "vehicle", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    response = approver.post(
        "/tags/rules/implications/add",
        {"child": "vehicle", "parent": "car", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "cycle" in response.content.decode()


def test_curator_proposals_wait_without_approval(client, curator):
    from django.contrib.auth.models import Permission

    curator.groups.first().permissions.remove(Permission.objects.get(codename="approve_rules"))
    curator = User.objects.get(pk=curator.pk)
    client.force_login(curator)
    client.post(
        "/tags/rules/aliases/add",
        {"antecedent": "a", "consequent": "b", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert TagAlias.objects.get().status == "pending"
    assert client.post(f"/tags/rules/alias/{TagAlias.objects.get().pk}/activate").status_code == 403


@pytest.mark.parametrize("kind", ["alias", "implication"])
def test_an_unknown_rule_verb_is_400_naming_the_verbs_and_changes_nothing(approver, kind):
    approver.post("/tags/rules/aliases/add", {"antecedent": "kitty", "consequent": "cat", "activate": "on"})
    approver.post("/tags/rules/implications/add", {"child": "car", "parent": "vehicle", "activate": "on"})
    rule = (TagAlias if kind == "alias" else TagImplication).objects.get()
    response = approver.post(f"/tags/rules/{kind}/{rule.pk}/retier", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    assert "retier" in html
    assert all(verb in html for verb in ("activate", "retire", "reject"))
    rule.refresh_from_db()
    assert rule.status == "active"


def test_rules_live_in_the_tag_template_chosen_on_the_page(approver):
    from apps.tags.services.vocabularies import vocabulary_create

    e621 = vocabulary_create(slug="e621", name="e621")
    response = approver.post(
        "/tags/rules/aliases/add",
        {"vocabulary": "e621", "antecedent": "kitty", "consequent": "domestic_cat", "activate": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    alias = TagAlias.objects.get()
    assert alias.vocabulary == e621
    assert alias.consequent.vocabulary == e621
