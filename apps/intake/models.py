"""The intake queue: what a user plans to add to a dataset and what arrived (docs/intake.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class IntakeEntry(BaseModel):
    """One planned addition to a dataset: what to fetch or take, where it goes, how far it got.

    States: PLANNED → FETCHING → ADDED → TAGGED → REVIEWED, and FAILED (with the error) from
    FETCHING; a failed entry, or an added one with failed inputs, can be processed again.
    Only `apps.intake.services` changes them (docs/intake.md#states).
    """

    class Kind(models.TextChoices):
        URLS = "urls", "URLs"
        ARCHIVE = "archive", "Zip archive"
        FOLDER = "folder", "Server folder"
        VIDEO = "video", "Video frames"
        QUERY = "query", "Library query"

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        FETCHING = "fetching", "Fetching"
        ADDED = "added", "Added"
        TAGGED = "tagged", "Tagged"
        REVIEWED = "reviewed", "Reviewed"
        FAILED = "failed", "Failed"

    class Tagging(models.TextChoices):
        """The on-arrival tagging (docs/intake.md#on-arrival): none asked for (or none started
        yet); running (the entry waits, ADDED, for its runs); done (the entry moved to TAGGED);
        failed (a run failed or was cancelled, or something could not start: the entry stays
        ADDED with the reasons in its error)."""

        NONE = "", "None"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # What the entry takes in a few words ("https://… and 41 more", "set.zip"), written when it is
    # planned, so lists never load the URL list itself.
    summary = models.CharField(max_length=300, blank=True)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="+")
    subset = models.ForeignKey(
        "datasets.Subset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    notes = models.TextField(blank=True)
    planned_count = models.PositiveIntegerField(default=0)
    # What to take, by kind: the URLs; the zip kept in storage for (re)processing; a folder
    # relative to BAGGINTAG_INTAKE_FOLDER_ROOT; a video and its frame plan (the media app's
    # frame request, docs/api.md#frames); a query (docs/query-language.md).
    urls = models.JSONField(default=list, blank=True)
    archive_key = models.CharField(max_length=255, blank=True)
    archive_name = models.CharField(max_length=255, blank=True)
    folder = models.CharField(max_length=1000, blank=True)
    video = models.ForeignKey(
        "media.MediaItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    frame_plan = models.JSONField(default=dict, blank=True)
    query = models.CharField(max_length=2000, blank=True)
    # What to run on arrival: {"scheme": <tagging scheme id>, "taggers": [<tagger id>, …]}
    # (docs/intake.md#on-arrival).
    on_arrival = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED)
    # How the on-arrival tagging started at the last arrival went (its runs are `taggings`).
    tagging = models.CharField(max_length=8, choices=Tagging.choices, default=Tagging.NONE, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    added_count = models.PositiveIntegerField(default=0)
    reviewed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # The media job (bulk upload or frame capture) of the latest processing.
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "intake entries"
        indexes = [
            models.Index(fields=["dataset", "state", "id"], name="intake_dataset_state_id"),
            models.Index(fields=["state", "id"], name="intake_state_id"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The title, else what the entry takes."""
        return self.title or self.summary or f"{self.get_kind_display()} {self.pk}"

    @property
    def added_percent(self) -> int:
        return percent(self.added_count, self.planned_count)

    @property
    def reviewed_percent(self) -> int:
        return percent(self.reviewed_count, self.planned_count or self.added_count)


def percent(done: int, total: int) -> int:
    if not total:
        return 100 if done else 0
    return min(100, int(100 * done / total))


class IntakeArrival(models.Model):
    """An item that arrived for an entry (new or already in the library), and whether a person
    reviewed it."""

    entry = models.ForeignKey(IntakeEntry, on_delete=models.CASCADE, related_name="arrivals")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    reviewed = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry", "media_item"], name="iarrival_entry_item")]
        indexes = [
            models.Index(fields=["entry", "reviewed", "media_item"], name="iarrival_entry_reviewed"),
            models.Index(fields=["media_item"], name="iarrival_item"),
        ]

    def __str__(self) -> str:
        return f"entry {self.entry_id}: item {self.media_item_id}"


class IntakeTagging(models.Model):
    """One thing an entry's on-arrival tagging started (a scheme run, or a tagger's scoring job),
    or could not start (`problem` says why); replaced at every arrival."""

    entry = models.ForeignKey(IntakeEntry, on_delete=models.CASCADE, related_name="taggings")
    label = models.CharField(max_length=200)
    scheme_run = models.ForeignKey(
        "taggers.SchemeRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    problem = models.TextField(blank=True)
    # The start's scheme run or job was set: a null one now means it was deleted.
    started = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.label}"
