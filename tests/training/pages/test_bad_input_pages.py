"""Hostile and malformed input to the training pages (docs/training.md#pages): the editor, the
TI form and the base-model form answer 422 with the problem beside its field, never a 500,
and save nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.training.models import BaseModelProfile, TextualInversion, TrainingSession
from tests.training import factories
from tests.training.pages.helpers import editor_data, grant_training, profile_form, ti_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainer(curator) -> Client:  # type: ignore[no-untyped-def]
    c = Client(raise_request_exception=False)
    c.force_login(grant_training(curator))
    return c


@pytest.fixture
def faces():  # type: ignore[no-untyped-def]
    return factories.dataset("Faces", factories.items([["smile"], ["open_mouth"]]))


def test_alternate_weights_with_a_huge_number_are_a_form_error(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    """int() refuses over 4300 digits: the form must catch it before."""
    for text in ("caption = " + "9" * 4500, "caption = 99999999999"):
        data = editor_data(datasets=[{"dataset": faces.pk}], description_weights=text)
        response = trainer.post("/training/new", data)
        assert response.status_code == 422, text[:30]
        assert "whole number from 0 to 1000" in response.content.decode()
    out_of_range = editor_data(datasets=[{"dataset": faces.pk}], description_weights="caption = 5000")
    response = trainer.post("/training/new", out_of_range)
    assert response.status_code == 422
    assert "outside 0..1000" in response.content.decode()
    assert not TrainingSession.objects.exists()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"name": "\u200b\u200b", "slug": "zw"}, "visible character"),
        ({"name": "evil\u202etxt", "slug": "rtl"}, "override characters"),
        ({"target_root": "/srv/../etc"}, "no . or .. segments"),
        ({"target_root": "/srv/$(id)"}, "no quotes, $"),
        ({"learning_rate": "1e300"}, "at most 10"),
        ({"name": "🎉", "slug": ""}, "give a slug"),
    ],
)
def test_editor_refusals_are_422_with_the_reason(trainer: Client, faces, over, message) -> None:  # type: ignore[no-untyped-def]
    response = trainer.post("/training/new", editor_data(datasets=[{"dataset": faces.pk}], **over))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not TrainingSession.objects.exists()


def test_tampered_formset_counts_are_form_errors(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    for total in ("abc", "-1", "100000"):
        data = editor_data(datasets=[{"dataset": faces.pk}])
        data["ds-TOTAL_FORMS"] = total
        response = trainer.post("/training/new", data)
        assert response.status_code == 422, total
    assert not TrainingSession.objects.exists()


def test_ti_form_refuses_shell_words_and_unclean_roots(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    for over, message in [
        ({"init_word": ";"}, "letters and digits only"),
        ({"init_word": "$HOME"}, "letters and digits only"),
        ({"target_root": "/a/../b"}, "no . or .. segments"),
    ]:
        response = trainer.post("/training/ti/new", ti_form(faces, **over))
        assert response.status_code == 422, over
        assert message in response.content.decode(), over
    assert not TextualInversion.objects.exists()


def test_base_model_form_refuses_refs_that_break_launch_scripts(trainer: Client) -> None:
    for over in ({"source_ref": "/m/$(id).safetensors"}, {"diffusers_ref": 'org/"x"'}, {"slug": "4242"}):
        response = trainer.post("/training/base-models/new", profile_form(**over))
        assert response.status_code == 422, over
    assert not BaseModelProfile.objects.filter(seeded=False).exists()
