"""On arrival (docs/intake.md#on-arrival): the tagging scheme and taggers an entry names, checked
when the entry is planned and started on its arrivals once they are in the dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from apps.core.exceptions import DomainError, NotFoundError
from apps.intake.models import IntakeArrival, IntakeEntry
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
    sets). Returns what could not start (a scheme run already active, a tagger without an active
    version, …); each start is its own savepoint, so one refusal does not undo the others."""
    choice = entry.on_arrival or {}
    if not choice:
        return []
    arrivals = IntakeArrival.objects.filter(entry=entry).order_by("media_item_id")
    item_ids: Sequence[int] = list(arrivals.values_list("media_item_id", flat=True))
    if not item_ids:
        return []
    problems: list[str] = []
    if choice.get("scheme") is not None:
        try:
            with transaction.atomic():
                scheme = scheme_get(ref=choice["scheme"])
                scheme_run_start(
                    scheme=scheme,
                    selection=SchemeRun.Selection.EXPLICIT,
                    item_ids=item_ids,
                    actor=actor,
                    origin=f"intake:{entry.pk}",
                )
        except DomainError as err:
            problems.append(f"scheme {choice['scheme']}: {err.message}")
    for ref in choice.get("taggers") or []:
        try:
            with transaction.atomic():
                tagger_run(tagger=_tagger(ref), ids=item_ids, actor=actor)
        except DomainError as err:
            problems.append(f"tagger {ref}: {err.message}")
    if problems:
        log.info("intake entry %s: on-arrival runs not started: %s", entry.pk, "; ".join(problems))
    return problems
