"""Admin pages of every training model load; a real Celery worker runs an export job (once the
bundle writer is installed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from apps.jobs.models import Job
from apps.training.models import BaseModelProfile, TrainingExport
from apps.training.services import exports
from apps.training.services.textual_inversions import ti_create
from tests.training import factories as f

MODELS = [
    "basemodelprofile",
    "trainingsession",
    "trainingsessiondataset",
    "captiontypepolicy",
    "descriptionsetweight",
    "sampledefinition",
    "trainingsessionversion",
    "textualinversion",
    "trainingexport",
]


@pytest.mark.django_db
def test_every_admin_page_loads(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    ds = f.dataset("Mychar", f.items([["mychar"]]))
    session = f.session([ds], samples=[{"prompt": "mychar"}], description_weights={"whole": 1})
    ti = ti_create(name="TI", base_model="sd15", token="mychrtok", init_word="girl", dataset=ds.pk)
    exports.export_start(session=session)
    for model in MODELS:
        assert client.get(f"/admin/training/{model}/").status_code == 200, model
    for url in (
        f"/admin/training/trainingsession/{session.pk}/change/",
        f"/admin/training/textualinversion/{ti.pk}/change/",
        f"/admin/training/basemodelprofile/{BaseModelProfile.objects.get(slug='sd15').pk}/change/",
        f"/admin/training/trainingexport/{TrainingExport.objects.get().pk}/change/",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_admin_is_read_only_for_sessions(client) -> None:  # type: ignore[no-untyped-def]
    """Saves belong to the services (checks, a version bump): the admin only shows sessions."""
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    session = f.session([f.dataset("Mychar", f.items([["mychar"]]))])
    url = f"/admin/training/trainingsession/{session.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="_save"' not in page
    response = client.post(url, {"name": "Renamed", "slug": session.slug})
    assert response.status_code == 403
    assert client.get("/admin/training/trainingsession/add/").status_code == 403
    session.refresh_from_db()
    assert (session.name, session.version) == ("Mychar LoRA", 1)


@pytest.mark.django_db
def test_curators_may_run_training() -> None:
    from rest_framework.test import APIClient

    from apps.core.services import curators_group_ensure

    curator = User.objects.create_user("cur", password="pw-cur-12345")
    curator.groups.add(curators_group_ensure())
    for perm in (
        "add_trainingsession",
        "change_trainingsession",
        "add_trainingexport",
        "add_textualinversion",
    ):
        assert curator.has_perm(f"training.{perm}"), perm
    ds = f.dataset("Mychar", f.items([["mychar"]]))
    api = APIClient()
    api.force_authenticate(curator)
    created = api.post(
        "/api/training-sessions",
        {"name": "Cur LoRA", "base_model": "sd15", "datasets": [{"dataset": ds.pk}]},
        format="json",
    )
    assert created.status_code == 201, created.content


@pytest.mark.flow
def test_a_real_worker_exports_a_session(celery_worker_thread, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_TRAINING_EXPORT_DIR = str(tmp_path / "exports")
    ds = f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]]))
    export = exports.export_start(session=f.session([ds], targets=["kohya", "onetrainer"]))
    deadline = time.monotonic() + 120
    job = Job.objects.get(pk=export.job_id)
    while time.monotonic() < deadline and not job.is_finished:
        time.sleep(0.2)
        job = Job.objects.get(pk=export.job_id)
    export.refresh_from_db()
    assert job.outcome == "succeeded", (job.error_code, job.error_message)
    assert export.status == TrainingExport.Status.SUCCEEDED
    assert job.progress_done == job.progress_total == 2
    assert (Path(export.bundle_path) / "session.json").exists()
