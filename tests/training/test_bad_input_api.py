"""Hostile and malformed input to the training API (docs/training.md#api): every case answers a
4xx with a `training.*` code and a message naming the fix, never a 500, and leaves no row
behind. Runs on SQLite and on MariaDB (which differ on NUL bytes, surrogates and collation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from apps.training.models import (
    BaseModelProfile,
    TextualInversion,
    TrainingSession,
    TrainingSessionDataset,
    TrainingSessionVersion,
)
from tests.training import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(db) -> APIClient:
    user = User.objects.create_user("trainer", password="pw-trainer-123")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="training"))
    # A 500 must show up as a status to assert on, not as an exception in the test.
    c = APIClient(raise_request_exception=False)
    c.force_authenticate(User.objects.get(pk=user.pk))
    return c


@pytest.fixture
def ds():
    return f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]]))


def _body(ds, **fields: Any) -> dict[str, Any]:
    return {"name": "Mychar LoRA", "base_model": "sd15", "datasets": [{"dataset": ds.pk}], **fields}


def _refused(response, code: str, *, status: int = 400) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == code, body
    assert body["message"], body
    return body


def _nothing_saved() -> None:
    assert not TrainingSession.objects.exists()
    assert not TrainingSessionDataset.objects.exists()
    assert not TrainingSessionVersion.objects.exists()


def test_ids_written_with_non_ascii_digits_are_unknown_refs_not_500s(client: APIClient, ds) -> None:
    """'²' passes str.isdigit() but not int(): a slug lookup that finds nothing."""
    for body, code in [
        (_body(ds, datasets=[{"dataset": "²"}]), "training.unknown_dataset"),
        (_body(ds, base_model="²"), "training.unknown_base_model"),
        (_body(ds, mapping_profile="①"), "training.unknown_mapping"),
        (_body(ds, datasets=[{"dataset": ds.pk, "subset": "³"}]), "training.unknown_dataset"),
    ]:
        _refused(client.post("/api/training-sessions", body, format="json"), code)
    _nothing_saved()
    ti = {"name": "T", "base_model": "sd15", "token": "mychrtok", "init_word": "girl", "dataset": "²"}
    _refused(client.post("/api/textual-inversions", ti, format="json"), "training.unknown_dataset")
    model = {"slug": "m", "name": "M", "family": "sd1", "vocabulary": "²"}
    _refused(client.post("/api/base-models", model, format="json"), "training.unknown_vocabulary")
    _refused(client.get("/api/base-models/²"), "training.base_model_not_found", status=404)
    huge = client.get("/api/base-models/" + "9" * 30)  # the core guard on path ids answers first
    assert huge.status_code in (400, 404), huge.content
    assert huge.json()["message"]


@pytest.mark.parametrize(
    "fields",
    [
        {"datasets": [{"class_tokens": "mychar\x00"}]},
        {"datasets": [{"licence_notes": "CC\x00BY"}]},
        {"samples": [{"prompt": "a\x00b"}]},
        {"extra_args": {"network_module": "x\x00"}},
        {"description_weights": {"cap\x00tion": 2}},
        {"color_jitter": {"\x00": 0.1}},
    ],
    ids=["class_tokens", "licence_notes", "sample", "extra_args", "weights", "jitter-key"],
)
def test_nul_bytes_inside_nested_settings_are_refused(client: APIClient, ds, fields) -> None:
    if "datasets" in fields:
        fields = {"datasets": [{"dataset": ds.pk, **fields["datasets"][0]}]}
    response = client.post("/api/training-sessions", _body(ds, **fields), format="json")
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"] in ("training.bad_text", "training.invalid"), body
    assert "control character" in body["message"] or "not a kohya argument" in body["message"], body
    _nothing_saved()


def test_lone_surrogates_inside_nested_settings_are_refused(client: APIClient, ds) -> None:
    """A JSON `\\udc00` escape decodes to a lone surrogate no database can store."""
    raw = json.dumps(_body(ds, datasets=[{"dataset": ds.pk, "class_tokens": "PLACEHOLDER"}]))
    raw = raw.replace("PLACEHOLDER", "\\udc00")
    response = client.generic("POST", "/api/training-sessions", raw, content_type="application/json")
    body = _refused(response, "training.bad_text")
    assert "datasets[0]" in body["message"]
    _nothing_saved()


def test_deeply_nested_json_is_a_parse_error_not_a_500(client: APIClient) -> None:
    raw = "[" * 100_000 + "]" * 100_000
    for url in ("/api/training-sessions", "/api/base-models", "/api/textual-inversions"):
        response = client.generic("POST", url, raw, content_type="application/json")
        assert response.status_code == 400, url
        assert "nested too deeply" in response.json()["message"]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"learning_rate": 1e300}, "learning_rate"),
        ({"max_aspect": 1e300}, "max_aspect"),
        ({"color_jitter": {"brightness": 1e308}}, "color_jitter.brightness"),
        ({"color_jitter": {"brightness": -0.5}}, "color_jitter.brightness"),
        ({"color_jitter": {"hue": 2}}, "color_jitter.hue"),
        ({"color_jitter": {"sharpness": 0.1}}, "color_jitter"),
        ({"extra_args": {"max_grad_norm": 10**40}}, "extra_args.max_grad_norm"),
        ({"extra_args": {"--bad key": 1}}, "extra_args"),
        ({"samples": [{"prompt": "a", "scale": 1e308}]}, "samples[0].scale"),
        ({"samples": [{"prompt": "a", "scale": True}]}, "samples[0].scale"),
        ({"datasets": [{"loss_weight": 1e308}]}, "datasets[0].loss_weight"),
        ({"datasets": [{"loss_weight": True}]}, "datasets[0].loss_weight"),
        ({"datasets": [{"overrides": {"item_weights": {"²": 1}}}]}, "datasets[0].overrides.item_weights"),
        (
            {"datasets": [{"overrides": {"item_weights": {"9" * 40: 1}}}]},
            "datasets[0].overrides.item_weights",
        ),
        ({"datasets": [{"class_tokens": "mychar\nsks"}]}, "datasets[0].class_tokens"),
    ],
)
def test_numbers_and_keys_out_of_range_are_refused(client: APIClient, ds, fields, where) -> None:
    if "datasets" in fields:
        fields = {"datasets": [{"dataset": ds.pk, **fields["datasets"][0]}]}
    response = client.post("/api/training-sessions", _body(ds, **fields), format="json")
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"].startswith("training."), body
    assert where in body["details"]["fields"], body
    _nothing_saved()


def test_target_root_must_be_a_clean_absolute_path(client: APIClient, ds) -> None:
    for root in ("/srv/../etc", "/srv/./x", "/srv/a\nb", '/srv/a"b', "/srv/$(id)", "/srv/`id`", "srv/x"):
        response = client.post("/api/training-sessions", _body(ds, target_root=root), format="json")
        body = _refused(response, "training.invalid")
        assert "target_root" in body["details"]["fields"], root
    _nothing_saved()
    created = client.post("/api/training-sessions", _body(ds, target_root="C:/train/mychar/"), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["target_root"] == "C:/train/mychar"
    ti = {"name": "T", "base_model": "sd15", "token": "mychrtok", "init_word": "girl", "dataset": ds.pk}
    refused = client.post("/api/textual-inversions", {**ti, "target_root": "/a/../b"}, format="json")
    _refused(refused, "training.invalid")
    windows = client.post("/api/textual-inversions", {**ti, "target_root": "D:/ti"}, format="json")
    assert windows.status_code == 201, windows.json()


def test_unknown_fields_are_refused_but_a_read_modify_write_round_trip_works(client: APIClient, ds) -> None:
    typo = client.post("/api/training-sessions", _body(ds, learning_rat=0.001), format="json")
    body = _refused(typo, "training.unknown_field")
    assert "learning_rat" in body["message"]
    _nothing_saved()
    created = client.post("/api/training-sessions", _body(ds), format="json").json()
    read = client.get(f"/api/training-sessions/{created['id']}").json()
    read.pop("mapping_profile")  # null: the same as none
    read["epochs"] = 3
    patched = client.patch(f"/api/training-sessions/{created['id']}", read, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["epochs"] == 3
    export = client.post(f"/api/training-sessions/{created['id']}/export", {"tagret": "zip"}, format="json")
    _refused(export, "training.unknown_field")


def test_names_need_a_visible_character_and_no_direction_overrides(client: APIClient, ds) -> None:
    _refused(
        client.post("/api/training-sessions", _body(ds, name="\u200b\u200b", slug="zw"), format="json"),
        "training.invalid",
    )
    _refused(
        client.post("/api/training-sessions", _body(ds, name="evil\u202etxt.exe", slug="rtl"), format="json"),
        "training.bad_text",
    )
    _nothing_saved()
    created = client.post("/api/training-sessions", _body(ds), format="json").json()
    patched = client.patch(
        f"/api/training-sessions/{created['id']}", {"name": "\u2066x\u2069"}, format="json"
    )
    _refused(patched, "training.bad_text")
    assert TrainingSession.objects.get().name == "Mychar LoRA"
    model = {"slug": "m1", "name": "\u200b", "family": "sd1"}
    _refused(client.post("/api/base-models", model, format="json"), "training.invalid")


def test_a_name_that_makes_no_slug_asks_for_one(client: APIClient, ds) -> None:
    for name in ("5", "🎉🎉", "--"):
        body = _refused(
            client.post("/api/training-sessions", _body(ds, name=name), format="json"), "training.bad_slug"
        )
        assert "give a slug" in body["message"], name
    _nothing_saved()
    created = client.post("/api/training-sessions", _body(ds, name="My_Char  LoRA"), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["slug"] == "my-char-lora"
    ti = {
        "name": "Red_Scarf TI",
        "base_model": "sd15",
        "token": "mychrtok",
        "init_word": "girl",
        "dataset": ds.pk,
    }
    made = client.post("/api/textual-inversions", ti, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["slug"] == "red-scarf-ti"
    emoji = client.post("/api/textual-inversions", {**ti, "name": "🎉"}, format="json")
    assert "give a slug" in _refused(emoji, "training.bad_slug")["message"]


def test_duplicate_names_and_slugs_are_409_on_create_and_on_edit(client: APIClient, ds) -> None:
    first = client.post("/api/training-sessions", _body(ds), format="json").json()
    second = client.post("/api/training-sessions", _body(ds, name="Two"), format="json").json()
    for change in ({"slug": first["slug"]}, {"name": first["name"]}):
        _refused(
            client.patch(f"/api/training-sessions/{second['id']}", change, format="json"),
            "training.duplicate",
            status=409,
        )
    again = TrainingSession.objects.get(pk=second["id"])
    assert (again.name, again.slug, again.version) == ("Two", "two", 1)
    ti = {"name": "T", "base_model": "sd15", "token": "mychrtok", "init_word": "girl", "dataset": ds.pk}
    assert client.post("/api/textual-inversions", ti, format="json").status_code == 201
    _refused(client.post("/api/textual-inversions", ti, format="json"), "training.duplicate", status=409)
    other = client.post("/api/textual-inversions", {**ti, "name": "U"}, format="json").json()
    _refused(
        client.patch(f"/api/textual-inversions/{other['id']}", {"slug": "t"}, format="json"),
        "training.duplicate",
        status=409,
    )
    assert TextualInversion.objects.get(pk=other["id"]).slug == "u"
    model = {"slug": "my-sd", "name": "My SD", "family": "sd1", "supported_trainers": ["kohya"]}
    made = client.post("/api/base-models", model, format="json").json()
    _refused(
        client.patch(f"/api/base-models/{made['id']}", {"slug": "sd15"}, format="json"),
        "training.duplicate",
        status=409,
    )


def test_base_model_refs_cannot_break_the_launch_scripts(client: APIClient) -> None:
    model = {"slug": "my-sd", "name": "My SD", "family": "sd1", "supported_trainers": ["kohya", "kohya"]}
    for field, value in [
        ("source_ref", '/models/a"; rm -rf ~; "'),
        ("source_ref", "/models/$(curl evil)"),
        ("source_ref", "/models/`id`"),
        ("diffusers_ref", "org/model\nrm -rf ~"),
        ("source_ref", "C:\\models\\"),
    ]:
        response = client.post("/api/base-models", {**model, field: value}, format="json")
        body = response.json()
        assert response.status_code == 400, (field, value, body)
        assert field in body["details"]["fields"], body
    assert not BaseModelProfile.objects.filter(slug="my-sd").exists()
    digits = client.post("/api/base-models", {**model, "slug": "123"}, format="json")
    _refused(digits, "training.bad_slug")
    windows = client.post(
        "/api/base-models", {**model, "source_ref": "C:\\models\\sd.safetensors"}, format="json"
    )
    assert windows.status_code == 201, windows.json()
    assert windows.json()["supported_trainers"] == ["kohya"]


def test_ti_init_word_is_one_word_of_letters_or_digits(client: APIClient, ds) -> None:
    ti = {"name": "T", "base_model": "sd15", "token": "mychrtok", "dataset": ds.pk}
    for word in (";", "`", "$x", "a b", "😀", "girl;reboot"):
        response = client.post("/api/textual-inversions", {**ti, "init_word": word}, format="json")
        _refused(response, "training.bad_init_word")
    templates = client.post(
        "/api/textual-inversions", {**ti, "init_word": "girl", "templates": ["a {}\x07 photo"]}, format="json"
    )
    _refused(templates, "training.bad_text")
    assert not TextualInversion.objects.exists()
