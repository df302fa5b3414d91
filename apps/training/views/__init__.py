"""Training pages (docs/training.md#pages): sessions and their editor with the live caption
preview. Exports, lint and fidelity are in `exports.py`, Textual Inversion sets in `ti.py`,
base-model profiles in `base_models.py`. Each view parses a form, calls one service or selector
and renders; service errors land beside the fields they name and nothing is saved."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.tags.models import TagType
from apps.training import selectors
from apps.training.forms import (
    BaseDatasetFormSet,
    DatasetEntryForm,
    DatasetFormSet,
    PolicyFormSet,
    SessionForm,
    place_error,
    policy_initial,
)
from apps.training.models import BaseModelProfile, TrainingSession
from apps.training.services import preview, sessions
from apps.training.services.checks import default_policy

ADD = "training.add_trainingsession"
CHANGE = "training.change_trainingsession"
PREVIEW_ITEMS = 6
MAX_ROWS = 50
RENDERER_LABELS = {
    "kohya": "kohya .caption",
    "neutral": "neutral .txt (OneTrainer)",
    "diffusers": "diffusers text",
    "ti_kohya": "TI (kohya)",
    "ti_onetrainer": "TI (OneTrainer)",
    "ti_a1111": "TI (AUTOMATIC1111)",
}


def _edit_url(session: TrainingSession) -> str:
    return reverse("training:session-edit", args=[session.pk])


@login_required
@require_safe
def session_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    rows = list(selectors.session_list(search=q)[:200])
    return render_page(request, "training/session_list.html", None, {"sessions": rows, "q": q})


# --- the editor ---------------------------------------------------------------------------------


def _default_base() -> BaseModelProfile | None:
    """The first profile (the seeded SD 1.5 one on a fresh install)."""
    return selectors.base_model_list().filter(kind=BaseModelProfile.Kind.CHECKPOINT).order_by("pk").first()


def _new_initial(base: BaseModelProfile | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Form defaults of a new session: the model's defaults, its trainers, one policy per type."""
    fields = {
        f.name: f.default
        for f in TrainingSession._meta.concrete_fields
        if f.has_default() and not callable(f.default)
    }
    initial = {name: fields.get(name) for name in SessionForm.base_fields if name in fields}
    initial.update({"name": "", "slug": "", "target_root": "", "underscores_to_spaces": "", "max_tokens": ""})
    initial["resolution"] = initial["bucket_min"] = initial["bucket_max"] = initial["bucket_step"] = None
    policies = []
    if base is not None:
        initial["base_model"] = base.pk
        initial["targets"] = [t for t in ("kohya", "onetrainer", "diffusers") if t in base.supported_trainers]
        initial["mapping_profile"] = base.mapping_profile_id
        for tag_type in TagType.objects.order_by("pk"):
            policies.append({"tag_type": tag_type.key, **default_policy(tag_type, base)})
    policies.sort(key=lambda p: (p["zone_order"], p["tag_type"]))
    return initial, policies


class _Editor:
    """The editor's three forms, bound to POST data or filled from the session."""

    def __init__(self, request: HttpRequest, session: TrainingSession | None, data: Any = None) -> None:
        if data is None and request.method == "POST":
            data = request.POST
        if session is not None:
            detail = selectors.session_detail(session=session)
            weights = {w.name: w.weight for w in detail["description_weights"]}
            initial = SessionForm.initial_from(session, weights)
            policies = policy_initial(detail["type_policies"])
            entries = [DatasetEntryForm.initial_from(e) for e in detail["datasets"]]
        else:
            initial, policies = _new_initial(_default_base())
            entries = []
        self.form = SessionForm(data, initial=initial)
        self.datasets = cast(BaseDatasetFormSet, DatasetFormSet(data, initial=entries, prefix="ds"))
        self.policies = PolicyFormSet(data, initial=policies, prefix="pol")
        self.session = session

    def valid(self) -> bool:
        return all([self.form.is_valid(), self.datasets.is_valid(), self.policies.is_valid()])

    def values(self) -> dict[str, Any]:
        values = self.form.values()
        values["datasets"] = [value for _form, value in self.datasets.entries()]
        changed = [f for f in self.policies.forms if f.has_changed()]
        values["type_policies"] = {f.cleaned_data["tag_type"]: f.value() for f in changed} or None
        return values

    def save(self, actor: Any) -> TrainingSession:
        values = self.values()
        if self.session is None:
            return sessions.session_create(actor=actor, **values)
        return sessions.session_update(session=self.session, actor=actor, **values)

    def fail(self, err: DomainError) -> None:
        place_error(err, self.form, [f for f, _v in self.datasets.entries()], self.policies)

    def context(self) -> dict[str, Any]:
        types = {t.key: t for t in TagType.objects.all()}
        rows = [(f, types.get(str(f["tag_type"].value()))) for f in self.policies.forms]
        return {
            "form": self.form,
            "datasets": self.datasets,
            "policies": self.policies,
            "policy_rows": rows,
            "session": self.session,
            "has_errors": bool(
                self.form.errors or self.datasets.total_error_count() or self.policies.total_error_count()
            ),
        }


