"""The item page's tag editor in a real browser, driven from the keyboard: autocomplete, chips,
Backspace selection and removal, promotion from a tagger set, descriptions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from apps.tags import slots
from apps.tags.models import Tag, TagAssignment, TagSet
from tests.tags.factories import make_item, tagger_set_make
from tests.tags.snapshots import curated_names

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def curated_chip_names(page: Page) -> list[str]:
    return page.locator("#curated-chips [data-chip]").evaluate_all("els => els.map(e => e.dataset.name)")


def test_type_a_prefix_pick_the_suggestion_and_it_persists(
    signed_in: Page, live_server, shots_dir: Path
) -> None:
    page = signed_in
    make_item(["long_hair", "smile"], seed=11)  # long_hair is a known tag, on one item
    Tag.objects.filter(name="long_hair").update(media_count=40)
    item = make_item(["smile"], seed=12)
    page.goto(f"{live_server.url}/items/{item.pk}/")

    page.keyboard.press("t")  # jump to the tag input
    field = page.locator("#tag-input")
    expect(field).to_be_focused()
    field.press_sequentially("long", delay=30)
    option = page.locator("#tag-suggestions [role=option]").first
    expect(option).to_have_attribute("data-name", "long_hair")
    expect(field).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=str(shots_dir / "tag-editor-suggestions.png"), full_page=True)

    page.keyboard.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator('#curated-chips [data-name="long_hair"]')).to_be_visible()
    expect(page.locator("#tag-editor-live")).to_have_text("Added long_hair.")
    expect(field).to_be_focused()
    expect(field).to_have_value("")

    # Free text: Enter adds exactly what was typed; Tab accepts the first suggestion.
    page.keyboard.type("Brand New")
    page.keyboard.press("Enter")
    expect(page.locator('#curated-chips [data-name="brand_new"]')).to_be_visible()
    # Typing straight on while an add is in flight: nothing typed is lost, nothing is dropped.
    page.keyboard.type("fast_one")
    page.keyboard.press("Enter")
    page.keyboard.type("fast_two")
    page.keyboard.press("Enter")
    expect(page.locator('#curated-chips [data-name="fast_two"]')).to_be_visible()
    expect(page.locator('#curated-chips [data-name="fast_one"]')).to_be_visible()
    page.keyboard.type("smi")
    expect(page.locator("#tag-suggestions [role=option]").first).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#tag-suggestions")).to_be_hidden()
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")

    # A refused name: the reason is shown and the text comes back to be fixed.
    page.keyboard.type("-bad")
    page.keyboard.press("Enter")
    expect(page.locator("#tag-editor [role=alert]")).to_contain_text("names cannot contain")
    expect(field).to_have_value("-bad")
    expect(field).to_be_focused()
    field.fill("")

    page.reload()
    expected = ["smile", "long_hair", "brand_new", "fast_one", "fast_two"]
    assert curated_chip_names(page) == expected
    assert curated_names(item) == expected
    page.locator("#tag-editor").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "tag-editor-after-adds.png"), full_page=True)


def test_backspace_twice_removes_the_last_chip_and_arrows_walk_the_chips(
    signed_in: Page, live_server, shots_dir: Path
) -> None:
    page = signed_in
    item = make_item(["cat", "dog", "bird"], seed=13)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    page.locator("#tag-input").fill("")
    page.locator("#tag-input").press("x")  # the first edit creates the curated set
    page.keyboard.press("Enter")
    expect(page.locator('#curated-chips [data-name="x"]')).to_be_visible()

    field = page.locator("#tag-input")
    expect(field).to_be_focused()
    page.keyboard.press("Backspace")
    last = page.locator('#curated-chips [data-name="x"]')
    expect(last).to_be_focused()
    page.screenshot(path=str(shots_dir / "tag-editor-chip-selected.png"), full_page=False)
    page.keyboard.press("Backspace")
    expect(last).to_have_count(0)
    expect(page.locator("#tag-editor-live")).to_have_text("Removed x.")
    expect(field).to_be_focused()
    assert curated_names(item) == ["cat", "dog", "bird"]

    # ← from the input walks back; Delete removes the focused chip and focus stays in the row.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator('#curated-chips [data-name="dog"]')).to_be_focused()
    page.keyboard.press("Delete")
    expect(page.locator('#curated-chips [data-name="dog"]')).to_have_count(0)
    expect(page.locator('#curated-chips [data-name="bird"]')).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(field).to_be_focused()
    assert curated_names(item) == ["cat", "bird"]
    assert "Removed (2)" in page.locator(".te-removed summary").inner_text()

    # Someone else edits the set meanwhile: the add is refused (409) and the current tags shown.
    from apps.tags.services import tag_set_edit

    tag_set_edit(tag_set=TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED), add=["owl"])
    page.keyboard.type("mine")
    page.keyboard.press("Enter")
    expect(page.locator("#tag-editor [role=alert]")).to_contain_text("changed since you loaded it — reloaded")
    expect(page.locator('#curated-chips [data-name="owl"]')).to_be_visible()
    expect(field).to_have_value("mine")
    page.keyboard.press("Enter")  # the second try carries the fresh version
    expect(page.locator('#curated-chips [data-name="mine"]')).to_be_visible()
    assert curated_names(item) == ["cat", "bird", "owl", "mine"]


def test_promote_a_tagger_tag_from_the_keyboard_and_see_blocked_ones(
    signed_in: Page, live_server, curator, shots_dir: Path
) -> None:
    page = signed_in
    item = make_item(["smile", "red_hair"], seed=14)
    child = make_item(seed=15)
    from apps.tags.services import tag_set_curated_get_or_create, tag_set_edit, tag_set_inherit

    tag_set_inherit(target=child, source=item, slot=slots.derived(relation="parent", item_id=item.pk))
    tagger = tagger_set_make(
        item,
        {"smile": 9850, "blue_sky": 7400, "cloud": 6100, "outdoors": 5200, "tree": 2100},
        model="wd-vit",
        version="3",
    )
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, remove=["red_hair"], add=["solo"], actor=curator)
    tag_set_edit(tag_set=curated, add=["cloud"], actor=curator)
    tag_set_edit(tag_set=curated, remove=["cloud"], actor=curator)  # a tombstone
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/items/{item.pk}/")
    column = page.locator(f'[data-set="{tagger.pk}"]')
    column.scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "tag-editor-sets.png"), full_page=True)
    keys = page.locator(".te-keys summary")
    keys.click()
    expect(page.locator(".te-keys dl")).to_contain_text("promote the focused tagger")
    page.screenshot(path=str(shots_dir / "tag-editor-keys.png"), full_page=False)
    keys.click()

    first = column.locator("[data-chip]").first
    first.focus()
    expect(first).to_have_attribute("data-name", "smile")
    page.keyboard.press("ArrowDown")
    blue = column.locator('[data-chip][data-name="blue_sky"]')
    expect(blue).to_be_focused()
    page.screenshot(path=str(shots_dir / "tag-editor-tooltip.png"), full_page=False)
    page.keyboard.press("p")
    expect(page.locator('#curated-chips [data-name="blue_sky"]')).to_be_visible()
    expect(column.locator('[data-chip][data-name="blue_sky"]')).to_be_focused()  # focus kept
    expect(column.locator('[data-chip][data-name="blue_sky"]')).to_have_class(re.compile(r"\bcurated\b"))
    row = TagAssignment.objects.get(tagset=curated, tag__name="blue_sky")
    assert (row.added_via, row.origin_set_id) == ("promote", tagger.pk)

    # Shift+P: everything at or above the threshold; the tombstoned tag is reported, not revived.
    page.keyboard.press("Shift+P")
    notice = page.locator(".alert.notice")
    expect(notice).to_contain_text("Not promoted: cloud. You removed it from the curated set before")
    assert "outdoors" in curated_names(item)
    assert "cloud" not in curated_names(item)
    assert "tree" not in curated_names(item)  # 21 % is under the 35 % threshold
    page.screenshot(path=str(shots_dir / "tag-editor-promoted.png"), full_page=True)
    page.set_viewport_size({"width": 400, "height": 900})  # stacked cards on a phone
    page.locator("#tag-editor").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "tag-editor-narrow.png"), full_page=True)

    # The derived set on the child names where it came from.
    page.goto(f"{live_server.url}/items/{child.pk}/")
    derived = page.locator(".te-derived")
    expect(derived).to_contain_text(f"inherited from item {item.pk}")
    expect(derived.get_by_role("link", name=f"open item {item.pk}")).to_be_visible()
    assert TagSet.objects.filter(media_item=child, kind=TagSet.Kind.DERIVED).exists()


def test_descriptions_add_edit_inline_and_delete(signed_in: Page, live_server, shots_dir: Path) -> None:
    page = signed_in
    item = make_item(["smile"], seed=16)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    form = page.locator(".desc-new")
    form.get_by_label("Kind", exact=True).select_option("custom")
    form.get_by_label("Label (custom)").fill("outfit")
    form.get_by_label("Text").fill("A red ribbon and a sailor collar.")
    form.get_by_role("button", name="Add description").click()
    entry = page.locator(".desc").first
    expect(entry).to_contain_text("outfit")
    expect(entry).to_contain_text("A red ribbon and a sailor collar.")

    form = page.locator(".desc-new")
    form.get_by_label("Text").fill("   ")
    form.get_by_label("Kind", exact=True).select_option("whole")
    form.get_by_role("button", name="Add description").click()
    expect(page.locator(".desc-new [role=alert]")).to_be_visible()

    entry.get_by_role("link", name=re.compile("^Edit")).click()
    editing = page.locator(".desc.editing")
    editing.get_by_label("Text").fill("A red ribbon.")
    page.screenshot(path=str(shots_dir / "tag-editor-description-edit.png"), full_page=True)
    editing.get_by_role("button", name="Save").click()
    expect(page.locator(".desc").first).to_contain_text("A red ribbon.")
    expect(page.locator("#tag-editor-live")).to_have_text("Description saved.")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".desc").first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#descriptions")).to_contain_text("No descriptions yet")
