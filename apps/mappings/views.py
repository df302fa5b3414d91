"""Mapping pages under /mappings/ (namespace `mappings`, docs/mappings.md#pages): sets and their
rules, profiles with a live preview, apply and undo, and the keyboard suggestions review list.
Views parse input, call one service or selector and render (htmx swaps the partials)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.ints import int_param
from apps.mappings import selectors
from apps.mappings.models import MappingProfile, TagMapping
from apps.mappings.services import apply, io, preview, profiles, rules, suggestions
from apps.mappings.services.io import FORMATS
from apps.tags.models import Operation
from apps.tags.services.operations import operation_can_undo

SET_WRITE = "mappings.change_mappingset"
UNMAPPED = "unmapped"  # the rules page's filter for source tags without a rule
PROFILE_WRITE = "mappings.change_mappingprofile"


def _need(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


class SetForm(forms.Form):
    slug = forms.SlugField(max_length=64)
    source_vocabulary = forms.CharField(max_length=64, initial="default")
    target_vocabulary = forms.CharField(max_length=64)


class RuleForm(forms.Form):
    source = forms.CharField(max_length=200)
    targets = forms.CharField(max_length=2000, required=False, help_text="comma-separated")
    action = forms.ChoiceField(choices=TagMapping.Action.choices, initial="map")
    requires = forms.CharField(max_length=200, required=False)
    unless = forms.CharField(max_length=200, required=False)
    priority = forms.IntegerField(min_value=-32768, max_value=32767, initial=0)
    create_targets = forms.BooleanField(required=False, label="Create missing targets")


class ImportForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}))
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS])
    replace = forms.BooleanField(required=False, label="Replace all rules")
    create_targets = forms.BooleanField(required=False, label="Create missing targets")


class ProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    steps = forms.CharField(max_length=2000, help_text="mapping set slugs, comma-separated, in order")
    drop_types = forms.CharField(max_length=500, required=False, help_text="type keys, comma-separated")
    type_order = forms.CharField(max_length=500, required=False, help_text="type keys, comma-separated")

    class Meta:
        model = MappingProfile
        fields = [
            "input_scope",
            "min_confidence",
            "unmapped_policy",
            "implication_policy",
            "prefix_text",
            "separator",
            "underscore_to_space",
            "escape_parentheses",
            "max_tags",
        ]


class ProfileCreateForm(forms.Form):
    slug = forms.SlugField(max_length=64)
    target_vocabulary = forms.CharField(max_length=64)
    steps = forms.CharField(max_length=2000, help_text="mapping set slugs, comma-separated, in order")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Mapping sets and profiles, with a form for a new set."""
    form = SetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _need(request, "mappings.add_mappingset")
        try:
            created = rules.mapping_set_create(**form.cleaned_data)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, f"/mappings/sets/{created.pk}/")
    return _home(request, form, ProfileCreateForm())


def _home(request: HttpRequest, form: forms.Form, profile_form: forms.Form) -> HttpResponse:
    context = {
        "sets": selectors.mapping_set_list()[:200],
        "profiles": selectors.profile_list()[:200],
        "form": form,
        "profile_form": profile_form,
    }
    failed = bool(form.errors or profile_form.errors)
    return render_page(request, "mappings/home.html", None, context, status=422 if failed else 200)


@login_required
@require_POST
def profile_create(request: HttpRequest) -> HttpResponse:
    _need(request, "mappings.add_mappingprofile")
    form = ProfileCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = profiles.profile_create(
                slug=data["slug"], target_vocabulary=data["target_vocabulary"], steps=_split(data["steps"])
            )
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, f"/mappings/profiles/{created.pk}/")
    return _home(request, SetForm(), form)


def _set_context(request: HttpRequest, pk: int, **extra: Any) -> dict[str, Any]:
    mapping_set = selectors.mapping_set_get(ref=pk)
    action = request.GET.get("action", "")
    guarded = {"yes": True, "no": False}.get(request.GET.get("guarded", ""))
    after = int_param(request.GET.get("after"), field="after", default=0)
    unmapped = None
    if action == UNMAPPED:  # source tags in use that no rule of the set decides
        page: list[dict[str, Any]] = []
        unmapped = selectors.unmapped_in_set(mapping_set=mapping_set, tag=request.GET.get("tag", ""))
    else:
        page = selectors.rules_page(
            mapping_set=mapping_set,
            after=after,
            limit=200,
            action=action if action in TagMapping.Action.values else "",
            guarded=guarded,
            tag=request.GET.get("tag", ""),
        )
    return {
        "set": mapping_set,
        "rules": page,
        "unmapped": unmapped,
        "filters": {
            "action": action,
            "guarded": request.GET.get("guarded", ""),
            "tag": request.GET.get("tag", ""),
        },
        "rule_form": extra.pop("rule_form", None)
        or RuleForm(initial={"source": request.GET.get("source", "")}),
        "import_form": extra.pop("import_form", None) or ImportForm(),
        **extra,
    }