def _with_row(request: HttpRequest) -> Any:
    """The posted values with one more (empty) dataset row: "Add a dataset row" without script."""
    data = request.POST.copy()
    total = data.get("ds-TOTAL_FORMS", "0")
    index = min(int(total) if total.isdigit() else 0, MAX_ROWS - 1)
    data["ds-TOTAL_FORMS"] = str(index + 1)
    for name, value in (("role", "train"), ("repeats", "1"), ("loss_weight", "1.0")):
        data[f"ds-{index}-{name}"] = value  # the row's defaults, so it stays an unchanged (blank) row
    return data


def _editor_page(request: HttpRequest, session: TrainingSession | None) -> HttpResponse:
    if request.method == "POST" and "add_row" in request.POST:
        editor = _Editor(request, session, _with_row(request))
        context = editor.context() | {"has_errors": False, "saved": False}
        return render_page(request, "training/session_form.html", None, context)
    editor = _Editor(request, session)
    if request.method == "POST" and editor.valid():
        try:
            saved = editor.save(request.user)
            return redirect_after_post(request, _edit_url(saved) + "?saved=1")
        except DomainError as err:
            editor.fail(err)
    context = editor.context()
    context["saved"] = request.GET.get("saved") == "1"
    status = 422 if request.method == "POST" else 200
    return render_page(request, "training/session_form.html", None, context, status=status)


@login_required
@permission_required(ADD, raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def session_create(request: HttpRequest) -> HttpResponse:
    return _editor_page(request, None)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def session_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor; anyone signed in reads it, saving needs the change permission."""
    session = selectors.session_get(session_id=pk)
    if request.method == "POST" and not request.user.has_perm(CHANGE):
        raise PermissionDenied("Editing training sessions needs the change permission.")
    return _editor_page(request, session)


@login_required
@permission_required("training.delete_trainingsession", raise_exception=True)
@require_POST
def session_delete(request: HttpRequest, pk: int) -> HttpResponse:
    sessions.session_delete(session=selectors.session_get(session_id=pk))
    return redirect_after_post(request, reverse("training:session-list"))


# --- the live preview ---------------------------------------------------------------------------


def preview_context(data: dict[str, Any]) -> dict[str, Any]:
    for item in data["items"]:
        item["rendered"] = [
            {"renderer": r, "label": RENDERER_LABELS.get(r, r), "caption": item["captions"].get(r)}
            for r in data["renderers"]
        ]
    return {"preview": data}


def _draft_preview(editor: _Editor, actor: Any) -> dict[str, Any]:
    """The preview of the editor's unsaved values: saved inside a transaction that is always
    rolled back, so the preview renders exactly what Save would store and nothing stays."""
    with transaction.atomic():
        try:
            saved = editor.save(actor)
            return preview.session_preview(saved, PREVIEW_ITEMS, actor=actor)
        finally:
            transaction.set_rollback(True)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def session_preview(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """GET: the saved session's preview. POST: the editor's values, unsaved (the panel refreshes
    as fields change); invalid values answer 422 with what to fix."""
    session = selectors.session_get(session_id=pk) if pk is not None else None
    if request.method != "POST":
        if session is None:
            return render_page(request, "training/partials/_preview.html", None, {"preview": None})
        data = preview.session_preview(session, PREVIEW_ITEMS, actor=request.user)
        return render_page(request, "training/partials/_preview.html", None, preview_context(data))
    if not request.user.has_perm(CHANGE if session is not None else ADD):
        raise PermissionDenied("Previewing edits needs the permission to save them.")
    editor = _Editor(request, session)
    context: dict[str, Any] = {"preview": None}
    status = 200
    if not editor.valid():
        context["problems"] = _form_problems(editor)
        status = 422
    else:
        try:
            context = preview_context(_draft_preview(editor, request.user))
        except DomainError as err:
            context["problems"] = [err.message]
            status = 422
    return render_page(request, "training/partials/_preview.html", None, context, status=status)


def _form_problems(editor: _Editor) -> list[str]:
    out = [
        f"{editor.form.fields[n].label or n}: {m}"
        for n, ms in editor.form.errors.items()
        if n in editor.form.fields
        for m in ms
    ]
    out += [str(m) for m in editor.form.non_field_errors()]
    out += [str(m) for m in editor.datasets.non_form_errors()]
    for n, row in enumerate(editor.datasets.forms):
        out += [f"dataset row {n + 1}: {name}: {m}" for name, ms in row.errors.items() for m in ms]
    for form in editor.policies.forms:
        out += [f"{form['tag_type'].value()}: {name}: {m}" for name, ms in form.errors.items() for m in ms]
    return out or ["Check the highlighted fields."]
