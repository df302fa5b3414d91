"""Lint, export and fidelity pages of a training session (docs/training.md#pages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from apps.jobs.models import Job
from apps.training.models import TrainingExport
from apps.training.services import exports
from tests.training import factories
from tests.training.pages.helpers import grant_training

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainer(client: Client, curator) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(grant_training(curator))
    return client


@pytest.fixture
def faces():  # type: ignore[no-untyped-def]
    factories.typed(["mychar"], "character")
    members = factories.items([["mychar", "smile"], ["mychar", "open_mouth"]])
    return factories.dataset("Faces", members)


# --- lint ---------------------------------------------------------------------------------------


def test_lint_lists_errors_and_links_warnings_to_their_items(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces], cache_text_encoder_outputs=True, min_source_side=100)
    response = trainer.get(f"/training/{session.pk}/lint")
    body = response.content.decode()
    assert response.status_code == 200
    assert "L15" in body
    assert 'data-severity="E"' in body
    item_links = [f'href="/items/{item.pk}/"' for item in faces_items(faces)]
    assert all(link in body for link in item_links), "each L09 warning links to its item page"
    assert "short side 48" in body


def faces_items(dataset):  # type: ignore[no-untyped-def]
    from apps.datasets.selectors import dataset_members

    return list(dataset_members(dataset=dataset))


def test_a_clean_session_links_to_export(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    body = trainer.get(f"/training/{session.pk}/lint").content.decode()
    assert "<strong>0</strong> errors" in body


def test_big_sessions_are_linted_by_a_job_with_a_progress_bar(trainer: Client, faces, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_TRAINING_SYNC_LINT_MAX = 1
    session = factories.session([faces])
    body = trainer.get(f"/training/{session.pk}/lint").content.decode()
    job = Job.objects.get(kind="training.lint")
    assert f'id="job-{job.pk}"' in body
    assert "job-progress" in body


# --- exports ------------------------------------------------------------------------------------


def test_the_export_page_starts_a_zip_export_and_shows_its_progress(
    trainer: Client, faces, export_dir
) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    page = trainer.get(f"/training/{session.pk}/exports").content.decode()
    assert "No exports yet" in page
    assert "Start the export" in page
    response = trainer.post(f"/training/{session.pk}/exports", {"target": "zip"})
    assert response.status_code == 303
    export = TrainingExport.objects.get()
    assert (export.session_id, export.session_version, export.target) == (session.pk, 1, "zip")
    body = trainer.get(response["Location"]).content.decode()
    assert f'id="export-{export.pk}"' in body
    assert "job-progress" in body
    assert f"/jobs/{export.job_id}/" in body
    row = trainer.get(f"/training/exports/{export.pk}/row", HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert 'hx-trigger="every 2s"' in row.content.decode()


def test_a_second_export_while_one_runs_is_refused(trainer: Client, faces, export_dir) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    trainer.post(f"/training/{session.pk}/exports", {"target": "zip"})
    response = trainer.post(f"/training/{session.pk}/exports", {"target": "zip"})
    assert response.status_code == 409
    assert "still queued" in response.content.decode()
    assert TrainingExport.objects.count() == 1


def test_folder_exports_need_a_folder_under_the_root(
    trainer: Client, faces, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    settings.BAGGINTAG_TRAINING_FOLDER_ROOT = ""
    off = trainer.post(f"/training/{session.pk}/exports", {"target": "folder", "folder": "run1"})
    assert off.status_code == 400
    assert 'data-field-error="folder"' in off.content.decode()
    missing = trainer.post(f"/training/{session.pk}/exports", {"target": "folder", "folder": ""})
    assert missing.status_code == 422
    assert "Name a folder" in missing.content.decode()
    settings.BAGGINTAG_TRAINING_FOLDER_ROOT = str(tmp_path)
    outside = trainer.post(f"/training/{session.pk}/exports", {"target": "folder", "folder": "../x"})
    assert outside.status_code == 400
    assert "outside the allowed export root" in outside.content.decode()
    assert not TrainingExport.objects.exists()
    ok = trainer.post(f"/training/{session.pk}/exports", {"target": "folder", "folder": "run1"})
    assert ok.status_code == 303
    assert TrainingExport.objects.get().folder_path == str(tmp_path / "run1")


def test_a_failed_export_shows_its_findings(trainer: Client, faces, export_dir) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces], cache_text_encoder_outputs=True)
    trainer.post(f"/training/{session.pk}/exports", {"target": "zip"})
    export = TrainingExport.objects.get()
    exports.export_run(job_id=export.job_id)
    body = trainer.get(f"/training/{session.pk}/exports").content.decode()
    assert 'data-status="failed"' in body
    assert "lint error" in body
    assert "L15" in body
    assert "Download zip" not in body
    assert trainer.get(f"/training/exports/{export.pk}/download").status_code == 409


def test_download_of_a_missing_export_is_404(trainer: Client) -> None:
    assert trainer.get("/training/exports/999/download").status_code == 404
    assert trainer.get("/training/exports/999/row").status_code == 404


def test_readers_cannot_start_exports(client: Client, viewer, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    client.force_login(viewer)
    page = client.get(f"/training/{session.pk}/exports")
    assert page.status_code == 200
    assert "Start the export" not in page.content.decode()
    assert client.post(f"/training/{session.pk}/exports", {"target": "zip"}).status_code == 403
    assert not TrainingExport.objects.exists()


def test_a_finished_zip_export_downloads(trainer: Client, faces, export_dir) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    trainer.post(f"/training/{session.pk}/exports", {"target": "zip"})
    export = TrainingExport.objects.get()
    exports.export_run(job_id=export.job_id)
    body = trainer.get(f"/training/{session.pk}/exports").content.decode()
    assert "Download zip" in body
    response = trainer.get(f"/training/exports/{export.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content)[:2] == b"PK"


# --- fidelity -----------------------------------------------------------------------------------


def test_fidelity_shows_the_delivery_matrix_and_keep_rate_charts(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session(
        [faces], caption_dropout_rate=0.1, type_policies={"general": {"drop_rate": 0.1}}
    )
    response = trainer.get(f"/training/{session.pk}/fidelity")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="delivery-matrix"' in body
    assert 'data-behaviour="caption_dropout" data-used="1"' in body
    assert 'data-behaviour="mirror" data-used="0"' in body
    for trainer_name in ("kohya", "onetrainer", "diffusers"):
        assert f'data-trainer="{trainer_name}"' in body
    assert body.count("<svg") >= 3
    assert "Keep rate per tag type" in body
    assert "90 %" in body  # the policy keeps general tags in 90 % of captions
    assert "data-simulation" in body
    assert "suffix in place" in body
    assert "Images per bucket" in body
