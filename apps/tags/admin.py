from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from apps.tags.models import Tag, TagSet, TagType, Vocabulary


@admin.register(TagType)
class TagTypeAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "name",
        "color",
        "display_order",
        "caption_zone",
        "pinned",
        "droppable",
        "exported",
    ]
    list_editable = ["display_order", "caption_zone", "pinned", "droppable", "exported"]


@admin.register(Vocabulary)
class VocabularyAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "policy", "case", "default_type"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "vocabulary", "type", "media_count", "is_deprecated"]
    list_filter = ["vocabulary", "type", "is_deprecated"]
    search_fields = ["name"]
    show_full_result_count = False
    list_select_related = ["vocabulary", "type"]
    readonly_fields = ["media_count"]


@admin.register(TagSet)
class TagSetAdmin(admin.ModelAdmin):
    list_display = ["id", "media_item", "kind", "slot", "origin_label", "assignment_count", "created_at"]
    list_filter = ["kind", "vocabulary"]
    search_fields = ["=media_item__id", "origin_label"]
    show_full_result_count = False
    raw_id_fields = ["media_item", "origin"]
    readonly_fields = [
        "media_item",
        "kind",
        "vocabulary",
        "slot",
        "origin",
        "origin_label",
        "tagger_model",
        "tagger_version",
        "assignment_count",
        "row_version",
        "created_by",
        "tag_list",
    ]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="Tags")
    def tag_list(self, obj: TagSet) -> str:
        rows = obj.assignments.filter(state=1).select_related("tag").order_by("position")
        return format_html_join(", ", "{} <small>({})</small>", ((a.tag.name, a.added_via) for a in rows))
