"""Pages of the media library: gallery, item (with its crop, scale and frame tools), upload."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from django.contrib.auth.decorators import login_required, permission_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError, NotFoundError, UnprocessableError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.ints import int_param
from apps.media import conf, extensions, selectors, services
from apps.media.filters import MediaItemFilter
from apps.media.formats import ANIMATION_FORMATS
from apps.media.forms import FocusForm, FramesForm, SelectionForm, TransformForm, UploadForm
from apps.media.models import MediaItem
from apps.media.services import frames, previews, storage, transforms
from apps.media.services.items import SELECTION_DELETE_MAX
from apps.media.services.recipes import BUCKETS
from apps.media.services.transforms import BULK_MAX_ITEMS

PAGE_SIZE = 60
STRIP_SIZE = 300  # captured frames shown on a video's timeline
NO_PERMISSION = "You do not have permission to add media."
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@login_required
@require_safe
def item_list(request: HttpRequest) -> HttpResponse:
    """The gallery: query bar, filters and a thumbnail grid, keyset-paged (no OFFSET)."""
    filterset = MediaItemFilter(request.GET or None, queryset=selectors.media_item_list(viewer=request.user))
    # A filter out of range or malformed (docs/api.md#integers) is shown beside its field and
    # the gallery answers 422, unfiltered.
    invalid = filterset.is_bound and not filterset.is_valid()
    queryset = filterset.queryset if invalid else filterset.qs
    q = request.GET.get("q", "").strip()
    if q:
        return extensions.query_provider().page(request, filterset, queryset, q)
    after = request.GET.get("after", "")
    if after_id := int_param(after, field="after", minimum=1):
        queryset = queryset.filter(pk__lt=after_id)
    rows = list(queryset.order_by("-id")[: PAGE_SIZE + 1])
    items, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    query = request.GET.copy()
    query.pop("after", None)
    if more:
        query["after"] = str(items[-1].pk)
    filtered = any(v for k, v in request.GET.items() if k != "after")
    context = {
        "filterset": filterset,
        "items": items,
        "next_query": query.urlencode() if more else "",
        "filtered": filtered,
        "first_page": not after,
        "q": "",
    }
    if not after:
        context["result_count"], context["count_exact"] = selectors.media_item_count(
            queryset, shown=len(items), more=more, filtered=filtered
        )
    partial = "media/partials/_grid_page.html" if after else "media/partials/_search_gallery.html"
    return render_page(request, "media/item_list.html", partial, context, status=422 if invalid else 200)


@login_required
@require_safe
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One item: preview or player with its tools, metadata, lineage, origins and tag sets."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    return render_page(request, "media/item_detail.html", None, _detail_context(request, item))


@login_required
@require_POST
def item_transform(request: HttpRequest, pk: int) -> HttpResponse:
    """Crop / scale / convert an image or frame into a new item, then go to it."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    if item.kind == MediaItem.Kind.VIDEO and item.format not in ANIMATION_FORMATS:
        raise UnprocessableError(
            "Videos cannot be cropped or scaled; capture frames from the video, then transform those.",
            code="media.not_an_image",
        )
    form = TransformForm(request.POST, auto_id=_transform_ids(item))
    if not request.user.has_perm("media.add_mediaitem"):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            result = transforms.media_item_transform(item=item, recipe=form.recipe(), added_by=request.user)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, result.item.get_absolute_url())
    return render_page(
        request,
        "media/item_detail.html",
        "media/partials/_transform_form.html",
        _detail_context(request, item, transform_form=form),
        status=422,
    )


