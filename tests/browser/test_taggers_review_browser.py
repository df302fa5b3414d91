"""The tagger review queue in a real browser: r rejects (a curated tombstone), j moves on, a
accepts (promoted into the curated set); the tagger page shows metrics and the SVG plot."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from apps.taggers.models import EmbeddingSpace, ImageEmbedding, ReviewMark, Tagger
from apps.taggers.selectors.predictions import review_queue
from apps.taggers.services import apply, training
from apps.taggers.services.taggers import tagger_create
from apps.tags.models import TagAssignment, TagSet
from tests.tags.factories import assign, items_make, tag_type, tags_make

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db", "_data_dir")]
CURATED = TagSet.Kind.CURATED


@pytest.fixture
def _data_dir(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The matrix and head caches of this test only."""
    settings.DATA_DIR = tmp_path / "data"


def scored_tagger() -> Tagger:
    """A trained head on 80 planted vectors, run on every item; one curated tag removed from the
    two most confident items so the queue has work."""
    from apps.tags.services.names import vocabulary_default

    space = EmbeddingSpace.objects.create(
        name="browser", model_ref="local-dir:open_clip/none", dim=8, preprocess_sha256="p", weights_sha256="w"
    )
    items = items_make(80)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((80, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(item=i, space=space, vector=x[n].astype("<f2").tobytes())
            for n, i in enumerate(items)
        ]
    )
    tag = tags_make(["tag_x"])["tag_x"]
    assign([(items[n].pk, CURATED, tag.pk) for n in np.argsort(-x[:, 0])[:30]])
    ReviewMark.objects.bulk_create([ReviewMark(item=i, tag_type=tag_type("general")) for i in items])
    tagger = tagger_create(
        name="review-me", vocabulary=vocabulary_default(), kind=Tagger.Kind.EMBEDDING_HEAD,
        embedding_space=space, params={"min_steps": 100, "max_steps": 100},
    )  # fmt: skip
    version = training.tagger_train(tagger=tagger, seed=0)
    training.train_run(job_id=version.job_id)
    tagger.refresh_from_db()
    assert tagger.active_version is not None
    apply.score_items(version=tagger.active_version, item_ids=[i.pk for i in items])
    TagAssignment.objects.filter(kind=CURATED, tag=tag).delete()  # every prediction undecided
    return tagger


def curated_state(item_id: int) -> int | None:
    row = TagAssignment.objects.filter(kind=CURATED, media_item_id=item_id).first()
    return row.state if row is not None else None


def test_review_keys_reject_skip_and_accept(signed_in: Page, live_server) -> None:
    page = signed_in
    tagger = scored_tagger()
    assert tagger.active_version is not None
    queue = review_queue(version=tagger.active_version, limit=3)
    page.goto(f"{live_server.url}/taggers/{tagger.pk}/review/")
    first = page.locator("[data-prediction]").first
    expect(first).to_have_class("current")
    page.keyboard.press("r")
    expect(page.get_by_role("status")).to_contain_text("Rejected")
    assert curated_state(queue[0].media_item_id) == TagAssignment.State.DELETED
    page.keyboard.press("j")
    expect(page.locator("[data-prediction]").nth(1)).to_have_class("current")
    skipped_item = int(page.locator("[data-prediction]").nth(1).get_attribute("data-item") or 0)
    page.keyboard.press("a")
    expect(page.get_by_role("status")).to_contain_text("Accepted")
    assert curated_state(skipped_item) == TagAssignment.State.CURRENT


def test_tagger_page_shows_metrics_and_plot(signed_in: Page, live_server) -> None:
    page = signed_in
    tagger = scored_tagger()
    page.goto(f"{live_server.url}/taggers/{tagger.pk}/")
    expect(page.locator("#metrics svg.plot circle")).to_have_count(1)
    expect(page.locator("#metrics table")).to_contain_text("tag_x")
