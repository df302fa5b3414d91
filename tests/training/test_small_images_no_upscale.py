"""With `no_upscale`, kohya buckets an image at its own size floored to the bucket step; a side
under one step gives a zero-size bucket and kohya divides by zero. Such an image is an L08 lint
error naming the item and the fix, never a 500: lint over the API, the export (no folder is
left), the fidelity page (docs/training.md#lint). Runs on SQLite and on MariaDB."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from apps.core.exceptions import DomainError
from apps.training.models import TrainingExport
from apps.training.services import exports, lint
from tests.training import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def session():
    big = f.items([["mychar", "smile"]], size=(640, 512))
    tiny = f.items([["mychar", "snow"]], size=(64, 48), start=5)  # 48 px: under the step of 64
    ds = f.dataset("Mychar", [*big, *tiny])
    return f.session([ds], targets=["kohya", "onetrainer"], no_upscale=True)


def _l08(findings: list[dict]) -> list[dict]:
    return [row for row in findings if row["id"] == "L08"]


def test_lint_names_the_item_and_the_fix(session) -> None:
    rows = _l08(lint.session_lint(session)["findings"])
    assert len(rows) == 1
    assert rows[0]["severity"] == "E"
    assert "64×48" in rows[0]["message"]
    assert "no_upscale" in rows[0]["message"]
    assert re.fullmatch(r"i[0-9a-f]{12}", rows[0]["where"])  # the item, linked on the lint page


def test_lint_over_the_api_answers_200(trainer: User, session) -> None:
    client = APIClient()
    client.force_authenticate(trainer)
    response = client.post(f"/api/training-sessions/{session.pk}/lint")
    assert response.status_code == 200
    assert _l08(response.json()["findings"])


def test_the_export_fails_on_lint_and_leaves_no_folder(session, export_dir: Path) -> None:
    with pytest.raises(DomainError) as caught:
        exports.export_sync(session=session)
    assert caught.value.code == "training.lint_failed"
    assert _l08(caught.value.details["findings"])
    export = TrainingExport.objects.get()
    assert export.status == TrainingExport.Status.FAILED
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_the_fidelity_page_still_answers(trainer: User, session) -> None:
    client = Client()
    client.force_login(trainer)
    response = client.get(f"/training/{session.pk}/fidelity")
    assert response.status_code == 200
    assert "Images per bucket" in response.content.decode()
