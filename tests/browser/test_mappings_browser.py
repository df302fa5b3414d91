"""The mapping pages' main flow in Chromium: live preview on a profile, apply, undo, and the
suggestions review list driven by the keyboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.mappings.models import TagMapping
from apps.tags.models import Tag, TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_preview_apply_undo_and_keyboard_review(signed_in, live_server):
    page = signed_in
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["cat_ears", "long_hair"], vocabulary=danbooru)
    tags_make(["nekomimi", "long_hair"], vocabulary=e621)
    Tag.objects.filter(pk=src["long_hair"].pk).update(media_count=2)
    items = items_make(2)
    assign([(i.pk, TagSet.Kind.CURATED, src["cat_ears"].pk) for i in items])
    mapping = set_make(danbooru, e621, [("cat_ears", "nekomimi")], slug="d2e")
    profile = profile_make(e621, [mapping], slug="e6", input_scope="curated", unmapped_policy="drop")

    page.goto(f"{live_server.url}/mappings/profiles/{profile.pk}/")
    page.get_by_label("or ids").fill(",".join(str(i.pk) for i in items))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview code.caption").first).to_have_text("nekomimi")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.locator("#applied")).to_contain_text("applied")
    page.locator("#applied").get_by_role("button", name="Undo").click()
    expect(page.locator("#applied")).to_contain_text("undo #")

    page.goto(f"{live_server.url}/mappings/profiles/{profile.pk}/suggestions/")
    row = page.locator(".suggestion", has_text="long_hair")
    expect(row.locator("input[name=target]")).to_have_value("long_hair")
    page.keyboard.press("a")
    expect(row).to_contain_text("rule added")
    assert TagMapping.objects.filter(mapping_set=mapping, source_tag=src["long_hair"]).exists()
