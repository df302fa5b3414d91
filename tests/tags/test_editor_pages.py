"""The tag editor on the item page: every set side by side, curated edits with row versions,
promotion with tombstones, descriptions, permissions and the page's query budget."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from apps.media.models import MediaItem
from apps.tags import slots
from apps.tags.models import Description, Tag, TagAssignment, TagSet, Vocabulary
from apps.tags.services import (
    rules,
    tag_set_curated_get_or_create,
    tag_set_edit,
    tag_set_inherit,
    tags_get_or_create,
    vocabulary_default,
)
from tests.tags.factories import make_item, tagger_set_make
from tests.tags.snapshots import curated_names

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def chips(html: str, set_id: str) -> list[str]:
    """The tag names shown in one column (`curated-chips`, or `set-<id>` for a data-set column)."""
    if set_id == "curated":
        match = re.search(r'id="curated-chips".*?</ul>', html, re.S)
    else:
        match = re.search(rf'data-set="{set_id}".*?</ul>', html, re.S)
    return re.findall(r'data-chip data-name="([^"]+)"', match.group(0)) if match else []


def version(item: MediaItem) -> int:
    return TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED).row_version


@pytest.fixture
def signed_in(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def item(curator) -> MediaItem:
    item = make_item(["smile", "red_hair"])
    tagger_set_make(item, {"smile": 9850, "blue_sky": 6200, "cloud": 2100}, model="wd-vit", version="3")
    return item


# --- rendering ------------------------------------------------------------------------------------


def test_item_page_shows_every_set_kind_with_provenance(signed_in, item, curator):
    child = make_item(seed=2)
    slot = slots.derived(relation="parent", item_id=item.pk)
    derived = tag_set_inherit(target=child, source=item, slot=slot)
    assert derived is not None
    curated = tag_set_curated_get_or_create(media_item=child, actor=curator)
    tag_set_edit(tag_set=curated, add=["Sunset Glow"], actor=curator)
    rules.implication_create(child="sunset_glow", parent="sky", activate=True, actor=curator)
    from apps.tags.services.effective import effective_rebuild_stale

    effective_rebuild_stale()

    html = signed_in.get(f"/items/{item.pk}/").content.decode()
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    tagger = TagSet.objects.get(media_item=item, kind=TagSet.Kind.TAGGER)
    assert "Source · from danbooru" in html
    assert "pic0.png" in html  # origin label and file origin
    assert chips(html, str(source.pk)) == ["smile", "red_hair"]
    assert "Tagger · wd-vit v3" in html
    assert chips(html, str(tagger.pk)) == ["smile", "blue_sky", "cloud"]  # by confidence
    assert "--conf: 98%" in html
    assert ">62%<" in html
    assert ">21%<" in html
    assert 'class="chip below"' in html  # cloud is under the 35 % threshold
    assert 'id="tag-input"' in html
    assert "No curated set yet" in html
    assert "imported" in html
    assert "predicted by the tagger" in html  # tooltips: how it arrived

    html = signed_in.get(f"/items/{child.pk}/").content.decode()
    derived_chips = chips(html, str(derived.pk))
    assert set(derived_chips) == {"smile", "red_hair"}
    assert "inherited from item" in html
    assert f'href="/items/{item.pk}/"' in html  # where it was inherited from
    assert chips(html, "curated") == ["smile", "red_hair", "sunset_glow"]
    assert "added by hand by curator" in html
    assert "entered as" not in html
    effective = re.search(r'aria-label="Effective tags">(.*?)</ul>', html, re.S).group(1)
    assert 'class="chip implied"' in effective
    assert 'data-name="sky"' in effective


def test_alias_resolved_chip_says_what_was_entered(signed_in, curator):
    item = make_item(seed=3)
    rules.alias_create(antecedent="kitty", consequent="cat", activate=True, actor=curator)
    response = signed_in.post(
        f"/tags/editor/items/{item.pk}/add", {"name": "kitty", "row_version": 0}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert chips(html, "curated") == ["cat"]
    assert "entered as “kitty” (alias of cat)" in html
    assert 'hx-swap-oob="innerHTML">Added cat (typed kitty).' in html


def test_item_page_query_budget_with_three_sets_of_thirty(client, curator, django_assert_max_num_queries):
    names = [f"tag_{n:02d}" for n in range(30)]
    item = make_item(names, seed=4)
    tagger_set_make(item, {f"ai_{n:02d}": 4000 + n * 100 for n in range(30)}, model="wd-vit", version="3")
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, replace=[f"cur_{n:02d}" for n in range(30)], actor=curator)
    client.force_login(curator)
    # 14 + the near-duplicate count for "Find similar" + the Datasets panel (its explicit
    # memberships, the saved-query datasets it checks and the count of those it leaves out).
    with django_assert_max_num_queries(18):
        html = client.get(f"/items/{item.pk}/").content.decode()
    assert len(chips(html, "curated")) == 30
    assert html.count("data-chip ") >= 90 + 30
    with django_assert_max_num_queries(12):
        assert client.get(f"/tags/editor/items/{item.pk}/", **HTMX).status_code == 200


def test_standalone_editor_page_and_partial(signed_in, item):
    full = signed_in.get(f"/tags/editor/items/{item.pk}/").content.decode()
    assert "<html" in full
    assert "Tags of" in full
    assert 'id="tag-editor"' in full
    part = signed_in.get(f"/tags/editor/items/{item.pk}/", **HTMX).content.decode()
    assert "<html" not in part
    assert part.lstrip().startswith('<div id="tag-editor"')


def test_suggestions_rank_by_count_and_mark_present_tags(signed_in, item):
    Tag.objects.filter(name="smile").update(media_count=50)
    tags_get_or_create(vocabulary=vocabulary_default(), names=["smiling_face"])
    html = signed_in.get(f"/tags/editor/items/{item.pk}/suggest", {"name": "smi"}, **HTMX).content.decode()
    assert re.findall(r'data-name="([^"]+)"', html)[:2] == ["smile", "smiling_face"]
    assert 'role="option"' in html
    assert signed_in.get(f"/tags/editor/items/{item.pk}/suggest?q=", **HTMX).content.decode().strip() == ""


# --- curated edits ------------------------------------------------------------------------------


def test_first_add_creates_the_curated_set_and_remove_tombstones(signed_in, item):
    url = f"/tags/editor/items/{item.pk}"
    response = signed_in.post(f"{url}/add", {"name": "Long Hair", "row_version": 0}, **HTMX)
    assert response.status_code == 200
    assert curated_names(item) == ["smile", "red_hair", "long_hair"]  # seeded from source, then added
    html = response.content.decode()
    assert chips(html, "curated") == ["smile", "red_hair", "long_hair"]
    assert f'name="row_version" value="{version(item)}"' in html
    assert "Added long_hair." in html

    response = signed_in.post(f"{url}/remove", {"name": "red_hair", "row_version": version(item)}, **HTMX)
    assert response.status_code == 200
    assert "Removed red_hair." in response.content.decode()
    assert curated_names(item) == ["smile", "long_hair"]
    row = TagAssignment.objects.get(media_item=item, kind=TagSet.Kind.CURATED, tag__name="red_hair")
    assert row.state == TagAssignment.State.DELETED
    assert "Removed (1)" in response.content.decode()  # the tombstone, with a way back

    several = signed_in.post(f"{url}/add", {"name": "a, b ,c", "row_version": version(item)}, **HTMX)
    assert several.status_code == 200
    assert curated_names(item)[-3:] == ["a", "b", "c"]


def test_plain_form_posts_redirect_back_to_the_item(signed_in, item):
    response = signed_in.post(f"/tags/editor/items/{item.pk}/add", {"name": "dog", "row_version": 0})
    assert response.status_code == 303
    assert response["Location"] == f"/items/{item.pk}/#tag-editor"
    assert "dog" in curated_names(item)


def test_stale_version_is_409_with_the_current_tags(signed_in, item, curator):
    url = f"/tags/editor/items/{item.pk}"
    signed_in.post(f"{url}/add", {"name": "first", "row_version": 0}, **HTMX)
    loaded = version(item)
    curated = TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED)
    tag_set_edit(tag_set=curated, add=["from_elsewhere"], actor=curator)  # another tab

    response = signed_in.post(f"{url}/add", {"name": "mine", "row_version": loaded}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 409
    assert "changed since you loaded it — reloaded" in html
    assert "Not added: mine" in html
    assert "from_elsewhere" in chips(html, "curated")
    assert "mine" not in curated_names(item)
    assert f'name="row_version" value="{version(item)}"' in html
    assert 'value="mine"' in html

    removed = signed_in.post(f"{url}/remove", {"name": "first", "row_version": loaded}, **HTMX)
    assert removed.status_code == 409
    assert "first" in curated_names(item)


def test_a_curated_set_created_since_loading_is_stale_too(signed_in, item, curator):
    tag_set_curated_get_or_create(media_item=item, actor=curator)
    response = signed_in.post(f"/tags/editor/items/{item.pk}/add", {"name": "x", "row_version": 0}, **HTMX)
    assert response.status_code == 409
    assert "x" not in curated_names(item)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("-minus", "names cannot contain"),
        ("width:100", "search qualifier"),
        ("old_tag", "Deprecated tags cannot be added: old_tag"),
    ],
)
def test_refused_names_are_422_with_the_reason_and_keep_what_was_typed(signed_in, item, name, message):
    tags_get_or_create(vocabulary=vocabulary_default(), names=["old_tag"])
    Tag.objects.filter(name="old_tag").update(is_deprecated=True)
    response = signed_in.post(f"/tags/editor/items/{item.pk}/add", {"name": name, "row_version": 0}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    assert message in html
    assert 'role="alert"' in html
    assert f'value="{name}"' in html
    assert not TagSet.objects.filter(media_item=item, kind=TagSet.Kind.CURATED).exists()  # rolled back


def test_closed_vocabulary_refuses_unknown_tags(signed_in, item):
    Vocabulary.objects.filter(pk=vocabulary_default().pk).update(policy=Vocabulary.Policy.CLOSED)
    response = signed_in.post(
        f"/tags/editor/items/{item.pk}/add", {"name": "brand_new", "row_version": 0}, **HTMX
    )
    assert response.status_code == 422
    assert "does not know: brand_new" in response.content.decode()


def test_empty_add_is_422(signed_in, item):
    response = signed_in.post(f"/tags/editor/items/{item.pk}/add", {"name": "  ", "row_version": 0}, **HTMX)
    assert response.status_code == 422
    assert "Type a tag first." in response.content.decode()


# --- promote --------------------------------------------------------------------------------------


def test_promote_one_tag_and_all_above_the_threshold(signed_in, item):
    tagger = TagSet.objects.get(media_item=item, kind=TagSet.Kind.TAGGER)
    url = f"/tags/editor/items/{item.pk}/promote"
    response = signed_in.post(url, {"set": tagger.pk, "name": "blue_sky"}, **HTMX)
    assert response.status_code == 200
    assert "Promoted blue_sky." in response.content.decode()
    assert curated_names(item) == ["smile", "red_hair", "blue_sky"]
    row = TagAssignment.objects.get(media_item=item, kind=TagSet.Kind.CURATED, tag__name="blue_sky")
    assert (row.added_via, row.origin_set_id) == ("promote", tagger.pk)
    assert "from the tagger wd-vit" in response.content.decode()  # the chip's tooltip

    response = signed_in.post(url, {"set": tagger.pk, "min_percent": "20"}, **HTMX)
    assert "Promoted cloud." in response.content.decode()
    assert "cloud" in curated_names(item)


def test_promote_reports_tags_blocked_by_a_tombstone(signed_in, item, curator):
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, remove=["smile"], actor=curator)
    tagger = TagSet.objects.get(media_item=item, kind=TagSet.Kind.TAGGER)
    page = signed_in.get(f"/items/{item.pk}/").content.decode()
    assert 'class="chip blocked"' in page  # marked before anyone tries

    response = signed_in.post(
        f"/tags/editor/items/{item.pk}/promote", {"set": tagger.pk, "min_percent": "35"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "Not promoted: smile. You removed it from the curated set before; add it by hand to restore it."
        in html
    )
    assert "smile" not in curated_names(item)
    assert "blue_sky" in curated_names(item)


def test_promote_refuses_the_curated_set_and_other_items_sets(signed_in, item, curator):
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    other = make_item(["x"], seed=7)
    foreign = TagSet.objects.get(media_item=other, kind=TagSet.Kind.SOURCE)
    url = f"/tags/editor/items/{item.pk}/promote"
    assert signed_in.post(url, {"set": curated.pk}, **HTMX).status_code == 422
    assert signed_in.post(url, {"set": foreign.pk}, **HTMX).status_code == 422
    assert signed_in.post(url, {"set": "nope"}, **HTMX).status_code == 422


# --- descriptions --------------------------------------------------------------------------------


def test_descriptions_add_edit_and_delete(signed_in, item):
    base = f"/tags/editor/items/{item.pk}/descriptions"
    response = signed_in.post(
        f"{base}/add", {"kind": "whole", "text": "A girl smiling under a blue sky."}, **HTMX
    )
    assert response.status_code == 200
    assert "A girl smiling" in response.content.decode()
    description = Description.objects.get(media_item=item)
    assert description.actor is not None

    refused = signed_in.post(f"{base}/add", {"kind": "custom", "label": "", "text": "red ribbon"}, **HTMX)
    assert refused.status_code == 422
    assert "A custom description needs a label" in refused.content.decode()
    assert Description.objects.count() == 1

    form = signed_in.get(f"{base}/{description.pk}/edit", **HTMX).content.decode()
    assert 'name="row_version"' in form
    assert "<textarea" in form
    saved = signed_in.post(
        f"{base}/{description.pk}/edit",
        {"kind": "whole", "text": "A girl under a blue sky.", "row_version": description.row_version},
        **HTMX,
    )
    assert saved.status_code == 200
    assert "A girl under a blue sky." in saved.content.decode()
    stale = signed_in.post(
        f"{base}/{description.pk}/edit",
        {"kind": "whole", "text": "Late edit", "row_version": description.row_version},
        **HTMX,
    )
    html = stale.content.decode()
    assert stale.status_code == 422
    assert "changed since you loaded it" in html
    assert "Late edit" in html
    empty = signed_in.post(
        f"{base}/{description.pk}/edit", {"kind": "whole", "text": "", "row_version": 2}, **HTMX
    )
    assert empty.status_code == 422
    assert "This field is required." in empty.content.decode()
    shown = signed_in.get(f"{base}/{description.pk}/", **HTMX).content.decode()
    assert "A girl under a blue sky." in shown
    assert "<textarea" not in shown

    deleted = signed_in.post(f"{base}/{description.pk}/delete", **HTMX)
    assert deleted.status_code == 200
    assert "No descriptions yet" in deleted.content.decode()
    assert not Description.objects.exists()


def test_description_of_another_item_is_404(signed_in, item):
    other = make_item(seed=9)
    from apps.tags.services.descriptions import description_create

    description = description_create(media_item=other, text="elsewhere")
    url = f"/tags/editor/items/{item.pk}/descriptions/{description.pk}/delete"
    assert signed_in.post(url, **HTMX).status_code == 404


# --- permissions ------------------------------------------------------------------------------------


def test_viewer_sees_read_only_chips_and_cannot_post(client, viewer, item, curator):
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tagger = TagSet.objects.get(media_item=item, kind=TagSet.Kind.TAGGER)
    from apps.tags.services.descriptions import description_create

    description = description_create(media_item=item, text="a caption", actor=curator)
    client.force_login(viewer)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert "smile" in html
    assert "red_hair" in html
    assert "a caption" in html
    for control in ('id="tag-input"', "data-remove", "data-promote", "Add description", "Edit</a>"):
        assert control not in html
    base = f"/tags/editor/items/{item.pk}"
    posts = [
        (f"{base}/add", {"name": "x", "row_version": curated.row_version}),
        (f"{base}/remove", {"name": "smile", "row_version": curated.row_version}),
        (f"{base}/promote", {"set": tagger.pk}),
        (f"{base}/descriptions/add", {"kind": "whole", "text": "x"}),
        (f"{base}/descriptions/{description.pk}/edit", {"kind": "whole", "text": "x"}),
        (f"{base}/descriptions/{description.pk}/delete", {}),
    ]
    for url, data in posts:
        assert client.post(url, data, **HTMX).status_code == 403, url
    assert curated_names(item) == ["smile", "red_hair"]
    assert Description.objects.get().text == "a caption"


def test_anonymous_users_are_sent_to_login(client, item):
    response = client.post(f"/tags/editor/items/{item.pk}/add", {"name": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_editor_of_a_missing_item_is_404(signed_in):
    assert signed_in.post("/tags/editor/items/999999/add", {"name": "x"}, **HTMX).status_code == 404
    assert User.objects.filter(username="curator").exists()


def test_removing_an_unknown_tag_on_the_page_creates_no_tag(signed_in, item):
    from apps.tags.models import Tag

    url = f"/tags/editor/items/{item.pk}"
    signed_in.post(f"{url}/add", {"name": "long_hair", "row_version": 0}, **HTMX)
    response = signed_in.post(f"{url}/remove", {"name": "ghost_tag", "row_version": version(item)}, **HTMX)
    assert response.status_code == 200
    assert not Tag.objects.filter(name="ghost_tag").exists()
    assert curated_names(item) == ["smile", "red_hair", "long_hair"]


def test_page_remove_without_a_version_is_refused_as_stale(signed_in, item):
    url = f"/tags/editor/items/{item.pk}"
    signed_in.post(f"{url}/add", {"name": "long_hair", "row_version": 0}, **HTMX)
    response = signed_in.post(f"{url}/remove", {"name": "red_hair"}, **HTMX)
    assert response.status_code == 409
    assert "Not removed: red_hair." in response.content.decode()
    assert curated_names(item) == ["smile", "red_hair", "long_hair"]
    zero = signed_in.post(f"{url}/remove", {"name": "red_hair", "row_version": 0}, **HTMX)
    assert zero.status_code == 409
    assert curated_names(item) == ["smile", "red_hair", "long_hair"]
