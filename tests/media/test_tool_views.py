"""Item-page tools (Django test client): crop / scale into a new item, frame capture jobs, lineage."""

from __future__ import annotations

import re

import pytest

from apps.jobs.models import Job
from apps.media.forms import box_constrain
from apps.media.models import MediaItem
from apps.media.services.transforms import media_item_transform
from apps.media.views import clock, recipe_summary
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


PICTURE: dict = {"fmt": "jpeg", "size": (320, 240)}  # what the crop boxes below are sized for


@pytest.fixture
def video(curator, video_dir) -> MediaItem:
    return make_item(path=mediafiles.video_file(video_dir, "mp4"), filename="clip.mp4", added_by=curator)


@pytest.fixture
def signed_in(client, curator):
    client.force_login(curator)
    return client


def transform_form(**fields) -> dict:
    return {"aspect": "", "scale": "", "size": "", "format": "png", "quality": "95", **fields}


# --- transform ------------------------------------------------------------------------------


def test_transform_form_makes_a_child_and_redirects_to_it(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    response = signed_in.post(
        f"/items/{image.pk}/transform",
        transform_form(
            x="10", y="20", w="200", h="100", scale="long", size="100", format="webp", quality="80"
        ),
    )
    assert response.status_code == 303
    child = MediaItem.objects.get(parent=image)
    assert response["Location"] == f"/items/{child.pk}/"
    assert (child.width, child.height, child.format) == (100, 50, "webp")
    assert child.recipe["ops"][0] == {"op": "crop", "box": [10, 20, 200, 100]}
    assert child.recipe["ops"][1]["long"] == 100
    assert child.recipe["output"]["quality"] == 80


def test_transform_with_htmx_answers_hx_redirect_and_the_same_recipe_finds_the_same_item(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    fields = transform_form(aspect="1:1", scale="long", size="120")
    first = signed_in.post(f"/items/{image.pk}/transform", fields, **HTMX)
    again = signed_in.post(f"/items/{image.pk}/transform", fields, **HTMX)
    child = MediaItem.objects.get(parent=image)
    assert first.status_code == again.status_code == 200
    assert first["HX-Redirect"] == again["HX-Redirect"] == f"/items/{child.pk}/"
    # No box (no JavaScript): the aspect crop is centred.
    assert child.recipe["ops"][0] == {"op": "crop", "aspect": "1:1", "focus": [0.5, 0.5]}
    assert (child.width, child.height) == (120, 120)


def test_transform_bucket_needing_an_upscale_is_refused_unless_allowed(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    refused = signed_in.post(f"/items/{image.pk}/transform", transform_form(scale="sdxl"), **HTMX)
    assert refused.status_code == 422
    assert "upscale" in refused.content.decode()
    assert not MediaItem.objects.filter(parent=image).exists()
    allowed = signed_in.post(f"/items/{image.pk}/transform", transform_form(scale="sd15", upscale="on"))
    child = MediaItem.objects.get(parent=image)
    assert allowed.status_code == 303
    assert (child.width, child.height) == (576, 448)


def test_box_outside_the_image_is_a_422_with_the_message_in_the_form(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    response = signed_in.post(
        f"/items/{image.pk}/transform", transform_form(x="300", y="0", w="100", h="100"), **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "<html" not in html
    assert 'id="transform-form"' in html
    assert "reaches outside the 320×240 image" in html
    assert 'value="300"' in html  # the form keeps what was typed
    assert not MediaItem.objects.filter(parent=image).exists()


def test_form_errors_without_htmx_render_the_whole_page_with_422(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    response = signed_in.post(f"/items/{image.pk}/transform", transform_form(x="5", scale="long"))
    html = response.content.decode()
    assert response.status_code == 422
    assert "<html" in html
    assert "or leave all four empty" in html
    assert "Enter the size in pixels." in html


def test_a_box_with_an_aspect_is_shrunk_about_its_centre(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    signed_in.post(
        f"/items/{image.pk}/transform", transform_form(x="0", y="0", w="300", h="200", aspect="1:1")
    )
    child = MediaItem.objects.get(parent=image)
    assert child.recipe["ops"] == [{"op": "crop", "box": [50, 0, 200, 200]}]
    assert (child.width, child.height) == (200, 200)


def test_box_constrain_is_stable():
    for box, aspect in [
        ([3, 7, 301, 200], "3:2"),
        ([0, 0, 257, 201], "sdxl"),
        ([1, 1, 120, 181], "2:3"),
        ([0, 0, 99, 170], "9:16"),
        ([0, 0, 640, 480], "sd15"),
    ]:
        once = box_constrain(box, aspect)
        assert box_constrain(once, aspect) == once


def test_transform_on_a_video_is_a_422(signed_in, video):
    response = signed_in.post(
        f"/items/{video.pk}/transform", transform_form(scale="long", size="100"), **HTMX
    )
    assert response.status_code == 422
    assert "Videos cannot be cropped or scaled" in response.content.decode()
    assert not MediaItem.objects.filter(parent=video).exists()


def test_viewers_without_permission_are_refused(client, viewer, curator):
    image = make_item(**PICTURE, added_by=curator)
    client.force_login(viewer)
    page = client.get(f"/items/{image.pk}/").content.decode()
    assert 'id="transform-form"' not in page
    response = client.post(f"/items/{image.pk}/transform", transform_form(scale="long", size="100"), **HTMX)
    assert response.status_code == 422
    assert "You do not have permission" in response.content.decode()
    assert not MediaItem.objects.filter(parent=image).exists()


# --- frames ---------------------------------------------------------------------------------


def test_capture_this_frame_starts_a_job_and_answers_with_its_status(
    signed_in, video, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = signed_in.post(
            f"/items/{video.pk}/frames",
            {"run": "capture", "timestamp": "1.04", "x": "", "y": "", "w": "", "h": ""},
            **HTMX,
        )
    html = response.content.decode()
    assert response.status_code == 200, html
    job = Job.objects.get()
    assert job.kind == "media.frames"
    assert job.params["timestamps"] == [1.04]
    assert "box" not in job.params
    assert f'id="job-{job.pk}"' in html
    assert 'class="job-progress"' in html
    assert f"/jobs/{job.pk}/status" in html
    assert 'id="frames-form"' in html
    assert "<html" not in html


def test_batch_with_box_and_skip_similar(signed_in, video, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = signed_in.post(
            f"/items/{video.pk}/frames",
            {
                "run": "batch",
                "mode": "interval",
                "interval": "0.5",
                "skip_similar": "4",
                "x": "10",
                "y": "20",
                "w": "100",
                "h": "50",
            },
            **HTMX,
        )
    assert response.status_code == 200
    job = Job.objects.get()
    assert job.params | {"task": None, "title": None} == {
        "video_id": video.pk,
        "mode": "interval",
        "interval": 0.5,
        "skip_similar": 4,
        "box": [10, 20, 100, 50],
        "task": None,
        "title": None,
    }


def test_a_capture_box_with_an_aspect_is_shrunk_about_its_centre(
    signed_in, video, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = signed_in.post(
            f"/items/{video.pk}/frames",
            {
                "run": "capture",
                "timestamp": "0.5",
                "aspect": "1:1",
                "x": "0",
                "y": "0",
                "w": "320",
                "h": "240",
            },
            **HTMX,
        )
    assert response.status_code == 200
    assert Job.objects.get().params["box"] == [40, 0, 240, 240]


def test_capture_without_htmx_redirects_to_the_job_page(signed_in, video, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = signed_in.post(
            f"/items/{video.pk}/frames", {"run": "batch", "mode": "count", "count": "3"}
        )
    assert response.status_code == 303
    assert response["Location"] == f"/jobs/{Job.objects.get().pk}/"


def test_timestamp_past_the_end_is_a_422_with_the_message(signed_in, video):
    response = signed_in.post(f"/items/{video.pk}/frames", {"run": "capture", "timestamp": "5"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    assert "Timestamp 5 s is past the end of the video (2.000 s)." in html
    assert 'id="frames-form"' in html
    assert not Job.objects.exists()


def test_batch_form_errors(signed_in, video):
    missing = signed_in.post(f"/items/{video.pk}/frames", {"run": "batch", "mode": "interval"}, **HTMX)
    assert missing.status_code == 422
    assert "Enter the interval in seconds." in missing.content.decode()
    outside = signed_in.post(
        f"/items/{video.pk}/frames",
        {"run": "batch", "mode": "keyframes", "x": "300", "y": "0", "w": "50", "h": "50"},
        **HTMX,
    )
    assert outside.status_code == 422
    assert "reaches outside the 320×240 frame" in outside.content.decode()
    assert not Job.objects.exists()


def test_frames_on_an_image_is_a_422(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    response = signed_in.post(f"/items/{image.pk}/frames", {"run": "capture", "timestamp": "0"}, **HTMX)
    assert response.status_code == 422
    assert "is not a video" in response.content.decode()


def test_stream_serves_byte_ranges_so_the_player_can_seek(signed_in, video, video_dir):
    data = mediafiles.video_file(video_dir, "mp4").read_bytes()
    whole = signed_in.get(f"/items/{video.pk}/stream")
    assert whole.status_code == 200
    assert whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    part = signed_in.get(f"/items/{video.pk}/stream", HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part["Content-Length"] == "100"
    assert b"".join(part.streaming_content) == data[100:200]
    tail = signed_in.get(f"/items/{video.pk}/stream", HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == data[-10:]
    open_ended = signed_in.get(f"/items/{video.pk}/stream", HTTP_RANGE=f"bytes={len(data) - 5}-")
    assert b"".join(open_ended.streaming_content) == data[-5:]
    beyond = signed_in.get(f"/items/{video.pk}/stream", HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{len(data)}"


# --- lineage --------------------------------------------------------------------------------


def test_child_page_shows_parent_recipe_and_the_parent_lists_the_child(signed_in, curator):
    image = make_item(**PICTURE, added_by=curator)
    recipe = {
        "ops": [{"op": "crop", "box": [0, 0, 100, 80]}, {"op": "scale", "long": 50}],
        "output": {"format": "jpg", "quality": 90},
    }
    child = media_item_transform(item=image, recipe=recipe, added_by=curator).item
    html = signed_in.get(f"/items/{child.pk}/").content.decode()
    assert "Derived from" in html
    assert f'href="/items/{image.pk}/"' in html
    assert f"/api/media/{image.pk}/thumbnail" in html
    assert "Crop 100 × 80 px at (0, 0)" in html
    assert "Scale (fit) to long side 50 px" in html
    assert "Saved as JPEG, quality 90" in html
    assert "&quot;ops&quot;" in html  # the JSON, escaped
    parent_html = signed_in.get(f"/items/{image.pk}/").content.decode()
    assert re.search(rf'<ul class="children">.*href="/items/{child.pk}/"', parent_html, re.S)


def test_frame_page_shows_its_video_time_index_and_box(signed_in, video):
    from apps.media.services import frames

    job = frames.media_frames_extract_start(
        video=video, request={"mode": "timestamps", "timestamps": [1.0], "box": [8, 16, 160, 120]}
    )
    frames.media_frames_extract_run(job_id=job.pk)
    frame = MediaItem.objects.get(kind="frame")
    html = signed_in.get(f"/items/{frame.pk}/").content.decode()
    assert f'href="/items/{video.pk}/"' in html
    assert "Frame of" in html
    assert "00:01.000" in html
    assert "160 × 120 at (8, 16)" in html
    assert f"<dd>{frame.frame_index}</dd>" in html
    assert 'id="transform-form"' in html  # frames are images: they can be cropped further
    video_html = signed_in.get(f"/items/{video.pk}/").content.decode()
    assert 'data-seek="1.000000"' in video_html
    assert "00:01.000" in video_html


def test_helpers():
    assert clock(0) == "00:00.000"
    assert clock(61_005) == "01:01.005"
    assert clock(3_723_004) == "1:02:03.004"
    assert recipe_summary(None) == []
    assert recipe_summary(
        {
            "ops": [
                {"op": "scale", "mode": "fill", "bucket": "sdxl", "upscale": True},
                {"op": "rotate", "degrees": 90},
            ],
            "output": {"format": "png"},
        }
    ) == [
        "Scale (fill) to the nearest SDXL bucket, upscaling allowed",
        "Rotate 90° clockwise",
        "Saved as PNG",
    ]


# --- the page's JavaScript mirrors the services ----------------------------------------------

NODE_HARNESS = """
global.window = {};
global.document = {readyState: "complete", addEventListener() {}, querySelectorAll() { return []; },
  getElementById() { return {textContent: process.argv[2]}; }};
require(process.argv[1]);
const B = window.baggintagBox, cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((c) => {
  const o = B.outputSize(c.w, c.h, c.scale, c.size, c.up, c.max);
  const [x, y, w, h] = c.box, k = B.constrain({x, y, w, h}, c.aspect);
  return {out: o.error ? "error" : [o.w, o.h], box: [k.x, k.y, k.w, k.h]};
})));
"""


def test_crop_js_output_size_and_aspect_match_the_service(settings):
    """static/js/crop.js shows the size the service will make and constrains boxes as the form does."""
    import json
    import random
    import shutil
    import subprocess
    from pathlib import Path

    from apps.core.exceptions import DomainError
    from apps.media.services import transforms
    from apps.media.services.recipes import BUCKETS, recipe_clean

    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js to run static/js/crop.js")
    rng = random.Random(7)
    limit = settings.BAGGINTAG_MAX_IMAGE_PIXELS
    cases, expected = [], []
    for _ in range(1500):
        w, h = rng.randint(1, 5000), rng.randint(1, 5000)
        scale = rng.choice(["", "long", "short", "megapixels", "sdxl", "sd15"])
        size = round(rng.uniform(0.01, 5), 2) if scale == "megapixels" else rng.randint(1, 6000)
        case = {
            "w": w,
            "h": h,
            "scale": scale,
            "size": size,
            "up": rng.random() < 0.5,
            "max": limit,
            "aspect": rng.choice(["1:1", "2:3", "3:2", "16:9", "9:16", "sdxl", "sd15"]),
            "box": [rng.randint(0, 50), rng.randint(0, 50), w, h],
        }
        out: object = [w, h]
        if scale:
            raw = {"op": "scale", "upscale": case["up"]}
            raw |= {"mode": "fill", "bucket": scale} if scale in BUCKETS else {"mode": "fit", scale: size}
            step = recipe_clean({"ops": [raw]})["ops"][0]
            canvas = transforms._Canvas(transforms._DOT, w, h)
            tw, th, final = transforms._target(canvas, step)
            try:
                if transforms._check_factor(canvas, tw, th, step):
                    out = list(final) if final else [tw, th]
            except DomainError:
                out = "error"
        cases.append(case)
        expected.append({"out": out, "box": box_constrain(case["box"], case["aspect"])})
    script = Path(__file__).resolve().parents[2] / "static" / "js" / "crop.js"
    run = subprocess.run(
        [node, "-e", NODE_HARNESS, str(script), json.dumps({"buckets": BUCKETS, "max_pixels": limit})],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    got = json.loads(run.stdout)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert mismatches == []
