"""Textual Inversion and base-model pages (docs/training.md#pages)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.training.models import TextualInversion, TrainingExport
from tests.training import factories
from tests.training.pages.helpers import grant_training, profile_form, ti_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainer(client: Client, curator) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(grant_training(curator))
    return client


@pytest.fixture
def faces():  # type: ignore[no-untyped-def]
    return factories.dataset("Faces", factories.items([["smile"], ["open_mouth"]]))


def test_ti_list_empty_state(trainer: Client) -> None:
    body = trainer.get("/training/ti/").content.decode()
    assert "No Textual Inversion sets yet" in body
    assert 'href="/training/ti/new"' in body


def test_create_edit_and_export_a_ti_set(trainer: Client, faces, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_TRAINING_EXPORT_DIR = str(tmp_path)
    assert trainer.get("/training/ti/new").status_code == 200
    response = trainer.post("/training/ti/new", ti_form(faces))
    assert response.status_code == 303, response.content.decode()[-3000:]
    ti = TextualInversion.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/training/ti/{ti.pk}/?saved=1"
    assert (ti.token, ti.num_vectors, ti.targets, ti.version) == ("mychartok", 2, ["kohya", "a1111"], 1)
    edited = trainer.post(f"/training/ti/{ti.pk}/", ti_form(faces, repeats=4))
    assert edited.status_code == 303
    ti.refresh_from_db()
    assert (ti.repeats, ti.version) == (4, 2)
    assert "mychartok" in trainer.get("/training/ti/").content.decode()
    assert f'hx-get="/training/ti/{ti.pk}/preview"' in trainer.get(f"/training/ti/{ti.pk}/").content.decode()
    preview = trainer.get(f"/training/ti/{ti.pk}/preview", HTTP_HX_REQUEST="true").content.decode()
    assert preview.count('class="preview-item"') == 2
    assert "TI (kohya)" in preview
    assert "TI (AUTOMATIC1111)" in preview
    assert "<code>mychartok" in preview  # the token leads the kohya and OneTrainer lines
    started = trainer.post(f"/training/ti/{ti.pk}/exports", {"target": "zip"})
    assert started.status_code == 303
    assert TrainingExport.objects.get().textual_inversion_id == ti.pk


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"token": "A b"}, "token"),
        ({"dataset": "", "query": ""}, "dataset"),
        ({"base_model_slug": "sdxl", "targets": ["a1111"]}, "targets"),
        ({"query": "(smile"}, "dataset"),
    ],
)
def test_ti_errors_land_beside_the_field_and_nothing_is_saved(trainer: Client, faces, over, field) -> None:  # type: ignore[no-untyped-def]
    from apps.training.models import BaseModelProfile

    if "base_model_slug" in over:
        over = {**over, "base_model": BaseModelProfile.objects.get(slug=over.pop("base_model_slug")).pk}
    response = trainer.post("/training/ti/new", ti_form(faces, **over))
    assert response.status_code == 422
    body = response.content.decode()
    assert f'data-field-error="{field}"' in body or "Nothing was saved" in body
    assert not TextualInversion.objects.exists()


def test_ti_permissions_and_404(client: Client, viewer, faces) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert client.get("/training/ti/").status_code == 200
    assert client.get("/training/ti/new").status_code == 403
    assert client.post("/training/ti/new", ti_form(faces)).status_code == 403
    assert client.get("/training/ti/999/").status_code == 404
    assert not TextualInversion.objects.exists()


def test_ti_delete(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    trainer.post("/training/ti/new", ti_form(faces))
    ti = TextualInversion.objects.get()
    assert trainer.post(f"/training/ti/{ti.pk}/delete").status_code == 303
    assert not TextualInversion.objects.exists()


def test_base_models_are_listed_with_shipped_ones_read_only(trainer: Client) -> None:
    body = trainer.get("/training/base-models/").content.decode()
    assert "sd15" in body
    assert "sdxl" in body
    assert "shipped" in body
    detail = trainer.get("/training/base-models/sd15/")
    assert detail.status_code == 200
    assert "shipped, read-only" in detail.content.decode()
    assert "<form" not in detail.content.decode().split("<main>")[1]
    assert trainer.get("/training/base-models/nope/").status_code == 404
    assert trainer.post("/training/base-models/").status_code == 405


def test_custom_profiles_are_created_edited_and_deleted(trainer: Client) -> None:
    from apps.training.models import BaseModelProfile

    assert trainer.get("/training/base-models/new").status_code == 200
    created = trainer.post("/training/base-models/new", profile_form())
    assert created.status_code == 303
    assert created["Location"] == "/training/base-models/my-sd1-mix/"
    profile = BaseModelProfile.objects.get(slug="my-sd1-mix")
    assert (profile.clip_skip, profile.seeded) == (2, False)
    detail = trainer.get(created["Location"]).content.decode()
    assert 'href="/training/base-models/my-sd1-mix/edit"' in detail
    edited = trainer.post(
        "/training/base-models/my-sd1-mix/edit", profile_form(resolution=768, bucket_max=1536)
    )
    assert edited.status_code == 303
    profile.refresh_from_db()
    assert profile.resolution == 768
    assert trainer.post("/training/base-models/my-sd1-mix/delete").status_code == 303
    assert not BaseModelProfile.objects.filter(slug="my-sd1-mix").exists()


def test_profile_errors_are_beside_the_field_and_nothing_is_saved(trainer: Client) -> None:
    from apps.training.models import BaseModelProfile

    count = BaseModelProfile.objects.count()
    response = trainer.post("/training/base-models/new", profile_form(bucket_step=48))
    assert response.status_code == 422
    assert 'data-field-error="bucket_step"' in response.content.decode()
    diffusers = trainer.post("/training/base-models/new", profile_form(supported_trainers=["diffusers"]))
    assert diffusers.status_code == 422
    assert 'data-field-error="diffusers_ref"' in diffusers.content.decode()
    assert BaseModelProfile.objects.count() == count


def test_shipped_profiles_cannot_be_edited_or_deleted_on_pages(trainer: Client) -> None:
    assert trainer.get("/training/base-models/sd15/edit").status_code == 409
    assert trainer.post("/training/base-models/sd15/edit", profile_form(slug="sd15")).status_code == 409
    assert trainer.post("/training/base-models/sd15/delete").status_code == 409
    assert "Edit</a>" not in trainer.get("/training/base-models/sd15/").content.decode()


def test_readers_cannot_create_profiles(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert client.get("/training/base-models/").status_code == 200
    assert client.get("/training/base-models/new").status_code == 403
    assert client.post("/training/base-models/new", profile_form()).status_code == 403
