"""The dataset page's conform and statistics sections in Chromium (docs/datasets.md#pages):
the conform preview lists the failing members with the recipe it plans (and why one cannot be
conformed); starting conform shows the job's progress bar, and when the job (on a real worker)
is done its results link the substituted items. The statistics draw every chart as SVG with a
title, the same numbers as a table under each chart, and say when tag figures are estimated
from a sample."""

from __future__ import annotations

import math

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.datasets import selectors, services
from apps.media.models import MediaItem
from tests.tags.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

JOB_TIMEOUT_MS = 60_000


def test_conform_preview_then_job_progress_and_substituted_items(
    signed_in: Page, live_server, celery_worker_thread
) -> None:  # type: ignore[no-untyped-def]
    big = make_item(seed=1, size=(64, 64), fmt="png")  # over the size limits: scaled down
    jpeg = make_item(seed=2, size=(32, 32), fmt="jpeg")  # a format not allowed: converted
    fine = make_item(seed=3, size=(32, 32), fmt="png")
    tiny = make_item(seed=4, size=(16, 16), fmt="png")  # would need enlarging: cannot
    dataset = services.dataset_create(
        name="Faces", requirements={"min_width": 24, "max_width": 48, "max_height": 48, "formats": ["png"]}
    )
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in (big, jpeg, fine, tiny)])
    page = signed_in
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    expect(page.locator("#report")).to_contain_text("3 of 4 members fail")

    page.get_by_role("button", name="Preview conform").click()
    conform = page.locator("#conform section.conform")
    expect(conform).to_contain_text("3 members fail an image rule")
    rows = conform.locator("tbody tr")
    expect(rows).to_have_count(3)
    big_row = rows.filter(has_text=f"#{big.pk}")
    expect(big_row).to_contain_text("64×64 png")
    expect(big_row).to_contain_text("max_width")
    expect(big_row.locator("td").nth(3)).to_contain_text("png")  # the planned recipe
    expect(big_row.locator("td").nth(4)).to_have_text("48×48 png RGB")
    jpeg_row = rows.filter(has_text=f"#{jpeg.pk}")
    expect(jpeg_row).to_contain_text("formats")
    expect(jpeg_row.locator("td").nth(4)).to_have_text("32×32 png RGB")
    tiny_row = rows.filter(has_text=f"#{tiny.pk}")
    expect(tiny_row).to_contain_text("Cannot conform:")
    expect(rows.filter(has_text=f"#{fine.pk}")).to_have_count(0)

    page.get_by_role("button", name="Conform 3 items").click()
    job = page.locator("#conform section.job")
    expect(job.locator("progress.job-progress")).to_be_visible()
    expect(page.locator("#conform [role=status]")).to_contain_text("Conforming Faces")
    expect(job.locator(".status")).to_have_text("Finished with 1 failure", timeout=JOB_TIMEOUT_MS)
    expect(job.locator("progress.job-progress")).to_have_attribute("value", "3")

    derived = {
        parent: MediaItem.objects.get(parent_id=parent)
        for parent in (big.pk, jpeg.pk)  # one derived item per conformed original
    }
    assert (derived[big.pk].width, derived[big.pk].format) == (48, "png")
    assert derived[jpeg.pk].format == "png"
    results = job.locator("#results")
    for item in derived.values():
        link = results.locator(f"a[href='{reverse('media:item-detail', args=[item.pk])}']")
        expect(link).to_have_count(1)
    expect(results.locator("li.result.failed")).to_contain_text(f"item {tiny.pk}")
    members = set(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))
    assert members == {fine.pk, tiny.pk, *(i.pk for i in derived.values())}

    page.reload()  # the report after conform: only the item that could not be conformed fails
    expect(page.locator("#report")).to_contain_text("1 of 4 members fail")


def test_statistics_draw_svg_charts_with_tables_and_say_when_sampled(
    signed_in: Page, live_server, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_DATASET_STATS_SAMPLE = 2  # 5 members: tag figures come from a sample
    items = [
        make_item(tags, seed=n, size=size, fmt=fmt)
        for n, (tags, size, fmt) in enumerate(
            [
                (["cat"], (64, 64), "png"),
                (["cat", "dog"], (96, 48), "png"),
                (["dog"], (48, 96), "jpeg"),
                (["cat", "hat"], (64, 64), "webp"),
                ([], (128, 80), "png"),
            ]
        )
    ]
    dataset = services.dataset_create(name="Pets")
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    sampled = len(range(0, len(items), math.ceil(len(items) / 2)))  # every k-th member

    page = signed_in
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    section = page.locator("#stats section.dataset-stats")
    expect(section).to_contain_text("5 members; 0 with alpha")
    charts = section.locator("figure.chart")
    expect(charts.first.locator("svg")).to_be_visible()
    count = charts.count()
    assert count >= 9
    for n in range(count):
        figure = charts.nth(n)
        svg = figure.locator("svg.chart")
        expect(svg).to_have_attribute("role", "img")
        title = svg.locator(":scope > title").text_content() or ""
        assert title.strip(), f"chart {n} has no title"
        expect(figure.locator("details table")).to_have_count(1)

    formats = page.get_by_role("img", name="Formats")
    expect(formats).to_be_visible()
    formats_figure = charts.filter(has=formats)
    formats_figure.get_by_text("Formats as a table").click()
    table = formats_figure.locator("details table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr").filter(has_text="png")).to_contain_text("3")
    expect(table.locator("tbody tr").filter(has_text="jpeg")).to_contain_text("1")

    note = f"(estimated from {sampled} of 5 members)"
    frequency = charts.filter(has_text="Most frequent tags")
    expect(frequency.locator("summary")).to_contain_text(note)
    expect(charts.filter(has_text="Coverage per tag type").locator("summary")).to_contain_text(note)
    expect(charts.filter(has_text="Short side as a table").locator("summary")).not_to_contain_text(
        "estimated"
    )

    # Under the sampling threshold the figures are exact and the note goes.
    settings.BAGGINTAG_DATASET_STATS_SAMPLE = 5_000
    page.reload()
    expect(section.locator("figure.chart").first.locator("svg")).to_be_visible()
    expect(section.locator("summary").filter(has_text="Most frequent tags")).not_to_contain_text("estimated")
