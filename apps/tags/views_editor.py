"""The tag editor on the item page: every tag set side by side, the curated set editable from the
keyboard, promotion from machine sets, and descriptions (TAGS-AND-SEARCH.md §2.7–2.9).

Every write goes through a tags service; the answer is the re-rendered editor (htmx) or a 303
back to the item (plain form posts). A stale curated set answers 409 with its current state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.exceptions import ConflictError, DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.media import selectors as media_selectors
from apps.tags import selectors
from apps.tags.models import Description, EffectiveTag, TagAssignment, TagSet
from apps.tags.services import descriptions as description_services
from apps.tags.services import (
    tag_set_curated_add,
    tag_set_edit,
    tag_set_promote,
    vocabulary_default,
)
from apps.tags.services.names import tag_autocomplete

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

_VIA: dict[str, str] = {
    TagAssignment.Via.MANUAL: "added by hand",
    TagAssignment.Via.IMPORT: "imported",
    TagAssignment.Via.TAGGER: "predicted by the tagger",
    TagAssignment.Via.PROMOTE: "promoted",
    TagAssignment.Via.BULK: "bulk edit",
    TagAssignment.Via.MAPPING: "mapped",
    TagAssignment.Via.INHERIT: "inherited",
}


# --- what the editor shows --------------------------------------------------------------------


@dataclass
class Chip:
    """One tag as shown: coloured by type, with how it arrived as a tooltip."""

    name: str
    type_name: str
    color: str
    tip: str
    percent: int | None = None  # tagger confidence, floored (34.5 % shows as 34, below 35)
    confidence: int | None = None  # 1/10000
    below: bool = False  # under the promote threshold
    in_curated: bool = False
    blocked: bool = False  # removed from the curated set by a person: promote skips it
    implied: bool = False


@dataclass
class Panel:
    """One tag set's column."""

    tag_set: TagSet
    title: str
    detail: str = ""
    link_item_id: int | None = None
    chips: list[Chip] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.tag_set.get_kind_display()

    @property
    def promotable(self) -> int:
        """How many chips promote would add (not yet curated, not tombstoned, above threshold)."""
        return sum(1 for c in self.chips if not (c.in_curated or c.blocked or c.below))


@dataclass
class EditorState:
    """Everything the editor partial renders for one item."""

    item: Any
    curated: Panel | None
    others: list[Panel]
    effective: list[Chip]
    removed: list[Chip]
    descriptions: list[Description]
    threshold: int  # percent
    description_form: Any = None  # the "add a description" form, bound after a refused add

    @property
    def curated_version(self) -> int:
        """The form's row_version: 0 while the item has no curated set yet."""
        return self.curated.tag_set.row_version if self.curated else 0


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _set_label(tag_set: TagSet) -> str:
    if tag_set.kind == TagSet.Kind.TAGGER:
        return f"tagger {tag_set.tagger_model or tag_set.slot}"
    if tag_set.origin_label:
        return f"{tag_set.get_kind_display()} set “{tag_set.origin_label}”"
    return f"{tag_set.get_kind_display()} set"


def _tip(row: TagAssignment, sets: dict[int, TagSet]) -> str:
    """How an assignment arrived: type, via, who, when, confidence, entered name, origin set."""
    how = _VIA.get(row.added_via, row.added_via)
    actor = row.actor.get_username() if row.actor_id and row.actor else ""
    lines = [row.tag.type.name, f"{how}{f' by {actor}' if actor else ''} · {_when(row.updated_at)}"]
    if row.confidence is not None:
        lines.append(f"confidence {row.confidence / 100:.1f} %")
    if row.entered_tag and row.entered_tag != row.tag.name:
        if row.kind == TagSet.Kind.CURATED:
            lines.append(f"entered as “{row.entered_tag}” (alias of {row.tag.name})")
        else:
            lines.append(f"received as “{row.entered_tag}”")
    if row.origin_set_id:
        origin = sets.get(row.origin_set_id)
        lines.append(f"from the {_set_label(origin)}" if origin else f"from tag set #{row.origin_set_id}")
    return "\n".join(lines)


def _chip(row: TagAssignment, sets: dict[int, TagSet]) -> Chip:
    return Chip(
        name=row.tag.name,
        type_name=row.tag.type.name,
        color=row.tag.type.color,
        tip=_tip(row, sets),
        confidence=row.confidence,
        percent=None if row.confidence is None else math.floor(row.confidence / 100),
    )


def _panel(tag_set: TagSet) -> Panel:
    """Title and origin line of a set's column."""
    if tag_set.kind == TagSet.Kind.CURATED:
        return Panel(tag_set, "Curated", "Yours: search and export read this set.")
    if tag_set.kind == TagSet.Kind.TAGGER:
        version = f" v{tag_set.tagger_version}" if tag_set.tagger_version else ""
        return Panel(
            tag_set,
            f"Tagger · {tag_set.tagger_model or tag_set.slot}{version}",
            f"stored from {tag_set.stored_threshold / 100:g} % confidence",
        )
    if tag_set.kind == TagSet.Kind.SOURCE:
        parts = []
        origin = tag_set.origin
        if origin is not None:
            parts.append(origin.get_kind_display())
            name = origin.archive_member or origin.original_filename or origin.url
            if name:
                parts.append(name)
            parts.append(_when(origin.created_at))
        return Panel(
            tag_set,
            f"Source · from {tag_set.origin_label}" if tag_set.origin_label else "Source",
            "file: " + " · ".join(parts) if parts else "",
        )
    prefix, _, ref = tag_set.slot.partition(":")
    link = int(ref) if prefix in ("video", "parent") and ref.isdigit() else None
    return Panel(tag_set, "Derived", tag_set.origin_label or tag_set.slot, link_item_id=link)


