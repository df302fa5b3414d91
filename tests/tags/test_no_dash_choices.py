"""Pages offer no "---------" choice: an empty choice says what it means (issue 10)."""

from __future__ import annotations

import pytest

from apps.tags.models import Vocabulary
from apps.tags.services.names import vocabulary_default

pytestmark = pytest.mark.django_db


def test_library_filters_have_no_dashes(client, curator):
    client.force_login(curator)
    assert "---------" not in client.get("/").content.decode()


def test_template_page_build_form_has_no_dashes(client, curator):
    Vocabulary.objects.create(name="Other", slug="other")
    client.force_login(curator)
    html = client.get(f"/tags/templates/{vocabulary_default().pk}/").content.decode()
    assert "---------" not in html


def test_template_page_build_form_asks_to_choose(client, curator):
    Vocabulary.objects.create(name="Other", slug="other")
    client.force_login(curator)
    html = client.get(f"/tags/templates/{vocabulary_default().pk}/").content.decode()
    assert "Choose a template" in html
