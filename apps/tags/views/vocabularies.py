"""Tag pages: the tag list with its charts, tag types (inline editing) and tag templates
(settings, CSV import and export, build from usage)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.tags.api.views_vocab import csv_response
from apps.tags.forms import (
    BuildForm,
    CsvImportForm,
    TagFilter,
    TagTypeForm,
    VocabularyForm,
    domain_error_to_form,
)
from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.selectors import vocabularies as vocabulary_reads
from apps.tags.services import names, vocabularies, vocabulary_io

PAGE_SIZE = 100
CHART_TAGS = 30
NO_PERMISSION = "You do not have permission to change this."

# --- charts (inline SVG; geometry here, markup in the templates) ----------------------------------

CHART_WIDTH = 640
CHART_LABEL = 190
CHART_BAR_MAX = 380
CHART_ROW = 18


def bar_chart(tags: list[Tag]) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of tags by media count (longest bar = top tag)."""
    top = max((t.media_count for t in tags), default=0) or 1
    bars = []
    for i, tag in enumerate(tags):
        width = max(1.0, round(CHART_BAR_MAX * tag.media_count / top, 1))
        bars.append(
            {
                "tag": tag,
                "label": tag.name if len(tag.name) <= 28 else tag.name[:27] + "…",
                "y": i * CHART_ROW,
                "text_y": i * CHART_ROW + 13,
                "width": width,
                "count_x": CHART_LABEL + width + 6,
            }
        )
    return {
        "bars": bars,
        "height": len(bars) * CHART_ROW,
        "width": CHART_WIDTH,
        "label_x": CHART_LABEL - 6,
        "bar_x": CHART_LABEL,
    }


