"""The tag editor on the item page: every tag set side by side, the curated set editable from the
keyboard, promotion from machine sets, and descriptions (docs/tags.md#tag-sets-and-provenance).

Every write goes through a tags service; the answer is the re-rendered editor (htmx) or a 303
back to the item (plain form posts). A stale curated set answers 409 with its current state.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.exceptions import ConflictError, DomainError, NotFoundError
from apps.core.htmx import redirect_after_post, render_page
from apps.media import selectors as media_selectors
from apps.tags import selectors, slots
from apps.tags.forms import DescriptionForm, PromoteForm, TagEditForm
from apps.tags.models import Description, TagAssignment, TagSet
from apps.tags.selectors.autocomplete import tag_autocomplete
from apps.tags.services import descriptions as description_services
from apps.tags.services import (
    tag_set_curated_add,
    tag_set_edit,
    tag_set_promote,
    vocabulary_default,
)

PAGE = "tags/item_tags.html"
SETS = "tags/partials/_editor_sets.html"
DESCRIPTIONS = "tags/partials/_descriptions.html"
DESCRIPTION_ITEM = "tags/partials/_description_item.html"
DESCRIPTION_FORM = "tags/partials/_description_form.html"
SUGGESTIONS = "tags/partials/_editor_suggestions.html"
SUGGEST_LIMIT = 8
EDIT_PERM = "tags.change_tagset"
NEW_DESCRIPTION_ID = "desc-new-%s"
STALE = "This tag set changed since you loaded it — reloaded with its current tags."

# --- helpers ----------------------------------------------------------------------------------------


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", None))


def _state(item: Any) -> selectors.EditorState:
    """The editor's data with an empty "add a description" form."""
    state = selectors.editor_state(item)
    state.description_form = DescriptionForm(auto_id=NEW_DESCRIPTION_ID)
    return state


def item_panel(request: HttpRequest, item: Any) -> str:
    """The tag editor as a section of media's item page (registered in TagsConfig.ready)."""
    return render_to_string(
        "tags/partials/_editor.html", {"editor": _state(item), "item": item}, request=request
    )


def _editor(request: HttpRequest, item: Any, *, status: int = 200, **extra: Any) -> HttpResponse:
    """The editor (htmx) or its standalone page, freshly read, with a message or an announcement."""
    return render_page(request, PAGE, SETS, {"editor": _state(item), "item": item, **extra}, status=status)


def _done(request: HttpRequest, item: Any, **extra: Any) -> HttpResponse:
    if not _htmx(request):
        return redirect_after_post(request, item.get_absolute_url() + "#tag-editor")
    return _editor(request, item, **extra)


def _names(values: list[str]) -> str:
    shown = ", ".join(values[:12])
    return shown + (f" and {len(values) - 12} more" if len(values) > 12 else "")


# --- tag views ---------------------------------------------------------------------------------------


