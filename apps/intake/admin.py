"""Intake admin: entries are planned on the queue page or the API (their checks need the
services); here staff read them, edit the plan, process, and delete, through the same services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.exceptions import DomainError
from apps.intake import services
from apps.intake.models import IntakeArrival, IntakeEntry, IntakeTagging

EDITABLE = ["title", "notes", "planned_count", "on_arrival"]


class IntakeEntryForm(forms.ModelForm):
    """The on-arrival choice gets the same shape check as the API."""

    class Meta:
        model = IntakeEntry
        fields = EDITABLE

    def clean_on_arrival(self) -> dict[str, Any]:
        try:
            return services.on_arrival_clean(self.cleaned_data.get("on_arrival"))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(IntakeEntry)
class IntakeEntryAdmin(admin.ModelAdmin):
    form = IntakeEntryForm
    list_display = [
        "id",
        "label",
        "kind",
        "dataset",
        "subset",
        "state",
        "tagging",
        "planned_count",
        "added_count",
        "reviewed_count",
        "failed_count",
    ]
    list_filter = ["state", "tagging", "kind"]
    search_fields = ["title", "notes", "dataset__name"]
    list_select_related = ["dataset", "subset"]
    raw_id_fields = ["dataset", "subset", "video", "job", "created_by"]
    show_full_result_count = False
    actions = ["process_entries"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in IntakeEntry._meta.fields if f.name not in EDITABLE]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # planned on the queue page or the API (URL, zip, folder and query checks)

    def save_model(self, request: HttpRequest, obj: IntakeEntry, form: Any, change: bool) -> None:
        services.intake_entry_update(
            entry=obj, **{name: form.cleaned_data[name] for name in EDITABLE if name in form.cleaned_data}
        )

    def delete_model(self, request: HttpRequest, obj: IntakeEntry) -> None:
        services.intake_entry_delete(entry=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[IntakeEntry]) -> None:
        for entry in queryset.order_by("pk"):
            try:
                services.intake_entry_delete(entry=entry)
            except DomainError as err:
                self.message_user(request, f"{entry}: {err.message}", messages.ERROR)

    @admin.action(description="Process (or retry) the selected entries", permissions=["change"])
    def process_entries(self, request: HttpRequest, queryset: QuerySet[IntakeEntry]) -> None:
        done = 0
        for entry in queryset.order_by("pk"):
            try:
                services.intake_entry_process(entry=entry, actor=request.user)
                done += 1
            except DomainError as err:
                self.message_user(request, f"{entry}: {err.message}", messages.WARNING)
        self.message_user(request, f"{done} entries processed.")


@admin.register(IntakeArrival)
class IntakeArrivalAdmin(admin.ModelAdmin):
    list_display = ["entry", "media_item", "reviewed", "added_at"]
    list_filter = ["reviewed"]
    raw_id_fields = ["entry", "media_item"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IntakeTagging)
class IntakeTaggingAdmin(admin.ModelAdmin):
    """On-arrival tagging runs of entries (docs/intake.md); written by the intake services only."""

    list_display = ["entry", "label", "scheme_run", "job", "started", "problem"]
    list_filter = ["started"]
    raw_id_fields = ["entry", "scheme_run", "job"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
