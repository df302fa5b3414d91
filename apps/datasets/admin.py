from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetItem, Requirements, Subset, SubsetItem
from apps.datasets.services import requirements_check
from apps.datasets.services.datasets import REQUIREMENT_INTS

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


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "query", "created_at"]
    search_fields = ["name", "slug"]
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
