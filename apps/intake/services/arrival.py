"""On arrival (docs/intake.md#on-arrival): the tagging scheme and taggers an entry names, checked
when the entry is planned and started on its arrivals once they are in the dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from apps.core.exceptions import DomainError, NotFoundError
from apps.intake.models import IntakeArrival, IntakeEntry, IntakeTagging
from apps.taggers.models import SchemeRun, Tagger
from apps.taggers.selectors.predictions import tagger_list
from apps.taggers.selectors.schemes import scheme_get
from apps.taggers.services.apply import tagger_run
from apps.taggers.services.scheme_runs import scheme_run_start

log = logging.getLogger(__name__)


def _bad(message: str) -> DomainError:
    return DomainError(message, code="intake.bad_on_arrival", details={"field": "on_arrival"})


def _tagger(ref: Any) -> Tagger:
    found = tagger_list().filter(**({"pk": int(ref)} if str(ref).isdigit() else {"name": ref})).first()
    if found is None:
        raise _bad(f"on_arrival.taggers: no tagger {ref!r}; name one from /taggers/ (its id or name).")
    return found


def on_arrival_resolve(choice: dict[str, Any]) -> dict[str, Any]:
    """The shape-checked choice with names turned into ids; an unknown scheme or tagger is a 400
    naming it, so nothing is planned that could never run."""
    out: dict[str, Any] = {}
    if "scheme" in choice:
        try:
            out["scheme"] = scheme_get(ref=choice["scheme"]).pk
        except NotFoundError:
            raise _bad(
                f"on_arrival.scheme: no tagging scheme {choice['scheme']!r}; name one from "
                "/taggers/schemes/ (its id or name)."
            ) from None
    if "taggers" in choice:
        out["taggers"] = list(dict.fromkeys(_tagger(ref).pk for ref in choice["taggers"]))
    return out


def on_arrival_start(*, entry: IntakeEntry, actor: Any = None) -> list[str]:
    """Start the entry's scheme run and tagger jobs over every item that arrived for it (a
    re-run only does what is missing: schemes skip items with output, scoring replaces its own
    sets), and record each start, or why it could not start, as the entry's `taggings` (the
    previous arrival's go). Returns what could not start (a scheme run already active, a tagger
    without an active version, …); each start is its own savepoint, so one refusal does not undo
    the others. Sets `entry.tagging` (the caller saves the entry)."""
    choice = entry.on_arrival or {}
    IntakeTagging.objects.filter(entry=entry).delete()
    arrivals = IntakeArrival.objects.filter(entry=entry).order_by("media_item_id")
    item_ids: Sequence[int] = list(arrivals.values_list("media_item_id", flat=True)) if choice else []
    if not item_ids:
        entry.tagging = IntakeEntry.Tagging.NONE
        return []
    rows: list[IntakeTagging] = []
    if choice.get("scheme") is not None:
        row = IntakeTagging(entry=entry, label=f"scheme {choice['scheme']}")
        try:
            with transaction.atomic():
                scheme = scheme_get(ref=choice["scheme"])
                row.label = f"scheme {scheme.name}"
                row.scheme_run = scheme_run_start(
                    scheme=scheme,
                    selection=SchemeRun.Selection.EXPLICIT,
                    item_ids=item_ids,
                    actor=actor,
                    origin=f"intake:{entry.pk}",
                )
                row.started = True
        except DomainError as err:
            row.problem = err.message
        rows.append(row)
    for ref in choice.get("taggers") or []:
        row = IntakeTagging(entry=entry, label=f"tagger {ref}")
        try:
            with transaction.atomic():
                tagger = _tagger(ref)
                row.label = f"tagger {tagger.name}"
                row.job = tagger_run(tagger=tagger, ids=item_ids, actor=actor)
                row.started = True
        except DomainError as err:
            row.problem = err.message
        rows.append(row)
    IntakeTagging.objects.bulk_create(rows)
    problems = [f"{row.label}: {row.problem}" for row in rows if row.problem]
    if problems:
        log.info("intake entry %s: on-arrival runs not started: %s", entry.pk, "; ".join(problems))
    entry.tagging = (
        IntakeEntry.Tagging.RUNNING if any(row.started for row in rows) else IntakeEntry.Tagging.FAILED
    )
    return problems
