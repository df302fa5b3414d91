"""Scheme pages: list and create, the editor with its DAG, runs with per-step progress, schedules
(docs/taggers.md#pages)."""

from __future__ import annotations

import json

import pytest

from apps.taggers.models import SchemeRun, SchemeSchedule, TaggingScheme
from apps.taggers.services.scheme_runs import scheme_run_plan
from apps.taggers.services.schemes import scheme_create
from tests.taggers.wd_fixtures import example_steps, tagger_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def scheme():
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    wd = tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test")
    echo = tagger_make("echo", "captioner", params={"backend": "echo"})
    return scheme_create(name="example", body={"steps": example_steps(persons, wd, echo)})


def test_the_empty_list_explains_what_a_scheme_is(signed_in) -> None:
    page = signed_in.get("/taggers/schemes/").content.decode()
    assert "No tagging schemes yet" in page


def test_creating_a_scheme_from_the_page(signed_in) -> None:
    tagger_make("persons", "detector", params={"backend": "fixed"})
    body = {"steps": [{"key": "persons", "tagger": "persons"}]}
    response = signed_in.post(
        "/taggers/schemes/", {"name": "one", "description": "", "definition": json.dumps(body)}
    )
    assert response.status_code == 303
    assert TaggingScheme.objects.filter(name="one").exists()


def test_an_invalid_definition_names_the_step_and_saves_nothing(signed_in, scheme) -> None:
    steps = scheme.current_definition.body["steps"]
    steps[1]["input"] = "regions:picture"
    response = signed_in.post(
        f"/taggers/schemes/{scheme.pk}/",
        {"name": scheme.name, "description": "", "definition": json.dumps({"steps": steps})},
    )
    assert response.status_code == 422
    assert "Step &#x27;who&#x27;" in response.content.decode()
    assert scheme.definitions.count() == 1


def test_bad_json_is_a_422(signed_in, scheme) -> None:
    response = signed_in.post(f"/taggers/schemes/{scheme.pk}/", {"name": "x", "definition": "{"})
    assert response.status_code == 422
    assert "Not valid JSON" in response.content.decode()


def test_the_editor_draws_every_step_and_edge(signed_in, scheme) -> None:
    page = signed_in.get(f"/taggers/schemes/{scheme.pk}/").content.decode()
    for key in ("persons", "who", "picture", "describe", "background"):
        assert f'data-step="{key}"' in page
    # persons→who, persons→describe, who→describe, picture→describe, persons→background
    assert page.count("marker-end") == 5


def test_running_from_the_page_shows_the_run_with_its_steps(signed_in, scheme) -> None:
    response = signed_in.post(f"/taggers/schemes/{scheme.pk}/run", {"selection": "all"})
    run = SchemeRun.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/taggers/schemes/runs/{run.pk}/"
    scheme_run_plan(job_id=run.job_id)
    page = signed_in.get(f"/taggers/schemes/runs/{run.pk}/").content.decode()
    assert 'data-step="persons"' in page
    assert 'hx-trigger="every 2s"' in page


def test_schedules_page_adds_toggles_and_deletes(signed_in, scheme) -> None:
    page = signed_in.get("/taggers/schemes/schedules/").content.decode()
    assert "No schedules yet" in page
    added = signed_in.post(
        "/taggers/schemes/schedules/",
        {"scheme": scheme.pk, "crontab": "0 3 * * *", "selection": "new_since_last"},
    )
    schedule = SchemeSchedule.objects.get()
    assert added.status_code == 303
    signed_in.post(f"/taggers/schemes/schedules/{schedule.pk}/toggle")
    schedule.refresh_from_db()
    assert schedule.enabled is False
    signed_in.post(f"/taggers/schemes/schedules/{schedule.pk}/delete")
    assert not SchemeSchedule.objects.exists()


def test_a_bad_crontab_on_the_page_is_a_422(signed_in, scheme) -> None:
    response = signed_in.post(
        "/taggers/schemes/schedules/", {"scheme": scheme.pk, "crontab": "every day", "selection": "all"}
    )
    assert response.status_code == 422
    assert "five fields" in response.content.decode()


def test_a_viewer_cannot_run(client, viewer, scheme) -> None:
    client.force_login(viewer)
    assert client.post(f"/taggers/schemes/{scheme.pk}/run", {"selection": "all"}).status_code == 403
