from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.core.exceptions import DomainError
from apps.media import extensions, services
from apps.media.models import MediaItem, MediaSource, VideoFrame


class LineageFilter(admin.SimpleListFilter):
    """Originals, transform results or captured frames."""

    title = "lineage"
    parameter_name = "lineage"

    def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
        return [("original", "Originals"), ("derived", "Derived (transforms)"), ("frame", "Video frames")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[MediaItem]) -> QuerySet[MediaItem]:
        if self.value() == "original":
            return queryset.filter(parent__isnull=True, video__isnull=True)
        if self.value() == "derived":
            return queryset.filter(parent__isnull=False)
        if self.value() == "frame":
            return queryset.filter(kind=MediaItem.Kind.FRAME)
        return queryset


class MediaSourceInline(admin.TabularInline):
    model = MediaSource
    extra = 0
    can_delete = False
    fields = ["kind", "url", "archive_member", "original_filename", "import_job", "created_at"]
    readonly_fields = fields  # type: ignore[assignment]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MediaItemAdminForm(forms.ModelForm):
    """The focus box goes through the service's check (services.focus_clean): a bad box is a
    form error, nothing is saved."""

    class Meta:
        model = MediaItem
        fields = ["name", "artist", "source", "rating", "notes", "focus"]

    def clean_focus(self) -> Any:
        try:
            return services.focus_clean(self.cleaned_data.get("focus"))
        except DomainError as err:
            raise forms.ValidationError(err.message, code=err.code) from err


@admin.register(MediaItem)
class MediaItemAdmin(admin.ModelAdmin):
    form = MediaItemAdminForm
    list_display = [
        "id",
        "preview",
        "name",
        "kind",
        "format",
        "width",
        "height",
        "size_bytes",
        "artist",
        "parent",
        "video",
        "timestamp_ms",
        "created_at",
    ]
    list_select_related = ["parent", "video"]
    list_display_links = ["id", "name"]
    list_filter = [LineageFilter, "kind", "format", "rating", "animated", "has_alpha"]
    # `?parent__id__exact=<id>` and `?video__id__exact=<id>` narrow to one item's children/frames.
    search_fields = ["=id", "name", "=sha256", "=artist", "=site", "=parent__id", "=video__id"]
    show_full_result_count = False
    list_per_page = 100
    inlines = [MediaSourceInline]
    readonly_fields = [
        "preview",
        "kind",
        "sha256",
        "storage_key",
        "thumbnail_key",
        "format",
        "mime_type",
        "size_bytes",
        "width",
        "height",
        "pixels",
        "ratio_milli",
        "mode",
        "bit_depth",
        "has_alpha",
        "animated",
        "frame_count",
        "duration_ms",
        "fps_milli",
        "codec",
        "phash",
        "parent",
        "recipe",
        "video",
        "timestamp_ms",
        "frame_index",
        "box_x",
        "box_y",
        "box_w",
        "box_h",
        "added_by",
        "created_at",
        "updated_at",
        "source_hash",
        "site",
        "phash_b0",
        "phash_b1",
        "phash_b2",
        "phash_b3",
        "phash_b4",
    ]
    fields = [
        "preview",
        "name",
        "artist",
        "source",
        "rating",
        "notes",
        "focus",
        *[f for f in readonly_fields if f != "preview"],
    ]
    actions = ["delete_with_files"]

    def get_actions(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bypasses the service: files would be orphaned
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # uploads go through the ingest service (Upload page or API)

    @admin.display(description="Preview")
    def preview(self, obj: MediaItem) -> str:
        if not obj.thumbnail_key:
            return "—"
        return format_html(
            '<img src="{}" style="max-height:64px;max-width:96px" alt="">',
            reverse("api:media-thumbnail", args=[obj.pk]),
        )

    def delete_model(self, request: HttpRequest, obj: MediaItem) -> None:
        services.media_item_delete(item=obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[MediaItem], search_term: str
    ) -> tuple[QuerySet[MediaItem], bool]:
        """`q:<tag query>` in the search box runs the query language (first 10,000 matches)."""
        if not search_term.startswith("q:"):
            return super().get_search_results(request, queryset, search_term)
        query = search_term[2:]
        try:
            ids = extensions.query_ids(q=query, viewer=request.user, base=queryset, max_ids=10_000)
        except DomainError as err:
            where = ""
            if (position := err.details.get("position")) is not None:
                where = f" (at position {position}: {err.details.get('token', '')!r})"
            self.message_user(request, f"{err.message}{where}", level=messages.ERROR)
            return queryset.none(), False
        return queryset.filter(pk__in=ids), False

    @admin.action(description="Delete selected items with their files", permissions=["delete"])
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[MediaItem]) -> None:
        try:
            count = services.media_items_delete(ids=list(queryset.values_list("pk", flat=True)))
        except DomainError as err:
            self.message_user(request, err.message, level=messages.ERROR)
            return
        self.message_user(request, f"Deleted {count} items and their files.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        services.media_item_update_metadata(item=obj, fields=form.changed_data)
        if "focus" in form.changed_data:
            services.media_item_set_focus(item=obj, focus=form.cleaned_data["focus"])


@admin.register(VideoFrame)
class VideoFrameAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "video",
        "timestamp_ms",
        "frame_index",
        "crop_x",
        "crop_y",
        "crop_w",
        "crop_h",
        "media_item",
        "extraction_job",
    ]
    list_select_related = ["video", "media_item"]
    search_fields = ["=video__id", "=media_item__id"]
    raw_id_fields = ["video", "media_item", "extraction_job"]
    show_full_result_count = False
    readonly_fields = [
        "video",
        "media_item",
        "frame_index",
        "timestamp_ms",
        "pts_time",
        "crop_x",
        "crop_y",
        "crop_w",
        "crop_h",
        "extraction_job",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # frames are captured by jobs (item page or API), never typed in

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
