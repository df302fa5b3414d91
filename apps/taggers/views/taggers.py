"""Tagger pages: the list, a tagger with its versions, metrics, plot and training progress, and
the review queue with one-key decisions (docs/taggers.md#pages)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.taggers.models import Tagger
from apps.taggers.plots import metrics_plot
from apps.taggers.selectors import predictions as selectors
from apps.taggers.services import review, training, versions

CHANGE = "taggers.change_tagger"


class DecisionForm(forms.Form):
    item = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    tag = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    decision = forms.ChoiceField(choices=[("accept", "accept"), ("reject", "reject")])


def _need(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


@login_required
@require_safe
def tagger_list(request: HttpRequest) -> HttpResponse:
    """Every tagger with its kind, network, active version and its macro mAP."""
    return render_page(request, "taggers/tagger_list.html", None, {"taggers": selectors.tagger_list()[:500]})


def _detail_context(tagger: Tagger, error: str = "") -> dict[str, object]:
    rows = list(selectors.version_list(tagger=tagger)[:50])
    shown = tagger.active_version or next((v for v in rows if v.status == "ready"), None)
    metrics = shown.metrics if shown is not None else {}
    tags = sorted(
        (metrics.get("tags") or {}).values(), key=lambda t: (t.get("ap") is None, -(t.get("ap") or 0))
    )
    latest = rows[0] if rows else None
    return {
        "tagger": tagger,
        "versions": rows,
        "shown": shown,
        "metrics": metrics,
        "tags": tags,
        "plot": metrics_plot(metrics),
        "job": latest.job if latest is not None else None,
        "error": error,
    }


@login_required
@require_safe
def tagger_detail(request: HttpRequest, pk: int) -> HttpResponse:
    tagger = selectors.tagger_get(tagger_id=pk)
    return render_page(request, "taggers/tagger_detail.html", None, _detail_context(tagger))


@login_required
@require_POST
def tagger_train(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue training; its progress polls on the tagger's page."""
    _need(request, CHANGE)
    tagger = selectors.tagger_get(tagger_id=pk)
    try:
        training.tagger_train(tagger=tagger, actor=request.user)
    except DomainError as err:
        return render_page(
            request, "taggers/tagger_detail.html", None, _detail_context(tagger, err.message), status=422
        )
    return redirect_after_post(request, reverse("taggers:tagger-detail", args=[tagger.pk]))


@login_required
@require_POST
def tagger_promote(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    _need(request, CHANGE)
    tagger = selectors.tagger_get(tagger_id=pk)
    try:
        versions.version_promote(tagger=tagger, number=number)
    except DomainError as err:
        return render_page(
            request, "taggers/tagger_detail.html", None, _detail_context(tagger, err.message), status=422
        )
    return redirect_after_post(request, reverse("taggers:tagger-detail", args=[tagger.pk]))


@login_required
@require_POST
def tagger_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, CHANGE)
    tagger = selectors.tagger_get(tagger_id=pk)
    try:
        versions.version_rollback(tagger=tagger)
    except DomainError as err:
        return render_page(
            request, "taggers/tagger_detail.html", None, _detail_context(tagger, err.message), status=422
        )
    return redirect_after_post(request, reverse("taggers:tagger-detail", args=[tagger.pk]))


def _queue_context(tagger: Tagger, message: str = "") -> dict[str, object]:
    version = tagger.active_version
    rows = selectors.review_queue(version=version, limit=20) if version is not None else []
    return {"tagger": tagger, "version": version, "rows": rows, "message": message}


@login_required
@require_safe
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Undecided predictions, most uncertain first: a accepts, r rejects, j skips to the next."""
    tagger = selectors.tagger_get(tagger_id=pk)
    return render_page(
        request, "taggers/review.html", "taggers/partials/_review_queue.html", _queue_context(tagger)
    )


@login_required
@require_POST
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept (promote into curated) or reject (curated tombstone); answers the refreshed queue."""
    _need(request, CHANGE)
    tagger = selectors.tagger_get(tagger_id=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid() or tagger.active_version is None:
        return render_page(
            request, "taggers/review.html", "taggers/partials/_review_queue.html",
            _queue_context(tagger, "Choose a prediction to decide."), status=422,
        )  # fmt: skip
    data = form.cleaned_data
    decide = review.prediction_accept if data["decision"] == "accept" else review.prediction_reject
    try:
        decide(version=tagger.active_version, item_id=data["item"], tag_id=data["tag"], actor=request.user)
    except DomainError as err:
        context = _queue_context(tagger, err.message)
        return render_page(
            request, "taggers/review.html", "taggers/partials/_review_queue.html", context, status=422
        )
    message = f"{'Accepted' if data['decision'] == 'accept' else 'Rejected'} tag on item {data['item']}."
    return render_page(
        request, "taggers/review.html", "taggers/partials/_review_queue.html", _queue_context(tagger, message)
    )
