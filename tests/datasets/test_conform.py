"""Conform (docs/datasets.md#conform): the plan per item, the job on real files checked with
Pillow (size, mode, alpha, format), lineage, substitution in the dataset, per-item failures
and refusals; runs on SQLite and on MariaDB."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from apps.core.exceptions import DomainError
from apps.datasets import selectors, services
from apps.datasets.models import Dataset, DatasetItem
from apps.datasets.services import conform
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem
from tests import mediafiles
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


def _dataset(items: list[MediaItem], **requirements: object) -> Dataset:
    dataset = services.dataset_create(name="Train", requirements=requirements)
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    return dataset


def _run(dataset: Dataset, **options: object) -> Job:
    job = conform.conform_start(dataset=dataset, options=options)
    conform.conform_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def _opened(item: MediaItem) -> Image.Image:
    with default_storage.open(item.storage_key, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
        return image


def _derived_of(job: Job) -> list[MediaItem]:
    ids = JobItem.objects.filter(job=job, object_id__isnull=False).values_list("object_id", flat=True)
    return list(MediaItem.objects.filter(pk__in=list(ids)).order_by("pk"))


def _members(dataset: Dataset) -> set[int]:
    return set(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))


def test_downscale_convert_and_flatten_checked_with_pillow() -> None:
    big_alpha = make_item(data=mediafiles.image_bytes("png", size=(400, 300), seed=1, alpha=True))
    ok = make_item(seed=2, fmt="jpeg", size=(200, 150))
    dataset = _dataset(
        [big_alpha, ok],
        max_width=200,
        max_height=200,
        formats=["jpeg"],
        modes=["RGB"],
        alpha="flatten",
        flatten_color="#ff0000",
    )
    job = _run(dataset)
    assert job.outcome == "succeeded"
    (derived,) = _derived_of(job)
    image = _opened(derived)
    assert (image.format, image.size, image.mode) == ("JPEG", (200, 150), "RGB")
    assert (derived.format, derived.width, derived.height, derived.has_alpha) == ("jpeg", 200, 150, False)
    assert derived.parent_id == big_alpha.pk
    assert derived.recipe is not None
    assert derived.recipe["output"]["background"] == "#ff0000"
    assert _members(dataset) == {ok.pk, derived.pk}
    report = selectors.validation_report(dataset=dataset)
    assert report["failing"] == 0


def test_exact_size_crops_around_the_centre_and_alpha_kept_when_required() -> None:
    wide = make_item(data=mediafiles.image_bytes("png", size=(300, 100), seed=3, alpha=True))
    dataset = _dataset([wide], exact_width=64, exact_height=64, formats=["png", "webp"], alpha="required")
    job = _run(dataset)
    (derived,) = _derived_of(job)
    image = _opened(derived)
    assert (image.format, image.size, image.mode) == ("PNG", (64, 64), "RGBA")
    assert derived.recipe["ops"][0] == {"op": "crop", "fbox": [0.333333, 0.0, 0.333333, 1.0]}


def test_bucket_target_picks_the_nearest_bucket() -> None:
    item = make_item(seed=4, fmt="png", size=(640, 400))
    dataset = _dataset([item], formats=["webp"])
    job = _run(dataset, target="bucket", base=256)
    (derived,) = _derived_of(job)
    image = _opened(derived)
    # base 256: buckets of area ≤ 65,536 with sides from 128 to 512 in steps of 64; 640×400
    # (1.6) is nearest to 320×192 (1.67)
    assert (image.format, image.size) == ("WEBP", (320, 192))


def test_needs_upscale_is_reported_not_done_and_an_all_failed_job_failed() -> None:
    small = make_item(seed=5, size=(32, 32))
    dataset = _dataset([small], min_width=256)
    preview = conform.conform_preview(dataset=dataset)
    (row,) = preview["items"]
    assert (row["action"], row["problem"]["code"]) == ("cannot", "datasets.needs_upscale")
    job = _run(dataset)
    assert job.outcome == "failed"
    assert JobItem.objects.get(job=job).error_code == "datasets.needs_upscale"
    assert _members(dataset) == {small.pk}
    assert not MediaItem.objects.filter(parent=small).exists()


def test_upscale_within_the_allowed_factor() -> None:
    small = make_item(seed=6, size=(100, 80))
    dataset = _dataset([small], min_short_side=160)
    job = _run(dataset, max_upscale=2)
    (derived,) = _derived_of(job)
    assert _opened(derived).size == (200, 160)


def test_corrupt_original_fails_alone_and_the_others_proceed() -> None:
    broken = make_item(seed=7, size=(300, 300))
    fine = make_item(seed=8, size=(300, 300))
    default_storage.delete(broken.storage_key)
    default_storage.save(broken.storage_key, ContentFile(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200))
    dataset = _dataset([broken, fine], max_width=100)
    job = _run(dataset)
    assert job.outcome == "succeeded_with_failures"
    failed = JobItem.objects.get(job=job, status="failed")
    assert failed.input == f"item {broken.pk}"
    (derived,) = _derived_of(job)
    assert derived.parent_id == fine.pk
    assert _members(dataset) == {broken.pk, derived.pk}
    assert not DatasetItem.objects.filter(dataset=dataset, media_item=broken, excluded=True).exists()


def test_rerun_finds_the_same_derived_item_and_nothing_left() -> None:
    item = make_item(seed=9, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    first = _derived_of(_run(dataset))
    with pytest.raises(DomainError) as err:
        conform.conform_start(dataset=dataset)
    assert err.value.code == "datasets.nothing_to_conform"
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk])
    again = _run(dataset)
    assert _derived_of(again) == first
    assert JobItem.objects.get(job=again).status == "duplicate"


def test_subset_membership_is_substituted_too() -> None:
    item = make_item(seed=10, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    subset = services.subset_create(dataset=dataset, name="Part")
    services.members_edit(owner=subset, action="add", item_ids=[item.pk])
    (derived,) = _derived_of(_run(dataset))
    assert set(selectors.subset_members(subset=subset).values_list("pk", flat=True)) == {derived.pk}


def test_a_query_member_substituted_keeps_the_stored_explicit_count() -> None:
    item = make_item(seed=12, size=(300, 200))
    dataset = services.dataset_create(name="By query", query=f"id:{item.pk}", requirements={"max_width": 150})
    (derived,) = _derived_of(_run(dataset))
    dataset.refresh_from_db()
    assert _members(dataset) == {derived.pk}
    # The derived item is the one explicit member (the original is only excluded).
    assert dataset.explicit_count == 1


@pytest.mark.parametrize(
    ("requirements", "code"),
    [
        ({"min_width": 10, "bit_depth": 16}, "datasets.bit_depth_unsupported"),
        ({"formats": ["gif"], "min_width": 10}, "datasets.format_unsupported"),
        ({"modes": ["CMYK"]}, "datasets.mode_unsupported"),
        ({"min_width": 300, "max_pixels": 40_000}, "datasets.rules_conflict"),
    ],
)
def test_rules_conform_cannot_meet_are_reported(requirements: dict, code: str) -> None:
    item = make_item(seed=11, size=(200, 200))
    dataset = _dataset([item], **requirements)
    (row,) = conform.conform_preview(dataset=dataset, options={"max_upscale": 4})["items"]
    assert row["problem"]["code"] == code


def test_aspect_rule_crops_to_the_bound() -> None:
    item = make_item(seed=12, size=(400, 100))
    dataset = _dataset([item], max_aspect_milli=2000)
    (derived,) = _derived_of(_run(dataset))
    image = _opened(derived)
    assert round(1000 * image.width / image.height) <= 2000


@pytest.mark.parametrize(
    "options",
    [{"target": "x"}, {"base": 100}, {"base": "abc"}, {"max_upscale": 9}, {"quality": 0}, {"focus": [2, 0]}],
)
def test_bad_options_refused(options: dict) -> None:
    dataset = _dataset([make_item(seed=13)], max_width=10)
    with pytest.raises(DomainError) as err:
        conform.conform_start(dataset=dataset, options=options)
    assert err.value.code == "datasets.invalid"
    assert not Job.objects.exists()


def test_without_requirements_refused() -> None:
    dataset = _dataset([make_item(seed=14)])
    dataset.requirements.delete()
    with pytest.raises(DomainError) as err:
        conform.conform_preview(dataset=Dataset.objects.get(pk=dataset.pk))
    assert err.value.code == "datasets.no_requirements"


def test_api_preview_start_and_errors(api) -> None:  # type: ignore[no-untyped-def]
    item = make_item(seed=15, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    url = f"/api/datasets/{dataset.pk}/conform"
    preview = api.get(url).json()
    assert (preview["candidates"], preview["items"][0]["result"]["width"]) == (1, 150)
    assert api.get(url, {"base": "7"}).status_code == 400
    started = api.post(url, {}, format="json")
    assert started.status_code == 202
    assert started.json()["job"]["kind"] == "datasets.conform"
    assert api.get("/api/datasets/999999/conform").status_code == 404


def test_api_start_needs_permission(viewer, client) -> None:  # type: ignore[no-untyped-def]
    dataset = _dataset([make_item(seed=16, size=(300, 200))], max_width=150)
    client.force_login(viewer)
    response = client.post(f"/api/datasets/{dataset.pk}/conform", {}, content_type="application/json")
    assert response.status_code == 403


def test_page_preview_and_start(client, curator) -> None:  # type: ignore[no-untyped-def]
    item = make_item(seed=17, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    client.force_login(curator)
    html = client.get(f"/datasets/{dataset.pk}/conform", HTTP_HX_REQUEST="true").content.decode()
    assert "150×100 png RGB" in html
    started = client.post(f"/datasets/{dataset.pk}/conform", {"target": "rules"}, HTTP_HX_REQUEST="true")
    assert started.status_code == 202
    assert 'class="job-progress"' in started.content.decode()


def test_alpha_flattened_when_no_allowed_mode_keeps_it() -> None:
    item = make_item(data=mediafiles.image_bytes("png", size=(120, 80), seed=18, alpha=True))
    dataset = _dataset([item], modes=["RGB"])
    (derived,) = _derived_of(_run(dataset))
    image = _opened(derived)
    assert (image.mode, derived.has_alpha) == ("RGB", False)


def test_crop_only_plan_matches_the_stored_size_at_an_aspect_bound() -> None:
    # 1733×370 cropped to aspect 1.05: the transform crops the rounded fraction 0.224178 of
    # the width (388.5005 px → 389), which is aspect 1051; the plan must size it the same way.
    item = make_item(seed=21, size=(1733, 370))
    dataset = _dataset([item], min_aspect_milli=1000, max_aspect_milli=1050)
    (row,) = conform.conform_preview(dataset=dataset)["items"]
    job = _run(dataset)
    (derived,) = _derived_of(job)
    image = _opened(derived)
    assert image.size == (row["result"]["width"], row["result"]["height"])
    assert round(1000 * image.width / image.height) <= 1050
    assert JobItem.objects.get(job=job).status == "created"


def test_a_stored_result_that_still_fails_is_a_failure_not_a_substitution() -> None:
    item = make_item(seed=22, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    (derived,) = _derived_of(_run(dataset))
    # The stored result's metadata are what the job checks (here: made to fail the rule).
    MediaItem.objects.filter(pk=derived.pk).update(width=400)
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk])
    job = _run(dataset)
    failed = JobItem.objects.get(job=job, input=f"item {item.pk}")
    assert (failed.status, failed.error_code) == ("failed", "datasets.result_fails")
    assert item.pk in _members(dataset)


def test_a_member_removed_after_the_start_is_not_substituted_back() -> None:
    item = make_item(seed=23, size=(300, 200))
    kept = make_item(seed=24, size=(300, 200))
    dataset = _dataset([item, kept], max_width=150)
    job = conform.conform_start(dataset=dataset)
    services.members_edit(owner=dataset, action="remove", item_ids=[item.pk])
    conform.conform_run(job_id=job.pk)
    job.refresh_from_db()
    assert not MediaItem.objects.filter(parent=item).exists()
    assert not DatasetItem.objects.filter(dataset=dataset, media_item=item).exists()
    assert [d.parent_id for d in _derived_of(job)] == [kept.pk]
    assert (job.progress_done, job.progress_total) == (1, 1)


def test_a_member_that_passes_the_rules_by_the_run_is_left_alone() -> None:
    item = make_item(seed=25, size=(300, 200))
    dataset = _dataset([item], max_width=150)
    job = conform.conform_start(dataset=dataset)
    services.dataset_update(dataset=dataset, requirements={"max_width": 400})
    conform.conform_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).status == "succeeded"
    assert not JobItem.objects.filter(job=job, object_id__isnull=False).exists()
    assert _members(dataset) == {item.pk}


def test_the_job_keeps_no_item_ids_in_its_params() -> None:
    items = [make_item(seed=26 + i, size=(300, 200)) for i in range(3)]
    dataset = _dataset(items, max_width=150)
    job = conform.conform_start(dataset=dataset)
    assert "ids" not in job.params
    assert job.params["max_id"] == max(i.pk for i in items)


def test_an_unexpected_error_fails_one_item_and_the_job_goes_on() -> None:
    broken = make_item(seed=30, size=(300, 200))
    fine = make_item(seed=31, size=(300, 200))
    MediaItem.objects.filter(pk=broken.pk).update(storage_key="../outside/the/storage.png")
    dataset = _dataset([broken, fine], max_width=150)
    job = _run(dataset)
    assert job.outcome == "succeeded_with_failures"
    failed = JobItem.objects.get(job=job, status="failed")
    assert (failed.input, failed.error_code) == (f"item {broken.pk}", "datasets.internal_error")
    (derived,) = _derived_of(job)
    assert derived.parent_id == fine.pk


def test_a_second_start_while_one_is_queued_is_refused(api) -> None:  # type: ignore[no-untyped-def]
    dataset = _dataset([make_item(seed=32, size=(300, 200))], max_width=150)
    first = conform.conform_start(dataset=dataset)
    response = api.post(f"/api/datasets/{dataset.pk}/conform", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "datasets.conform_running"
    conform.conform_run(job_id=first.pk)
    assert Job.objects.get(pk=first.pk).status == "succeeded"
