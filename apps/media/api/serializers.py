from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api import IdField
from apps.core.links import reverse_pk
from apps.media.models import MediaItem, VideoFrame

# DRF fields whose output is the model column's value itself (str, int, bool, a choice's value,
# JSON as stored, a foreign key's id): `to_representation` copies those without DRF's calls.
_AS_STORED = (
    serializers.CharField,
    serializers.IntegerField,
    serializers.BooleanField,
    serializers.ChoiceField,
    serializers.JSONField,
    serializers.PrimaryKeyRelatedField,
)


def _fast_plan(fields: Any) -> list[tuple[str, str, serializers.Field | None]]:
    """(output name, model attribute, None) for fields copied as stored, else (name, "", field)."""
    concrete = {f.name: f for f in MediaItem._meta.concrete_fields}
    plan: list[tuple[str, str, serializers.Field | None]] = []
    for field in fields:
        if field.write_only:
            continue
        column = concrete.get(field.source)
        as_stored = isinstance(field, _AS_STORED) and not getattr(field, "binary", False)
        if column is not None and as_stored and type(field) is not serializers.ManyRelatedField:
            plan.append((field.field_name, column.attname, None))
        else:
            plan.append((field.field_name, "", field))
    return plan


class MediaItemOutputSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True, allow_null=True)
    fps = serializers.FloatField(read_only=True, allow_null=True)
    box = serializers.SerializerMethodField()
    focus = serializers.ListField(child=serializers.FloatField(), allow_null=True, read_only=True)
    url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = MediaItem
        fields = [
            "id",
            "kind",
            "name",
            "sha256",
            "format",
            "mime_type",
            "width",
            "height",
            "mode",
            "bit_depth",
            "has_alpha",
            "animated",
            "frame_count",
            "size_bytes",
            "duration",
            "fps",
            "codec",
            "source",
            "site",
            "artist",
            "rating",
            "parent",
            "recipe",
            "video",
            "timestamp_ms",
            "frame_index",
            "box",
            "focus",
            "created_at",
            "url",
            "file_url",
            "thumbnail_url",
            "page_url",
        ]

    def to_representation(self, instance: MediaItem) -> dict[str, Any]:
        """DRF's output, with the plain model columns copied as they are: a page of 100 items
        spent about as long in DRF's per-field calls as in its search (docs/api.md#search)."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = _fast_plan(self.fields.values())
        out: dict[str, Any] = {}
        for name, attname, field in plan:
            if field is None:
                out[name] = getattr(instance, attname)
            else:
                value = field.get_attribute(instance)
                out[name] = None if value is None else field.to_representation(value)
        return out

    def get_box(self, obj: MediaItem) -> dict[str, int] | None:
        if obj.box_w is None:
            return None
        return {"x": obj.box_x, "y": obj.box_y, "w": obj.box_w, "h": obj.box_h}  # type: ignore[dict-item]

    def get_url(self, obj: MediaItem) -> str:
        return reverse_pk("api:media-detail", obj.pk)

    def get_file_url(self, obj: MediaItem) -> str:
        return reverse_pk("api:media-file", obj.pk)

    def get_thumbnail_url(self, obj: MediaItem) -> str | None:
        if not obj.thumbnail_key:
            return None
        return reverse_pk("api:media-thumbnail", obj.pk)

    def get_page_url(self, obj: MediaItem) -> str:
        return obj.get_absolute_url()


class MediaUploadOutputSerializer(MediaItemOutputSerializer):
    duplicate = serializers.BooleanField(read_only=True)

    class Meta(MediaItemOutputSerializer.Meta):
        fields = [*MediaItemOutputSerializer.Meta.fields, "duplicate"]


@extend_schema_field(
    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4, "nullable": True}
)
class FocusField(serializers.JSONField):
    """Taken as sent: services.focus_clean checks it (no coercion of strings or booleans here)."""


class MediaItemPatchSerializer(serializers.Serializer):
    """PATCH /api/media/{id}: the focus box (services.focus_clean checks it; null clears it)."""

    focus = FocusField(
        allow_null=True,
        help_text="[x0, y0, x1, y1] as fractions of the picture (0–1, x0 < x1, y0 < y1); null clears it",
    )


class TagListField(serializers.ListField):
    """A list of tag names; multipart forms may repeat the field or separate names by commas."""

    child = serializers.CharField(allow_blank=False, trim_whitespace=False, max_length=1000)

    def get_value(self, dictionary: Any) -> Any:
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:
            values = dictionary.getlist(self.field_name)
            return [part for value in values for part in str(value).split(",") if part.strip()]
        return super().get_value(dictionary)


class MediaMetadataInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
        required=False, allow_blank=True, trim_whitespace=False
    )
    artist = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tags = TagListField(required=False, max_length=1000)
    tag_source = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class MediaUploadInputSerializer(MediaMetadataInputSerializer):
    file = serializers.FileField(required=False, allow_empty_file=True)
    url = serializers.CharField(required=False, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("file")) == bool(attrs.get("url")):
            raise serializers.ValidationError("Send exactly one of 'file' (multipart) or 'url'.")
        return attrs


class MediaUploadBulkItemSerializer(MediaMetadataInputSerializer):
    url = serializers.CharField(max_length=2000)


class MediaUploadBulkInputSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False)
    archive = serializers.FileField(required=False, allow_empty_file=True)
    urls = serializers.ListField(child=serializers.CharField(max_length=2000), required=False)
    items = serializers.ListField(child=serializers.DictField(), required=False)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source
        required=False, allow_blank=True, trim_whitespace=False
    )
    artist = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tags = TagListField(required=False, max_length=1000)
    tag_source = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class TransformBulkInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=IdField(), min_length=1, max_length=100_000)
    recipe = serializers.DictField()


class VideoFrameOutputSerializer(serializers.ModelSerializer):
    item = MediaItemOutputSerializer(source="media_item")
    box = serializers.SerializerMethodField()

    class Meta:
        model = VideoFrame
        fields = [
            "id",
            "frame_index",
            "timestamp_ms",
            "pts_time",
            "box",
            "extraction_job",
            "created_at",
            "item",
        ]

    def get_box(self, obj: VideoFrame) -> dict[str, int]:
        return {"x": obj.crop_x, "y": obj.crop_y, "w": obj.crop_w, "h": obj.crop_h}


class MediaSearchPageSerializer(serializers.Serializer):
    """The answer to `q=` (docs/api.md#search): one keyset page of the query language."""

    results = MediaItemOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    prev_cursor = serializers.CharField(allow_null=True)
    count = serializers.IntegerField(allow_null=True)
    count_exact = serializers.BooleanField()
    count_upper_bound = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.DictField())


class MediaListPageSerializer(serializers.Serializer):
    """The list without `q=`: one cursor page (docs/api.md#pagination)."""

    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = MediaItemOutputSerializer(many=True)
