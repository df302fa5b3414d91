from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.core.exceptions import DomainError
from apps.datasets.models import (
    Dataset,
    DatasetGroup,
    DatasetGroupEntry,
    DatasetItem,
    Requirements,
    Snapshot,
    SnapshotPart,
    Subset,
    SubsetItem,
)
from apps.datasets.services import requirements_check
from apps.datasets.services.datasets import REQUIREMENT_INTS, licence_notes_check

REQUIREMENT_FIELDS = [*REQUIREMENT_INTS, "formats", "modes", "alpha", "flatten_color"]


class RequirementsForm(forms.ModelForm):
    """The same contradiction checks as the API (docs/datasets.md#requirements)."""

    class Meta:
        model = Requirements
        fields = [*REQUIREMENT_FIELDS, "dataset", "required_tag_types"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            requirements_check(data)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


class RequirementsInline(admin.StackedInline):
    model = Requirements
    form = RequirementsForm
    filter_horizontal = ["required_tag_types"]
    extra = 0


class SubsetInline(admin.TabularInline):
    model = Subset
    extra = 0
    fields = ["name", "slug", "query"]


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "slug", "description", "purpose", "licence_notes", "query"]

    def clean_licence_notes(self) -> str:
        try:
            return licence_notes_check(self.cleaned_data.get("licence_notes") or "")
        except DomainError as err:
            raise forms.ValidationError(err.message) from err


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ["name", "slug", "query", "created_at"]
    search_fields = ["name", "slug", "licence_notes"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RequirementsInline, SubsetInline]


@admin.register(Subset)
class SubsetAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "query"]
    search_fields = ["name", "dataset__name"]
    list_select_related = ["dataset"]


@admin.register(DatasetItem)
class DatasetItemAdmin(admin.ModelAdmin):
    list_display = ["dataset", "media_item", "excluded", "added_at"]
    list_filter = ["excluded"]
    raw_id_fields = ["dataset", "media_item"]
    list_select_related = ["dataset"]
    show_full_result_count = False


@admin.register(SubsetItem)
class SubsetItemAdmin(admin.ModelAdmin):
    list_display = ["subset", "media_item", "excluded", "added_at"]
    list_filter = ["excluded"]
    raw_id_fields = ["subset", "media_item"]
    show_full_result_count = False


@admin.register(Requirements)
class RequirementsAdmin(admin.ModelAdmin):
    form = RequirementsForm
    list_display = ["dataset", "alpha", "min_width", "min_height"]
    filter_horizontal = ["required_tag_types"]


class SnapshotPartInline(admin.TabularInline):
    model = SnapshotPart
    extra = 0
    can_delete = False
    fields = ["position", "name", "slug", "query", "member_count"]
    readonly_fields = ["position", "name", "slug", "query", "member_count"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    """Snapshots are immutable (docs/datasets.md#snapshots): read-only here; freeze on the
    dataset page or with POST /api/data-sets/{id}/snapshots."""

    list_display = ["dataset", "number", "member_count", "note", "created_by", "created_at"]
    list_select_related = ["dataset", "created_by"]
    search_fields = ["dataset__name", "note"]
    readonly_fields = ["dataset", "number", "note", "query", "member_count", "created_by", "created_at"]
    inlines = [SnapshotPartInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DatasetGroupEntryInline(admin.TabularInline):
    model = DatasetGroupEntry
    fk_name = "group"
    extra = 0
    fields = ["position", "dataset", "child"]
    raw_id_fields = ["dataset", "child"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # appends go through the service (no cycles): the group page or the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DatasetGroup)
class DatasetGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [DatasetGroupEntryInline]
