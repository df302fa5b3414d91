"""Admin for every taggers model (docs/taggers.md#admin). Embeddings, regions, captions, runs and
versions are written by jobs and shown read-only; schedules and threshold overrides are edited
here as well as on the pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.taggers import models


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.EmbeddingSpace)
class EmbeddingSpaceAdmin(ReadOnly):
    list_display = ("name", "source_kind", "model_ref", "dim", "has_text_tower", "created_at")
    search_fields = ("name", "model_ref")
    list_filter = ("source_kind",)


@admin.register(models.ImageEmbedding)
class ImageEmbeddingAdmin(ReadOnly):
    list_display = ("id", "item_id", "space")
    list_filter = ("space",)
    raw_id_fields = ("item",)
    show_full_result_count = False


@admin.register(models.RegionEmbedding)
class RegionEmbeddingAdmin(ReadOnly):
    list_display = ("id", "region_id", "space")
    list_filter = ("space",)
    raw_id_fields = ("region",)
    show_full_result_count = False


@admin.register(models.TextQuery)
class TextQueryAdmin(ReadOnly):
    list_display = ("id", "space", "text", "error", "created_at", "used_at")
    list_filter = ("space",)
    search_fields = ("text",)


class TaggerVersionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = models.TaggerVersion
    fields = ("number", "status", "space", "artifact_sha256", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Tagger)
class TaggerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "kind", "target", "network_type", "vocabulary", "active_version", "owner")
    list_filter = ("kind", "target")
    search_fields = ("name", "description")
    raw_id_fields = ("owner", "active_version")
    # Promotion and rollback keep these (docs/taggers.md#re-scoring-on-promotion).
    readonly_fields = ("active_version", "previous_version", "rescore_job", "rescore_skipped")
    inlines = [TaggerVersionInline]


@admin.register(models.TaggerVersion)
class TaggerVersionAdmin(ReadOnly):
    list_display = ("tagger", "number", "status", "space", "created_at")
    list_filter = ("status",)
    search_fields = ("tagger__name",)


@admin.register(models.TaggerThreshold)
class TaggerThresholdAdmin(ReadOnly):
    list_display = ("version", "tag", "threshold", "method")
    raw_id_fields = ("version", "tag")
    show_full_result_count = False


@admin.register(models.ThresholdOverride)
class ThresholdOverrideAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("version", "tag", "threshold", "set_by", "updated_at")
    raw_id_fields = ("version", "tag", "set_by")


@admin.register(models.ReviewMark)
class ReviewMarkAdmin(ReadOnly):
    list_display = ("item_id", "tag_type", "marked_by", "created_at")
    list_filter = ("tag_type",)
    raw_id_fields = ("item", "marked_by")
    show_full_result_count = False


@admin.register(models.Region)
class RegionAdmin(ReadOnly):
    list_display = ("id", "item_id", "tagger_version", "label", "score", "x0", "y0", "x1", "y1")
    raw_id_fields = ("item", "tagger_version")
    show_full_result_count = False


@admin.register(models.Caption)
class CaptionAdmin(ReadOnly):
    list_display = ("id", "item_id", "region_key", "tagger_version", "text")
    raw_id_fields = ("item", "region", "tagger_version")
    search_fields = ("text",)
    show_full_result_count = False


@admin.register(models.TaggingScheme)
class TaggingSchemeAdmin(ReadOnly):
    list_display = ("name", "owner", "current_definition", "updated_at")
    search_fields = ("name",)


@admin.register(models.SchemeDefinition)
class SchemeDefinitionAdmin(ReadOnly):
    list_display = ("scheme", "sha256", "created_at")


class StepRunInline(admin.TabularInline):  # type: ignore[type-arg]
    model = models.StepRun
    fields = ("step_key", "resolved_version", "status", "counts", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.SchemeRun)
class SchemeRunAdmin(ReadOnly):
    list_display = ("id", "scheme", "selection", "status", "created_at", "finished_at")
    list_filter = ("status", "selection")
    inlines = [StepRunInline]


@admin.register(models.StepRun)
class StepRunAdmin(ReadOnly):
    list_display = ("run", "step_key", "resolved_version", "status")
    list_filter = ("status",)


@admin.register(models.SchemeSchedule)
class SchemeScheduleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("scheme", "crontab", "selection", "enabled", "next_run_at", "last_run")
    list_filter = ("enabled", "selection")
    raw_id_fields = ("last_run",)


@admin.register(models.StepOutput)
class StepOutputAdmin(ReadOnly):
    list_display = ("tagger_version", "item", "fingerprint", "created_at")
    raw_id_fields = ("item",)


@admin.register(models.LabelChanges)
class LabelChangesAdmin(ReadOnly):
    """Debounced-retrain counters (docs/taggers.md#debounced-retraining); written by the app only."""

    list_display = ("tagger", "changes", "due_at", "updated_at")
    list_filter = ("due_at",)
