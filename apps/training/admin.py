"""Admin for the training app (docs/training.md#admin). Sessions, their parts, versions, TI sets
and exports are read-only here: a save must go through the services (checks, a new version, a
queued job), which the API and the pages call. Base-model profiles stay editable, through the
same service checks as the API (a bad value is a form error, nothing is saved)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.exceptions import DomainError
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
from apps.training.services import base_models


class ReadOnly:
    """View-only in the admin (the services own every write)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BaseModelProfileForm(forms.ModelForm):
    """Runs services.base_models.base_model_check on the cleaned values: the API's 400s become
    errors on the field they name (or on the form)."""

    class Meta:
        model = BaseModelProfile
        fields = list(base_models.FIELDS)

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        out = {name: data[name] for name in base_models.FIELDS if name in self.fields and name in data}
        for name in ("vocabulary", "mapping_profile"):
            if name in out:
                out[name] = out[name].pk if out[name] is not None else None
        return out

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        profile = self.instance if self.instance.pk else None
        try:
            base_models.base_model_check(profile=profile, **self.service_fields())
        except DomainError as err:
            named = [f for f in err.details.get("fields", {}) if f in self.fields]
            if named:
                for name in named:
                    self.add_error(name, forms.ValidationError(err.message, code=err.code))
            else:
                raise forms.ValidationError(err.message, code=err.code) from err
        return data


@admin.register(BaseModelProfile)
class BaseModelProfileAdmin(admin.ModelAdmin):
    form = BaseModelProfileForm
    list_display = ["slug", "name", "kind", "family", "resolution", "seeded"]
    list_filter = ["kind", "family", "seeded"]
    search_fields = ["slug", "name"]
    readonly_fields = ["seeded"]
    raw_id_fields = ["vocabulary", "mapping_profile"]
    actions: list[Any] = []  # bulk delete would skip the service's in-use and shipped checks

    def save_model(self, request: HttpRequest, obj: BaseModelProfile, form: Any, change: bool) -> None:
        fields = form.service_fields()
        if change:
            base_models.base_model_update(profile=obj, **fields)
            obj.refresh_from_db()
        else:
            created = base_models.base_model_create(**fields)
            obj.pk, obj._state.adding = created.pk, False
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: BaseModelProfile) -> None:
        try:
            base_models.base_model_delete(profile=obj)
        except DomainError as err:
            self.message_user(request, err.message, level=messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BaseModelProfile]) -> None:
        for profile in queryset:
            self.delete_model(request, profile)


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
