"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Bundles go to a folder of the test's own (BAGGINTAG_TRAINING_EXPORT_DIR), never data/."""
    folder = tmp_path / "exports"
    settings.BAGGINTAG_TRAINING_EXPORT_DIR = str(folder)
    return folder
