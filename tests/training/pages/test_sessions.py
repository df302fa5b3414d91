"""Training session pages (docs/training.md#pages): the list and its empty state, the editor
with field errors and nothing saved, the live caption preview, permissions and 404s."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.training.models import CaptionTypePolicy, TrainingSession, TrainingSessionVersion
from tests.training import factories
from tests.training.pages.helpers import editor_data, grant_training

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainer(client: Client, curator) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(grant_training(curator))
    return client


@pytest.fixture
def reader(client: Client, viewer) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    return client


@pytest.fixture
def faces():  # type: ignore[no-untyped-def]
    factories.typed(["mychar"], "character")
    members = factories.items([["mychar", "smile", "red_scarf"], ["mychar", "open_mouth"]])
    return factories.dataset("Faces", members)


def test_the_empty_list_explains_sessions_and_links_to_create(trainer: Client) -> None:
    body = trainer.get("/training/").content.decode()
    assert "No training sessions yet" in body
    assert "holds one training run" in body
    assert 'href="/training/new"' in body


def test_the_list_shows_sessions_and_finds_by_name(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    factories.session([faces], name="Other run")
    body = trainer.get("/training/").content.decode()
    assert f'href="/training/{session.pk}/"' in body
    assert "Other run" in body
    found = trainer.get("/training/?q=mychar").content.decode()
    assert "Mychar LoRA" in found
    assert "Other run" not in found


def test_signed_out_is_sent_to_login(client: Client) -> None:
    response = client.get("/training/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_new_session_form_has_one_policy_row_per_tag_type(trainer: Client) -> None:
    from apps.tags.models import TagType

    body = trainer.get("/training/new").content.decode()
    assert body.count("data-type=") == TagType.objects.count()
    assert 'aria-label="Drop rate, general"' in body
    assert 'aria-label="Repeats, row 1"' in body
    assert 'id="preview"' in body
    assert 'hx-post="/training/preview"' in body


def test_create_a_session_on_the_page(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    data = editor_data(
        datasets=[{"dataset": faces.pk, "repeats": 3}],
        policies={"general": {"drop_rate": "0.2"}},
        description_weights="caption = 3\nshort = 1",
    )
    response = trainer.post("/training/new", data)
    session = TrainingSession.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/training/{session.pk}/?saved=1"
    entry = session.datasets.get()
    assert (entry.dataset_id, entry.repeats) == (faces.pk, 3)
    general = CaptionTypePolicy.objects.get(session=session, tag_type__key="general")
    assert general.drop_rate == pytest.approx(0.2)
    assert dict(session.description_weights.values_list("name", "weight")) == {"caption": 3, "short": 1}
    assert session.targets == ["kohya", "onetrainer"]
    page = trainer.get(response["Location"]).content.decode()
    assert "Saved as version 1" in page


def test_service_errors_land_beside_the_field_and_nothing_is_saved(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    data = editor_data(datasets=[{"dataset": faces.pk}], bucket_step=48)
    response = trainer.post("/training/new", data)
    colour = trainer.post(
        "/training/new", editor_data(datasets=[{"dataset": faces.pk}], alpha_background="white")
    )
    assert colour.status_code == 422
    assert 'data-field-error="alpha_background"' in colour.content.decode()
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-field-error="bucket_step"' in body
    assert "multiple of 64" in body
    assert not TrainingSession.objects.exists()


def test_an_empty_dataset_is_an_error_on_its_row(trainer: Client) -> None:
    empty = factories.dataset("Empty", [])
    response = trainer.post("/training/new", editor_data(datasets=[{"dataset": empty.pk}]))
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-row-error="0"' in body
    assert "no members" in body
    assert not TrainingSession.objects.exists()


def test_form_shape_errors_show_per_field(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    data = editor_data(
        datasets=[{"dataset": faces.pk, "repeats": 0}],
        policies={"general": {"drop_rate": "1.5"}},
        description_weights="caption three",
    )
    response = trainer.post("/training/new", data)
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-field-error="ds-0-repeats"' in body
    assert 'data-field-error="pol-' in body
    assert "drop_rate" in body
    assert 'data-field-error="description_weights"' in body
    assert not TrainingSession.objects.exists()


def test_no_dataset_rows_is_refused(trainer: Client) -> None:
    response = trainer.post("/training/new", editor_data(datasets=[{"dataset": ""}]))
    assert response.status_code == 422
    assert "at least one dataset" in response.content.decode()


def test_edit_bumps_the_version_and_an_error_keeps_the_old_settings(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    url = f"/training/{session.pk}/"
    body = trainer.get(url).content.decode()
    assert 'value="Mychar LoRA"' in body
    ok = trainer.post(
        url, editor_data(session=session, datasets=[{"dataset": faces.pk}], mirror="always_random")
    )
    assert ok.status_code == 303
    session.refresh_from_db()
    assert (session.mirror, session.version) == ("always_random", 2)
    bad = trainer.post(
        url, editor_data(session=session, datasets=[{"dataset": faces.pk}], target_root="relative")
    )
    assert bad.status_code == 422
    assert 'data-field-error="target_root"' in bad.content.decode()
    session.refresh_from_db()
    assert (session.target_root, session.mirror) == ("/srv/train/mychar", "always_random")
    assert TrainingSessionVersion.objects.filter(session=session).count() == 2


def test_a_pinned_snapshot_of_another_dataset_is_refused_on_its_row(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    from apps.datasets.services.snapshots import snapshot_create

    other = factories.dataset("Other", factories.items([["x"]], start=10))
    snap = snapshot_create(dataset=other, note="")
    response = trainer.post(
        "/training/new", editor_data(datasets=[{"dataset": faces.pk, "snapshot": snap.pk}])
    )
    assert response.status_code == 422
    assert "not a snapshot of this dataset" in response.content.decode()
    assert not TrainingSession.objects.exists()


def test_readers_see_the_editor_but_cannot_save_or_create(reader: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    assert reader.get(f"/training/{session.pk}/").status_code == 200
    assert (
        reader.post(f"/training/{session.pk}/", editor_data(datasets=[{"dataset": faces.pk}])).status_code
        == 403
    )
    assert reader.get("/training/new").status_code == 403
    assert reader.post(f"/training/{session.pk}/delete").status_code == 403
    assert reader.post(f"/training/{session.pk}/preview", {}).status_code == 403
    assert TrainingSession.objects.filter(pk=session.pk).exists()


def test_missing_sessions_are_404(trainer: Client) -> None:
    for url in (
        "/training/999/",
        "/training/999/lint",
        "/training/999/exports",
        "/training/999/fidelity",
        "/training/999/preview",
        "/training/ti/999/exports",
        "/training/exports/999/row",
    ):
        assert trainer.get(url).status_code == 404, url
    huge = trainer.get("/training/99999999999999999999999/")
    assert huge.status_code in (400, 404)


def test_delete(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    response = trainer.post(f"/training/{session.pk}/delete")
    assert response.status_code == 303
    assert response["Location"] == "/training/"
    assert not TrainingSession.objects.exists()


# --- preview ------------------------------------------------------------------------------------


def test_saved_preview_shows_items_with_thumbnails(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    response = trainer.get(f"/training/{session.pk}/preview", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-preview-state="ready"' in body
    assert body.count('class="preview-item"') == 2
    assert "/api/media/" in body
    assert "thumbnail" in body
    assert "kohya .caption" in body
    assert "neutral .txt" in body
    assert "mychar" in body


def test_draft_preview_follows_unsaved_edits_and_saves_nothing(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    session = factories.session([faces])
    data = editor_data(session=session, datasets=[{"dataset": faces.pk}], targets=["kohya", "diffusers"])
    response = trainer.post(f"/training/{session.pk}/preview", data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "diffusers text" in body
    assert "neutral .txt" not in body
    session.refresh_from_db()
    assert session.targets == ["kohya", "onetrainer", "diffusers"]
    assert session.version == 1
    assert TrainingSessionVersion.objects.filter(session=session).count() == 1


def test_draft_preview_of_a_new_session_leaves_no_row(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    response = trainer.post("/training/preview", editor_data(datasets=[{"dataset": faces.pk}]))
    assert response.status_code == 200
    assert 'data-preview-state="ready"' in response.content.decode()
    assert not TrainingSession.objects.exists()


def test_draft_preview_says_what_to_fix(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    response = trainer.post(
        "/training/preview", editor_data(datasets=[{"dataset": faces.pk}], bucket_step=48)
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-preview-state="invalid"' in body
    assert "multiple of 64" in body
    shape = trainer.post("/training/preview", editor_data(datasets=[{"dataset": faces.pk}], seed="x"))
    assert shape.status_code == 422
    assert "Seed" in shape.content.decode()


def test_groups_regularisation_and_pinned_snapshots_round_trip(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    from apps.datasets.services.groups import group_append, group_create
    from apps.datasets.services.snapshots import snapshot_create

    reg = factories.dataset("Class images", factories.items([["person"]], start=20))
    group = group_create(name="Extra")
    group_append(group=group, data_sets=[reg.pk])
    snap = snapshot_create(dataset=faces, note="")
    rows = [
        {"dataset": faces.pk, "snapshot": snap.pk, "repeats": 2, "balance": "equalize"},
        {"group": group.pk, "role": "regularization"},
    ]
    response = trainer.post("/training/new", editor_data(datasets=rows))
    assert response.status_code == 303
    session = TrainingSession.objects.get()
    entries = list(session.datasets.order_by("position"))
    assert (entries[0].snapshot_id, entries[0].balance, entries[0].repeats) == (snap.pk, "equalize", 2)
    assert (entries[1].group_id, entries[1].role) == (group.pk, "regularization")
    body = trainer.get(f"/training/{session.pk}/").content.decode()
    assert f'<option value="{snap.pk}" selected>' in body
    assert f'<option value="{group.pk}" selected>' in body
    assert 'value="3" id="id_ds-TOTAL_FORMS"' in body or 'name="ds-TOTAL_FORMS" value="3"' in body


def test_add_a_dataset_row_keeps_the_values_and_saves_nothing(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    data = editor_data(datasets=[{"dataset": faces.pk, "repeats": 7}], name="Kept name")
    data["add_row"] = "1"
    response = trainer.post("/training/new", data)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="ds-1-dataset"' in body
    assert 'name="ds-2-dataset"' not in body
    assert 'value="Kept name"' in body
    assert 'name="ds-0-repeats" value="7"' in body
    assert "Nothing was saved" not in body
    assert not TrainingSession.objects.exists()


def test_the_editor_reads_a_fixed_number_of_queries_however_many_rows(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    others = [factories.dataset(f"More {n}", factories.items([["x"]], start=30 + n)) for n in range(3)]
    one = factories.session([faces], name="One")
    four = factories.session([faces, *others], name="Four")
    counts = []
    for session in (one, four):
        with CaptureQueriesContext(connection) as ctx:
            assert trainer.get(f"/training/{session.pk}/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[1] == counts[0]


def test_kohya_masks_are_set_on_the_editor(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    """docs/export-bundle.md#masks: the editor's select; left out of a POST it stays `none`."""
    page = trainer.get("/training/new").content.decode()
    assert 'name="kohya_masks"' in page
    response = trainer.post(
        "/training/new", editor_data(datasets=[{"dataset": faces.pk}], kohya_masks="focus")
    )
    assert response.status_code == 303
    session = TrainingSession.objects.get()
    assert session.kohya_masks == "focus"
    bad = trainer.post(
        f"/training/{session.pk}/",
        editor_data(datasets=[{"dataset": faces.pk}], session=session, kohya_masks="alpha"),
    )
    assert bad.status_code == 422
    assert TrainingSession.objects.get(pk=session.pk).kohya_masks == "focus"


def test_a_tagger_session_on_the_pages(trainer: Client, faces) -> None:  # type: ignore[no-untyped-def]
    data = editor_data(datasets=[{"dataset": faces.pk}], base="wd-tagger-convnext", targets=["wd-tagger"])
    response = trainer.post("/training/new", data)
    assert response.status_code == 303, response.content.decode()[:2000]
    session = TrainingSession.objects.get()
    assert session.targets == ["wd-tagger"]
    for url in ("/", "/preview", "/lint", "/fidelity", "/exports"):
        page = trainer.get(f"/training/{session.pk}{url}", HTTP_HX_REQUEST="true")
        assert page.status_code == 200, url
    assert "L18" in trainer.get(f"/training/{session.pk}/lint").content.decode()
    mixed = editor_data(
        datasets=[{"dataset": faces.pk}],
        base="wd-tagger-convnext",
        targets=["wd-tagger", "kohya"],
        name="Mixed",
    )
    refused = trainer.post("/training/new", mixed)
    assert refused.status_code == 422
    assert TrainingSession.objects.count() == 1
