"""Serializers for bulk tag operations and the operation log."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.core.api import IdField
from apps.jobs.api.serializers import JobOutputSerializer
from apps.tags.models import Operation, TagSet
from apps.tags.services.operations import Preview, operation_can_undo
from apps.tags.services.operations.plan import ACTIONS, SET_KIND_NAMES, SET_KINDS, tag_list_parse


class TagListField(serializers.ListField):
    """A list of tag names, or one string of them (comma- or line-separated, else by spaces)."""

    child = serializers.CharField(max_length=200)

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            data = tag_list_parse(data)
        return list(super().to_internal_value(data))


class TagBulkInputSerializer(serializers.Serializer):
    """POST /api/tags/bulk: what to do, to which items (`q` and/or `ids`), in which set kind."""

    action = serializers.ChoiceField(choices=list(ACTIONS))
    tags = TagListField(required=False, default=list, max_length=1000)
    type = serializers.CharField(required=False, default="", allow_blank=True, source="type_key")
    q = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    ids = serializers.ListField(child=IdField(), required=False, default=list)
    set_kind = serializers.ChoiceField(choices=list(SET_KINDS), default="curated")
    vocabulary = serializers.SlugField(required=False, allow_null=True, default=None)
    revive_tombstones = serializers.BooleanField(default=True)
    scope = serializers.ChoiceField(choices=["items", "library"], default="items")
    dry_run = serializers.BooleanField(default=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword, so these two are added by name.
        fields["from"] = TagListField(required=False, default=list, max_length=1000, source="from_tags")
        fields["to"] = TagListField(required=False, default=list, max_length=1000, source="to_tags")
        return fields


class OperationOutputSerializer(serializers.ModelSerializer):
    """One logged operation: what it did, its counters, its job and its undo links."""

    set_kind = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    job = serializers.SerializerMethodField()
    preview = serializers.SerializerMethodField()
    request = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    can_undo = serializers.SerializerMethodField()
    redone_by = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "status",
            "summary",
            "set_kind",
            "target_kind",
            "request",
            "preview",
            "counters",
            "resume_cursor",
            "undo_of",
            "undone_by",
            "redone_by",
            "can_undo",
            "job",
            "error",
            "created_by",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_set_kind(self, obj: Operation) -> str:
        return SET_KIND_NAMES.get(TagSet.Kind(obj.set_kind), str(obj.set_kind))

    def get_job(self, obj: Operation) -> dict[str, Any] | None:
        if obj.job is None:
            return None
        return {
            "id": obj.job.pk,
            "status": obj.job.status,
            "url": reverse("api:job-detail", kwargs={"pk": obj.job.pk}),
        }

    def get_preview(self, obj: Operation) -> dict[str, Any] | None:
        """The counts the preview predicted (compare with `counters` after applying)."""
        return obj.params.get("preview")

    def get_request(self, obj: Operation) -> dict[str, Any]:
        """What was asked: the input as given and the resolved operation."""
        return {"input": obj.params.get("input", {}), "spec": obj.params.get("spec", {})}

    def get_url(self, obj: Operation) -> str:
        return reverse("api:tag-operation-detail", kwargs={"pk": obj.pk})

    def get_can_undo(self, obj: Operation) -> bool:
        return operation_can_undo(obj)

    def get_redone_by(self, obj: Operation) -> int | None:
        undone_by = obj.undone_by
        return undone_by.undone_by_id if undone_by is not None else None


def sample_body(sample: Any) -> dict[str, Any]:
    body = sample.as_dict()
    body["thumbnail_url"] = (
        reverse("api:media-thumbnail", kwargs={"pk": sample.item_id}) if sample.has_thumbnail else None
    )
    body["url"] = reverse("api:media-detail", kwargs={"pk": sample.item_id})
    return body


def preview_body(preview: Preview) -> dict[str, Any]:
    """The dry-run answer: counts per tag, totals, warnings and before/after samples."""
    counts = preview.counts
    return {
        "operation": OperationOutputSerializer(preview.operation).data,
        "mode": preview.mode,
        "matched_items": counts.get("matched_items", 0),
        "items_changing": counts.get("items_changing", 0),
        "changes": counts.get("changes", 0),
        "sets_created": counts.get("sets_created", 0),
        "seeded": counts.get("seeded", 0),
        "tags": counts.get("tags", {}),
        "warnings": preview.warnings,
        "samples": [sample_body(s) for s in preview.samples],
    }


def accepted_job_body(job: Any) -> dict[str, Any]:
    return dict(JobOutputSerializer(job).data)


class PreviewOutputSerializer(serializers.Serializer):
    """Documentation shape of `preview_body`."""

    operation = OperationOutputSerializer()
    mode = serializers.ChoiceField(choices=["sync", "job"])
    matched_items = serializers.IntegerField()
    items_changing = serializers.IntegerField()
    changes = serializers.IntegerField()
    sets_created = serializers.IntegerField()
    seeded = serializers.IntegerField()
    tags = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    warnings = serializers.ListField(child=serializers.DictField())
    samples = serializers.ListField(child=serializers.DictField())
    job = JobOutputSerializer(required=False)


class OperationResultOutputSerializer(serializers.Serializer):
    """Documentation shape of apply and undo answers (job only when queued, HTTP 202)."""

    operation = OperationOutputSerializer()
    job = JobOutputSerializer(required=False)
