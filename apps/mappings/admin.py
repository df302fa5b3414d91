"""Admin for the mapping models: read-only views (rules and profiles change through the
services behind the pages and API, so validation and version bumps always apply); deletion goes
through the services too. TagMappingTarget and MappingProfileStep have composite primary keys,
which the Django admin cannot register: they show on their rule's and profile's pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.exceptions import DomainError
from apps.mappings.models import MappedSet, MappingProfile, MappingSet, SuggestionRejection, TagMapping
from apps.mappings.services import profiles, rules


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MappingSet)
class MappingSetAdmin(ReadOnly):
    list_display = ("slug", "name", "source_vocabulary", "target_vocabulary", "version", "updated_at")
    search_fields = ("slug", "name")
    actions = ["delete_through_service"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found

    def delete_model(self, request: HttpRequest, obj: MappingSet) -> None:
        rules.mapping_set_delete(mapping_set=obj)

    @admin.action(description="Delete (refused while a profile uses the set)", permissions=["delete"])
    def delete_through_service(self, request: HttpRequest, queryset: QuerySet[MappingSet]) -> None:
        for mapping_set in queryset:
            try:
                rules.mapping_set_delete(mapping_set=mapping_set)
            except DomainError as err:
                self.message_user(request, err.message, messages.ERROR)


@admin.register(TagMapping)
class TagMappingAdmin(ReadOnly):
    list_display = (
        "mapping_set",
        "source_tag",
        "action",
        "requires_tag",
        "unless_tag",
        "priority",
        "targets_shown",
    )
    list_filter = ("action", "mapping_set")
    search_fields = ("source_tag__name",)
    list_select_related = ("mapping_set", "source_tag", "requires_tag", "unless_tag")
    readonly_fields = ("targets_shown",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="targets")
    def targets_shown(self, obj: TagMapping) -> str:
        return ", ".join(obj.targets.order_by("ord").values_list("target_tag__name", flat=True))


@admin.register(MappingProfile)
class MappingProfileAdmin(ReadOnly):
    list_display = ("slug", "name", "target_vocabulary", "input_scope", "unmapped_policy", "version")
    search_fields = ("slug", "name")
    readonly_fields = ("steps_shown",)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found

    def delete_model(self, request: HttpRequest, obj: MappingProfile) -> None:
        profiles.profile_delete(profile=obj)

    @admin.display(description="steps")
    def steps_shown(self, obj: MappingProfile) -> str:
        return " → ".join(obj.steps.order_by("ord").values_list("mapping_set__slug", flat=True))


@admin.register(MappedSet)
class MappedSetAdmin(ReadOnly):
    list_display = (
        "tagset_id",
        "profile",
        "media_item_id",
        "profile_version",
        "sets_version",
        "operation_id",
        "incomplete",
    )
    list_filter = ("profile", "incomplete")
    raw_id_fields = ("tagset", "media_item")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SuggestionRejection)
class SuggestionRejectionAdmin(ReadOnly):
    list_display = ("profile", "source_tag", "target_tag", "created_at")
    raw_id_fields = ("source_tag", "target_tag")
