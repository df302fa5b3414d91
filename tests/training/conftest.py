"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Bundles go to a folder of the test's own (BAGGINTAG_TRAINING_EXPORT_DIR), never data/."""
    folder = tmp_path / "exports"
    settings.BAGGINTAG_TRAINING_EXPORT_DIR = str(folder)
    return folder


@pytest.fixture
def trainer(db) -> User:  # type: ignore[no-untyped-def]
    """A user with every training permission (a module may define its own `trainer`)."""
    user = User.objects.create_user("trainer", password="pw-trainer-123")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="training"))
    return User.objects.get(pk=user.pk)
