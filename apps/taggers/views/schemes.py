"""Tagging scheme pages: the list with a form for a new scheme, the editor (definition JSON and
the DAG drawn as server-rendered SVG), runs with per-step progress, and schedules
(docs/taggers.md#scheme-pages)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.taggers.models import SchemeRun, TaggingScheme
from apps.taggers.selectors import schemes as selectors
from apps.taggers.services import schedules, scheme_runs, schemes

CHANGE = "taggers.change_taggingscheme"
ADD = "taggers.add_taggingscheme"
RUN = "taggers.add_schemerun"
SCHEDULE = "taggers.add_schemeschedule"
EXAMPLE = {
    "steps": [
        {"key": "persons", "tagger": "<detector>", "input": "image"},
        {"key": "picture", "tagger": "<wd tagger>", "input": "image"},
        {
            "key": "describe",
            "tagger": "<captioner>",
            "input": "regions:persons",
            "prompt": "Describe the person. Context: {tags:picture}",
        },
    ]
}


class SchemeForm(forms.Form):
    name = forms.SlugField(max_length=64)
    description = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    definition = forms.CharField(
        max_length=100_000, widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "spellcheck": "false"})
    )

    def clean_definition(self) -> Any:
        try:
            return json.loads(self.cleaned_data["definition"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} at line {exc.lineno}.") from None


class RunForm(forms.Form):
    selection = forms.ChoiceField(
        choices=[
            (SchemeRun.Selection.ALL, "all items"),
            (SchemeRun.Selection.NEW_SINCE_LAST, "new since last"),
        ]
    )
    force = forms.BooleanField(required=False, help_text="recompute outputs that exist")


class ScheduleForm(forms.Form):
    scheme = forms.ModelChoiceField(queryset=TaggingScheme.objects.order_by("name"))
    crontab = forms.CharField(
        max_length=200, initial="0 3 * * *", help_text="minute hour day_of_week day_of_month month"
    )
    selection = forms.ChoiceField(
        choices=[
            (SchemeRun.Selection.NEW_SINCE_LAST, "new since last"),
            (SchemeRun.Selection.ALL, "all items"),
        ]
    )


def _need(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


@login_required
def scheme_list(request: HttpRequest) -> HttpResponse:
    """Every scheme with its latest run; a form for a new one."""
    form = SchemeForm(request.POST or None, initial={"definition": json.dumps(EXAMPLE, indent=2)})
    if request.method == "POST":
        _need(request, ADD)
        if form.is_valid():
            try:
                created = schemes.scheme_create(
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    body=form.cleaned_data["definition"],
                    actor=request.user,
                )
            except DomainError as err:
                form.add_error(None, err.message)
            else:
                return redirect_after_post(request, reverse("taggers:scheme-detail", args=[created.pk]))
    rows = [(s, selectors.run_list(scheme=s).first()) for s in selectors.scheme_list()[:200]]
    context = {"rows": rows, "form": form}
    return render_page(request, "taggers/scheme_list.html", None, context, status=422 if form.errors else 200)


def _detail_context(
    scheme: TaggingScheme, form: SchemeForm | None = None, run_form: RunForm | None = None
) -> dict:
    body = scheme.current_definition.body if scheme.current_definition else {"steps": []}
    return {
        "scheme": scheme,
        "dag": selectors.scheme_dag(scheme=scheme),
        "form": form
        or SchemeForm(
            initial={
                "name": scheme.name,
                "description": scheme.description,
                "definition": json.dumps(body, indent=2),
            }
        ),
        "run_form": run_form or RunForm(),
        "runs": selectors.run_list(scheme=scheme)[:20],
        "schedules": selectors.schedule_list(scheme=scheme),
    }


@login_required
def scheme_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor: GET shows the definition and its DAG; POST saves a new definition (a 422 with
    the step named when it is not valid)."""
    scheme = selectors.scheme_get(ref=pk)
    if request.method != "POST":
        return render_page(request, "taggers/scheme_detail.html", None, _detail_context(scheme))
    _need(request, CHANGE)
    form = SchemeForm(request.POST)
    if form.is_valid():
        try:
            schemes.scheme_update(
                scheme=scheme,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                body=form.cleaned_data["definition"],
            )
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, reverse("taggers:scheme-detail", args=[scheme.pk]))
    return render_page(request, "taggers/scheme_detail.html", None, _detail_context(scheme, form), status=422)


@login_required
@require_POST
def scheme_run(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, RUN)
    scheme = selectors.scheme_get(ref=pk)
    run_form = RunForm(request.POST)
    if run_form.is_valid():
        try:
            run = scheme_runs.scheme_run_start(
                scheme=scheme,
                selection=run_form.cleaned_data["selection"],
                force=run_form.cleaned_data["force"],
                actor=request.user,
                origin="page",
            )
        except DomainError as err:
            run_form.add_error(None, err.message)
        else:
            return redirect_after_post(request, reverse("taggers:scheme-run", args=[run.pk]))
    context = _detail_context(scheme, run_form=run_form)
    return render_page(request, "taggers/scheme_detail.html", None, context, status=422)


@login_required
@require_safe
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A run with each step's status, progress and counters; polls while it is active."""
    run = selectors.run_get(pk=pk)
    context = {"run": run, "steps": selectors.run_steps(run=run), "active": run.status in SchemeRun.ACTIVE}
    return render_page(request, "taggers/scheme_run.html", "taggers/partials/_run_steps.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, RUN)
    run = selectors.run_get(pk=pk)
    with contextlib.suppress(DomainError):  # it ended meanwhile: the page shows how
        scheme_runs.scheme_run_cancel(run=run)
    return redirect_after_post(request, reverse("taggers:scheme-run", args=[run.pk]))


@login_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    """Every schedule with its next and last run; a form for a new one."""
    form = ScheduleForm(request.POST or None)
    if request.method == "POST":
        _need(request, SCHEDULE)
        if form.is_valid():
            try:
                schedules.schedule_create(
                    scheme=form.cleaned_data["scheme"],
                    crontab=form.cleaned_data["crontab"],
                    selection=form.cleaned_data["selection"],
                )
            except DomainError as err:
                form.add_error(None, err.message)
            else:
                return redirect_after_post(request, reverse("taggers:schedule-list"))
    rows = [(s, selectors.crontab_text(s)) for s in selectors.schedule_list()[:500]]
    context = {"rows": rows, "form": form}
    return render_page(
        request, "taggers/schedule_list.html", None, context, status=422 if form.errors else 200
    )


@login_required
@require_POST
def schedule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, "taggers.change_schemeschedule")
    schedule = selectors.schedule_get(pk=pk)
    schedules.schedule_update(schedule=schedule, enabled=not schedule.enabled)
    return redirect_after_post(request, reverse("taggers:schedule-list"))


@login_required
@require_POST
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, "taggers.delete_schemeschedule")
    schedules.schedule_delete(schedule=selectors.schedule_get(pk=pk))
    return redirect_after_post(request, reverse("taggers:schedule-list"))