@login_required
@require_GET
def editor(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor alone: a page of its own, or the fresh partial for htmx."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    return _editor(request, item)


@login_required
@require_GET
def suggest(request: HttpRequest, pk: int) -> HttpResponse:
    """Autocomplete options for what is being typed (`q`, or the input's own `name`)."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    q = (request.GET.get("q") or request.GET.get("name") or "").split(",")[-1].strip()
    suggestions = tag_autocomplete(q=q, vocabulary=vocabulary_default(), limit=SUGGEST_LIMIT) if q else []
    present: set[str] = set()
    if suggestions:
        present = set(
            TagAssignment.objects.filter(
                media_item=item, kind=TagSet.Kind.CURATED, state=TagAssignment.State.CURRENT
            ).values_list("tag__name", flat=True)
        )
    return render_page(
        request, SUGGESTIONS, SUGGESTIONS, {"suggestions": suggestions, "present": present, "q": q}
    )


@login_required
@require_POST
def tag_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add typed tags to the curated set (created on first edit), checking row_version."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, EDIT_PERM)
    form = TagEditForm(request.POST)
    typed = request.POST.get("name", "")[:4000]
    if not form.is_valid():
        message = " ".join(str(e) for e in form.errors.get("name", [])) or "Check the tag."
        return _editor(request, item, status=422, error=message, typed=typed)
    names = form.names()
    try:
        tag_set, operation = tag_set_curated_add(
            media_item=item,
            names=names,
            actor=request.user,
            expected_version=form.cleaned_data["row_version"],
        )
    except ConflictError as err:
        if err.code != "tags.stale_version":
            return _editor(request, item, status=422, error=err.message, typed=typed)
        return _editor(request, item, status=409, error=f"{STALE} Not added: {_names(names)}.", typed=typed)
    except DomainError as err:
        return _editor(request, item, status=422, error=err.message, typed=typed)
    added = list(
        TagAssignment.objects.filter(tagset=tag_set, operation=operation)
        .select_related("tag")
        .order_by("position")
    )
    if not added:
        announce = f"Already curated: {_names(names)}."
    else:
        said = [
            f"{row.tag.name} (typed {row.entered_tag})"
            if row.entered_tag and row.entered_tag != row.tag.name
            else row.tag.name
            for row in added
        ]
        announce = f"Added {_names(said)}."
    return _done(request, item, announce=announce, focus="input")


@login_required
@require_POST
def tag_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove one tag from the curated set (a tombstone: promote will not bring it back)."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, EDIT_PERM)
    form = TagEditForm(request.POST)
    if not form.is_valid():
        return _editor(request, item, status=422, error="Choose a tag to remove.")
    names = form.names()
    version = form.cleaned_data["row_version"]
    tag_set = TagSet.objects.filter(
        media_item=item, kind=TagSet.Kind.CURATED, vocabulary=vocabulary_default(), slot=slots.CURATED
    ).first()
    if tag_set is None:
        return _editor(request, item, status=422, error="This item has no curated tags to remove yet.")
    if version is None:  # without the version the page was loaded at, staleness cannot be told
        return _editor(request, item, status=409, error=f"{STALE} Not removed: {_names(names)}.")
    try:
        tag_set_edit(tag_set=tag_set, remove=names, actor=request.user, expected_version=version)
    except ConflictError as err:
        status = 409 if err.code == "tags.stale_version" else 422
        message = f"{STALE} Not removed: {_names(names)}." if status == 409 else err.message
        return _editor(request, item, status=status, error=message)
    except DomainError as err:
        return _editor(request, item, status=422, error=err.message)
    return _done(request, item, announce=f"Removed {_names(names)}.")


@login_required
@require_POST
def tag_promote(request: HttpRequest, pk: int) -> HttpResponse:
    """Copy one tag, or every tag at or above a confidence, from a machine set into the curated set."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, EDIT_PERM)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        return _editor(request, item, status=422, error="Choose a tag set and a threshold from 0 to 100 %.")
    data = form.cleaned_data
    source = TagSet.objects.filter(pk=data["set"], media_item=item).select_related("media_item").first()
    if source is None or source.kind == TagSet.Kind.CURATED:
        return _editor(
            request, item, status=422, error="Promote copies from a source, tagger or derived set."
        )
    name = (data.get("name") or "").strip()
    minimum = 0 if name or data.get("min_percent") is None else round(data["min_percent"] * 100)
    try:
        result = tag_set_promote(
            source_set=source, names=[name] if name else None, min_confidence=minimum, actor=request.user
        )
    except DomainError as err:
        return _editor(request, item, status=422, error=err.message)
    added, blocked = result["added"], result["blocked_by_tombstone"]
    notice = ""
    if blocked:
        them = "it" if len(blocked) == 1 else "them"
        notice = (
            f"Not promoted: {_names(blocked)}. You removed {them} from the curated set before; "
            f"add {them} by hand to restore {them}."
        )
    if added:
        announce = f"Promoted {_names(added)}."
    elif blocked:
        announce = notice
    else:
        announce = "Nothing to promote: " + ("it is" if name else "those tags are") + " curated already."
    return _done(request, item, announce=announce, notice=notice)


# --- descriptions ----------------------------------------------------------------------------------


def _description(item: Any, description_id: int) -> Description:
    description = (
        Description.objects.filter(pk=description_id, media_item=item).select_related("actor").first()
    )
    if description is None:
        raise NotFoundError(f"Description {description_id} not found.", code="tags.description_not_found")
    return description


def _descriptions(
    request: HttpRequest, item: Any, *, status: int = 200, form: DescriptionForm | None = None, **extra: Any
) -> HttpResponse:
    state = _state(item)
    if form is not None:
        state.description_form = form
    return render_page(request, PAGE, DESCRIPTIONS, {"editor": state, "item": item, **extra}, status=status)


@login_required
@require_POST
def description_add(request: HttpRequest, pk: int) -> HttpResponse:
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, "tags.add_description")
    form = DescriptionForm(request.POST, auto_id=NEW_DESCRIPTION_ID)
    if form.is_valid():
        data = form.cleaned_data
        try:
            description_services.description_create(
                media_item=item, text=data["text"], kind=data["kind"], label=data["label"], actor=request.user
            )
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            if not _htmx(request):
                return redirect_after_post(request, item.get_absolute_url() + "#descriptions")
            label = data["label"] if data["kind"] == Description.Kind.CUSTOM else data["kind"]
            return _descriptions(request, item, announce=f"Added a {label} description.")
    return _descriptions(request, item, status=422, form=form)


