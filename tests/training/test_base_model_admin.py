"""Base-model profiles edited in the admin go through the service checks the API runs
(docs/training.md#admin): a bad value is a form error on its field and nothing is saved.
Runs on SQLite and on MariaDB."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from apps.training.models import BaseModelProfile
from apps.training.services.base_models import base_model_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def _form(profile: BaseModelProfile, **changes: Any) -> dict[str, Any]:
    """The change form's POST body for `profile`, with `changes`."""
    plain = (
        "slug name description kind family prediction resolution bucket_min bucket_max bucket_step "
        "onetrainer_quantum max_tokens clip_skip source_kind source_ref source_sha256 diffusers_ref"
    )
    values: dict[str, Any] = {name: getattr(profile, name) for name in plain.split()}
    for name in ("v_parameterization", "score_tags_prefix", "booru_text"):
        if getattr(profile, name):
            values[name] = "on"
    values["vocabulary"] = profile.vocabulary_id or ""
    values["mapping_profile"] = profile.mapping_profile_id or ""
    values["supported_trainers"] = json.dumps(profile.supported_trainers)
    values["diffusers_ref"] = values["diffusers_ref"] or ""
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def custom() -> BaseModelProfile:
    return base_model_create(slug="my-sd", name="My SD", family="sd1", source_ref="models/my.safetensors")


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"max_tokens": 100}, "max_tokens", "75, 150 or 225"),
        ({"bucket_step": 7}, None, "bucket"),
        ({"supported_trainers": '["kohya", "mystery"]'}, "supported_trainers", "unknown trainer"),
        ({"source_ref": 'models/"quoted".safetensors'}, "source_ref", "no quotes"),
        ({"source_sha256": "ABC"}, "source_sha256", "64 lower-case hex"),
        ({"family": "sd2", "prediction": "epsilon"}, "prediction", "predict v"),
    ],
)
def test_bad_values_are_form_errors_and_nothing_is_saved(admin_client, custom, changes, field, text) -> None:  # type: ignore[no-untyped-def]
    url = f"/admin/training/basemodelprofile/{custom.pk}/change/"
    response = admin_client.post(url, _form(custom, **changes))
    assert response.status_code == 200  # the form again, not a redirect
    form = response.context["adminform"].form
    assert not form.is_valid()
    errors = " ".join(str(m) for messages in form.errors.values() for m in messages)
    assert text in errors, form.errors
    if field is not None and field != "bucket_step":
        assert field in form.errors, form.errors
    fresh = BaseModelProfile.objects.get(pk=custom.pk)
    assert (fresh.max_tokens, fresh.bucket_step, fresh.family, fresh.source_ref) == (
        75,
        64,
        "sd1",
        "models/my.safetensors",
    )


def test_good_values_save_through_the_service(admin_client, custom) -> None:  # type: ignore[no-untyped-def]
    url = f"/admin/training/basemodelprofile/{custom.pk}/change/"
    response = admin_client.post(url, _form(custom, max_tokens=150, name="My SD v2"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    fresh = BaseModelProfile.objects.get(pk=custom.pk)
    assert (fresh.max_tokens, fresh.name) == (150, "My SD v2")


def test_adding_runs_the_same_checks(admin_client, custom) -> None:  # type: ignore[no-untyped-def]
    body = _form(custom, slug="other-sd", name="Other SD")
    bad = admin_client.post("/admin/training/basemodelprofile/add/", {**body, "clip_skip": 40})
    assert bad.status_code == 200
    assert "clip_skip" in bad.context["adminform"].form.errors
    assert not BaseModelProfile.objects.filter(slug="other-sd").exists()
    duplicate = admin_client.post("/admin/training/basemodelprofile/add/", {**body, "slug": "my-sd"})
    assert duplicate.status_code == 200
    ok = admin_client.post("/admin/training/basemodelprofile/add/", body)
    assert ok.status_code == 302
    assert BaseModelProfile.objects.get(slug="other-sd").name == "Other SD"


def test_shipped_profiles_keep_their_frozen_fields(admin_client) -> None:  # type: ignore[no-untyped-def]
    shipped = BaseModelProfile.objects.get(slug="sd15")
    url = f"/admin/training/basemodelprofile/{shipped.pk}/change/"
    frozen = admin_client.post(url, _form(shipped, resolution=640))
    assert frozen.status_code == 200
    assert "shipped profile" in str(frozen.context["adminform"].form.errors)
    assert BaseModelProfile.objects.get(pk=shipped.pk).resolution == shipped.resolution
    moved = admin_client.post(url, _form(shipped, source_ref="weights/sd15.safetensors"))
    assert moved.status_code == 302, moved.context["adminform"].form.errors
    assert BaseModelProfile.objects.get(pk=shipped.pk).source_ref == "weights/sd15.safetensors"


def test_deleting_a_shipped_profile_is_refused(admin_client) -> None:  # type: ignore[no-untyped-def]
    shipped = BaseModelProfile.objects.get(slug="sd15")
    admin_client.post(f"/admin/training/basemodelprofile/{shipped.pk}/delete/", {"post": "yes"})
    assert BaseModelProfile.objects.filter(pk=shipped.pk).exists()
