"""Training API (docs/training.md#api): sessions, base models, TI sets, exports; bad input is a 4xx
with a `training.*` code and nothing half-saved; writes need the training permissions. Runs on
SQLite and on MariaDB."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.jobs.models import Job
from apps.training.models import BaseModelProfile, TextualInversion, TrainingExport, TrainingSession
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.training import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(trainer: User) -> APIClient:
    c = APIClient()
    c.force_authenticate(trainer)
    return c


@pytest.fixture
def ds():
    return f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]]))


def _create(client: APIClient, ds, **body: object) -> dict:
    response = client.post(
        "/api/training-sessions",
        {"name": "Mychar LoRA", "base_model": "sd15", "datasets": [{"dataset": ds.pk}], **body},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_read_list_and_patch(client: APIClient, ds) -> None:
    created = _create(client, ds, seed=9, type_policies={"general": {"drop_rate": 0.2}})
    assert created["version"] == 1
    assert created["base_model"] == "sd15"
    assert created["detail"]["datasets"][0]["dataset"] == ds.pk
    assert created["detail"]["type_policies"]["general"]["drop_rate"] == 0.2
    listed = client.get("/api/training-sessions").json()
    assert [s["name"] for s in listed["results"]] == ["Mychar LoRA"]
    patched = client.patch(f"/api/training-sessions/{created['id']}", {"epochs": 4}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["epochs"], patched.json()["version"]) == (4, 2)
    versions = client.get(f"/api/training-sessions/{created['id']}/versions").json()
    assert [v["number"] for v in versions] == [2, 1]


def test_create_errors_are_4xx_with_codes_and_nothing_saved(client: APIClient, ds) -> None:
    bad = [
        ({"datasets": []}, "training.no_datasets"),
        ({"caption_dropout_rate": 1.0}, "training.bad_rate"),
        ({"targets": ["kohya", "nope"]}, "training.unknown_target"),
        ({"bucket_min": 1024}, "training.bad_buckets"),
        ({"base_model": "nope"}, "training.unknown_base_model"),
        ({"mirror": "sometimes"}, "training.invalid"),
    ]
    for body, code in bad:
        response = client.post(
            "/api/training-sessions",
            {"name": "X", "base_model": "sd15", "datasets": [{"dataset": ds.pk}], **body},
            format="json",
        )
        assert response.status_code == 400, (body, response.json())
        assert response.json()["code"] == code, body
    assert not TrainingSession.objects.exists()
    _create(client, ds)
    again = client.post(
        "/api/training-sessions",
        {"name": "Mychar LoRA", "base_model": "sd15", "datasets": [{"dataset": ds.pk}]},
        format="json",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "training.duplicate"


def test_nan_is_refused_by_the_json_parser(client: APIClient, ds) -> None:
    response = client.generic(
        "POST",
        "/api/training-sessions",
        '{"name": "X", "base_model": "sd15", "learning_rate": NaN, "datasets": [{"dataset": '
        + str(ds.pk)
        + "}]}",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not TrainingSession.objects.exists()


def test_unknown_session_is_404(client: APIClient) -> None:
    response = client.get("/api/training-sessions/424242")
    assert response.status_code == 404
    assert response.json()["code"] == "training.not_found"


def test_reads_for_everyone_writes_need_permissions(viewer: User, ds) -> None:
    reader = APIClient()
    reader.force_authenticate(viewer)
    assert reader.get("/api/training-sessions").status_code == 200
    assert reader.get("/api/base-models").status_code == 200
    denied = reader.post(
        "/api/training-sessions",
        {"name": "X", "base_model": "sd15", "datasets": [{"dataset": ds.pk}]},
        format="json",
    )
    assert denied.status_code == 403
    anonymous = APIClient().get("/api/training-sessions")
    assert anonymous.status_code in (401, 403)


def test_delete_session(client: APIClient, ds) -> None:
    created = _create(client, ds)
    assert client.delete(f"/api/training-sessions/{created['id']}").status_code == 204
    assert not TrainingSession.objects.exists()


def test_export_is_queued_as_a_job(client: APIClient, ds) -> None:
    created = _create(client, ds)
    response = client.post(f"/api/training-sessions/{created['id']}/export", {}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["export"]["status"] == "queued"
    assert body["export"]["session_version"] == 1
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.kind == "training.export"
    assert job.params["export"] == body["export"]["id"]
    assert response["Location"] == body["job"]["url"]
    second = client.post(f"/api/training-sessions/{created['id']}/export", {}, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "training.export_running"
    exports = client.get(f"/api/training-sessions/{created['id']}/exports").json()
    assert [e["id"] for e in exports["results"]] == [body["export"]["id"]]
    download = client.get(f"/api/training-exports/{body['export']['id']}/download")
    assert download.status_code == 409
    assert download.json()["code"] == "training.export_not_ready"


def test_an_export_whose_job_was_cancelled_does_not_block_the_next(client: APIClient, ds) -> None:
    from apps.jobs.services import job_cancel

    created = _create(client, ds)
    first = client.post(f"/api/training-sessions/{created['id']}/export", {}, format="json").json()
    job_cancel(job=Job.objects.get(pk=first["job"]["id"]))
    second = client.post(f"/api/training-sessions/{created['id']}/export", {}, format="json")
    assert second.status_code == 202
    assert TrainingExport.objects.get(pk=first["export"]["id"]).status == "failed"


def test_folder_exports_only_under_the_allowed_root(client: APIClient, ds, settings, tmp_path) -> None:
    created = _create(client, ds)
    url = f"/api/training-sessions/{created['id']}/export"
    off = client.post(url, {"target": "folder", "folder": "x"}, format="json")
    assert off.status_code == 400
    assert off.json()["code"] == "training.folder_exports_off"
    settings.BAGGINTAG_TRAINING_FOLDER_ROOT = str(tmp_path / "root")
    (tmp_path / "root").mkdir()
    for folder in ("../escape", "/etc", "."):
        response = client.post(url, {"target": "folder", "folder": folder}, format="json")
        assert response.status_code == 400, folder
        assert response.json()["code"] == "training.folder_outside_root"
    (tmp_path / "root" / "taken").mkdir()
    (tmp_path / "root" / "taken" / "file").write_text("x")
    taken = client.post(url, {"target": "folder", "folder": "taken"}, format="json")
    assert taken.status_code == 409
    assert not TrainingExport.objects.exists()
    ok = client.post(url, {"target": "folder", "folder": "bundles/mychar"}, format="json")
    assert ok.status_code == 202
    assert ok.json()["export"]["folder_path"] == str((tmp_path / "root" / "bundles" / "mychar").resolve())


def test_lint_answers_findings_or_a_job(client: APIClient, ds, settings) -> None:
    created = _create(
        client, ds, base_model="sdxl-anime-booru", targets=["kohya"], cache_text_encoder_outputs=True
    )
    response = client.post(f"/api/training-sessions/{created['id']}/lint")
    assert response.status_code == 200
    ids = {finding["id"] for finding in response.json()["findings"]}
    assert "L15" in ids
    settings.BAGGINTAG_TRAINING_SYNC_LINT_MAX = 1
    queued = client.post(f"/api/training-sessions/{created['id']}/lint")
    assert queued.status_code == 202
    assert queued.json()["job"]["kind"] == "training.lint"


def test_preview_lists_items_and_partitions(client: APIClient, ds) -> None:
    created = _create(client, ds, targets=["kohya"])
    body = client.get(f"/api/training-sessions/{created['id']}/preview?n=1").json()
    assert body["item_count"] == 2
    assert len(body["items"]) == 1
    assert body["partitions"][0]["id"] == "mychar--all"
    assert {t["text"] for t in body["items"][0]["tags"]} >= {"mychar"}
    assert client.get(f"/api/training-sessions/{created['id']}/preview?n=0").status_code == 400


def test_a_profile_mapping_into_another_vocabulary_is_refused(client: APIClient) -> None:
    """A fine-tune's default mapping profile must map into the fine-tune's own vocabulary
    (sessions inherit it), on create and on every later change of either field."""
    e621, other = vocabulary_make("e621"), vocabulary_make("other")
    into_e621 = profile_make(e621, [set_make(e621, e621)])
    into_other = profile_make(other, [set_make(other, other)])
    body = {"slug": "furry", "name": "Furry", "family": "sd1", "vocabulary": e621.pk}
    refused = client.post("/api/base-models", {**body, "mapping_profile": into_other.slug}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "training.vocabulary_mismatch"
    assert "mapping_profile" in refused.json()["details"]["fields"]
    assert not BaseModelProfile.objects.filter(slug="furry").exists()
    created = client.post("/api/base-models", {**body, "mapping_profile": into_e621.slug}, format="json")
    assert created.status_code == 201, created.json()
    for change in ({"mapping_profile": into_other.slug}, {"vocabulary": other.pk}):
        response = client.patch("/api/base-models/furry", change, format="json")
        assert response.status_code == 400, change
        assert response.json()["code"] == "training.vocabulary_mismatch"
    kept = BaseModelProfile.objects.get(slug="furry")
    assert (kept.vocabulary_id, kept.mapping_profile_id) == (e621.pk, into_e621.pk)
    seeded = client.patch("/api/base-models/sd1-furry-e621", {"vocabulary": e621.pk}, format="json")
    assert seeded.status_code == 200
    wrong = client.patch(
        "/api/base-models/sd1-furry-e621", {"mapping_profile": into_other.slug}, format="json"
    )
    assert wrong.status_code == 400
    both = client.patch(
        "/api/base-models/sd1-furry-e621",
        {"vocabulary": other.pk, "mapping_profile": into_other.slug},
        format="json",
    )
    assert both.status_code == 200, both.json()


def test_base_models_list_create_and_protection(client: APIClient) -> None:
    listed = client.get("/api/base-models?page_size=200").json()
    assert "sd15" in {p["slug"] for p in listed["results"]}
    body = {
        "slug": "my-xl",
        "name": "My XL",
        "family": "sdxl",
        "resolution": 1024,
        "bucket_min": 512,
        "bucket_max": 2048,
        "supported_trainers": ["kohya"],
    }
    created = client.post("/api/base-models", body, format="json")
    assert created.status_code == 201, created.json()
    bad = client.post("/api/base-models", {**body, "slug": "bad-xl", "bucket_step": 48}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "training.bad_buckets"
    no_diffusers = client.post(
        "/api/base-models", {**body, "slug": "nd", "supported_trainers": ["diffusers"]}, format="json"
    )
    assert no_diffusers.json()["code"] == "training.no_diffusers_model"
    assert not BaseModelProfile.objects.filter(slug__in=["bad-xl", "nd"]).exists()
    sd15 = BaseModelProfile.objects.get(slug="sd15")
    shape = client.patch(f"/api/base-models/{sd15.pk}", {"resolution": 768}, format="json")
    assert shape.status_code == 409
    assert shape.json()["code"] == "training.seeded_profile"
    where = client.patch("/api/base-models/sd15", {"source_ref": "/models/sd15.safetensors"}, format="json")
    assert where.status_code == 200
    assert where.json()["source_ref"] == "/models/sd15.safetensors"
    assert client.delete(f"/api/base-models/{sd15.pk}").status_code == 409
    assert client.delete(f"/api/base-models/{created.json()['id']}").status_code == 204


def test_base_model_in_use_cannot_go(client: APIClient, ds) -> None:
    body = {"slug": "my-sd", "name": "My SD", "family": "sd1", "supported_trainers": ["kohya"]}
    profile = client.post("/api/base-models", body, format="json").json()
    _create(client, ds, base_model="my-sd", targets=["kohya"])
    response = client.delete(f"/api/base-models/{profile['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "training.base_model_in_use"


def test_textual_inversions_crud_and_export(client: APIClient, ds) -> None:
    body = {
        "name": "Mychar TI",
        "base_model": "sd15",
        "token": "mychrtok",
        "init_word": "girl",
        "dataset": str(ds.pk),
    }
    created = client.post("/api/textual-inversions", body, format="json")
    assert created.status_code == 201, created.json()
    ti = created.json()
    assert ti["version"] == 1
    patched = client.patch(f"/api/textual-inversions/{ti['id']}", {"repeats": 3}, format="json")
    assert patched.json()["version"] == 2
    for change, code in [
        ({"token": "Bad Token"}, "training.bad_token"),
        ({"init_word": " "}, "training.invalid"),
        ({"query": "sky"}, "training.no_datasets"),
        ({"targets": ["a1111", "nope"]}, "training.unknown_target"),
    ]:
        response = client.patch(f"/api/textual-inversions/{ti['id']}", change, format="json")
        assert response.status_code == 400, change
        assert response.json()["code"] == code, change
    assert TextualInversion.objects.get(pk=ti["id"]).token == "mychrtok"
    sdxl = client.post(
        "/api/textual-inversions",
        {**body, "name": "X", "base_model": "sdxl", "targets": ["a1111"]},
        format="json",
    )
    assert sdxl.json()["code"] == "training.unsupported_target"
    exported = client.post(f"/api/textual-inversions/{ti['id']}/export", {}, format="json")
    assert exported.status_code == 202
    assert exported.json()["export"]["textual_inversion"] == ti["id"]
    assert client.delete(f"/api/textual-inversions/{ti['id']}").status_code == 204


def test_ti_token_known_to_clip_is_refused(client: APIClient, ds) -> None:
    body = {"name": "Cat TI", "base_model": "sd15", "token": "cat", "init_word": "girl", "dataset": ds.pk}
    response = client.post("/api/textual-inversions", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "training.token_collision"
    assert not TextualInversion.objects.exists()


def test_export_detail_and_missing_export(client: APIClient, ds) -> None:
    created = _create(client, ds)
    export = client.post(f"/api/training-sessions/{created['id']}/export", {}, format="json").json()["export"]
    got = client.get(f"/api/training-exports/{export['id']}").json()
    assert got["status"] == "queued"
    assert got["download_url"] is None
    assert client.get("/api/training-exports/999999").status_code == 404
    assert client.delete(f"/api/training-exports/{export['id']}").status_code == 409
