"""Intake admin: the pages load; edits, processing and deletion go through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.intake import services
from apps.intake.models import IntakeEntry
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


@pytest.fixture
def entry(dataset):  # type: ignore[no-untyped-def]
    make_item(seed=1)
    return services.intake_entry_create(kind="query", dataset=dataset.pk, query="width:>1")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/intake/intakeentry/",
        "/admin/intake/intakeentry/{entry}/change/",
        "/admin/intake/intakearrival/",
        "/admin/intake/intaketagging/",
    ],
)
def test_pages_load(staff_client, entry, url) -> None:  # type: ignore[no-untyped-def]
    assert staff_client.get(url.format(entry=entry.pk)).status_code == 200


def test_add_is_left_to_the_queue_page(staff_client) -> None:  # type: ignore[no-untyped-def]
    assert staff_client.get("/admin/intake/intakeentry/add/").status_code == 403


def test_process_action_and_plan_edit(staff_client, entry) -> None:  # type: ignore[no-untyped-def]
    response = staff_client.post(
        "/admin/intake/intakeentry/", {"action": "process_entries", "_selected_action": [entry.pk]}
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.state, entry.added_count) == (IntakeEntry.State.ADDED, 1)
    changed = staff_client.post(
        f"/admin/intake/intakeentry/{entry.pk}/change/",
        {"title": "Library picks", "notes": "", "planned_count": "7", "on_arrival": '{"bad": 1}'},
    )
    assert changed.status_code == 200  # the on-arrival choice is refused: shown, nothing saved
    entry.refresh_from_db()
    assert entry.title == ""
