"""The training pages in Chromium: create a session from the empty list, watch the caption
preview follow unsaved edits, save, lint and start an export whose row shows its progress."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.training.models import TrainingExport, TrainingSession
from tests.training import factories
from tests.training.pages.helpers import grant_training

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_create_a_session_preview_lint_and_export(
    signed_in: Page, live_server, curator, shots_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    grant_training(curator)
    factories.typed(["mychar"], "character")
    faces = factories.dataset("Faces", factories.items([["mychar", "smile"], ["mychar", "open_mouth"]]))
    page = signed_in
    page.goto(f"{live_server.url}/training/")
    expect(page.get_by_role("heading", name="No training sessions yet")).to_be_visible()
    page.get_by_role("link", name="Create a session").click()

    preview = page.locator("#preview")
    expect(preview.locator('[data-preview-state="invalid"]')).to_contain_text("at least one dataset")
    page.locator("#id_name").fill("Mychar LoRA")
    page.locator('select[name="ds-0-dataset"]').select_option(label="Faces")
    expect(preview.locator('[data-preview-state="ready"]')).to_be_visible()
    expect(preview.locator(".preview-item")).to_have_count(2)
    expect(preview).to_contain_text("neutral .txt (OneTrainer)")
    expect(preview.locator("img").first).to_have_attribute(
        "src", f"/api/media/{faces_first(faces)}/thumbnail"
    )

    page.get_by_label("OneTrainer").uncheck()  # the preview follows the unsaved edit
    expect(preview).not_to_contain_text("neutral .txt (OneTrainer)")
    expect(preview).to_contain_text("kohya .caption")
    assert not TrainingSession.objects.exists()
    page.screenshot(path=str(shots_dir / "training-editor.png"), full_page=True)

    page.get_by_role("button", name="Add a dataset row").click()  # posts back, saves nothing
    expect(page.locator('select[name="ds-1-dataset"]')).to_be_visible()
    expect(page.locator("#id_name")).to_have_value("Mychar LoRA")
    expect(preview.locator(".preview-item")).to_have_count(2)
    assert not TrainingSession.objects.exists()

    page.locator("#id_name").press("Enter")  # Enter saves
    expect(page.get_by_role("status")).to_contain_text("Saved as version 1")
    session = TrainingSession.objects.get()
    assert "kohya" in session.targets
    assert "onetrainer" not in session.targets

    page.get_by_role("navigation", name="Session Mychar LoRA").get_by_role("link", name="Lint").click()
    expect(page.locator("[data-lint-summary]")).to_contain_text("2 images")
    page.goto(f"{live_server.url}/training/{session.pk}/fidelity")
    page.screenshot(path=str(shots_dir / "training-fidelity.png"), full_page=True)
    page.go_back()

    page.get_by_role("navigation", name="Session Mychar LoRA").get_by_role("link", name="Exports").click()
    page.get_by_role("button", name="Start the export").click()
    export = TrainingExport.objects.get()
    row = page.locator(f"#export-{export.pk}")
    expect(row).to_contain_text("v1")
    expect(row.get_by_role("link", name=f"job #{export.job_id}")).to_be_visible()
    if export.status in ("queued", "running"):
        expect(row.locator("progress")).to_be_visible()


def faces_first(dataset) -> int:  # type: ignore[no-untyped-def]
    """The first item in bundle order (sha256 order): the preview's first thumbnail."""
    from apps.datasets.selectors import dataset_members

    return int(dataset_members(dataset=dataset).order_by("sha256").values_list("pk", flat=True)[0])