@login_required
@require_POST
def item_frames(request: HttpRequest, pk: int) -> HttpResponse:
    """Capture the frame at the player's time, or a batch, from a video; answers with the job."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    if item.kind != MediaItem.Kind.VIDEO:
        raise UnprocessableError(
            f"Item {item.pk} is not a video; frames come from videos only.", code="media.not_a_video"
        )
    form = FramesForm(request.POST)
    if not request.user.has_perm("media.add_mediaitem"):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            job = frames.media_frames_extract_start(video=item, request=form.request(), added_by=request.user)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            if not getattr(request, "htmx", None):
                return redirect_after_post(request, reverse("jobs:job-detail", args=[job.pk]))
            return render_page(
                request,
                "media/item_detail.html",
                "media/partials/_frames_tool.html",
                _detail_context(request, item, frames_form=form, job=job),
            )
    return render_page(
        request,
        "media/item_detail.html",
        "media/partials/_frames_tool.html",
        _detail_context(request, item, frames_form=form),
        status=422,
    )


@login_required
@require_http_methods(["GET", "HEAD"])
def item_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The item's file with HTTP range requests, so the video player can seek (Chromium seeks
    only in resources served with 206 Partial Content)."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    try:
        size = default_storage.size(item.storage_key)
    except FileNotFoundError as exc:
        raise NotFoundError("The stored file is missing.", code="media.file_missing") from exc
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match is None or not (match[1] or match[2]):
        start, end, status = 0, size - 1, 200
    elif match[1]:
        start, end, status = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1), 206
    else:  # a suffix: the last N bytes
        start, end, status = max(0, size - int(match[2])), size - 1, 206
    if start > end and status == 206:
        response: HttpResponseBase = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    try:
        # Only the asked range is read from storage (on S3: a ranged GET, streamed).
        handle = storage.open_stored(item.storage_key, start, end if status == 206 else None)
    except FileNotFoundError as exc:
        raise NotFoundError("The stored file is missing.", code="media.file_missing") from exc
    if status == 200:
        response = FileResponse(handle, content_type=item.mime_type)
        response["Content-Length"] = str(size)
    else:
        response = StreamingHttpResponse(
            _chunks(handle, end - start + 1), status=206, content_type=item.mime_type
        )
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_http_methods(["GET", "HEAD"])
def item_preview(request: HttpRequest, pk: int) -> HttpResponseBase:
    """What a browser can show for the item: the original, or a WebP preview of a TIFF or HEIC."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    shown = previews.media_item_displayable(item=item)
    try:
        handle = default_storage.open(shown.key, "rb")
    except FileNotFoundError as exc:
        raise NotFoundError("The stored file is missing.", code="media.file_missing") from exc
    response = FileResponse(handle, content_type=shown.content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _chunks(handle: IO[bytes], length: int, size: int = 256 * 1024) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(size, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _detail_context(request: HttpRequest, item: MediaItem, **extra: Any) -> dict[str, Any]:
    """Everything the item page shows; `extra` carries bound forms and a started job."""
    context: dict[str, Any] = {
        "item": item,
        "panels": extensions.item_panels_render(request=request, item=item),
        "sources": selectors.media_item_sources(item=item),
        "children": selectors.media_item_children(item=item),
        "recipe_steps": recipe_summary(item.recipe),
        "recipe_json": json.dumps(item.recipe, indent=2) if item.recipe else "",
        "frame_clock": clock(item.timestamp_ms),
        "frame_box": _frame_box(item),
        "tool_config": {"buckets": BUCKETS, "max_pixels": conf.max_image_pixels()},
        "similar_count": selectors.media_item_similar_count(item=item),
        "frames_kept": selectors.video_frame_item_count(video=item)
        if item.kind == MediaItem.Kind.VIDEO
        else 0,
        "animation": item.kind == MediaItem.Kind.VIDEO and item.format in ANIMATION_FORMATS,
        "converted_preview": previews.needs_preview(item),
        "display_url": reverse(
            "media:item-preview" if previews.needs_preview(item) else "api:media-file", args=[item.pk]
        ),
    }
    if item.kind == MediaItem.Kind.VIDEO:
        captures = list(
            selectors.video_frame_list(video=item).order_by("timestamp_ms", "id")[: STRIP_SIZE + 1]
        )
        duration = item.duration_ms or 1
        context["strip"] = [
            {
                "capture": c,
                "seconds": c.timestamp_ms / 1000,
                "clock": clock(c.timestamp_ms),
                "left": round(min(100.0, 100 * c.timestamp_ms / duration), 3),
                "boxed": (c.crop_x, c.crop_y, c.crop_w, c.crop_h) != (0, 0, item.width, item.height),
            }
            for c in captures[:STRIP_SIZE]
        ]
        context["strip_truncated"] = len(captures) > STRIP_SIZE
        context["frames_form"] = FramesForm(initial={"run": "capture", "timestamp": 0})
    if item.kind != MediaItem.Kind.VIDEO:
        context["focus_form"] = _focus_form(item)
    if item.kind != MediaItem.Kind.VIDEO or context["animation"]:
        default_format = {"jpeg": "jpg", "webp": "webp"}.get(item.format, "png")
        context["transform_form"] = TransformForm(
            initial={"format": default_format, "quality": 95}, auto_id=_transform_ids(item)
        )
    context.update(extra)
    return context


def _transform_ids(item: MediaItem) -> str:
    """Field ids of the transform form: apart from the capture form's on an animation's page."""
    return "id_transform_%s" if item.kind == MediaItem.Kind.VIDEO else "id_%s"


def clock(ms: int | None) -> str:
    """Milliseconds as mm:ss.mmm (h:mm:ss.mmm from an hour on)."""
    if ms is None:
        return ""
    minutes, millis = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    seconds = f"{millis // 1000:02d}.{millis % 1000:03d}"
    return f"{hours}:{minutes:02d}:{seconds}" if hours else f"{minutes:02d}:{seconds}"


def _frame_box(item: MediaItem) -> str:
    if item.kind != MediaItem.Kind.FRAME or item.box_w is None or item.box_h is None:
        return ""
    video = item.video
    if video is not None and (item.box_x, item.box_y, item.box_w, item.box_h) == (
        0,
        0,
        video.width,
        video.height,
    ):
        return "whole frame"
    return f"{item.box_w} × {item.box_h} at ({item.box_x}, {item.box_y})"


def recipe_summary(recipe: Any) -> list[str]:
    """A transform recipe as short sentences, one per step and one for the output."""
    if not isinstance(recipe, dict):
        return []
    lines = [_step_summary(step) for step in recipe.get("ops", []) if isinstance(step, dict)]
    output = recipe.get("output") or {}
    if output.get("format"):
        quality = f", quality {output['quality']}" if "quality" in output else ""
        lines.append(f"Saved as {str(output['format']).upper()}{quality}")
    if recipe.get("frame"):
        lines.insert(0, f"Frame {recipe['frame']} of the animation")
    return lines


def _step_summary(step: dict[str, Any]) -> str:
    op = step.get("op")
    if op == "crop":
        if "box" in step:
            x, y, w, h = step["box"]
            return f"Crop {w} × {h} px at ({x}, {y})"
        if "fbox" in step:
            return "Crop to " + ", ".join(f"{v:.1%}" for v in step["fbox"]) + " of the image"
        focus = ", ".join(f"{v:g}" for v in step.get("focus", []))
        return f"Crop to aspect {step.get('aspect')} around ({focus})"
    if op == "scale":
        mode = step.get("mode", "fit")
        if "bucket" in step:
            target = f"the nearest {step['bucket'].upper()} bucket"
        elif "megapixels" in step:
            target = f"{step['megapixels']:g} megapixels"
        elif "long" in step or "short" in step:
            key = "long" if "long" in step else "short"
            target = f"{key} side {step[key]} px"
        else:
            target = " × ".join(str(step[k]) for k in ("width", "height") if k in step) + " px"
        upscale = ", upscaling allowed" if step.get("upscale") else ""
        return f"Scale ({mode}) to {target}{upscale}"
    if op == "rotate":
        return f"Rotate {step.get('degrees')}° clockwise"
    if op == "flip":
        return f"Flip {step.get('axis')}"
    return str(op)


@login_required
@permission_required("media.change_mediaitem", raise_exception=True)
@require_POST
def item_focus(request: HttpRequest, pk: int) -> HttpResponse:
    """Set or clear the focus box (docs/training.md#focus-boxes); answers with the focus form."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    form = FocusForm(request.POST)
    saved = False
    if form.is_valid():
        try:
            item = services.media_item_set_focus(item=item, focus=form.focus())
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            saved = True
    if saved and not getattr(request, "htmx", None):
        return redirect_after_post(request, item.get_absolute_url() + "#focus-form")
    if saved:
        form = _focus_form(item)
    context = _detail_context(request, item, focus_form=form, focus_saved=saved)
    return render_page(
        request,
        "media/item_detail.html",
        "media/partials/_focus_form.html",
        context,
        status=200 if saved else 400,
    )


def _focus_form(item: MediaItem) -> FocusForm:
    values = dict(zip(("x0", "y0", "x1", "y1"), item.focus or (), strict=False))
    return FocusForm(initial=values)


@login_required
@permission_required("media.delete_mediaitem", raise_exception=True)
@require_POST
def item_delete(request: HttpRequest, pk: int) -> HttpResponse:
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    services.media_item_delete(item=item)
    return redirect_after_post(request, reverse("media:item-list"))


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """Upload files, a zip or URLs; answers with the job's live progress."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST":
        if not request.user.has_perm("media.add_mediaitem"):
            form.add_error(None, "You do not have permission to add media.")
        elif form.is_valid():
            data = form.cleaned_data
            try:
                job = services.media_upload_bulk_start(
                    files=request.FILES.getlist("files"),
                    archive=data.get("archive"),
                    urls=data["urls"],
                    added_by=request.user,
                    defaults={
                        "artist": data["artist"],
                        "source": data["source"],
                        "tags": data["tags"],
                        "tag_source": data["tag_source"],
                    },
                )
            except DomainError as err:
                form.add_service_error(err)
            else:
                if getattr(request, "htmx", None):
                    return render_page(
                        request, "media/upload.html", "jobs/partials/_job_status.html", {"job": job}
                    )
                return redirect_after_post(request, reverse("jobs:job-detail", args=[job.pk]))
    if form.errors and getattr(request, "htmx", None):
        # Only the messages are swapped in: the chosen files and the open section stay as they were.
        response = render_page(
            request, "media/upload.html", "media/partials/_upload_errors.html", {"form": form}
        )
        response.status_code = 422
        response["HX-Retarget"] = "#upload-errors"
        response["HX-Reswap"] = "innerHTML"
        return response
    return render_page(
        request,
        "media/upload.html",
        "media/partials/_upload_form.html",
        {"form": form},
        status=422 if form.errors else 200,
    )


# --- acting on a selection of the library grid (docs: README "Using it") ------------------------


@login_required
@require_http_methods(["GET"])
def selection_ids(request: HttpRequest) -> HttpResponse:
    """Every item matching the library's current query and filters, newest first, as JSON ids
    (at most BULK_MAX_ITEMS): what "Select all matching" selects."""
    filterset = MediaItemFilter(request.GET or None, queryset=selectors.media_item_list(viewer=request.user))
    try:
        if filterset.is_bound and not filterset.is_valid():
            fields = {name: [str(m) for m in messages] for name, messages in filterset.errors.items()}
            raise DomainError("Fix the filters first.", code="invalid", details={"fields": fields})
        queryset = filterset.qs if filterset.is_bound else filterset.queryset
        q = request.GET.get("q", "").strip()
        if q:
            ids = extensions.query_ids(q=q, viewer=request.user, base=queryset, max_ids=BULK_MAX_ITEMS + 1)
        else:
            ids = list(queryset.order_by("-id").values_list("id", flat=True)[: BULK_MAX_ITEMS + 1])
    except DomainError as err:  # the API's error shape (docs/api.md#errors)
        return JsonResponse(err.as_dict(), status=err.status_code)
    return JsonResponse({"ids": ids[:BULK_MAX_ITEMS], "truncated": len(ids) > BULK_MAX_ITEMS})


def _selection(request: HttpRequest) -> list[int]:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        raise DomainError("Select items in the library first.", code="media.invalid_ids")
    ids: list[int] = form.cleaned_data["ids"]
    return ids


@login_required
@permission_required("media.add_mediaitem", raise_exception=True)
@require_POST
def selection_transform(request: HttpRequest) -> HttpResponse:
    """Crop, scale or convert every selected image and frame the same way, as one job."""
    ids = _selection(request)
    form = TransformForm(request.POST if "format" in request.POST else None, initial={"format": "png"})
    if form.is_bound and form.is_valid():
        try:
            job = transforms.media_transform_bulk_start(ids=ids, recipe=form.recipe(), added_by=request.user)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, reverse("jobs:job-detail", args=[job.pk]))
    context = {"form": form, "ids": " ".join(map(str, ids)), "count": len(ids)}
    return render_page(
        request, "media/selection_transform.html", None, context, status=422 if form.errors else 200
    )


@login_required
@permission_required("media.delete_mediaitem", raise_exception=True)
@require_POST
def selection_delete(request: HttpRequest) -> HttpResponse:
    """Ask, then delete the selected items with their files."""
    ids = _selection(request)
    if request.POST.get("confirm") == "yes":
        services.media_items_delete(ids=ids)
        return redirect_after_post(request, reverse("media:item-list"))
    context = {
        "ids": " ".join(map(str, ids)),
        "count": len(ids),
        "too_many": len(ids) > SELECTION_DELETE_MAX,
        "limit": SELECTION_DELETE_MAX,
        **selectors.media_item_videos_summary(ids=ids),
    }
    return render_page(request, "media/selection_delete.html", None, context)
