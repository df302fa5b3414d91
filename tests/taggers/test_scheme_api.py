"""The tagging-schemes API: validation answers 400 naming the step (TAGGERS §10 item 27), CRUD,
runs and schedules, bad input (docs/api.md#tagging-schemes)."""

from __future__ import annotations

import pytest

from apps.jobs.models import Job
from apps.taggers.models import SchemeDefinition, SchemeRun, TaggerVersion
from tests.taggers.wd_fixtures import example_steps, tagger_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def taggers():
    return {
        "persons": tagger_make("persons", "detector", params={"backend": "fixed"}),
        "wd": tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test"),
        "echo": tagger_make("echo", "captioner", params={"backend": "echo"}),
    }


def _steps(taggers):
    return example_steps(taggers["persons"], taggers["wd"], taggers["echo"])


def _post(api, steps, name="s1"):
    return api.post("/api/tagging-schemes/", {"name": name, "definition": {"steps": steps}}, format="json")


def test_create_stores_an_immutable_definition_with_its_sha256(api, taggers) -> None:
    response = _post(api, _steps(taggers))
    body = response.json()
    assert response.status_code == 201, body
    assert len(body["definition_sha256"]) == 64
    assert [s["key"] for s in body["definition"]["steps"]] == [
        "persons",
        "who",
        "picture",
        "describe",
        "background",
    ]
    assert body["definition"]["steps"][0]["tagger"] == taggers["persons"].pk


def test_a_cycle_is_a_400_naming_a_step_on_it(api, taggers) -> None:
    steps = _steps(taggers)
    steps[0]["after"] = ["background"]  # persons ← background ← persons
    response = _post(api, steps)
    assert response.status_code == 400
    assert response.json()["details"]["step"] in {"persons", "background"}
    assert "cycle" in response.json()["message"]


def test_regions_of_a_non_detector_is_a_400_naming_the_step(api, taggers) -> None:
    steps = _steps(taggers)
    steps[1]["input"] = "regions:picture"
    response = _post(api, steps)
    assert response.status_code == 400
    assert response.json()["details"]["step"] == "who"
    assert "detector" in response.json()["message"]


def test_a_placeholder_naming_no_ancestor_is_a_400_naming_the_step(api, taggers) -> None:
    steps = _steps(taggers)
    steps[3]["after"] = []  # {character} has no region-tagging ancestor now
    response = _post(api, steps)
    assert response.status_code == 400
    assert response.json()["details"]["step"] == "describe"
    assert "{character}" in response.json()["message"]


