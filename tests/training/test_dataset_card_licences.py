"""The dataset card (`README.md`) lists each dataset's own licence notes beside the notes entered
on the session's dataset entries (docs/export-bundle.md#report), through the real export job."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.datasets import services as dataset_services
from apps.training.models import TrainingExport
from apps.training.services import exports
from tests.training import factories as f

pytestmark = pytest.mark.django_db


def _card(session) -> str:
    export = exports.export_start(session=session)
    exports.export_run(job_id=export.job_id)
    export.refresh_from_db()
    assert export.status == TrainingExport.Status.SUCCEEDED, export.findings
    return (Path(export.bundle_path) / "README.md").read_text(encoding="utf-8")


def test_card_lists_dataset_and_entry_licence_notes() -> None:
    licensed = f.dataset(
        "Mychar", f.items([["mychar", "smile"]]), licence_notes="CC-BY-4.0, artist A\nno commercial use"
    )
    both = f.dataset("Styles", f.items([["style"]], start=5), licence_notes="CC0")
    bare = f.dataset("Bare", f.items([["plain"]], start=9))
    session = f.session(
        [
            licensed,
            {"dataset": both.pk, "licence_notes": "checked by hand for this run"},
            bare,
        ],
        targets=["kohya"],
    )
    card = _card(session)
    notes = card.split("## Licence notes\n", 1)[1].split("\n## ", 1)[0]
    assert notes == (
        "\n### mychar (Mychar)\n\nDataset:\n\n> CC-BY-4.0, artist A\n> no commercial use\n"
        "\n### styles (Styles)\n\nDataset:\n\n> CC0\n\nThis session:\n\n> checked by hand for this run\n"
        "\n### bare (Bare)\n\nNo licence notes entered.\n"
    )
    table = card.split("## Datasets\n", 1)[1].split("\n## ", 1)[0]
    assert "| mychar | Mychar | train | 1 | 1 | see below |" in table
    assert "| bare | Bare | train | 1 | 1 | not stated |" in table


def test_notes_changed_on_the_dataset_reach_the_next_export() -> None:
    ds = f.dataset("Mychar", f.items([["mychar", "smile"]]))
    session = f.session([ds], targets=["kohya"])
    assert "No licence notes entered." in _card(session)
    dataset_services.dataset_update(dataset=ds, licence_notes="CC-BY-SA-4.0")
    assert "> CC-BY-SA-4.0" in _card(session)
