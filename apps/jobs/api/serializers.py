from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.jobs.models import Job, JobItem

DETAIL_ITEMS_MAX = 1000


class JobItemOutputSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField()

    class Meta:
        model = JobItem
        fields = ["seq", "input", "status", "object_id", "error"]

    def get_error(self, obj: JobItem) -> dict[str, str] | None:
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}


class JobSubjectSerializer(serializers.Serializer):
    """What a job is about: a label, and the item, query or bulk operation it works on."""

    label = serializers.CharField()  # type: ignore[assignment]  # a field named "label"
    item = serializers.IntegerField(allow_null=True)
    query = serializers.CharField(allow_null=True)
    operation = serializers.IntegerField(allow_null=True)


class JobOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    title = serializers.CharField(read_only=True)
    subject = JobSubjectSerializer(read_only=True)
    outcome = serializers.ChoiceField(
        choices=["", "succeeded", "succeeded_with_failures", "failed", "cancelled"],
        read_only=True,
        help_text="How a finished job ended (empty while queued or running); a job with some "
        "failed inputs is `succeeded_with_failures`, one whose inputs all failed is `failed`.",
    )
    outcome_label = serializers.CharField(read_only=True, help_text='e.g. "Finished with 3 failures"')
    failures = serializers.IntegerField(read_only=True, help_text="Inputs that failed")
    progress = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "title",
            "subject",
            "status",
            "outcome",
            "outcome_label",
            "url",
            "progress",
            "counts",
            "failures",
            "result",
            "error",
            "attempts",
            "cancel_requested",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]

    def get_url(self, obj: Job) -> str:
        return reverse("api:job-detail", kwargs={"pk": obj.pk})

    def get_progress(self, obj: Job) -> dict[str, int]:
        return {"done": obj.progress_done, "total": obj.progress_total, "percent": obj.percent}

    def get_error(self, obj: Job) -> dict[str, str] | None:
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}


class JobDetailOutputSerializer(JobOutputSerializer):
    items = serializers.SerializerMethodField()

    class Meta(JobOutputSerializer.Meta):
        fields = [*JobOutputSerializer.Meta.fields, "log", "items"]

    def get_items(self, obj: Job) -> list[dict[str, Any]]:
        """Per-input outcomes (the first 1000; `items/` pages through all of them)."""
        rows = obj.items.order_by("seq")[:DETAIL_ITEMS_MAX]
        return JobItemOutputSerializer(rows, many=True).data  # type: ignore[return-value]


def job_accepted_body(job: Job) -> dict[str, Any]:
    """The 202 body for long work: {"job": {...}}."""
    return {"job": JobOutputSerializer(job).data}