def distribution_bar(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Segments (in % of all uses, or of all tags while nothing is used) of a stacked type bar."""
    total_uses = sum(r["uses"] for r in rows)
    key = "uses" if total_uses else "tags"
    total = sum(r[key] for r in rows) or 1
    x = 0.0
    segments = []
    for row in rows:
        share = 100 * row[key] / total
        segments.append({**row, "x": round(x, 3), "width": round(share, 3), "share": round(share, 1)})
        x += share
    return {
        "segments": segments,
        "by": key,
        "total_tags": sum(r["tags"] for r in rows),
        "total_uses": total_uses,
    }


# --- tag list ------------------------------------------------------------------------------------------


@login_required
@require_safe
def tag_list(request: HttpRequest) -> HttpResponse:
    """Tags with counts and coloured types: search, type and template filters, keyset pages,
    the 30 most used tags as a bar chart and the share of each type."""
    default = vocabulary_reads.vocabulary_default()
    data = request.GET.copy()
    if not data.get("vocab"):
        data["vocab"] = default.slug  # the page shows one template at a time
    filterset = TagFilter(data, queryset=vocabulary_reads.tag_list())
    if filterset.is_valid():
        queryset, cleaned = filterset.qs, filterset.form.cleaned_data
    else:
        queryset, cleaned = vocabulary_reads.tag_list().filter(vocabulary=default), {}
    vocabulary: Vocabulary = cleaned.get("vocab") or default
    order = cleaned.get("order") or "count"
    cursor = request.GET.get("cursor", "")
    page = vocabulary_reads.tag_page(queryset=queryset, order=order, cursor=cursor, size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("cursor", None)
    if page.next_cursor:
        query["cursor"] = page.next_cursor
    context: dict[str, Any] = {
        "filterset": filterset,
        "vocabulary": vocabulary,
        "tags": page.rows,
        "next_query": query.urlencode() if page.next_cursor else "",
        "filtered": any(v for k, v in request.GET.items() if k not in ("cursor", "order", "vocab")),
        "first_page": not cursor,
    }
    if cursor and getattr(request, "htmx", None):
        return render_page(request, "tags/tag_list.html", "tags/partials/_tag_rows.html", context)
    if not cursor:
        tag_type = cleaned.get("type")
        context["chart"] = bar_chart(
            vocabulary_reads.tag_top(vocabulary=vocabulary, tag_type=tag_type, limit=CHART_TAGS)
        )
        context["distribution"] = distribution_bar(
            vocabulary_reads.tag_type_distribution(vocabulary=vocabulary)
        )
    return render_page(request, "tags/tag_list.html", "tags/partials/_tag_results.html", context)


# --- tag types ---------------------------------------------------------------------------------------


def _shown(tag_type: TagType) -> TagType:
    tag_type.dropout_percent = tag_type.default_dropout / 100  # type: ignore[attr-defined]
    return tag_type


def _type_list_context(**extra: Any) -> dict[str, Any]:
    # A callable: templates call it, so partial renders that never show the list skip the query.
    context: dict[str, Any] = {
        "types": lambda: [_shown(t) for t in vocabulary_reads.tag_type_list()],
        "create_form": TagTypeForm(),
    }
    context.update(extra)
    return context


def _with_count(tag_type: TagType) -> TagType:
    return _shown(vocabulary_reads.tag_type_list().get(pk=tag_type.pk))


@login_required
@require_safe
def type_list(request: HttpRequest) -> HttpResponse:
    """Tag types in display order, edited in place."""
    return render_page(request, "tags/type_list.html", None, _type_list_context())


@login_required
@require_safe
def type_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One type's row (what 'Cancel' swaps back in)."""
    tag_type = _with_count(vocabulary_reads.tag_type_get(type_id=pk))
    return render_page(
        request, "tags/type_list.html", "tags/partials/_type_row.html", _type_list_context(t=tag_type)
    )


@login_required
@require_http_methods(["GET", "POST"])
def type_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The inline edit form of one type; saving answers with the updated row (422 on errors)."""
    if not request.user.has_perm("tags.change_tagtype"):
        raise PermissionDenied(NO_PERMISSION)
    tag_type = vocabulary_reads.tag_type_get(type_id=pk)
    form = TagTypeForm.for_type(tag_type, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            tag_type = vocabularies.tag_type_update(tag_type=tag_type, **form.values())
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            if not getattr(request, "htmx", None):
                return redirect_after_post(request, reverse("tags:type-list"))
            return render_page(
                request, "tags/type_list.html", "tags/partials/_type_row.html", {"t": _with_count(tag_type)}
            )
    context = _type_list_context(t=_with_count(tag_type), form=form, editing=tag_type.pk)
    return render_page(
        request,
        "tags/type_list.html",
        "tags/partials/_type_form_row.html",
        context,
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def type_create(request: HttpRequest) -> HttpResponse:
    form = TagTypeForm(request.POST)
    if not request.user.has_perm("tags.add_tagtype"):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            vocabularies.tag_type_create(**form.values())
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            return redirect_after_post(request, reverse("tags:type-list"))
    return render_page(
        request,
        "tags/type_list.html",
        "tags/partials/_type_create_form.html",
        _type_list_context(create_form=form),
        status=422,
    )


@login_required
@require_POST
def type_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete an unused type; a type in use stays, with the reason shown in its row (422)."""
    if not request.user.has_perm("tags.delete_tagtype"):
        raise PermissionDenied(NO_PERMISSION)
    tag_type = vocabulary_reads.tag_type_get(type_id=pk)
    try:
        vocabularies.tag_type_delete(tag_type=tag_type)
    except DomainError as err:
        context = _type_list_context(t=_with_count(tag_type), row_error=err.message, error_for=tag_type.pk)
        return render_page(
            request, "tags/type_list.html", "tags/partials/_type_row.html", context, status=422
        )
    if getattr(request, "htmx", None):
        return HttpResponse("")
    return redirect_after_post(request, reverse("tags:type-list"))


# --- tag templates ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def template_list(request: HttpRequest) -> HttpResponse:
    """Tag templates with their tag counts, and a form to add one."""
    form = VocabularyForm(request.POST or None, initial={"default_type": names.tag_type_default()})
    if request.method == "POST":
        if not request.user.has_perm("tags.add_vocabulary"):
            form.add_error(None, NO_PERMISSION)
        elif form.is_valid():
            try:
                vocabulary = vocabularies.vocabulary_create(**form.values())
            except DomainError as err:
                domain_error_to_form(form, err)
            else:
                return redirect_after_post(request, reverse("tags:template-detail", args=[vocabulary.pk]))
    templates = vocabulary_reads.vocabulary_list().annotate(tag_count=Count("tags"))
    return render_page(
        request,
        "tags/template_list.html",
        "tags/partials/_template_create_form.html",
        {"templates": list(templates), "form": form},
        status=422 if form.errors else 200,
    )


def _detail_context(vocabulary: Vocabulary, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "vocabulary": vocabulary,
        "form": VocabularyForm.for_vocabulary(vocabulary),
        "import_form": CsvImportForm(),
        "build_form": BuildForm(
            vocabulary=vocabulary, initial={"source": vocabulary_reads.vocabulary_default()}
        ),
        "tag_count": Tag.objects.filter(vocabulary=vocabulary).count(),
        "top": vocabulary_reads.tag_top(vocabulary=vocabulary, limit=20),
    }
    context.update(extra)
    return context


@login_required
@require_http_methods(["GET", "POST"])
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One template: its settings (saved in place), import, export and build-from-usage."""
    vocabulary = vocabulary_reads.vocabulary_get(vocabulary_id=pk)
    if request.method != "POST":
        return render_page(request, "tags/template_detail.html", None, _detail_context(vocabulary))
    form = VocabularyForm.for_vocabulary(vocabulary, request.POST)
    saved = False
    if not request.user.has_perm("tags.change_vocabulary"):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            vocabulary = vocabularies.vocabulary_update(vocabulary=vocabulary, **form.values())
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            saved = True
            if not getattr(request, "htmx", None):
                return redirect_after_post(request, reverse("tags:template-detail", args=[vocabulary.pk]))
    return render_page(
        request,
        "tags/template_detail.html",
        "tags/partials/_template_form.html",
        _detail_context(vocabulary, form=form, saved=saved),
        status=422 if form.errors else 200,
    )


def _may_write_tags(request: HttpRequest) -> bool:
    return request.user.has_perms(["tags.change_vocabulary", "tags.add_tag", "tags.change_tag"])


@login_required
@require_POST
def template_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Import a CSV into the template; answers with what was created, updated and refused."""
    vocabulary = vocabulary_reads.vocabulary_get(vocabulary_id=pk)
    form = CsvImportForm(request.POST, request.FILES)
    result = None
    if not _may_write_tags(request):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            result = vocabulary_io.vocabulary_import_csv(
                vocabulary=vocabulary,
                data=form.cleaned_data["file"],
                actor=request.user,
                scheme=form.cleaned_data["scheme"],
            )
        except DomainError as err:
            domain_error_to_form(form, err)
    context = _detail_context(
        vocabulary, import_form=form if result is None else CsvImportForm(), result=result
    )
    return render_page(
        request,
        "tags/template_detail.html",
        "tags/partials/_template_import.html",
        context,
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def template_build(request: HttpRequest, pk: int) -> HttpResponse:
    """Create or refresh the template's tags from the tags in use elsewhere, in one go."""
    vocabulary = vocabulary_reads.vocabulary_get(vocabulary_id=pk)
    form = BuildForm(request.POST, vocabulary=vocabulary)
    result = None
    if not _may_write_tags(request):
        form.add_error(None, NO_PERMISSION)
    elif form.is_valid():
        try:
            result = vocabulary_io.vocabulary_build_from_usage(
                vocabulary=vocabulary,
                source=form.cleaned_data["source"],
                scope=form.cleaned_data["scope"],
                min_count=form.cleaned_data["min_count"],
            )
        except DomainError as err:
            domain_error_to_form(form, err)
    context = _detail_context(vocabulary, build_form=form, build_result=result)
    return render_page(
        request,
        "tags/template_detail.html",
        "tags/partials/_template_build.html",
        context,
        status=422 if form.errors else 200,
    )


@login_required
@require_safe
def template_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The template as a CSV download (`name,type,count,aliases`), streamed."""
    return csv_response(vocabulary_reads.vocabulary_get(vocabulary_id=pk))


@login_required
@require_POST
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete an empty template (one with tags or tag sets is refused with a 409 page)."""
    if not request.user.has_perm("tags.delete_vocabulary"):
        raise PermissionDenied(NO_PERMISSION)
    vocabularies.vocabulary_delete(vocabulary=vocabulary_reads.vocabulary_get(vocabulary_id=pk))
    return redirect_after_post(request, reverse("tags:template-list"))
