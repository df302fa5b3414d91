"""Pages of the media library: gallery, item, upload."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.media import selectors, services
from apps.media.filters import MediaItemFilter
from apps.media.forms import UploadForm
from apps.tags import selectors as tag_selectors

PAGE_SIZE = 60


@login_required
def item_list(request: HttpRequest) -> HttpResponse:
    """The gallery: filters and a thumbnail grid, paged by id (keyset, no OFFSET)."""
    filterset = MediaItemFilter(request.GET or None, queryset=selectors.media_item_list(viewer=request.user))
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    after = request.GET.get("after", "")
    if after.isdigit():
        queryset = queryset.filter(pk__lt=int(after))
    rows = list(queryset.order_by("-id")[: PAGE_SIZE + 1])
    items, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    query = request.GET.copy()
    query.pop("after", None)
    if more:
        query["after"] = str(items[-1].pk)
    context = {
        "filterset": filterset, "items": items, "next_query": query.urlencode() if more else "",
        "filtered": any(v for k, v in request.GET.items() if k != "after"),
        "first_page": not after,
    }
    partial = "media/partials/_grid_page.html" if after else "media/partials/_gallery.html"
    return render_page(request, "media/item_list.html", partial, context)


@login_required
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One item: preview or player, metadata, origins and tag sets."""
    item = selectors.media_item_get(item_id=pk, viewer=request.user)
    context = {
        "item": item,
        "sources": selectors.media_item_sources(item=item),
        "tag_sets": tag_selectors.tag_set_list_for_item(media_item=item),
    }
    return render_page(request, "media/item_detail.html", None, context)


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
                    files=request.FILES.getlist("files"), archive=data.get("archive"),
                    urls=data["urls"], added_by=request.user,
                    defaults={"artist": data["artist"], "source": data["source"],
                              "tags": data["tags"], "tag_source": data["tag_source"]},
                )
            except DomainError as err:
                form.add_error(None, err.message)
            else:
                if getattr(request, "htmx", None):
                    return render_page(request, "media/upload.html",
                                       "jobs/partials/_job_status.html", {"job": job})
                return redirect_after_post(request, reverse("jobs:job-detail", args=[job.pk]))
    return render_page(request, "media/upload.html", "media/partials/_upload_form.html",
                       {"form": form}, status=422 if form.errors else 200)
