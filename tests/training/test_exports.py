"""Export jobs and lint (docs/training.md#exports, #lint): the job's outcome, failure paths that
leave no temporary folder, the zip download and the export_session command; end-to-end bundle
checks run once apps/training/bundle is there. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.core.exceptions import DomainError
from apps.jobs.models import Job
from apps.training.models import TrainingExport
from apps.training.services import exports, lint
from apps.training.services.base_models import base_model_create
from tests.training import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds():
    return f.dataset("Mychar", f.items([["mychar", "smile"], ["mychar", "snow"]]))


def _no_temp_folders(root: Path) -> bool:
    return not root.exists() or not [p for p in root.rglob("*") if ".tmp-" in p.name]


def _hub_profile_without_diffusers() -> None:
    base_model_create(
        slug="hub-sd",
        name="Hub SD",
        family="sd1",
        source_kind="hub",
        source_ref="someone/some-model",
        supported_trainers=["kohya", "diffusers"],
    )


def _ids(found: list[dict]) -> set[str]:
    return {row["id"] for row in found}


# --- lint ---------------------------------------------------------------------------------------


def test_session_lint_reports_setting_conflicts(ds) -> None:
    session = f.session(
        [ds, {"dataset": f.dataset("Reg", f.items([["x"]], start=9)).pk, "role": "regularization"}],
        targets=["kohya"],
        cache_text_encoder_outputs=True,
        crop="random",
        masked_loss=True,
        extra_args={"caption_prefix": "x"},
    )
    found = lint.session_lint(session)
    assert found["job"] is None
    messages = " | ".join(row["message"] for row in found["findings"])
    assert {"L04", "L15"} <= _ids(found["findings"])
    assert "text-encoder" in messages
    assert "latent caching" in messages
    assert "masked loss" in messages


def test_session_lint_diffusers_without_a_diffusers_model(ds) -> None:
    _hub_profile_without_diffusers()
    session = f.session([ds], base_model="hub-sd", targets=["kohya", "diffusers"])
    assert "L16" in _ids(lint.session_lint(session)["findings"])
    fine = f.session([ds], name="Fine", base_model="hub-sd", targets=["kohya"])
    assert "L16" not in _ids(lint.session_lint(fine)["findings"])


def test_small_sources_are_warnings(ds) -> None:
    session = f.session([ds], targets=["kohya"], min_source_side=512, max_aspect=1.2)
    rows = [r for r in lint.session_lint(session)["findings"] if r["id"] == "L09"]
    assert len([r for r in rows if "short side" in r["message"]]) == 2  # two items, each too small
    assert len([r for r in rows if "aspect" in r["message"]]) == 2  # and too wide
    assert {r["severity"] for r in rows} == {"W"}


def test_unknown_kohya_args(ds) -> None:
    session = f.session([ds], targets=["kohya"], extra_args={"network_dimm": 8})
    assert "L17" in _ids(lint.session_lint(session)["findings"])


def test_big_sessions_are_linted_by_a_job(ds, settings) -> None:
    settings.BAGGINTAG_TRAINING_SYNC_LINT_MAX = 1
    session = f.session([ds], targets=["kohya"], cache_text_encoder_outputs=True)
    queued = lint.session_lint(session)
    job = queued["job"]
    assert job is not None
    lint.lint_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert "L15" in _ids(job.result["findings"])
    assert job.result["version"] == 1


# --- export jobs --------------------------------------------------------------------------------


def test_export_failing_lint_fails_its_job_and_leaves_no_folder(ds, export_dir: Path) -> None:
    _hub_profile_without_diffusers()
    session = f.session([ds], base_model="hub-sd", targets=["kohya", "diffusers"])
    export = exports.export_start(session=session)
    exports.export_run(job_id=export.job_id)
    export.refresh_from_db()
    job = Job.objects.get(pk=export.job_id)
    assert export.status == TrainingExport.Status.FAILED
    assert export.error_code == "training.lint_failed"
    assert "L16" in _ids(export.findings)
    assert job.status == Job.Status.FAILED
    assert job.error_code == "training.lint_failed"
    assert _no_temp_folders(export_dir)
    assert not export.bundle_path


def test_export_of_a_deleted_session_fails_the_job(ds) -> None:
    session = f.session([ds])
    export = exports.export_start(session=session)
    job_id = export.job_id
    session.delete()  # the export row goes with it
    exports.export_run(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.FAILED
    assert job.error_code == "training.not_found"


def test_a_base_model_swapped_to_a_tagger_cannot_export_caption_targets(ds) -> None:
    from apps.core.exceptions import DomainError
    from apps.training.models import BaseModelProfile

    session = f.session([ds])
    session.base_model = BaseModelProfile.objects.get(slug="wd-tagger-convnext")
    session.save(update_fields=["base_model"])  # behind the services' back: export_start still refuses
    with pytest.raises(DomainError) as caught:
        exports.export_start(session=session)
    assert caught.value.code == "training.unsupported_target"
    assert not TrainingExport.objects.exists()


def test_folder_resolution(settings, tmp_path: Path) -> None:
    from apps.core.exceptions import ConflictError, DomainError

    settings.BAGGINTAG_TRAINING_FOLDER_ROOT = str(tmp_path)
    assert exports.folder_resolve("a/b") == (tmp_path / "a" / "b").resolve()
    for bad in ("", "..", "../x", "/tmp/elsewhere", "a/../../x"):
        with pytest.raises(DomainError):
            exports.folder_resolve(bad)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ConflictError):
        exports.folder_resolve("full")
    (tmp_path / "empty").mkdir()
    assert exports.folder_resolve("empty") == (tmp_path / "empty").resolve()


def test_command_refuses_an_unknown_session() -> None:
    with pytest.raises(CommandError, match="No training session"):
        call_command("export_session", "nope")


def test_command_reports_lint_errors(ds) -> None:
    _hub_profile_without_diffusers()
    session = f.session([ds], base_model="hub-sd", targets=["kohya", "diffusers"])
    with pytest.raises(CommandError, match=r"training\.lint_failed"):
        call_command("export_session", session.slug)
    assert TrainingExport.objects.get().status == TrainingExport.Status.FAILED


# --- end to end ----------------------------------------------------------------------------------


def test_export_writes_a_bundle_and_downloads_as_a_zip(ds, export_dir: Path) -> None:
    session = f.session([ds], targets=["kohya", "onetrainer"])
    export = exports.export_start(session=session)
    exports.export_run(job_id=export.job_id)
    export.refresh_from_db()
    job = Job.objects.get(pk=export.job_id)
    assert export.status == TrainingExport.Status.SUCCEEDED, (
        export.error_code,
        export.error_message,
        export.findings,
    )
    assert job.status == Job.Status.SUCCEEDED
    folder = Path(export.bundle_path)
    assert folder.is_dir()
    assert folder.is_relative_to(export_dir)
    assert (folder / "session.json").exists()
    assert (folder / "items.jsonl").exists()
    assert export.item_count == 2
    assert export.bundle_size > 0
    assert _no_temp_folders(export_dir)
    name, chunks = exports.export_zip_stream(export)
    assert name.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert any(n.endswith("session.json") for n in archive.namelist())


def test_download_over_the_api(ds) -> None:
    from django.contrib.auth.models import Permission, User
    from rest_framework.test import APIClient

    user = User.objects.create_user("t", password="pw-t-12345")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="training"))
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    session = f.session([ds], targets=["kohya"])
    export = exports.export_start(session=session, actor=user)
    exports.export_run(job_id=export.job_id)
    response = client.get(f"/api/training-exports/{export.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="mychar-lora-v1-e')
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_re_export_is_byte_identical(ds) -> None:
    from apps.datasets.services.snapshots import snapshot_create

    pinned = snapshot_create(dataset=ds)  # the same database state: no new snapshot per export
    session = f.session(
        [{"dataset": ds.pk, "snapshot": pinned.pk}], targets=["kohya", "onetrainer", "diffusers"]
    )
    first = exports.export_sync(session=session)
    second = exports.export_sync(session=session)

    def files(root: str) -> dict[str, bytes]:
        base = Path(root)
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    assert files(first.bundle_path) == files(second.bundle_path)


def test_command_exports_into_a_folder_and_a_zip(ds, settings, tmp_path: Path) -> None:
    settings.BAGGINTAG_TRAINING_FOLDER_ROOT = str(tmp_path / "out")
    session = f.session([ds], targets=["kohya"])
    target = tmp_path / "bundle.zip"
    stdout = io.StringIO()
    call_command("export_session", session.slug, "--folder", "mychar", "--zip", str(target), stdout=stdout)
    assert (tmp_path / "out" / "mychar" / "session.json").exists()
    assert zipfile.is_zipfile(target)
    assert "2 images" in stdout.getvalue()


def test_ti_export_writes_its_folder(ds) -> None:
    from apps.training.services.textual_inversions import ti_create

    ti = ti_create(
        name="Mychar TI",
        base_model="sd15",
        token="mychrtok",
        init_word="girl",
        dataset=ds.pk,
        targets=["kohya", "onetrainer", "a1111"],
    )
    export = exports.export_sync(textual_inversion=ti)
    assert export.status == TrainingExport.Status.SUCCEEDED
    assert (Path(export.bundle_path) / "ti" / "mychrtok").is_dir()
    assert export.session_version == 1


def test_ti_export_from_a_query_takes_the_matching_items(ds) -> None:
    from apps.training.services.textual_inversions import ti_create

    other = f.items([["landscape"]], start=20)[0]
    ti = ti_create(name="Query TI", base_model="sd15", token="qrytok", init_word="girl", query="mychar")
    export = exports.export_sync(textual_inversion=ti)
    assert export.status == TrainingExport.Status.SUCCEEDED
    rows = (Path(export.bundle_path) / "items.jsonl").read_text().splitlines()
    media = {json.loads(row)["source"]["media_id"] for row in rows}
    assert len(media) == 2  # the two "mychar" items of the fixture, not the landscape
    assert other.pk not in media
    images = sorted((Path(export.bundle_path) / "ti" / "qrytok" / "images").iterdir())
    assert len(images) == 2


def test_export_refuses_a_mapping_into_a_vocabulary_the_model_no_longer_has(ds, export_dir: Path) -> None:
    """The base model's vocabulary changed after the session was saved (its default mapping
    profile with it): the session still maps into the old one, so an export is a 400 naming the
    fix and records nothing."""
    from apps.training.models import BaseModelProfile
    from apps.training.services.base_models import base_model_update
    from tests.mappings.factories import profile_make, set_make, vocabulary_make

    e621, other = vocabulary_make("e621"), vocabulary_make("other")
    into_e621 = profile_make(e621, [set_make(e621, e621)])
    into_other = profile_make(other, [set_make(other, other)])
    furry = BaseModelProfile.objects.get(slug="sd1-furry-e621")
    base_model_update(profile=furry, vocabulary=e621.pk, mapping_profile=into_e621.slug)
    session = f.session([ds], base_model="sd1-furry-e621", targets=["kohya"], mapping_profile=into_e621.slug)
    base_model_update(
        profile=BaseModelProfile.objects.get(slug="sd1-furry-e621"),
        vocabulary=other.pk,
        mapping_profile=into_other.slug,
    )
    for start in (exports.export_start, exports.export_sync):
        with pytest.raises(DomainError) as caught:
            start(session=session)
        assert caught.value.code == "training.vocabulary_mismatch"
        assert "mapping_profile" in caught.value.message
    assert not TrainingExport.objects.exists()
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_mirrored_copies_reach_the_bundle(ds) -> None:
    directional = f.items([["hand_on_left_hip"]], start=30)[0]
    mixed = f.dataset("Poses", [directional, *f.items([["smile"]], start=31)])
    session = f.session(
        [mixed], name="Poses", targets=["kohya", "onetrainer"], mirror="per_item", underscores_to_spaces=True
    )
    export = exports.export_sync(session=session)
    lines = (Path(export.bundle_path) / "items.jsonl").read_text().splitlines()
    assert any('"mirror_of":"i' in line for line in lines)
    assert export.item_count == 3


# --- a failed export leaves nothing behind ---------------------------------------------------------


def test_failed_lint_leaves_no_folder_and_no_frozen_snapshot(ds, export_dir: Path) -> None:
    from apps.datasets.models import Snapshot

    _hub_profile_without_diffusers()
    session = f.session([ds], base_model="hub-sd", targets=["kohya", "diffusers"])
    export = exports.export_start(session=session)
    exports.export_run(job_id=export.job_id)
    export.refresh_from_db()
    assert export.status == TrainingExport.Status.FAILED
    assert export.error_code == "training.lint_failed"
    assert not Snapshot.objects.exists()  # the snapshot frozen for it is gone again
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_failed_bundle_leaves_no_folder_and_no_frozen_snapshot(export_dir: Path) -> None:
    from apps.datasets.models import Snapshot
    from apps.datasets.services.snapshots import snapshot_create

    bare = f.dataset("Bare", f.items([[]], start=90))  # nothing to caption: the writer refuses (L01)
    pinned_ds = f.dataset("Pinned", f.items([["mychar"]], start=91))
    pinned = snapshot_create(dataset=pinned_ds)
    session = f.session(
        [{"dataset": bare.pk}, {"dataset": pinned_ds.pk, "snapshot": pinned.pk}], targets=["kohya"]
    )
    with pytest.raises(DomainError) as caught:
        exports.export_sync(session=session)
    assert caught.value.code == "training.lint_failed"
    assert list(Snapshot.objects.values_list("pk", flat=True)) == [pinned.pk]  # pinned one stays
    assert TrainingExport.objects.get().status == TrainingExport.Status.FAILED
    assert not export_dir.exists() or not any(export_dir.iterdir())