@login_required
def set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A set's rules (filters: action, guarded, source prefix; or the source tags in use that
    have no rule: `action=unmapped`), add/edit, remove, import, export."""
    return render_page(
        request, "mappings/set.html", "mappings/partials/_rules.html", _set_context(request, pk)
    )


@login_required
@require_POST
def rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a rule, or replace the rule with the same source and guards (inline edit)."""
    _need(request, SET_WRITE)
    form = RuleForm(request.POST)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        rule = rules.RuleInput(
            source=data["source"],
            targets=_split(data["targets"]),
            action=data["action"],
            requires=data["requires"],
            unless=data["unless"],
            priority=data["priority"],
            line=1,
        )
        try:
            rules.mapping_rules_append(
                mapping_set=selectors.mapping_set_get(ref=pk),
                rules=[rule],
                create_targets=data["create_targets"],
            )
            form = RuleForm()
        except DomainError as err:
            form.add_error(None, err.message)
    if form.errors:
        status = 422
    context = _set_context(request, pk, rule_form=form)
    return render_page(request, "mappings/set.html", "mappings/partials/_rules.html", context, status=status)


@login_required
@require_POST
def rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, SET_WRITE)
    rule = rules.RuleInput(
        source=request.POST.get("source", ""),
        requires=request.POST.get("requires", ""),
        unless=request.POST.get("unless", ""),
        line=1,
    )
    error = None
    try:
        rules.mapping_rules_remove(mapping_set=selectors.mapping_set_get(ref=pk), rules=[rule])
    except DomainError as err:
        error = err
    context = _set_context(request, pk, error=error)
    return render_page(
        request, "mappings/set.html", "mappings/partials/_rules.html", context, status=400 if error else 200
    )


@login_required
@require_POST
def set_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Import CSV or a kohya string; every bad line is listed and nothing is saved."""
    _need(request, SET_WRITE)
    form = ImportForm(request.POST)
    result, errors = None, []
    if form.is_valid():
        try:
            result = io.mapping_set_import(
                mapping_set=selectors.mapping_set_get(ref=pk),
                data=form.cleaned_data["text"],
                **{k: form.cleaned_data[k] for k in ("format", "replace", "create_targets")},
            )
        except DomainError as err:
            form.add_error(None, err.message)
            errors = err.details.get("errors", [])
    context = _set_context(request, pk, import_form=form, import_result=result, import_errors=errors)
    status = 422 if form.errors else 200
    return render_page(request, "mappings/set.html", "mappings/partials/_rules.html", context, status=status)


@login_required
def set_export(request: HttpRequest, pk: int) -> HttpResponse:
    mapping_set = selectors.mapping_set_get(ref=pk)
    fmt = request.GET.get("format", "csv")
    body = io.mapping_set_export(mapping_set=mapping_set, format=fmt)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8" if fmt == "csv" else "text/plain")
    response["Content-Disposition"] = (
        f'attachment; filename="{mapping_set.slug}.{"csv" if fmt == "csv" else "txt"}"'
    )
    return response


def _profile_context(profile: MappingProfile, **extra: Any) -> dict[str, Any]:
    form = extra.pop("form", None) or ProfileForm(
        instance=profile,
        initial={
            "steps": ", ".join(s.slug for s in selectors.profile_sets(profile)),
            "drop_types": ", ".join(profile.drop_types),
            "type_order": ", ".join(profile.type_order),
        },
    )
    operations = list(selectors.mapping_operations(profile=profile))
    return {
        "profile": profile,
        "form": form,
        "operations": operations,
        "undoable": _undoable(operations),
        **extra,
    }


def _undoable(operations: list[Operation]) -> set[int]:
    return {o.pk for o in operations if operation_can_undo(o)}


@login_required
def profile_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The profile editor, the live preview panel, apply and the apply history with undo."""
    profile = selectors.profile_get(ref=pk)
    return render_page(request, "mappings/profile.html", None, _profile_context(profile))


