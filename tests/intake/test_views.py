"""The intake queue page (docs/intake.md#pages): empty state, planning from the form (a pasted
URL list, one entry per URL), per-line errors, progress per entry and per dataset, process,
review and delete buttons, permissions."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.intake import services
from apps.intake.models import IntakeEntry
from apps.taggers.models import Tagger
from apps.tags.services.names import vocabulary_default
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, curator):  # type: ignore[no-untyped-def]
    client.force_login(curator)
    return client


def test_empty_queue_says_what_to_do(signed_in) -> None:  # type: ignore[no-untyped-def]
    html = signed_in.get("/intake/").content.decode()
    assert "Nothing planned yet" in html
    assert "create a dataset" in html  # no dataset yet: the form points there first


def test_form_plans_a_pasted_url_list_one_entry_per_url(signed_in, dataset) -> None:  # type: ignore[no-untyped-def]
    wd14 = Tagger.objects.create(name="wd14", kind="wd_onnx", vocabulary=vocabulary_default())
    clip = Tagger.objects.create(name="clip", kind="clip_zeroshot", vocabulary=vocabulary_default())
    response = signed_in.post(
        "/intake/add",
        {
            "kind": "urls",
            "dataset": dataset.pk,
            "urls": "https://example.com/a.jpg\r\nhttps://example.com/b.jpg",
            "split": "on",
            "taggers": "wd14, clip",
        },
    )
    assert response.status_code == 303
    rows = list(IntakeEntry.objects.order_by("id").values_list("urls", "on_arrival"))
    assert rows == [
        (["https://example.com/a.jpg"], {"taggers": [wd14.pk, clip.pk]}),
        (["https://example.com/b.jpg"], {"taggers": [wd14.pk, clip.pk]}),
    ]
    html = signed_in.get("/intake/").content.decode()
    assert 'id="dataset-progress"' in html
    assert "0 of 1" in html


def test_form_names_an_unknown_tagger_beside_the_field(signed_in, dataset) -> None:  # type: ignore[no-untyped-def]
    response = signed_in.post(
        "/intake/add",
        {"kind": "urls", "dataset": dataset.pk, "urls": "https://example.com/a.jpg", "taggers": "wd99"},
    )
    assert response.status_code == 422
    assert "no tagger &#x27;wd99&#x27;" in response.content.decode()
    assert not IntakeEntry.objects.exists()


def test_form_shows_each_bad_line_and_saves_nothing(signed_in, dataset) -> None:  # type: ignore[no-untyped-def]
    response = signed_in.post(
        "/intake/add",
        {"kind": "urls", "dataset": dataset.pk, "urls": "https://example.com/a.jpg\nfile:///etc/passwd"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Line 2 (file:///etc/passwd)" in html
    assert not IntakeEntry.objects.exists()


def test_form_refuses_a_folder_outside_the_root(signed_in, dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    response = signed_in.post(
        "/intake/add", {"kind": "folder", "dataset": dataset.pk, "folder": "../private"}
    )
    assert response.status_code == 422
    assert "outside the intake root" in response.content.decode()


def test_process_and_review_buttons(signed_in, dataset) -> None:  # type: ignore[no-untyped-def]
    make_item(seed=1)
    entry = services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>1")
    assert f'action="/intake/{entry.pk}/process"' in signed_in.get("/intake/").content.decode()
    assert signed_in.post(f"/intake/{entry.pk}/process").status_code == 303
    html = signed_in.get("/intake/").content.decode()
    assert 'data-state="added"' in html
    assert signed_in.post(f"/intake/{entry.pk}/review").status_code == 303
    entry.refresh_from_db()
    assert entry.state == IntakeEntry.State.REVIEWED


def test_fetching_entries_make_the_queue_poll(signed_in, dataset) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=["https://example.com/a.jpg"])
    services.intake_entry_process(entry=entry)
    html = signed_in.get("/intake/").content.decode()
    assert 'hx-trigger="every 2s"' in html
    partial = signed_in.get("/intake/rows", HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="queue"')


def test_failed_entry_shows_its_error_and_a_retry(signed_in, dataset, settings) -> None:  # type: ignore[no-untyped-def]
    make_item(seed=1)
    make_item(seed=2)
    settings.BAGGINTAG_INTAKE_QUERY_MAX = 1
    entry = services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>1")
    services.intake_entry_process(entry=entry)
    html = signed_in.get("/intake/?state=failed").content.decode()
    assert "give the dataset a saved query instead" in html
    assert ">Retry<" in html


def test_viewer_cannot_change_the_queue(client, viewer, dataset) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    entry = services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=["https://example.com/a.jpg"])
    assert client.post(f"/intake/{entry.pk}/process").status_code == 403
    assert client.post(f"/intake/{entry.pk}/delete").status_code == 403
    assert (
        client.post(
            "/intake/add", {"kind": "urls", "dataset": dataset.pk, "urls": "https://e.com/x"}
        ).status_code
        == 422
    )
    assert IntakeEntry.objects.count() == 1


def test_unknown_entry_is_a_404(signed_in) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.post("/intake/999999/process").status_code == 404


def test_form_plans_a_zip_and_a_folder(signed_in, dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    archive = SimpleUploadedFile(
        "set.zip", mediafiles.zip_bytes({"a.jpg": mediafiles.image_bytes("jpeg", seed=3)})
    )
    zipped = signed_in.post("/intake/add", {"kind": "archive", "dataset": dataset.pk, "archive": archive})
    assert zipped.status_code == 303
    folder = signed_in.post(
        "/intake/add", {"kind": "folder", "dataset": dataset.pk, "folder": "shoot", "notes": "day one"}
    )
    assert folder.status_code == 303
    rows = list(
        IntakeEntry.objects.order_by("id").values_list("kind", "archive_name", "folder", "planned_count")
    )
    assert rows == [("archive", "set.zip", "", 1), ("folder", "", "shoot", 3)]
