"""When an entry's on-arrival tagging ends, the entry moves on (docs/intake.md#on-arrival).

`on_arrival_start` records what it started as the entry's `IntakeTagging` rows (a scheme run, a
scoring job, or why one could not start) and sets `entry.tagging` to RUNNING. When the last of
them ends, `intake_entry_tagging_settle` moves the ADDED entry to TAGGED, or, when a run failed
or was cancelled or something could not start, leaves it ADDED with `tagging` FAILED and the
reasons in its error. It is called by the jobs app's `job_finished` event for the taggers' job
kinds (`apps/intake/receivers.py`) and, as the fallback, by the beat task
`intake.collect_finished`. Idempotent: it works under the entry's row lock and only on ADDED
entries whose tagging is running or failed (a failed scoring job retried from the jobs page
settles the entry again when it ends).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from apps.intake.models import IntakeEntry, IntakeTagging
from apps.jobs.models import Job
from apps.taggers.models import SchemeRun
from apps.taggers.services.apply import SCORE_KIND
from apps.taggers.services.scheme_runs import RUN_JOB, STEP_JOB

State = IntakeEntry.State
Tagging = IntakeEntry.Tagging
TAGGING_KINDS = (SCORE_KIND, RUN_JOB, STEP_JOB)
# The error codes this module writes (a code of the arrival itself, such as
# `intake.some_inputs_failed`, is kept; the notes are added to its message).
CODES = ("intake.on_arrival_failed", "intake.on_arrival_partial")
NOTE = "On-arrival tagging: "


def _outcome(row: IntakeTagging) -> tuple[str, str]:
    """("running" | "ok" | "partial" | "failed", what to say)."""
    if not row.started:
        return "failed", ""  # said on the entry when it could not start
    if row.scheme_run_id is not None:
        run = SchemeRun.objects.get(pk=row.scheme_run_id)
        name = f"{row.label} (run {run.pk})"
        if run.status in SchemeRun.ACTIVE:
            return "running", ""
        if run.status == SchemeRun.Status.SUCCEEDED:
            return "ok", ""
        if run.status == SchemeRun.Status.PARTIAL:
            return "partial", f"{name} ended partial: some items failed (its page says which)"
        return "failed", f"{name} {run.status}"
    if row.job_id is not None:
        job = Job.objects.get(pk=row.job_id)
        name = f"{row.label} (job {job.pk})"
        if not job.is_finished:
            return "running", ""
        if job.outcome == "succeeded":
            return "ok", ""
        if job.outcome == "succeeded_with_failures":
            return "partial", f"{name} finished with {job.failures} failures"
        reason = f": {job.error_message}" if job.error_message else ""
        return "failed", f"{name} {job.status}{reason}"
    return "failed", f"{row.label}: its run was deleted"


def _note(entry: IntakeEntry, code: str, note: str) -> None:
    """Replace this module's note (and code) on the entry, keeping what the arrival said."""
    base = entry.error_message.split(NOTE)[0].strip()
    kept = "" if entry.error_code in CODES else entry.error_code
    entry.error_code = kept or (code if note else "")
    entry.error_message = f"{base} {NOTE}{note}".strip() if note else base


def intake_entry_tagging_settle(*, entry_id: int) -> IntakeEntry | None:
    """Move an ADDED entry whose on-arrival tagging ended: TAGGED when everything it started
    ended well (a partial run or a job with failures says so on the entry), else it stays ADDED
    with `tagging` FAILED and the reasons. None while something still runs, or when the entry is
    not waiting (no tagging, already tagged or reviewed, deleted)."""
    with transaction.atomic():
        entry = (
            IntakeEntry.objects.select_for_update()
            .filter(pk=entry_id, state=State.ADDED, tagging__in=(Tagging.RUNNING, Tagging.FAILED))
            .first()
        )
        if entry is None:
            return None
        outcomes = [_outcome(row) for row in IntakeTagging.objects.filter(entry=entry).order_by("pk")]
        if not outcomes or any(kind == "running" for kind, _ in outcomes):
            return None
        failed = [text for kind, text in outcomes if kind == "failed"]
        partial = [text for kind, text in outcomes if kind == "partial"]
        if failed:
            said = [text for text in failed if text]
            entry.tagging = Tagging.FAILED
            _note(
                entry,
                "intake.on_arrival_failed",
                "; ".join(said) + ". Retry a failed job from the jobs page, or process the entry again "
                "to start the tagging again; or mark the entry tagged."
                if said
                else "",
            )
        else:
            entry.state, entry.tagging = State.TAGGED, Tagging.DONE
            _note(entry, "intake.on_arrival_partial", "; ".join(partial))
        entry.save(update_fields=["state", "tagging", "error_code", "error_message", "updated_at"])
    return entry


def intake_tagging_settle_for_job(*, job_id: int, kind: str) -> list[int]:
    """Settle the entries whose on-arrival tagging this job belongs to (a scoring job, or a
    scheme run's planning or step job); other kinds are not looked at."""
    if kind not in TAGGING_KINDS:
        return []
    runs = SchemeRun.objects.filter(Q(job_id=job_id) | Q(steps__job_id=job_id)).values("pk")
    rows = IntakeTagging.objects.filter(Q(job_id=job_id) | Q(scheme_run__in=runs))
    ids = sorted(set(rows.values_list("entry_id", flat=True)))
    return [e for e in ids if intake_entry_tagging_settle(entry_id=e) is not None]


def intake_tagging_settle_finished(limit: int = 1000) -> list[int]:
    """Settle every ADDED entry whose tagging is running but has nothing left running (the
    periodic fallback for an event that was lost)."""
    active = IntakeTagging.objects.filter(entry=OuterRef("pk")).filter(
        Q(scheme_run__status__in=SchemeRun.ACTIVE)
        | Q(job__status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
    )
    waiting = IntakeEntry.objects.filter(state=State.ADDED, tagging=Tagging.RUNNING).exclude(Exists(active))
    ids = list(waiting.order_by("pk").values_list("pk", flat=True)[:limit])
    return [e for e in ids if intake_entry_tagging_settle(entry_id=e) is not None]
