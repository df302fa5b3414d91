"""The preview's aggregate job above the sync limit, the apply job's cancel and resume, and the
admin pages of every mapping model (issue 12: jobs, admin for every model)."""

from __future__ import annotations

import pytest
from django.apps import apps

from apps.jobs.models import Job
from apps.mappings.models import MappedSet, MappingSet, SuggestionRejection, TagMapping
from apps.mappings.services import apply, preview
from apps.tags import slots
from apps.tags.models import Operation, TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED


@pytest.fixture
def world(curator):
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["a", "b", "c"], vocabulary=danbooru)
    items = items_make(5)
    assign([(i.pk, CURATED, src["a"].pk) for i in items] + [(items[0].pk, CURATED, src["c"].pk)])
    mapping = set_make(danbooru, e621, [("a", "x"), ("b", ["y", "z"])], slug="d2e")
    profile = profile_make(e621, [mapping], slug="e6", input_scope="curated", unmapped_policy="drop")
    return {"items": items, "profile": profile, "set": mapping, "actor": curator}


def test_a_large_preview_counts_in_a_job_with_the_same_aggregates(world, monkeypatch):
    ids = [i.pk for i in world["items"]]
    inline = preview.mapping_preview(profile=world["profile"], ids=ids, sample=2, actor=world["actor"])
    monkeypatch.setattr(preview, "SYNC_MAX_ITEMS", 3)
    queued = preview.mapping_preview(profile=world["profile"], ids=ids, sample=2, actor=world["actor"])
    assert queued["aggregates"] is None
    assert queued["sample"] == inline["sample"]
    preview.mapping_preview_run(job_id=queued["job"].pk)
    job = Job.objects.get(pk=queued["job"].pk)
    assert (job.status, job.progress_done) == (Job.Status.SUCCEEDED, 5)
    assert job.result == inline["aggregates"]


def test_the_api_answers_a_large_preview_with_its_job(api, world, monkeypatch):
    monkeypatch.setattr(preview, "SYNC_MAX_ITEMS", 3)
    ids = [i.pk for i in world["items"]]
    body = api.post(
        f"/api/mapping-profiles/{world['profile'].pk}/preview", {"ids": ids}, format="json"
    ).json()
    assert body["aggregates"] is None
    assert body["job"]["id"] == Job.objects.get(kind=preview.PREVIEW_JOB).pk


def _queued(world, monkeypatch):
    monkeypatch.setattr(apply, "SYNC_MAX_ITEMS", 0)
    monkeypatch.setattr(apply, "CHUNK_ITEMS", 2)
    ids = [i.pk for i in world["items"]]
    return apply.mapping_apply(profile=world["profile"], ids=ids, actor=world["actor"])


def _sets(world):
    return TagSet.objects.filter(slot=slots.mapping(world["profile"].pk), kind=TagSet.Kind.DERIVED).count()


def test_an_apply_job_resumes_at_its_cursor(world, monkeypatch):
    outcome = _queued(world, monkeypatch)
    apply._step(outcome.operation.pk, apply.prepare(world["profile"]))  # one chunk, then a "restart"
    assert _sets(world) == 2
    apply.mapping_apply_run(job_id=outcome.job.pk)
    operation = Operation.objects.get(pk=outcome.operation.pk)
    assert (operation.status, operation.counters["items_done"], _sets(world)) == (
        Operation.Status.APPLIED,
        5,
        5,
    )
    assert operation.counters["sets_created"] == 5


def test_a_cancelled_apply_job_stops_after_its_chunk_and_stays_undoable(world, monkeypatch):
    outcome = _queued(world, monkeypatch)
    real = apply._step

    def step_then_cancel(operation_id, prepared):
        done = real(operation_id, prepared)
        Job.objects.filter(pk=outcome.job.pk).update(cancel_requested=True)
        return done

    monkeypatch.setattr(apply, "_step", step_then_cancel)
    apply.mapping_apply_run(job_id=outcome.job.pk)
    operation = Operation.objects.get(pk=outcome.operation.pk)
    assert (operation.status, operation.counters["items_done"], _sets(world)) == (
        Operation.Status.CANCELLED,
        2,
        2,
    )
    apply.mapping_undo(operation=operation, actor=world["actor"])
    assert _sets(world) == 0


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw-boss-12345"))
    return client


