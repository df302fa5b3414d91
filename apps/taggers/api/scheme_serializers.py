"""Serializers of the tagging-scheme API (docs/api.md#tagging-schemes)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import IdField
from apps.taggers.models import SchemeRun, SchemeSchedule, StepRun, TaggingScheme
from apps.taggers.selectors.schemes import crontab_text
from apps.taggers.services.scheme_runs import EXPLICIT_MAX


class DefinitionField(serializers.JSONField):
    """The parsed definition as it came: its validation (NaN and Infinity included) is the
    scheme service's, whose 400 names the step (DRF's check would name none)."""

    def to_internal_value(self, data: Any) -> Any:
        if getattr(data, "is_json_string", False):  # a form field: JSON text
            return super().to_internal_value(data)
        return data


class SchemeInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    definition = DefinitionField(help_text='{"steps": [{"key", "tagger", "version", "input", …}]}')


class SchemeOutputSerializer(serializers.ModelSerializer):
    definition = serializers.SerializerMethodField()
    definition_sha256 = serializers.SerializerMethodField()

    class Meta:
        model = TaggingScheme
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "definition",
            "definition_sha256",
            "created_at",
            "updated_at",
        ]

    def get_definition(self, obj: TaggingScheme) -> dict[str, Any] | None:
        return obj.current_definition.body if obj.current_definition else None

    def get_definition_sha256(self, obj: TaggingScheme) -> str:
        return obj.current_definition.sha256 if obj.current_definition else ""


class SchemeRunInputSerializer(serializers.Serializer):
    selection = serializers.ChoiceField(choices=SchemeRun.Selection.choices, default=SchemeRun.Selection.ALL)
    item_ids = serializers.ListField(child=IdField(), required=False, max_length=EXPLICIT_MAX)
    q = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    force = serializers.BooleanField(default=False)


class StepRunOutputSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="step_key")
    version = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = StepRun
        fields = ["key", "status", "version", "counts", "error", "job", "progress"]

    def get_version(self, obj: StepRun) -> dict[str, int] | None:
        v = obj.resolved_version
        return {"id": v.pk, "tagger": v.tagger_id, "number": v.number} if v else None

    def get_progress(self, obj: StepRun) -> dict[str, int] | None:
        job = obj.job
        return {"done": job.progress_done, "total": job.progress_total} if job else None


class RunOutputSerializer(serializers.ModelSerializer):
    definition_sha256 = serializers.CharField(source="definition.sha256")
    steps = StepRunOutputSerializer(many=True, read_only=True)

    class Meta:
        model = SchemeRun
        fields = [
            "id",
            "scheme",
            "definition_sha256",
            "selection",
            "query",
            "params",
            "status",
            "counts",
            "job",
            "steps",
            "created_at",
            "started_at",
            "finished_at",
        ]


# A schedule re-runs over everything or over what is new (never an explicit list).
SCHEDULE_SELECTIONS = [
    (SchemeRun.Selection.NEW_SINCE_LAST.value, SchemeRun.Selection.NEW_SINCE_LAST.label),
    (SchemeRun.Selection.ALL.value, SchemeRun.Selection.ALL.label),
]


class ScheduleInputSerializer(serializers.Serializer):
    crontab = serializers.JSONField(help_text='"m h dow dom moy" text, or an object with those fields')
    selection = serializers.ChoiceField(
        choices=SCHEDULE_SELECTIONS, default=SchemeRun.Selection.NEW_SINCE_LAST
    )
    enabled = serializers.BooleanField(default=True)


class ScheduleOutputSerializer(serializers.ModelSerializer):
    crontab = serializers.SerializerMethodField()

    class Meta:
        model = SchemeSchedule
        fields = ["id", "scheme", "crontab", "selection", "enabled", "next_run_at", "last_run", "created_at"]

    def get_crontab(self, obj: SchemeSchedule) -> str:
        return crontab_text(obj)
