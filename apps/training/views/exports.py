"""Lint, exports and the fidelity report of a training session (docs/training.md#pages)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from apps.core.exceptions import DomainError, ServiceUnavailableError
from apps.core.htmx import redirect_after_post, render_page
from apps.training import selectors
from apps.training.forms import ExportForm
from apps.training.models import TextualInversion, TrainingExport, TrainingSession
from apps.training.selectors import pages
from apps.training.services import exports, lint
from apps.training.services.plan import plan_build

EXPORT = "training.add_trainingexport"
EXPORT_ROWS = 50


@login_required
@require_safe
def session_lint(request: HttpRequest, pk: int) -> HttpResponse:
    """Findings of the latest version against the live members, each linked to its item; a big
    session is linted as a job (its progress shows here)."""
    session = selectors.session_get(session_id=pk)
    result = lint.session_lint(session, actor=request.user)
    context: dict[str, Any] = {"session": session, "job": result["job"]}
    if result["job"] is None:
        findings = pages.findings_linked(result["findings"])
        context.update(
            {
                "findings": findings,
                "total": result["total"],
                "item_count": result["item_count"],
                "version": result["version"],
                "counts": pages.findings_counts(findings),
            }
        )
    return render_page(request, "training/lint.html", None, context)


def _owner_exports(owner: TrainingSession | TextualInversion) -> list[TrainingExport]:
    if isinstance(owner, TrainingSession):
        return list(selectors.export_list(session=owner)[:EXPORT_ROWS])
    return list(selectors.export_list(ti=owner)[:EXPORT_ROWS])


def exports_page(request: HttpRequest, owner: TrainingSession | TextualInversion, back: str) -> HttpResponse:
    """The export form and the past exports of a session or a TI set (shared with ti.py)."""
    form = ExportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(EXPORT):
            raise PermissionDenied("Starting exports needs the add-export permission.")
        if form.is_valid():
            owner_kw: dict[str, Any] = (
                {"session": owner} if isinstance(owner, TrainingSession) else {"textual_inversion": owner}
            )
            try:
                exports.export_start(
                    **owner_kw,
                    target=form.cleaned_data["target"],
                    folder=form.cleaned_data.get("folder") or "",
                    actor=request.user,
                )
                return redirect_after_post(request, back)
            except DomainError as err:
                form.add_error("folder" if err.code.startswith("training.folder") else None, err.message)
                status = err.status_code
        else:
            status = 422
    context = {
        "owner": owner,
        "is_session": isinstance(owner, TrainingSession),
        "form": form,
        "exports": _owner_exports(owner),
        "back": back,
    }
    return render_page(request, "training/exports.html", None, context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def session_exports(request: HttpRequest, pk: int) -> HttpResponse:
    session = selectors.session_get(session_id=pk)
    return exports_page(request, session, reverse("training:session-exports", args=[session.pk]))


@login_required
@require_safe
def export_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One export's row (polled while its job runs)."""
    export = selectors.export_get(export_id=pk)
    return render_page(request, "training/partials/_export_row.html", None, {"export": export})


@login_required
@require_safe
def export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The finished bundle as a zip, streamed."""
    export = selectors.export_get(export_id=pk)
    try:
        name, chunks = exports.export_zip_stream(export)
    except (ImportError, RuntimeError) as exc:
        raise ServiceUnavailableError(
            "Zip downloads need the bundle writer (apps/training/bundle/zipstream); export into a "
            "server folder instead.",
            code="training.zip_unavailable",
        ) from exc
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_safe
def session_fidelity(request: HttpRequest, pk: int) -> HttpResponse:
    """Per targeted trainer: the delivery matrix, keep rates per tag type (policy against the
    simulation) and the bucket histogram."""
    session = selectors.session_get(session_id=pk)
    plan = plan_build(session, freeze=False, actor=request.user, limit=pages.BUCKET_SAMPLE)
    context = {"session": session, "report": pages.fidelity_report(plan)}
    return render_page(request, "training/fidelity.html", None, context)