def test_every_mapping_model_has_an_admin_page_that_renders(admin_client, world):
    from django.contrib import admin

    apply.mapping_apply(profile=world["profile"], ids=[world["items"][0].pk], actor=world["actor"])
    SuggestionRejection.objects.create(
        profile=world["profile"],
        source_tag=TagMapping.objects.first().source_tag,
        target_tag=TagMapping.objects.first().source_tag,
    )
    shown_on_parent = {"TagMappingTarget", "MappingProfileStep"}  # composite keys: on their parent
    models = apps.get_app_config("mappings").get_models()
    assert {m.__name__ for m in models if m not in admin.site._registry} == shown_on_parent
    for model in admin.site._registry:
        if model._meta.app_label != "mappings":
            continue
        name = model._meta.model_name
        assert admin_client.get(f"/admin/mappings/{name}/").status_code == 200, name
        row = model.objects.first()
        assert admin_client.get(f"/admin/mappings/{name}/{row.pk}/change/").status_code == 200, name
    two = TagMapping.objects.get(source_tag__name="b")
    rule = admin_client.get(f"/admin/mappings/tagmapping/{two.pk}/change/")
    assert b"y, z" in rule.content
    profile = admin_client.get(f"/admin/mappings/mappingprofile/{world['profile'].pk}/change/")
    assert b"d2e" in profile.content
    assert MappedSet.objects.count() == 1


def test_the_admin_refuses_to_delete_a_set_in_use_with_a_message(admin_client, world):
    mapping_set = world["set"]
    response = admin_client.post(
        "/admin/mappings/mappingset/",
        {"action": "delete_through_service", "_selected_action": [mapping_set.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"used by profile" in response.content
    assert MappingSet.objects.filter(pk=mapping_set.pk).exists()


def test_an_apply_job_cancelled_while_queued_cancels_its_operation(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.jobs.services import job_cancel

    outcome = _queued(world, monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        job_cancel(job=outcome.job)
    assert Operation.objects.get(pk=outcome.operation.pk).status == Operation.Status.CANCELLED
    assert _sets(world) == 0


def test_an_apply_job_failed_by_the_jobs_app_leaves_an_undoable_partial_operation(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.jobs.events import job_finished_send

    outcome = _queued(world, monkeypatch)
    apply._step(outcome.operation.pk, apply.prepare(world["profile"]))  # one chunk, then the worker is lost
    Job.objects.filter(pk=outcome.job.pk).update(status=Job.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        job_finished_send(job_id=outcome.job.pk, kind=outcome.job.kind, status=Job.Status.FAILED)
    operation = Operation.objects.get(pk=outcome.operation.pk)
    assert operation.status == Operation.Status.PARTIAL
    apply.mapping_undo(operation=operation, actor=world["actor"])
    assert _sets(world) == 0


def test_an_apply_job_the_sweeper_gives_up_on_ends_its_operation_through_tags(
    world, monkeypatch, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.jobs import services as job_services

    settings.BAGGINTAG_JOB_MAX_ATTEMPTS = 1
    outcome = _queued(world, monkeypatch)
    assert job_services.job_claim(job_id=outcome.job.pk) is not None
    apply._step(outcome.operation.pk, apply.prepare(world["profile"]))  # one chunk, then the worker is lost
    Job.objects.filter(pk=outcome.job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        job_services.job_requeue_stale()
    operation = Operation.objects.get(pk=outcome.operation.pk)
    assert (operation.status, Job.objects.get(pk=outcome.job.pk).error_code) == (
        Operation.Status.PARTIAL,
        "jobs.worker_lost",
    )
    apply.mapping_undo(operation=operation, actor=world["actor"])
    assert _sets(world) == 0