def _description_answer(
    request: HttpRequest, item: Any, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """One description's fragment for htmx; without it, the whole editor page with that
    description open for editing (or shown)."""
    if _htmx(request):
        return render(request, template, {"item": item, **context}, status=status)
    editing = context["d"].pk if template == DESCRIPTION_FORM else None
    page = {"editor": _state(item), "item": item, "editing": editing, **context}
    return render(request, PAGE, page, status=status)


def _stored(description: Description) -> DescriptionForm:
    return DescriptionForm(
        auto_id=f"desc-{description.pk}-%s",
        initial={
            "kind": description.kind,
            "label": description.label,
            "text": description.text,
            "row_version": description.row_version,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def description_edit(request: HttpRequest, pk: int, description_id: int) -> HttpResponse:
    """GET: the inline edit form; POST: save it (a stale row_version shows the stored text)."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, "tags.change_description")
    description = _description(item, description_id)
    if request.method == "GET":
        return _description_answer(
            request, item, DESCRIPTION_FORM, {"d": description, "form": _stored(description)}
        )
    form = DescriptionForm(request.POST, auto_id=f"desc-{description.pk}-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            updated = description_services.description_update(
                description=description,
                text=data["text"],
                kind=data["kind"],
                label=data["label"],
                expected_version=data["row_version"],
                actor=request.user,
            )
        except ConflictError as err:
            description = _description(item, description_id)
            context = {
                "d": description,
                "form": _stored(description),
                "conflict": f"{err.message} The stored text is shown; yours is below.",
                "yours": data["text"],
            }
            return _description_answer(request, item, DESCRIPTION_FORM, context, status=422)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            if not _htmx(request):
                return redirect_after_post(request, item.get_absolute_url() + "#descriptions")
            context = {"d": updated, "announce": "Description saved."}
            return _description_answer(request, item, DESCRIPTION_ITEM, context)
    return _description_answer(request, item, DESCRIPTION_FORM, {"d": description, "form": form}, status=422)


@login_required
@require_GET
def description_show(request: HttpRequest, pk: int, description_id: int) -> HttpResponse:
    """One description as text (cancels an inline edit)."""
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    return _description_answer(request, item, DESCRIPTION_ITEM, {"d": _description(item, description_id)})


@login_required
@require_POST
def description_delete(request: HttpRequest, pk: int, description_id: int) -> HttpResponse:
    item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
    _require(request, "tags.delete_description")
    description_services.description_delete(description=_description(item, description_id))
    if not _htmx(request):
        return redirect_after_post(request, item.get_absolute_url() + "#descriptions")
    return _descriptions(request, item, announce="Description deleted.")
