"""The scheme editor in Chromium: create a scheme, see its DAG, fix an error the page names by
step, start a run and land on its progress page."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from apps.taggers.models import SchemeRun
from tests.taggers.wd_fixtures import example_steps, tagger_make

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_create_edit_and_run_a_scheme(signed_in, live_server):
    page = signed_in
    persons = tagger_make("persons", "detector", params={"backend": "fixed"})
    wd = tagger_make("wd-test", "wd_onnx", model_dir="wd/wd-test")
    echo = tagger_make("echo", "captioner", params={"backend": "echo"})
    steps = example_steps(persons, wd, echo)

    page.goto(f"{live_server.url}/taggers/schemes/")
    expect(page.get_by_role("heading", name="No tagging schemes yet")).to_be_visible()
    page.get_by_label("Name").fill("example")
    page.get_by_label("Definition").fill(json.dumps({"steps": steps}))
    page.get_by_role("button", name="Create scheme").click()
    expect(page.locator("svg.scheme-dag g[data-step]")).to_have_count(5)

    broken = [*steps[:3], {**steps[3], "after": []}, steps[4]]
    page.get_by_label("Definition").fill(json.dumps({"steps": broken}))
    page.get_by_role("button", name="Save definition").click()
    expect(page.get_by_role("alert")).to_contain_text("Step 'describe'")

    page.get_by_role("button", name="Run scheme").click()
    run = SchemeRun.objects.get()
    expect(page).to_have_url(f"{live_server.url}/taggers/schemes/runs/{run.pk}/")
    expect(page.locator("#scheme-run")).to_have_attribute("data-status", "pending")