def editor_state(item: Any) -> EditorState:
    """Read everything the editor shows for `item` (a fixed number of queries, whatever the size)."""
    tag_sets = list(selectors.tag_set_list_for_item(media_item=item))
    rows = [row for tag_set in tag_sets for row in tag_set.current_assignments]  # type: ignore[attr-defined]
    prefetch_related_objects(
        rows, Prefetch("actor", queryset=get_user_model().objects.only("id", "username"))
    )
    by_id = {tag_set.pk: tag_set for tag_set in tag_sets}
    vocabulary = vocabulary_default()
    curated_set = next(
        (s for s in tag_sets if s.kind == TagSet.Kind.CURATED and s.vocabulary_id == vocabulary.pk), None
    )
    threshold = vocabulary.default_tagger_threshold
    curated_ids: set[int] = set()
    removed: list[Chip] = []
    tombstoned: set[int] = set()
    if curated_set is not None:
        curated_ids = {row.tag_id for row in curated_set.current_assignments}  # type: ignore[attr-defined]
        gone = (
            TagAssignment.objects.filter(tagset=curated_set, state=TagAssignment.State.DELETED)
            .select_related("tag__type", "actor")
            .order_by("-updated_at")
        )
        for row in gone:
            tombstoned.add(row.tag_id)
            chip = _chip(row, by_id)
            chip.tip = f"{row.tag.type.name}\nremoved{f' by {row.actor}' if row.actor_id else ''}"
            chip.tip += f" · {_when(row.updated_at)}"
            removed.append(chip)
    curated: Panel | None = None
    others: list[Panel] = []
    for tag_set in tag_sets:
        panel = _panel(tag_set)
        assignments = list(tag_set.current_assignments)  # type: ignore[attr-defined]
        if tag_set.kind == TagSet.Kind.TAGGER:
            assignments.sort(key=lambda r: (-(r.confidence or 0), r.tag.name))
        for row in assignments:
            chip = _chip(row, by_id)
            if tag_set is not curated_set:
                chip.in_curated = row.tag_id in curated_ids
                chip.blocked = row.tag_id in tombstoned
                chip.below = row.confidence is not None and row.confidence < threshold
            panel.chips.append(chip)
        if tag_set is curated_set:
            curated = panel
        else:
            others.append(panel)
    effective = [
        Chip(
            name=row.tag.name,
            type_name=row.tag.type.name,
            color=row.tag.type.color,
            implied=row.is_implied,
            tip=f"{row.tag.type.name}\n"
            + ("implied by a rule" if row.is_implied else "from the tag sets")
            + f"\non {row.tag.media_count} item{'s' if row.tag.media_count != 1 else ''}",
        )
        for row in EffectiveTag.objects.filter(media_item=item)
        .select_related("tag__type")
        .order_by("tag__type__display_order", "tag__name")
    ]
    return EditorState(
        item=item,
        curated=curated,
        others=others,
        effective=effective,
        removed=removed,
        descriptions=list(Description.objects.filter(media_item=item).select_related("actor").order_by("id")),
        threshold=math.ceil(threshold / 100),
        description_form=DescriptionForm(auto_id=NEW_DESCRIPTION_ID),
    )


# --- forms ----------------------------------------------------------------------------------------


class TagEditForm(forms.Form):
    name = forms.CharField(max_length=4000, strip=True, error_messages={"required": "Type a tag first."})
    row_version = forms.IntegerField(min_value=0, required=False)

    def names(self) -> list[str]:
        """Several tags may be pasted at once, separated by commas (never part of a name)."""
        return [part for part in self.cleaned_data["name"].split(",") if part.strip()]


class PromoteForm(forms.Form):
    set = forms.IntegerField(min_value=1)
    name = forms.CharField(max_length=200, required=False)
    min_percent = forms.FloatField(min_value=0, max_value=100, required=False)


class DescriptionForm(forms.Form):
    kind = forms.ChoiceField(choices=Description.Kind.choices, initial=Description.Kind.WHOLE)
    label = forms.CharField(max_length=100, required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    row_version = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)


# --- helpers ----------------------------------------------------------------------------------------


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", None))


def _editor(request: HttpRequest, item: Any, *, status: int = 200, **extra: Any) -> HttpResponse:
    """The editor (htmx) or its standalone page, freshly read, with a message or an announcement."""
    return render_page(
        request, PAGE, SETS, {"editor": editor_state(item), "item": item, **extra}, status=status
    )


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
        media_item=item, kind=TagSet.Kind.CURATED, vocabulary=vocabulary_default(), slot=""
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
        from apps.core.exceptions import NotFoundError

        raise NotFoundError(f"Description {description_id} not found.", code="tags.description_not_found")
    return description


def _descriptions(
    request: HttpRequest, item: Any, *, status: int = 200, form: DescriptionForm | None = None, **extra: Any
) -> HttpResponse:
    state = editor_state(item)
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
    page = {"editor": editor_state(item), "item": item, "editing": editing, **context}
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
