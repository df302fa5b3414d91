"""Admin for the training app (docs/training.md#admin). Sessions, their parts, versions, TI sets
and exports are read-only here: a save must go through the services (checks, a new version, a
queued job), which the API and the pages call. Base-model profiles stay editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.training.models import (
    BaseModelProfile,
    CaptionTypePolicy,
    DescriptionSetWeight,
    SampleDefinition,
    TextualInversion,
    TrainingExport,
    TrainingSession,
    TrainingSessionDataset,
    TrainingSessionVersion,
)


class ReadOnly:
    """View-only in the admin (the services own every write)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BaseModelProfile)
class BaseModelProfileAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "family", "resolution", "seeded"]
    list_filter = ["kind", "family", "seeded"]
    search_fields = ["slug", "name"]
    readonly_fields = ["seeded"]
    raw_id_fields = ["vocabulary", "mapping_profile"]


class TrainingSessionDatasetInline(ReadOnly, admin.TabularInline):
    model = TrainingSessionDataset
    extra = 0
    raw_id_fields = ["dataset", "subset", "group", "snapshot"]


class CaptionTypePolicyInline(ReadOnly, admin.TabularInline):
    model = CaptionTypePolicy
    extra = 0


class DescriptionSetWeightInline(ReadOnly, admin.TabularInline):
    model = DescriptionSetWeight
    extra = 0


class SampleDefinitionInline(ReadOnly, admin.TabularInline):
    model = SampleDefinition
    extra = 0


@admin.register(TrainingSession)
class TrainingSessionAdmin(ReadOnly, admin.ModelAdmin):
    """Read-only: edits go through the pages or the API (checks and a version bump)."""

    list_display = ["name", "slug", "base_model", "method", "version", "updated_at"]
    list_filter = ["method", "base_model"]
    search_fields = ["name", "slug"]
    list_select_related = ["base_model"]
    readonly_fields = ["version", "created_by"]
    raw_id_fields = ["mapping_profile"]
    inlines = [
        TrainingSessionDatasetInline,
        CaptionTypePolicyInline,
        DescriptionSetWeightInline,
        SampleDefinitionInline,
    ]


@admin.register(TrainingSessionDataset)
class TrainingSessionDatasetAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "position", "dataset", "subset", "group", "role", "repeats"]
    raw_id_fields = ["session", "dataset", "subset", "group", "snapshot"]


@admin.register(CaptionTypePolicy)
class CaptionTypePolicyAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "tag_type", "zone", "zone_order", "drop_rate", "atomic"]
    raw_id_fields = ["session"]


@admin.register(DescriptionSetWeight)
class DescriptionSetWeightAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "name", "weight"]
    raw_id_fields = ["session"]


@admin.register(SampleDefinition)
class SampleDefinitionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "position", "prompt", "width", "height"]
    raw_id_fields = ["session"]


@admin.register(TrainingSessionVersion)
class TrainingSessionVersionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["session", "number", "created_at"]
    raw_id_fields = ["session", "created_by"]
    readonly_fields = ["session", "number", "frozen", "created_by", "created_at"]


@admin.register(TextualInversion)
class TextualInversionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["name", "token", "base_model", "version"]
    search_fields = ["name", "token"]
    raw_id_fields = ["dataset", "subset"]
    readonly_fields = ["version", "created_by"]


@admin.register(TrainingExport)
class TrainingExportAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["pk", "session", "textual_inversion", "session_version", "status", "target", "created_at"]
    list_filter = ["status", "target"]
    raw_id_fields = ["session", "textual_inversion", "job", "created_by"]
    readonly_fields = ["findings", "report_excerpt", "bundle_path", "bundle_size", "item_count"]
