"""Serializers for tag sets, rules and descriptions."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import IdField, int_field
from apps.tags.models import Description, TagAlias, TagImplication, TagSet


class TagSetOutputSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="get_kind_display")
    vocabulary: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tags = serializers.SerializerMethodField()
    origin = serializers.SerializerMethodField()

    class Meta:
        model = TagSet
        fields = [
            "id",
            "media_item",
            "kind",
            "slot",
            "vocabulary",
            "origin_label",
            "origin",
            "tagger_model",
            "tagger_version",
            "assignment_count",
            "row_version",
            "created_at",
            "updated_at",
            "tags",
        ]

    def get_origin(self, obj: TagSet) -> dict[str, Any] | None:
        """Where a source set's file arrived from (upload, zip member or URL)."""
        origin = obj.origin
        if origin is None:
            return None
        return {
            "id": origin.pk,
            "kind": origin.kind,
            "url": origin.url,
            "archive_member": origin.archive_member,
            "original_filename": origin.original_filename,
            "created_at": origin.created_at,
        }

    def get_tags(self, obj: TagSet) -> list[dict[str, Any]]:
        rows = getattr(obj, "current_assignments", None)
        if rows is None:
            rows = obj.assignments.filter(state=1).select_related("tag", "tag__type").order_by("position")
        return [
            {
                "name": a.tag.name,
                "type": a.tag.type.key,
                "confidence": a.confidence,
                "added_via": a.added_via,
                "position": a.position,
                "entered": a.entered_tag or None,
                "actor": a.actor_id,
                "added_at": a.updated_at,
            }
            for a in rows
        ]


class TagListInputSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False, max_length=1000), max_length=1000
    )
    row_version = int_field(required=False, min_value=1)


class TagSetCreateInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["curated", "source"], default="source")
    tags = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), required=False, max_length=1000
    )
    tag_source = serializers.CharField(max_length=200, required=False)


class PromoteInputSerializer(serializers.Serializer):
    tags = serializers.ListField(child=serializers.CharField(), required=False, max_length=1000)
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)


class AliasOutputSerializer(serializers.ModelSerializer):
    antecedent = serializers.CharField(source="antecedent.name")
    consequent = serializers.CharField(source="consequent.name")
    vocabulary = serializers.CharField(source="vocabulary.slug")

    class Meta:
        model = TagAlias
        fields = [
            "id",
            "vocabulary",
            "antecedent",
            "consequent",
            "status",
            "reason",
            "created_by",
            "approved_by",
            "created_at",
            "updated_at",
        ]


class AliasInputSerializer(serializers.Serializer):
    antecedent = serializers.CharField(max_length=200)
    consequent = serializers.CharField(max_length=200)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
    activate = serializers.BooleanField(default=False)
    vocabulary = serializers.SlugField(
        required=False, help_text="Slug of the tag template the rule lives in; the default one if omitted."
    )


class ImplicationOutputSerializer(serializers.ModelSerializer):
    child = serializers.CharField(source="child.name")
    parent = serializers.CharField(source="parent.name")  # type: ignore[assignment]
    vocabulary = serializers.CharField(source="vocabulary.slug")

    class Meta:
        model = TagImplication
        fields = [
            "id",
            "vocabulary",
            "child",
            "parent",
            "status",
            "allow_cross_type",
            "reason",
            "created_by",
            "approved_by",
            "created_at",
            "updated_at",
        ]


class ImplicationInputSerializer(serializers.Serializer):
    child = serializers.CharField(max_length=200)
    parent = serializers.CharField(max_length=200)  # type: ignore[assignment]
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
    allow_cross_type = serializers.BooleanField(default=False)
    activate = serializers.BooleanField(default=False)
    vocabulary = serializers.SlugField(
        required=False, help_text="Slug of the tag template the rule lives in; the default one if omitted."
    )


class ImplicationImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="CSV of `child,parent` lines (or send `text`)")
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    vocabulary = serializers.SlugField(
        required=False, help_text="Slug of the tag template the rules go into; the default one if omitted."
    )
    activate = serializers.BooleanField(default=False, help_text="Activate them (rule approvers only)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("file") and not attrs.get("text"):
            raise serializers.ValidationError({"file": ["Send a file or text."]})
        return attrs


class RulesImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    message = serializers.CharField()


class ImplicationImportOutputSerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    activated = serializers.IntegerField()
    errors = RulesImportErrorSerializer(many=True)  # type: ignore[assignment]  # output only


class DescriptionOutputSerializer(serializers.ModelSerializer):
    box = serializers.SerializerMethodField()

    class Meta:
        model = Description
        fields = [
            "id",
            "media_item",
            "kind",
            "label",
            "text",
            "box",
            "set_kind",
            "added_via",
            "confidence",
            "model_name",
            "row_version",
            "actor",
            "created_at",
            "updated_at",
        ]

    def get_box(self, obj: Description) -> list[int] | None:
        return None if obj.box_w is None else [obj.box_x, obj.box_y, obj.box_w, obj.box_h]  # type: ignore[list-item]


class DescriptionInputSerializer(serializers.Serializer):
    media_item = IdField(required=False)
    kind = serializers.ChoiceField(choices=Description.Kind.values, default="whole")
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    text = serializers.CharField(max_length=10_000, trim_whitespace=False)
    box = serializers.ListField(
        child=int_field(), required=False, allow_null=True, min_length=4, max_length=4
    )
    row_version = int_field(required=False, min_value=1)


class TagSetAddInputSerializer(serializers.Serializer):
    """A new source set (tags + where they came from) or the item's curated set (kind=curated)."""

    kind = serializers.ChoiceField(choices=["source", "curated"], default="source")
    tags = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False), max_length=1000, required=False, default=list
    )
    tag_source = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "source":
            errors = {}
            if not attrs.get("tags"):
                errors["tags"] = ["A source set needs at least one tag."]
            if not attrs.get("tag_source"):
                errors["tag_source"] = ["Say where these tags came from (e.g. 'danbooru')."]
            if errors:
                raise serializers.ValidationError(errors)
        return attrs
