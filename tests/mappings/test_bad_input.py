"""Bad input to the mapping API, pages and command: a 4xx naming what to fix, never a 500, and
nothing half-saved (issue 12's bad-input goal, docs/mappings.md#rules)."""

from __future__ import annotations

import pytest

from apps.mappings.models import MappingProfile, MappingSet, SuggestionRejection
from apps.tags.models import Operation

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # past every integer column, and past SQLite's 64 bits


@pytest.mark.parametrize("ref", ["²", HUGE, "-1"])
def test_a_vocabulary_or_step_that_is_no_id_is_400_naming_the_field(api, world, ref):
    body = {"slug": "s2", "source_vocabulary": ref, "target_vocabulary": "e621"}
    response = api.post("/api/tag-mappings/", body, format="json")
    assert response.status_code == 400, response.content
    assert "source_vocabulary" in response.json()["message"]
    body = {"slug": "p2", "target_vocabulary": "e621", "steps": ["d2e", ref]}
    response = api.post("/api/mapping-profiles/", body, format="json")
    assert response.status_code == 400, response.content
    assert "steps" in response.json()["message"]
    assert not MappingSet.objects.filter(slug="s2").exists()
    assert not MappingProfile.objects.filter(slug="p2").exists()


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("preview", {"ids": [int(HUGE)]}),
        ("apply", {"ids": [int(HUGE)]}),
        ("undo", {"operation": int(HUGE)}),
    ],
)
def test_ids_past_the_columns_are_400(api, world, url, body):
    response = api.post(f"/api/mapping-profiles/{world['profile'].pk}/{url}", body, format="json")
    assert response.status_code == 400, response.content
    assert not Operation.objects.exists()


def test_a_version_or_after_past_the_columns_is_400(api, world):
    set_id = world["set"].pk
    body = {"rules": [{"source": "b", "action": "drop"}], "version": int(HUGE)}
    assert api.post(f"/api/tag-mappings/{set_id}/append-mapping", body, format="json").status_code == 400
    assert api.get(f"/api/tag-mappings/{set_id}/rules?after={HUGE}").status_code == 400
    patch = api.patch(f"/api/mapping-profiles/{world['profile'].pk}/", {"version": int(HUGE)}, format="json")
    assert patch.status_code == 400


@pytest.mark.parametrize("after", ["abc", HUGE, "-3"])
def test_the_rules_page_with_a_bad_after_is_400(world, after):
    response = world["client"].get(f"/mappings/sets/{world['set'].pk}/?after={after}")
    assert response.status_code in (400, 422)
    assert b"after" in response.content


def test_the_export_page_with_an_unknown_format_is_4xx(world):
    response = world["client"].get(f"/mappings/sets/{world['set'].pk}/export?format=xls")
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("field", ["source_id", "target_id"])
def test_rejecting_with_a_bad_tag_id_is_4xx_and_records_nothing(world, field):
    ids = {"source_id": "1", "target_id": "1", field: "abc"}
    response = world["client"].post(
        f"/mappings/profiles/{world['profile'].pk}/suggestions/decide", {"verb": "reject", **ids}
    )
    assert 400 <= response.status_code < 500
    assert not SuggestionRejection.objects.exists()


def test_rejecting_an_unknown_tag_is_4xx(world):
    response = world["client"].post(
        f"/mappings/profiles/{world['profile'].pk}/suggestions/decide",
        {"verb": "reject", "source_id": HUGE, "target_id": "1"},
    )
    assert 400 <= response.status_code < 500
    assert not SuggestionRejection.objects.exists()


def test_a_profile_edit_that_removes_every_step_is_422_and_changes_nothing(world):
    profile = world["profile"]
    response = world["client"].post(
        f"/mappings/profiles/{profile.pk}/edit",
        {
            "steps": " , ",
            "input_scope": "curated",
            "min_confidence": "0",
            "unmapped_policy": "drop",
            "implication_policy": "as_is",
            "separator": ", ",
            "max_tags": "0",
        },
    )
    assert response.status_code == 422
    profile.refresh_from_db()
    assert (profile.version, profile.unmapped_policy) == (1, "match_name")


def test_a_profile_patch_with_a_bad_step_changes_nothing(api, world):
    profile = world["profile"]
    response = api.patch(
        f"/api/mapping-profiles/{profile.pk}/",
        {"unmapped_policy": "drop", "steps": ["d2e", "nope"]},
        format="json",
    )
    assert response.status_code == 400
    assert "nope" in response.json()["message"]
    profile.refresh_from_db()
    assert (profile.version, profile.unmapped_policy) == (1, "match_name")


def test_rules_with_a_non_list_targets_or_bad_types_are_400(api, world):
    set_id = world["set"].pk
    for rule in (
        {"source": "b", "targets": "x"},
        {"source": "b", "targets": {"x": 1}},
        {"source": "b", "priority": "high"},
        {"source": "b", "type": "nope", "targets": ["x"]},
        {"source": ["b"], "targets": ["x"]},
    ):
        response = api.post(f"/api/tag-mappings/{set_id}/append-mapping", {"rules": [rule]}, format="json")
        assert response.status_code == 400, (rule, response.content)
    world["set"].refresh_from_db()
    assert world["set"].version == 1


@pytest.mark.parametrize("ids", ["1,abc", "²", HUGE])
def test_the_preview_and_apply_panels_name_bad_ids_and_apply_nothing(world, ids):
    for url in ("preview", "apply"):
        response = world["client"].post(f"/mappings/profiles/{world['profile'].pk}/{url}", {"ids": ids})
        assert response.status_code == 422
        assert b"ids" in response.content
    assert not Operation.objects.exists()


def test_without_js_preview_apply_and_their_errors_show_on_the_profile_page(world):
    client, profile = world["client"], world["profile"]
    ids = ",".join(str(i.pk) for i in world["items"])
    previewed = client.post(f"/mappings/profiles/{profile.pk}/preview", {"ids": ids})
    assert previewed.status_code == 200
    assert b"Settings" in previewed.content
    assert b'<code class="caption">x</code>' in previewed.content
    refused = client.post(f"/mappings/profiles/{profile.pk}/apply", {"q": "has:nonsense"})
    assert refused.status_code == 422
    assert b"Settings" in refused.content
    assert b'class="alert error"' in refused.content
    applied = client.post(f"/mappings/profiles/{profile.pk}/apply", {"ids": ids})
    assert applied.status_code == 200
    assert b"Operation #" in applied.content


@pytest.mark.parametrize(
    ("field", "value"), [("target_vocabulary", "default"), ("target_vocabulary", "nope"), ("slug", "other")]
)
def test_a_profile_patch_cannot_move_its_slug_or_target_vocabulary(api, world, field, value):
    profile = world["profile"]
    response = api.patch(f"/api/mapping-profiles/{profile.pk}/", {"max_tags": 3, field: value}, format="json")
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"{field}:")
    profile.refresh_from_db()
    assert (profile.version, profile.max_tags, profile.slug) == (1, 0, "e6")
    same = api.patch(
        f"/api/mapping-profiles/{profile.pk}/",
        {"max_tags": 3, "target_vocabulary": "e621", "slug": "e6"},
        format="json",
    )
    assert same.status_code == 200