@login_required
@require_POST
def profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, PROFILE_WRITE)
    profile = selectors.profile_get(ref=pk)
    form = ProfileForm(request.POST, instance=selectors.profile_get(ref=pk))
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k not in ("steps", "drop_types", "type_order")}
        try:
            profile = profiles.profile_update(
                profile=profile,
                steps=_split(form.cleaned_data["steps"]),
                drop_types=_split(form.cleaned_data["drop_types"]),
                type_order=_split(form.cleaned_data["type_order"]),
                **data,
            )
            return redirect_after_post(request, f"/mappings/profiles/{profile.pk}/")
        except DomainError as err:
            form.add_error(None, err.message)
    profile.refresh_from_db()
    return render_page(
        request, "mappings/profile.html", None, _profile_context(profile, form=form), status=422
    )


def _ids(request: HttpRequest) -> list[int]:
    """The comma-separated item ids of the form; anything else is a DomainError naming `ids`."""
    return [int_param(i, field="ids", minimum=1, default=0) for i in _split(request.POST.get("ids", ""))]


PREVIEW_PANEL = "mappings/partials/_preview.html"
APPLIED_PANEL = "mappings/partials/_applied.html"


def _panel(
    request: HttpRequest, profile: MappingProfile, panel: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The panel alone for htmx; without JS the whole profile page with the panel filled in."""
    htmx = getattr(request, "htmx", None)
    if not (htmx and not htmx.boosted):
        context = _profile_context(profile, panel=panel, **context)
    return render_page(
        request, "mappings/profile.html", panel, {"profile": profile, **context}, status=status
    )


@login_required
@require_POST
def profile_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The live preview panel: sampled items with traces and captions, aggregates."""
    profile = selectors.profile_get(ref=pk)
    try:
        body = preview.mapping_preview(
            profile=profile, q=request.POST.get("q", ""), ids=_ids(request), sample=20, actor=request.user
        )
    except DomainError as err:
        return _panel(request, profile, PREVIEW_PANEL, {"error": err}, status=422)
    sets = selectors.profile_sets(profile)
    return _panel(request, profile, PREVIEW_PANEL, {"preview": body, "first_set": sets[0] if sets else None})


@login_required
@require_POST
def profile_apply(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, PROFILE_WRITE)
    profile = selectors.profile_get(ref=pk)
    try:
        outcome = apply.mapping_apply(
            profile=profile, q=request.POST.get("q", ""), ids=_ids(request), actor=request.user
        )
    except DomainError as err:
        return _panel(request, profile, APPLIED_PANEL, {"error": err}, status=422)
    return _panel(request, profile, APPLIED_PANEL, {"operation": outcome.operation, "job": outcome.job})


@login_required
@require_POST
def profile_undo(request: HttpRequest, pk: int, operation_id: int) -> HttpResponse:
    _need(request, PROFILE_WRITE)
    profile = selectors.profile_get(ref=pk)
    operation = selectors.mapping_operation_get(profile=profile, operation_id=operation_id)
    try:
        undone = apply.mapping_undo(operation=operation, actor=request.user)
    except DomainError as err:
        return _panel(request, profile, APPLIED_PANEL, {"error": err}, status=409)
    return _panel(request, profile, APPLIED_PANEL, {"operation": undone})


@login_required
def suggestion_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The review list: j/k move, a accepts the chosen candidate, e edits it, r rejects it."""
    profile = selectors.profile_get(ref=pk)
    found = suggestions.mapping_suggestions(profile=profile, limit=50)
    return render_page(request, "mappings/suggestions.html", None, {"profile": profile, "suggestions": found})


@login_required
@require_POST
def suggestion_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept (with the chosen or edited target) or reject one suggestion; the row is replaced."""
    _need(request, SET_WRITE)
    profile = selectors.profile_get(ref=pk)
    source = request.POST.get("source", "")
    target = request.POST.get("target", "").strip()
    verb = request.POST.get("verb", "")
    context: dict[str, Any] = {"profile": profile, "source": source, "target": target, "verb": verb}
    try:
        if verb == "accept":
            suggestions.suggestion_accept(profile=profile, source=source, targets=_split(target))
        elif verb == "reject":
            suggestions.suggestion_reject(
                profile=profile,
                source_id=int_param(request.POST.get("source_id"), field="source_id", minimum=1, default=0),
                target_id=int_param(request.POST.get("target_id"), field="target_id", minimum=1, default=0),
            )
        else:
            raise DomainError("verb must be accept or reject.", code="mappings.unknown_verb")
    except DomainError as err:
        context["error"] = err
        return render_page(
            request, "mappings/suggestions.html", "mappings/partials/_decided.html", context, status=422
        )
    return render_page(request, "mappings/suggestions.html", "mappings/partials/_decided.html", context)
