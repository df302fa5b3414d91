"""Persisted background jobs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class Job(BaseModel):
    """One background operation.

    States: QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; RUNNING → QUEUED when a worker
    releases it or the sweeper finds its heartbeat stale; FAILED → QUEUED on retry. Only
    `apps.jobs.services` changes them. The row is the truth, the broker message only a nudge:
    each claim is an attempt (`attempts` is its fencing token) and a worker whose attempt is no
    longer current writes nothing (docs/architecture.md#jobs).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    log = models.JSONField(default=list, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the broker last accepted this job's message; NULL while a send is owed (the sweeper
    # sends it). `updated_at` is the running attempt's heartbeat.
    sent_at = models.DateTimeField(null=True, blank=True)
    # True while files staged for this job (`params["staged"]`) are still in storage.
    holds_files = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["status", "updated_at"], name="job_status_updated"),
            models.Index(fields=["created_by", "id"], name="job_creator_id"),
            models.Index(fields=["kind", "id"], name="job_kind_id"),
            models.Index(fields=["holds_files", "status"], name="job_holds_files"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def title(self) -> str:
        """What people call this job ("Bulk upload"), falling back to its kind."""
        return str(self.params.get("title") or self.kind.split(".")[-1].replace("_", " ").capitalize())

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def failures(self) -> int:
        """Inputs that failed (`counts["failed"]`)."""
        return int(self.counts.get("failed", 0))

    @property
    def outcome(self) -> str:
        """How a finished job ended: succeeded, succeeded_with_failures, failed or cancelled;
        empty while it is queued or running."""
        if not self.is_finished:
            return ""
        if self.status == self.Status.SUCCEEDED and self.failures:
            return "succeeded_with_failures"
        return str(self.status)

    @property
    def outcome_label(self) -> str:
        """The outcome in words: "Finished with 3 failures", "Failed", "Running", …"""
        if self.outcome == "succeeded_with_failures":
            return f"Finished with {self.failures} failure{'s' if self.failures != 1 else ''}"
        return str(self.Status(self.status).label)

    @property
    def subject(self) -> dict[str, Any]:
        """What the job is about, from its params: a label and, where there is one, the item,
        the query or the bulk operation it works on (pages and API link them)."""
        params = self.params
        given = params.get("subject")
        if isinstance(given, dict):
            return {"label": "", "item": None, "query": None, "operation": None, **given}
        subject: dict[str, Any] = {"label": "", "item": None, "query": None, "operation": None}
        if "video_id" in params:
            subject.update(label=f"video {params['video_id']}", item=params["video_id"])
        elif isinstance(params.get("ids"), list):
            ids = params["ids"]
            subject["label"] = f"item {ids[0]}" if len(ids) == 1 else f"{len(ids)} items"
            subject["item"] = ids[0] if len(ids) == 1 else None
        elif "operation" in params:
            subject.update(label=f"bulk operation {params['operation']}", operation=params["operation"])
        elif isinstance(params.get("inputs"), list):
            subject["label"] = _inputs_label(params["inputs"])
        elif params.get("reason"):
            subject["label"] = str(params["reason"])[:200]
        if params.get("query"):
            subject["query"] = str(params["query"])
        return subject

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))


def _inputs_label(inputs: list[Any]) -> str:
    """ "a.png, b.jpg and 3 more" for a bulk upload's inputs."""
    names = [
        str(entry.get("filename") or entry.get("member") or entry.get("url") or "")
        for entry in inputs[:3]
        if isinstance(entry, dict)
    ]
    names = [name for name in names if name] or ["nothing"]
    more = len(inputs) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


class JobItem(BaseModel):
    """The outcome of one input of a job (one file, member or URL), in input order."""

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        DUPLICATE = "duplicate", "Duplicate"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    seq = models.PositiveIntegerField()
    input = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices)
    object_id = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="jobitem_job_seq")]
        ordering = ["job", "seq"]

    def __str__(self) -> str:
        return f"{self.input}: {self.status}"