def test_a_placeholder_naming_an_unknown_step_is_a_400(api, taggers) -> None:
    steps = _steps(taggers)
    steps[3]["prompt"] = "Context: {tags:nowhere}"
    response = _post(api, steps)
    assert response.status_code == 400
    assert response.json()["details"]["step"] == "describe"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "Bad Key"}, ""),
        ({"tagger": "missing"}, "tagger"),
        ({"tagger": 2**70}, "tagger"),
        ({"tagger": 0}, "tagger"),
        ({"tagger": 1.5}, "tagger"),
        ({"tagger": {"id": 1}}, "tagger"),
        ({"tagger": "x" * 500}, "tagger"),
        ({"version": 2**70}, "version"),
        ({"after": "who"}, "after"),
        ({"input": "regions:"}, "input"),
        ({"version": 7}, "version"),
        ({"version": "latest"}, "version"),
        ({"input": "pixels"}, "input"),
        ({"params": [1]}, "params"),
        ({"prompt": "hello"}, "prompt"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_step_fields_are_400s(api, taggers, change, field) -> None:
    steps = _steps(taggers)
    steps[0] = {**steps[0], **change}
    response = _post(api, steps)
    assert response.status_code == 400, response.json()
    assert response.json()["details"].get("field", "") == field


def test_duplicate_keys_are_a_400(api, taggers) -> None:
    steps = _steps(taggers)
    steps[2]["key"] = "who"
    response = _post(api, steps)
    assert response.status_code == 400
    assert "unique" in response.json()["message"]


def test_a_pinned_version_must_be_ready(api, taggers) -> None:
    TaggerVersion.objects.create(tagger=taggers["wd"], number=2, status=TaggerVersion.Status.TRAINING)
    steps = _steps(taggers)
    steps[2]["version"] = 2
    response = _post(api, steps)
    assert response.status_code == 400
    assert "training" in response.json()["message"]


@pytest.mark.parametrize("definition", [None, [], {"steps": []}, {"steps": "x"}, {"steps": [1]}])
def test_malformed_definitions_are_400s(api, definition) -> None:
    response = api.post("/api/tagging-schemes/", {"name": "x", "definition": definition}, format="json")
    assert response.status_code == 400


def test_a_new_body_is_a_new_definition_and_the_old_one_stays(api, taggers) -> None:
    scheme = _post(api, _steps(taggers)).json()
    steps = _steps(taggers)[:1]
    response = api.patch(
        f"/api/tagging-schemes/{scheme['id']}/", {"definition": {"steps": steps}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["definition_sha256"] != scheme["definition_sha256"]
    assert SchemeDefinition.objects.filter(scheme_id=scheme["id"]).count() == 2


def test_the_same_name_twice_is_a_409(api, taggers) -> None:
    _post(api, _steps(taggers))
    assert _post(api, _steps(taggers)).status_code == 409


def test_run_starts_a_pending_run_with_its_job(api, taggers) -> None:
    scheme = _post(api, _steps(taggers)).json()
    response = api.post(f"/api/tagging-schemes/{scheme['id']}/run", {"selection": "all"}, format="json")
    body = response.json()
    assert response.status_code == 202, body
    assert body["status"] == "pending"
    assert Job.objects.get(pk=body["job"]).params["task"] == "schemes.run"
    assert api.get(f"/api/scheme-runs/{body['id']}/").json()["id"] == body["id"]
    assert [r["id"] for r in api.get(f"/api/tagging-schemes/{scheme['id']}/runs").json()["results"]] == [
        body["id"]
    ]


def test_a_second_run_while_one_is_pending_is_a_409(api, taggers) -> None:
    scheme = _post(api, _steps(taggers)).json()
    api.post(f"/api/tagging-schemes/{scheme['id']}/run", {}, format="json")
    response = api.post(f"/api/tagging-schemes/{scheme['id']}/run", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "taggers.scheme_run_active"


@pytest.mark.parametrize(
    "payload",
    [
        {"selection": "explicit"},
        {"selection": "all", "item_ids": [1]},
        {"selection": "sometimes"},
        {"selection": "explicit", "item_ids": [0]},
        {"selection": "explicit", "item_ids": [2**40]},
        {"selection": "explicit", "item_ids": [999999]},
    ],
)
def test_bad_run_input_is_a_4xx(api, taggers, payload) -> None:
    scheme = _post(api, _steps(taggers)).json()
    response = api.post(f"/api/tagging-schemes/{scheme['id']}/run", payload, format="json")
    assert response.status_code in (400, 404), response.json()
    assert not SchemeRun.objects.exists()


def test_schedules_are_created_listed_changed_and_deleted(api, taggers) -> None:
    scheme = _post(api, _steps(taggers)).json()
    created = api.post(
        f"/api/tagging-schemes/{scheme['id']}/schedules", {"crontab": "*/5 * * * *"}, format="json"
    )
    assert created.status_code == 201, created.json()
    schedule = created.json()
    assert schedule["selection"] == "new_since_last"
    assert schedule["next_run_at"] is not None
    listed = api.get(f"/api/tagging-schemes/{scheme['id']}/schedules").json()
    assert [s["id"] for s in listed] == [schedule["id"]]
    changed = api.patch(f"/api/scheme-schedules/{schedule['id']}/", {"enabled": False}, format="json").json()
    assert (changed["enabled"], changed["next_run_at"]) == (False, None)
    assert api.delete(f"/api/scheme-schedules/{schedule['id']}/").status_code == 204


@pytest.mark.parametrize(
    "crontab", ["* * *", "99 * * * *", {"second": "1"}, 5, {"minute": []}, {"day_of_week": "1," * 200}]
)
def test_bad_crontabs_are_400s(api, taggers, crontab) -> None:
    scheme = _post(api, _steps(taggers)).json()
    response = api.post(f"/api/tagging-schemes/{scheme['id']}/schedules", {"crontab": crontab}, format="json")
    assert response.status_code == 400


def test_a_viewer_reads_but_cannot_run(client, viewer, taggers) -> None:
    from rest_framework.test import APIClient

    reader = APIClient()
    reader.force_authenticate(viewer)
    assert reader.get("/api/tagging-schemes/").status_code == 200
    assert (
        reader.post("/api/tagging-schemes/", {"name": "x", "definition": {}}, format="json").status_code
        == 403
    )


def test_deleting_a_scheme_with_an_active_run_is_a_409(api, taggers) -> None:
    scheme = _post(api, _steps(taggers)).json()
    api.post(f"/api/tagging-schemes/{scheme['id']}/run", {}, format="json")
    assert api.delete(f"/api/tagging-schemes/{scheme['id']}/").status_code == 409


def test_unknown_scheme_is_a_404(api) -> None:
    assert api.get("/api/tagging-schemes/999999/").status_code == 404


def test_listing_runs_takes_a_fixed_number_of_queries(api, taggers, django_assert_max_num_queries) -> None:
    from apps.taggers.models import StepRun

    scheme = _post(api, _steps(taggers)).json()
    for _ in range(3):
        run_id = api.post(f"/api/tagging-schemes/{scheme['id']}/run", {}, format="json").json()["id"]
        run = SchemeRun.objects.get(pk=run_id)
        StepRun.objects.bulk_create([StepRun(run=run, step_key=k) for k in ("a", "b", "c")])
        SchemeRun.objects.filter(pk=run_id).update(status="succeeded")
    with django_assert_max_num_queries(12):
        body = api.get("/api/scheme-runs/").json()
    assert [len(r["steps"]) for r in body["results"]] == [3, 3, 3]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_param_is_a_400_naming_the_step(api, taggers, number) -> None:
    import json

    steps = _steps(taggers)
    steps[2]["params"] = {"general_threshold": "__NUMBER__"}
    raw = json.dumps({"name": "s1", "definition": {"steps": steps}}).replace('"__NUMBER__"', number)
    response = api.post("/api/tagging-schemes/", data=raw, content_type="application/json")
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"] == "taggers.scheme_invalid", body
    assert body["details"] == {"step": "picture", "field": "params"}
    assert SchemeDefinition.objects.count() == 0


@pytest.mark.parametrize(
    ("index", "params", "field"),
    [
        (2, {"general_threshold": 1.5}, "general_threshold"),
        (2, {"mcut_general": "yes"}, "mcut_general"),
        (2, {"batch_size": 0}, "batch_size"),
        (0, {"boxes": [[0.5, 0.0, 0.2, 1.0]]}, "boxes"),
        (0, {"iou": True}, "iou"),
        (0, {"extra": {"deep": [1e308, {"x": float("inf")}]}}, "params.extra.deep[1].x"),
        (4, {"max_tokens": 10**9}, "max_tokens"),
    ],
)
def test_known_params_are_type_and_range_checked(taggers, index, params, field) -> None:
    from apps.taggers.services.schemes import SchemeInvalid, scheme_create

    steps = _steps(taggers)
    steps[index]["params"] = params
    with pytest.raises(SchemeInvalid) as caught:
        scheme_create(name="s1", body={"steps": steps})
    assert caught.value.details == {"step": steps[index]["key"], "field": "params"}
    assert field in caught.value.message


def test_a_nan_in_the_page_form_is_refused_naming_the_step(taggers) -> None:
    import json

    from apps.taggers.services.schemes import SchemeInvalid, scheme_create

    steps = _steps(taggers)
    steps[0]["params"]["conf"] = "__NAN__"
    body = json.loads(json.dumps({"steps": steps}).replace('"__NAN__"', "NaN"))  # what the page parses
    with pytest.raises(SchemeInvalid, match="Step 'persons'"):
        scheme_create(name="s1", body=body)
