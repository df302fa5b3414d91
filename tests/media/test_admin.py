"""Admin: staff browse and edit media and jobs; actions go through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.media.models import MediaItem
from tests import mediafiles
from tests.conftest import stored_files
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def test_admin_lists_media_and_tag_sets_and_jobs(staff_client):
    item = make_item(["a"], tag_source="s")
    for url in (
        "/admin/media/mediaitem/",
        f"/admin/media/mediaitem/{item.pk}/change/",
        "/admin/tags/tagset/",
        "/admin/tags/tag/",
        "/admin/tags/tagtype/",
        "/admin/jobs/job/",
    ):
        assert staff_client.get(url).status_code == 200, url
    assert staff_client.get("/admin/media/mediaitem/?q=" + item.sha256).content.decode().count(item.name) >= 1


def test_admin_delete_action_removes_files_too(staff_client, media_root, django_capture_on_commit_callbacks):
    items = [make_item(seed=i) for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/media/mediaitem/",
            {"action": "delete_with_files", "_selected_action": [i.pk for i in items]},
        )
    assert response.status_code == 302
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_admin_edit_validates_metadata(staff_client):
    item = make_item()
    url = f"/admin/media/mediaitem/{item.pk}/change/"
    ok = staff_client.post(
        url,
        {
            "name": "renamed.jpg",
            "artist": "Bea",
            "source": "https://ex.com/p/1",
            "rating": "g",
            "notes": "",
            "sources-TOTAL_FORMS": 0,
            "sources-INITIAL_FORMS": 1,
            "sources-MIN_NUM_FORMS": 0,
            "sources-MAX_NUM_FORMS": 0,
        },
    )
    assert ok.status_code == 302, ok.content.decode()[:2000]
    item.refresh_from_db()
    assert (item.name, item.artist, item.site) == ("renamed.jpg", "Bea", "ex.com")


def test_admin_cancel_action(staff_client):
    job = job_services.job_start(kind="x", task="tests.noop", params={})
    staff_client.post("/admin/jobs/job/", {"action": "cancel_jobs", "_selected_action": [job.pk]})
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_admin_filters_derived_items_and_frames(staff_client, video_dir):
    from apps.media.services import frames
    from apps.media.services.transforms import media_item_transform

    parent = make_item(seed=5, size=(320, 240))  # larger than the 64px the scale asks for
    child = media_item_transform(item=parent, recipe={"ops": [{"op": "scale", "long": 64}]}).item
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"))
    job = frames.media_frames_extract_start(video=video, request={"mode": "timestamps", "timestamps": [1.0]})
    frames.media_frames_extract_run(job_id=job.pk)
    frame = MediaItem.objects.get(kind="frame")
    derived = staff_client.get("/admin/media/mediaitem/?lineage=derived").content.decode()
    assert f"/admin/media/mediaitem/{child.pk}/change/" in derived
    assert f"/admin/media/mediaitem/{parent.pk}/change/" not in derived
    by_video = staff_client.get(f"/admin/media/mediaitem/?video__id__exact={video.pk}").content.decode()
    assert f"/admin/media/mediaitem/{frame.pk}/change/" in by_video
    assert staff_client.get("/admin/media/videoframe/").status_code == 200


def test_admin_delete_action_updates_tag_counts(staff_client, django_capture_on_commit_callbacks):
    from apps.tags.models import Tag, TagStat

    items = [make_item(["shared", f"own{i}"], seed=i, tag_source="s") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            "/admin/media/mediaitem/",
            {"action": "delete_with_files", "_selected_action": [i.pk for i in items[:2]]},
        )
    counts = dict(Tag.objects.values_list("name", "media_count"))
    assert (counts["shared"], counts["own0"], counts["own1"], counts["own2"]) == (1, 0, 0, 1)
    stats = dict(TagStat.objects.values_list("tag__name", "current_count"))
    assert (stats["shared"], stats["own0"], stats["own2"]) == (1, 0, 1)
