"""Request and response shapes of the intake API (docs/intake.md#api)."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api import IdField, int_field
from apps.datasets.services.members import MAX_IDS
from apps.intake.models import IntakeEntry


@extend_schema_field(OpenApiTypes.ANY)
class LooseField(serializers.Field):
    """A value the service checks itself (URL lists, frame plans, on-arrival choices); a JSON
    string from a form is decoded first."""

    def __init__(self, *, decode: bool = True, **kwargs: Any) -> None:
        self.decode = decode
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if self.decode and isinstance(data, str) and data.strip()[:1] in ("{", "["):
            try:
                return json.loads(data)
            except ValueError as exc:
                raise serializers.ValidationError("not valid JSON.") from exc
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class EntryInputSerializer(serializers.Serializer):
    """One planned entry; which fields apply depends on `kind` (docs/intake.md#entries)."""

    kind = serializers.ChoiceField(choices=IntakeEntry.Kind.choices)
    dataset = IdField()
    subset = IdField(required=False, allow_null=True)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    planned_count = int_field(required=False, allow_null=True)
    urls = LooseField(decode=False, required=False, help_text="URLs: a list, or text with one URL per line")
    archive = serializers.FileField(required=False, help_text="kind=archive: the zip (multipart)")
    folder = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        help_text="kind=folder: relative to the intake root",
    )
    video = IdField(required=False, allow_null=True, help_text="kind=video: a video item")
    frame_plan = LooseField(
        required=False, help_text="kind=video: a frame request, as media/{id}/frames takes"
    )
    query = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    on_arrival = LooseField(
        required=False, help_text='{"scheme": …, "taggers": […]}; recorded for the taggers'
    )


class EntryUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    planned_count = int_field(required=False)
    on_arrival = LooseField(required=False)


class BulkInputSerializer(serializers.Serializer):
    """A URL list as one entry, or one entry per URL (`split`)."""

    dataset = IdField()
    subset = IdField(required=False, allow_null=True)
    urls = LooseField(decode=False, help_text="A list of URLs, or text with one URL per line")
    split = serializers.BooleanField(required=False, default=False)
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    on_arrival = LooseField(required=False)


class ReviewInputSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=IdField(), required=False, max_length=MAX_IDS, help_text="Arrived items; all when absent"
    )


class EntryJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    outcome = serializers.CharField()
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj: Any) -> str:
        return reverse("api:job-detail", args=[obj.pk])


class EntryOutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="label", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    subset_name = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    added_percent = serializers.IntegerField(read_only=True)
    reviewed_percent = serializers.IntegerField(read_only=True)
    job = EntryJobSerializer(read_only=True, allow_null=True)
    frame_plan = LooseField(read_only=True)
    on_arrival = LooseField(read_only=True)

    class Meta:
        model = IntakeEntry
        fields = [
            "id",
            "kind",
            "title",
            "name",
            "dataset",
            "dataset_name",
            "subset",
            "subset_name",
            "notes",
            "planned_count",
            "summary",
            "archive_name",
            "folder",
            "video",
            "frame_plan",
            "query",
            "on_arrival",
            "state",
            "tagging",
            "error",
            "added_count",
            "reviewed_count",
            "failed_count",
            "added_percent",
            "reviewed_percent",
            "job",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_subset_name(self, obj: IntakeEntry) -> str | None:
        return obj.subset.name if obj.subset is not None else None

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    )
    def get_error(self, obj: IntakeEntry) -> dict[str, str] | None:
        return {"code": obj.error_code, "message": obj.error_message} if obj.error_code else None


class EntryDetailSerializer(EntryOutputSerializer):
    """One entry with its URL list (lists leave it out: it may hold thousands)."""

    urls = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(EntryOutputSerializer.Meta):
        fields = [*EntryOutputSerializer.Meta.fields, "urls"]
        read_only_fields = fields


class ProcessOutputSerializer(serializers.Serializer):
    entry = EntryDetailSerializer()
    job = serializers.DictField(allow_null=True)


class DatasetProgressSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    dataset_name = serializers.CharField()
    entries = serializers.IntegerField()
    planned = serializers.IntegerField()
    added = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    failed_inputs = serializers.IntegerField()
    failed_entries = serializers.IntegerField()
    fetching = serializers.IntegerField()
    added_percent = serializers.IntegerField()
    reviewed_percent = serializers.IntegerField()


class ProgressOutputSerializer(serializers.Serializer):
    datasets = DatasetProgressSerializer(many=True)


class ArrivalsOutputSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField())
