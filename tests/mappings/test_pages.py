"""Mapping pages: render, add/edit a rule, import errors, preview, apply and undo, suggestions."""

from __future__ import annotations

import pytest

from apps.mappings.models import TagMapping
from apps.tags import slots
from apps.tags.models import Operation, TagSet
from apps.tags.services.names import vocabulary_default
from tests.tags.factories import assign, tags_make

pytestmark = pytest.mark.django_db


def test_pages_render(world):
    client = world["client"]
    urls = [
        "/mappings/",
        f"/mappings/sets/{world['set'].pk}/",
        f"/mappings/profiles/{world['profile'].pk}/",
        f"/mappings/profiles/{world['profile'].pk}/suggestions/",
    ]
    assert [client.get(u).status_code for u in urls] == [200, 200, 200, 200]


def test_rule_add_and_edit_replace_by_key(world):
    client, pk = world["client"], world["set"].pk
    client.post(
        f"/mappings/sets/{pk}/rules/add", {"source": "a", "targets": "b", "action": "map", "priority": 0}
    )
    rule = TagMapping.objects.get(mapping_set_id=pk)
    assert list(rule.targets.values_list("target_tag__name", flat=True)) == ["b"]


def test_import_error_lists_lines(world):
    response = world["client"].post(
        f"/mappings/sets/{world['set'].pk}/import",
        {"text": "a,x\nb\n", "format": "csv"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "Line 2" in response.content.decode()


def test_preview_apply_undo(world):
    client, pk = world["client"], world["profile"].pk
    ids = ",".join(str(i.pk) for i in world["items"])
    shown = client.post(f"/mappings/profiles/{pk}/preview", {"ids": ids}, HTTP_HX_REQUEST="true")
    assert '<code class="caption">x</code>' in shown.content.decode()
    client.post(f"/mappings/profiles/{pk}/apply", {"ids": ids}, HTTP_HX_REQUEST="true")
    operation = Operation.objects.get(kind=Operation.Kind.MAP)
    client.post(f"/mappings/profiles/{pk}/operations/{operation.pk}/undo", HTTP_HX_REQUEST="true")
    assert not TagSet.objects.filter(slot=slots.mapping(pk)).exists()


def test_suggestion_accept_creates_rule(world):
    response = world["client"].post(
        f"/mappings/profiles/{world['profile'].pk}/suggestions/decide",
        {"source": "b", "target": "b", "verb": "accept"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert TagMapping.objects.filter(mapping_set=world["set"], source_tag__name="b").exists()


def test_viewer_cannot_add_rules(client, viewer, world):
    client.force_login(viewer)
    response = client.post(f"/mappings/sets/{world['set'].pk}/rules/add", {"source": "b", "action": "drop"})
    assert response.status_code == 403


def test_unmapped_report_links_to_a_prefilled_rule_form(world):
    client, pk = world["client"], world["profile"].pk
    item = world["items"][0]
    assign([(item.pk, TagSet.Kind.CURATED, tags_make(["qq"], vocabulary=vocabulary_default())["qq"].pk)])
    shown = client.post(f"/mappings/profiles/{pk}/preview", {"ids": str(item.pk)}, HTTP_HX_REQUEST="true")
    link = f"/mappings/sets/{world['set'].pk}/?source=qq"
    assert link in shown.content.decode()
    form = client.get(link).content.decode()
    assert 'value="qq"' in form


def test_the_unmapped_filter_lists_source_tags_in_use_without_a_rule(world):
    from apps.tags.models import Tag

    Tag.objects.filter(vocabulary=vocabulary_default(), name__in=["a", "b"]).update(media_count=2)
    page = world["client"].get(f"/mappings/sets/{world['set'].pk}/?action=unmapped")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="unmapped-table"' in body
    assert "<td>b</td><td>2</td>" in body
    assert "<td>a</td>" not in body  # "a" has a rule
    assert "?source=b#rule-form" in body
    none = world["client"].get(f"/mappings/sets/{world['set'].pk}/?action=unmapped&tag=zz")
    assert "has a rule" in none.content.decode()


def test_refresh_stale_items_applies_the_profile_to_exactly_those(world):
    from apps.mappings.services.rules import mapping_rules_append
    from tests.mappings.factories import rules

    client, profile, items = world["client"], world["profile"], world["items"]
    client.post(f"/mappings/profiles/{profile.pk}/apply", {"ids": str(items[0].pk)})
    page = client.get(f"/mappings/profiles/{profile.pk}/")
    assert b'hx-vals=\'{"q": "has:stale_mapping"}\'' in page.content
    mapping_rules_append(mapping_set=world["set"], rules=rules(("b", "x")))  # the set moves on
    refreshed = client.post(f"/mappings/profiles/{profile.pk}/apply", {"q": "has:stale_mapping"})
    assert refreshed.status_code == 200
    latest = Operation.objects.filter(kind=Operation.Kind.MAP).latest("pk")
    assert latest.params["items"] == 1
    assert (
        client.post(f"/mappings/profiles/{profile.pk}/apply", {"q": "has:stale_mapping"}).status_code == 200
    )
    assert Operation.objects.filter(kind=Operation.Kind.MAP).latest("pk").params["items"] == 0
