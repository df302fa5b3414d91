"""Pages for alias and implication rules."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import render_page
from apps.jobs.models import Job
from apps.tags.forms import AliasForm, ImplicationForm, ImplicationImportForm
from apps.tags.models import RuleStatus, TagAlias, TagImplication
from apps.tags.services import rules, rules_io
from apps.tags.services.names import vocabulary_default

PAGE = 100
RULE_KINDS = ("alias", "implication")
RULE_VERBS = ("activate", "retire", "reject")


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    status = request.GET.get("status", "")
    aliases = TagAlias.objects.select_related("antecedent", "consequent").order_by("-id")
    implications = TagImplication.objects.select_related("child", "parent").order_by("-id")
    if status in RuleStatus.values:
        aliases, implications = aliases.filter(status=status), implications.filter(status=status)
    rebuild = Job.objects.filter(kind=rules.REBUILD_JOB_KIND).order_by("-id").first()
    return {
        "aliases": aliases[:PAGE],
        "implications": implications[:PAGE],
        "status": status,
        "statuses": RuleStatus.choices,
        "rebuild": rebuild,
        "alias_form": extra.get("alias_form") or AliasForm(),
        "implication_form": extra.get("implication_form") or ImplicationForm(),
        "import_form": extra.get("import_form") or ImplicationImportForm(),
        "can_approve": rules.rules_may_approve(request.user),
        **extra,
    }


@login_required
@require_safe
def rule_list(request: HttpRequest) -> HttpResponse:
    """Aliases and implications: propose, activate, retire; the effective-tag rebuild's progress."""
    return render_page(request, "tags/rules.html", None, _context(request))


def _add_rule(
    request: HttpRequest, form: forms.Form, form_key: str, create: Callable[..., object]
) -> HttpResponse:
    """Validate a proposal form and create the rule (active only for approvers); 422 on errors."""
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            create(actor=request.user, **data)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return render_page(request, "tags/rules.html", "tags/partials/_rules.html", _context(request))
    return render_page(
        request,
        "tags/rules.html",
        "tags/partials/_rules.html",
        _context(request, **{form_key: form}),
        status=422,
    )


@login_required
@require_POST
def alias_add(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("tags.add_tagalias"):
        raise PermissionDenied
    return _add_rule(request, AliasForm(request.POST), "alias_form", rules.alias_create)


@login_required
@require_POST
def implication_add(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("tags.add_tagimplication"):
        raise PermissionDenied
    return _add_rule(request, ImplicationForm(request.POST), "implication_form", rules.implication_create)


@login_required
@require_POST
def implications_import(request: HttpRequest) -> HttpResponse:
    """`child,parent` lines into a tag template; good lines kept, bad ones listed (422)."""
    if not request.user.has_perm("tags.add_tagimplication"):
        raise PermissionDenied
    form = ImplicationImportForm(request.POST)
    result = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = rules_io.implications_import_csv(
                vocabulary=data["vocabulary"] or vocabulary_default(),
                data=data["text"],
                actor=request.user,
                activate=data["activate"],
            )
        except DomainError as err:
            form.add_error(None, err.message)
    failed = bool(form.errors or (result and result.errors))
    context = _context(request, import_form=form, import_result=result)
    return render_page(
        request, "tags/rules.html", "tags/partials/_rules.html", context, status=422 if failed else 200
    )


@login_required
@require_POST
def rule_action(request: HttpRequest, kind: str, pk: int, verb: str) -> HttpResponse:
    """Activate, retire or reject one rule (needs tags.approve_rules)."""
    if not rules.rules_may_approve(request.user):
        raise PermissionDenied
    if kind not in RULE_KINDS:
        raise Http404(f"No rule kind {kind!r}.")
    if verb not in RULE_VERBS:
        unknown = DomainError(
            f"Unknown action {verb!r}; use one of: {', '.join(RULE_VERBS)}.",
            code="tags.unknown_verb",
            details={"verb": verb, "verbs": list(RULE_VERBS)},
        )
        return render_page(
            request,
            "tags/rules.html",
            "tags/partials/_rules.html",
            _context(request, error=unknown),
            status=400,
        )
    error = None
    try:
        if kind == "alias":
            alias = get_object_or_404(TagAlias, pk=pk)
            if verb == "activate":
                rules.alias_activate(alias=alias, actor=request.user)
            else:
                rules.alias_retire(alias=alias, actor=request.user, reject=verb == "reject")
        else:
            rule = get_object_or_404(TagImplication, pk=pk)
            if verb == "activate":
                rules.implication_activate(rule=rule, actor=request.user)
            else:
                rules.implication_retire(rule=rule, actor=request.user, reject=verb == "reject")
    except DomainError as err:
        error = err
    return render_page(
        request,
        "tags/rules.html",
        "tags/partials/_rules.html",
        _context(request, error=error),
        status=422 if error else 200,
    )
