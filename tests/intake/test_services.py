"""Intake services (docs/intake.md): planning checks what an entry takes and saves nothing on bad
input; processing goes through the media jobs (run here in-process), never fetches a URL the
library already has, and collects arrivals into the dataset and subset; failures and retries.
SQLite and MariaDB."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets import selectors as dataset_selectors
from apps.intake import selectors, services
from apps.intake.models import IntakeArrival, IntakeEntry
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.media.services import frames, media_upload_bulk_run
from apps.taggers.models import SchemeRun, Tagger
from apps.taggers.services.schemes import scheme_create
from tests import mediafiles
from tests.conftest import stored_files
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import BOXES, tagger_make

pytestmark = pytest.mark.django_db

State = IntakeEntry.State


def _run(entry: IntakeEntry) -> IntakeEntry:
    """Process the entry, run its media job here (as the worker would), collect."""
    entry = services.intake_entry_process(entry=entry)
    if entry.state == State.FETCHING:
        job = Job.objects.get(pk=entry.job_id)
        if job.kind == "media.frames":
            frames.media_frames_extract_run(job_id=job.pk)
        else:
            media_upload_bulk_run(job_id=job.pk)
        collected = services.intake_entry_collect(entry_id=entry.pk)
        assert collected is not None
        return collected
    return entry


def _member_ids(dataset) -> set[int]:  # type: ignore[no-untyped-def]
    return set(dataset_selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))


# --- planning and bad input


def test_url_list_is_planned_in_order_without_repeats(dataset) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(
        kind="urls",
        dataset=dataset.pk,
        urls="https://example.com/a.jpg\n\n# a comment\nhttps://example.com/b.jpg\nhttps://example.com/a.jpg\n",
    )
    assert entry.urls == ["https://example.com/a.jpg", "https://example.com/b.jpg"]
    assert entry.planned_count == 2
    assert entry.state == State.PLANNED


def test_malformed_url_list_names_every_bad_line_and_saves_nothing(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        services.intake_entries_bulk_add(
            dataset=dataset.pk,
            urls="https://example.com/a.jpg\nftp://example.com/b.jpg\nnot a url\nhttps://example.com/c.jpg",
            split=True,
        )
    assert caught.value.code == "intake.bad_urls"
    assert [line["line"] for line in caught.value.details["lines"]] == [2, 3]
    assert "http and https" in caught.value.details["lines"][0]["message"]
    assert not IntakeEntry.objects.exists()


def test_bulk_add_splits_a_list_into_one_entry_per_url(dataset, subset) -> None:  # type: ignore[no-untyped-def]
    entries = services.intake_entries_bulk_add(
        dataset=dataset.pk,
        subset=subset.pk,
        urls=["https://example.com/a.jpg", "https://example.com/b.jpg"],
        split=True,
    )
    assert [e.urls for e in entries] == [["https://example.com/a.jpg"], ["https://example.com/b.jpg"]]
    assert {e.subset_id for e in entries} == {subset.pk}


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ({"dataset": 999_999}, "intake.unknown_dataset"),
        ({"dataset": None}, "intake.no_dataset"),
        ({"subset": 999_999}, "intake.unknown_subset"),
    ],
)
def test_unknown_target_is_refused(dataset, target, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(
            **{"kind": "urls", "dataset": dataset.pk, "urls": ["https://e.com/a.jpg"], **target}
        )
    assert caught.value.code == code
    assert caught.value.status_code == 400


def test_subset_of_another_dataset_is_refused(dataset, subset) -> None:  # type: ignore[no-untyped-def]
    from apps.datasets import services as dataset_services

    other = dataset_services.dataset_create(name="Other")
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(
            kind="urls", dataset=other.pk, subset=subset.pk, urls=["https://e.com/a.jpg"]
        )
    assert caught.value.code == "intake.unknown_subset"


@pytest.mark.parametrize("folder", ["../private", "/etc", "shoot/../../private", "missing"])
def test_folder_outside_the_root_or_missing_is_refused(dataset, folder_root, folder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(kind="folder", dataset=dataset.pk, folder=folder)
    assert caught.value.code in ("intake.folder_outside_root", "intake.folder_missing")
    assert not IntakeEntry.objects.exists()


def test_folder_link_out_of_the_root_is_refused(dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    (folder_root / "sneaky").symlink_to(folder_root.parent / "private")
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(kind="folder", dataset=dataset.pk, folder="sneaky")
    assert caught.value.code == "intake.folder_outside_root"


def test_folders_are_off_without_a_root(dataset, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_INTAKE_FOLDER_ROOT = ""
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(kind="folder", dataset=dataset.pk, folder="shoot")
    assert caught.value.code == "intake.folders_disabled"


def test_hostile_zip_is_refused_and_nothing_is_kept(dataset, media_root) -> None:  # type: ignore[no-untyped-def]
    archive = SimpleUploadedFile("bad.zip", mediafiles.zip_bytes({"../escape.jpg": b"x"}))
    with pytest.raises(DomainError):
        services.intake_entry_create(kind="archive", dataset=dataset.pk, archive=archive)
    assert not IntakeEntry.objects.exists()
    assert stored_files(media_root) == []


def test_frame_plan_is_checked_against_the_video(dataset, video_dir) -> None:  # type: ignore[no-untyped-def]
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"))
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(
            kind="video",
            dataset=dataset.pk,
            video=video.pk,
            frame_plan={"mode": "timestamps", "timestamps": [99]},
        )
    assert caught.value.code == "media.timestamp_out_of_range"
    entry = services.intake_entry_create(
        kind="video", dataset=dataset.pk, video=video.pk, frame_plan={"mode": "count", "count": 3}
    )
    assert entry.planned_count == 3


def test_bad_query_and_bad_on_arrival_are_refused(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as bad_query:
        services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>")
    assert bad_query.value.code == "intake.bad_query"
    with pytest.raises(DomainError) as bad_choice:
        services.intake_entry_create(
            kind="urls", dataset=dataset.pk, urls=["https://e.com/a"], on_arrival={"model": "x"}
        )
    assert bad_choice.value.code == "intake.bad_on_arrival"


@pytest.fixture
def arrival_world(settings, tmp_path):  # type: ignore[no-untyped-def]
    """A detector scheme (fixed boxes, no model) and a head tagger with an active version."""
    settings.BAGGINTAG_MODEL_DIR = str(tmp_path / "models")
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    head = tagger_make("heads", "embedding_head")
    Tagger.objects.create(name="untrained", kind="embedding_head", vocabulary=head.vocabulary)
    steps = [{"key": "persons", "tagger": "persons", "params": {"boxes": BOXES}}]
    return scheme_create(name="detect", body={"steps": steps}), persons, head


def test_on_arrival_names_become_ids(dataset, arrival_world) -> None:  # type: ignore[no-untyped-def]
    scheme, persons, head = arrival_world
    entry = services.intake_entry_create(
        kind="urls",
        dataset=dataset.pk,
        urls=["https://e.com/a"],
        on_arrival={"scheme": "detect", "taggers": [head.pk, "heads", "persons"]},
    )
    assert entry.on_arrival == {"scheme": scheme.pk, "taggers": [head.pk, persons.pk]}


@pytest.mark.parametrize(
    ("choice", "named"),
    [({"scheme": "nope"}, "'nope'"), ({"taggers": ["detect", "wd14"]}, "'detect'")],
)
def test_on_arrival_naming_nothing_is_refused(dataset, arrival_world, choice, named) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as refused:
        services.intake_entry_create(
            kind="urls", dataset=dataset.pk, urls=["https://e.com/a"], on_arrival=choice
        )
    assert refused.value.code == "intake.bad_on_arrival"
    assert named in refused.value.message
    assert not IntakeEntry.objects.exists()


def test_on_arrival_starts_the_scheme_and_says_what_could_not_start(dataset, arrival_world) -> None:  # type: ignore[no-untyped-def]
    scheme, _persons, head = arrival_world
    items = [make_item(seed=n) for n in range(3)]
    entry = services.intake_entry_create(
        kind="query",
        dataset=dataset.pk,
        query=f"id:{items[0].pk},{items[1].pk},{items[2].pk}",
        on_arrival={"scheme": scheme.pk, "taggers": [head.pk, "untrained"]},
    )
    processed = services.intake_entry_process(entry=entry)
    run = SchemeRun.objects.get(scheme=scheme)
    assert processed.state == IntakeEntry.State.ADDED
    assert run.selection == SchemeRun.Selection.EXPLICIT
    assert sorted(run.item_ids) == sorted(i.pk for i in items)
    scoring = Job.objects.get(kind="taggers.score")
    assert scoring.params["item_ids"] == sorted(i.pk for i in items)
    # A tagger with no active version cannot start: said on the entry, not fatal.
    assert processed.error_code == "intake.on_arrival_not_started"
    assert "untrained has no active version" in processed.error_message
    assert IntakeArrival.objects.filter(entry=entry).count() == 3


# --- processing


def test_url_entry_arrives_in_dataset_and_subset(dataset, subset, url_server) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(
        kind="urls",
        dataset=dataset.pk,
        subset=subset.pk,
        urls=[url_server.url("/a.jpg"), url_server.url("/b.jpg")],
    )
    entry = _run(entry)
    assert entry.state == State.ADDED
    assert (entry.added_count, entry.failed_count) == (2, 0)
    arrived = set(IntakeArrival.objects.filter(entry=entry).values_list("media_item_id", flat=True))
    assert arrived == set(MediaItem.objects.values_list("pk", flat=True))
    assert _member_ids(dataset) == arrived
    assert set(dataset_selectors.subset_members(subset=subset).values_list("pk", flat=True)) == arrived


def test_url_already_fetched_is_not_fetched_again(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    first = _run(
        services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/a.jpg")])
    )
    assert url_server.hits["/a.jpg"] == 1
    second = services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/a.jpg")])
    second = services.intake_entry_process(entry=second)
    assert second.state == State.ADDED  # nothing to fetch: no job
    assert second.job_id is None
    assert url_server.hits["/a.jpg"] == 1
    assert list(second.arrivals.values_list("media_item_id", flat=True)) == list(
        first.arrivals.values_list("media_item_id", flat=True)
    )


def test_item_already_present_is_recognised_by_its_bytes(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    present = make_item(data=url_server.bodies["/c.jpg"])
    entry = _run(
        services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/c.jpg")])
    )
    assert list(entry.arrivals.values_list("media_item_id", flat=True)) == [present.pk]
    assert MediaItem.objects.count() == 1


def test_refused_urls_fail_the_entry_with_the_fetchers_message(dataset) -> None:  # type: ignore[no-untyped-def]
    entry = _run(
        services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=["http://10.0.0.1/a.jpg"])
    )
    assert entry.state == State.FAILED
    assert entry.error_code == "jobs.all_inputs_failed"
    assert "private, loopback or link-local" in entry.error_message
    assert Job.objects.get(pk=entry.job_id).outcome == "failed"
    assert _member_ids(dataset) == set()


def test_partial_failure_is_added_with_failures_and_a_retry_fetches_only_those(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    entry = _run(
        services.intake_entry_create(
            kind="urls", dataset=dataset.pk, urls=[url_server.url("/a.jpg"), url_server.url("/later.jpg")]
        )
    )
    assert entry.state == State.ADDED
    assert (entry.added_count, entry.failed_count) == (1, 1)
    assert entry.error_code == "intake.some_inputs_failed"
    assert "/later.jpg" in entry.error_message
    url_server.bodies["/later.jpg"] = mediafiles.image_bytes("png", seed=70)
    retried = _run(entry)
    assert (retried.state, retried.added_count, retried.failed_count) == (State.ADDED, 2, 0)
    assert url_server.hits["/a.jpg"] == 1
    assert url_server.hits["/later.jpg"] == 2


def test_failed_entry_can_be_retried_and_planned_or_added_ones_cannot_twice(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    entry = _run(
        services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/gone.jpg")])
    )
    assert entry.state == State.FAILED
    url_server.bodies["/gone.jpg"] = mediafiles.image_bytes("png", seed=71)
    entry = _run(entry)
    assert entry.state == State.ADDED
    with pytest.raises(ConflictError) as caught:
        services.intake_entry_process(entry=entry)
    assert caught.value.code == "intake.not_processable"


def test_zip_entry_arrives_and_is_kept_for_retries(
    dataset, media_root, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    archive = mediafiles.zip_bytes(
        {
            "a.jpg": mediafiles.image_bytes("jpeg", seed=80),
            "b.png": mediafiles.image_bytes("png", seed=81),
            "c.txt": b"x",
        }
    )
    entry = services.intake_entry_create(
        kind="archive", dataset=dataset.pk, archive=SimpleUploadedFile("set.zip", archive)
    )
    assert (entry.archive_name, entry.planned_count) == ("set.zip", 3)
    entry = _run(entry)
    assert (entry.state, entry.added_count, entry.failed_count) == (State.ADDED, 2, 1)
    assert (media_root / entry.archive_key).exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.intake_entry_delete(entry=entry)
    assert not (media_root / entry.archive_key).exists()


def test_folder_entry_takes_the_files_below_it(dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(kind="folder", dataset=dataset.pk, folder="shoot")
    assert entry.planned_count == 3
    entry = _run(entry)
    assert (entry.state, entry.added_count, entry.failed_count) == (State.ADDED, 2, 1)
    names = set(MediaItem.objects.values_list("sources__original_filename", flat=True))
    assert names == {"one.png", "two.webp"}  # media keeps the base name


def test_video_entry_captures_frames_into_the_dataset(dataset, video_dir) -> None:  # type: ignore[no-untyped-def]
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"))
    entry = services.intake_entry_create(
        kind="video",
        dataset=dataset.pk,
        video=video.pk,
        frame_plan={"mode": "timestamps", "timestamps": [0.5, 1.0]},
    )
    entry = _run(entry)
    assert (entry.state, entry.added_count) == (State.ADDED, 2)
    assert set(MediaItem.objects.filter(pk__in=_member_ids(dataset)).values_list("kind", flat=True)) == {
        "frame"
    }


def test_query_entry_adds_library_items_without_a_job(dataset, settings) -> None:  # type: ignore[no-untyped-def]
    wide = make_item(seed=1, size=(64, 32))
    make_item(seed=2, size=(16, 32))
    entry = services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>40")
    assert entry.planned_count == 1
    entry = services.intake_entry_process(entry=entry)
    assert (entry.state, entry.job_id) == (State.ADDED, None)
    assert _member_ids(dataset) == {wide.pk}
    settings.BAGGINTAG_INTAKE_QUERY_MAX = 1
    too_big = services.intake_entry_process(
        entry=services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>1")
    )
    assert (too_big.state, too_big.error_code) == (State.FAILED, "intake.query_too_big")


def test_media_refusal_at_start_fails_the_entry_and_saves_no_job(dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(kind="folder", dataset=dataset.pk, folder="shoot")
    for path in sorted((folder_root / "shoot").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    entry = services.intake_entry_process(entry=entry)
    assert (entry.state, entry.error_code) == (State.FAILED, "intake.folder_empty")
    assert not Job.objects.exists()


def test_collect_waits_for_the_job_and_runs_once(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_process(
        entry=services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/a.jpg")])
    )
    assert services.intake_entry_collect(entry_id=entry.pk) is None  # job still queued
    media_upload_bulk_run(job_id=entry.job_id)
    assert services.intake_collect_finished() == [entry.pk]
    assert services.intake_collect_finished() == []


def test_delete_is_refused_while_fetching(dataset) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_process(
        entry=services.intake_entry_create(
            kind="urls", dataset=dataset.pk, urls=["https://example.com/a.jpg"]
        )
    )
    with pytest.raises(ConflictError):
        services.intake_entry_delete(entry=entry)


# --- later states and progress


def test_review_and_tagged_states(dataset) -> None:  # type: ignore[no-untyped-def]
    items = [make_item(seed=i) for i in range(3)]
    entry = services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>1")
    with pytest.raises(ConflictError):
        services.intake_entry_review(entry=entry)
    entry = services.intake_entry_process(entry=entry)
    entry = services.intake_entry_mark_tagged(entry=entry)
    assert entry.state == State.TAGGED
    with pytest.raises(DomainError) as caught:
        services.intake_entry_review(entry=entry, item_ids=[items[0].pk, 999_999])
    assert caught.value.code == "intake.not_arrivals"
    entry = services.intake_entry_review(entry=entry, item_ids=[items[0].pk])
    assert (entry.state, entry.reviewed_count) == (State.TAGGED, 1)
    entry = services.intake_entry_review(entry=entry)
    assert (entry.state, entry.reviewed_count) == (State.REVIEWED, 3)


def test_progress_per_dataset_sums_its_entries(dataset) -> None:  # type: ignore[no-untyped-def]
    make_item(seed=1)
    make_item(seed=2)
    services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=["https://e.com/1", "https://e.com/2"])
    done = services.intake_entry_process(
        entry=services.intake_entry_create(
            kind="query", dataset=dataset.pk, query="width:>1", planned_count=4
        )
    )
    services.intake_entry_review(entry=done, item_ids=[done.arrivals.first().media_item_id])
    (row,) = selectors.dataset_progress()
    assert (row["entries"], row["planned"], row["added"], row["reviewed"]) == (2, 6, 2, 1)
    assert (row["added_percent"], row["reviewed_percent"]) == (33, 16)


def test_update_changes_only_the_plan(dataset) -> None:  # type: ignore[no-untyped-def]
    entry = services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=["https://e.com/1"])
    entry = services.intake_entry_update(entry=entry, notes="from the artist's page", planned_count=5)
    assert (entry.notes, entry.planned_count) == ("from the artist's page", 5)
    with pytest.raises(DomainError) as caught:
        services.intake_entry_update(entry=entry, urls=["https://e.com/2"])
    assert caught.value.code == "intake.not_editable"


def test_archive_argument_is_required_for_zip_entries(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as caught:
        services.intake_entry_create(kind="archive", dataset=dataset.pk, archive=None)
    assert caught.value.code == "intake.no_archive"


def test_deleting_the_dataset_removes_its_entries_kept_zip(
    dataset, media_root, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from apps.datasets import services as dataset_services

    archive = SimpleUploadedFile(
        "set.zip", mediafiles.zip_bytes({"a.jpg": mediafiles.image_bytes("jpeg", seed=85)})
    )
    entry = services.intake_entry_create(kind="archive", dataset=dataset.pk, archive=archive)
    assert (media_root / entry.archive_key).exists()
    with django_capture_on_commit_callbacks(execute=True):
        dataset_services.dataset_delete(dataset=dataset)
    assert not IntakeEntry.objects.exists()
    assert not (media_root / entry.archive_key).exists()


def test_media_job_retried_from_the_jobs_page_is_collected_again(dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    from apps.jobs import services as job_services

    entry = _run(
        services.intake_entry_create(kind="urls", dataset=dataset.pk, urls=[url_server.url("/soon.jpg")])
    )
    assert entry.state == State.FAILED
    url_server.bodies["/soon.jpg"] = mediafiles.image_bytes("png", seed=72)
    job_services.job_retry(job=Job.objects.get(pk=entry.job_id))
    media_upload_bulk_run(job_id=entry.job_id)
    assert services.intake_collect_for_job(job_id=entry.job_id) == [entry.pk]
    entry.refresh_from_db()
    assert (entry.state, entry.added_count, entry.error_code) == (State.ADDED, 1, "")
