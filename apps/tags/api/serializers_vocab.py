"""Serializers for tag types, tag templates (vocabularies) and tags: shape and validate only."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from rest_framework import serializers

from apps.core.api import int_field
from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.selectors.autocomplete import AUTOCOMPLETE_MAX
from apps.tags.selectors.vocabularies import TAG_ORDERS
from apps.tags.services.vocabularies import WORD_SEPARATORS
from apps.tags.services.vocabulary_io import CATEGORY_SCHEMES, USAGE_SCOPES

# --- tag types -------------------------------------------------------------------------------------


class TagTypeOutputSerializer(serializers.ModelSerializer):
    default_dropout_rate = serializers.SerializerMethodField()
    is_default = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = TagType
        fields = [
            "id",
            "key",
            "name",
            "short_keys",
            "color",
            "display_order",
            "caption_order",
            "caption_zone",
            "pinned",
            "droppable",
            "shuffleable",
            "default_dropout",
            "default_dropout_rate",
            "exported",
            "max_per_item",
            "is_default",
            "url",
            "created_at",
            "updated_at",
        ]

    def get_default_dropout_rate(self, obj: TagType) -> float:
        return obj.default_dropout / 10000

    def get_is_default(self, obj: TagType) -> bool:
        return bool(obj.is_default_key)

    def get_url(self, obj: TagType) -> str:
        return reverse("api:tag-type-detail", kwargs={"pk": obj.pk})


class TagTypeInputSerializer(serializers.Serializer):
    """Create (key and name required) or PATCH (any subset)."""

    key = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=64)
    short_keys = serializers.CharField(max_length=64, required=False, allow_blank=True)
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)
    display_order = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    caption_order = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    caption_zone = serializers.ChoiceField(choices=TagType.Zone.choices, required=False)
    pinned = serializers.BooleanField(required=False)
    droppable = serializers.BooleanField(required=False)
    shuffleable = serializers.BooleanField(required=False)
    default_dropout = serializers.IntegerField(
        min_value=0, max_value=10000, required=False, help_text="1/10000 (1000 = 10 %)"
    )
    exported = serializers.BooleanField(required=False, help_text="False: internal, never in captions")
    max_per_item = serializers.IntegerField(min_value=1, max_value=32767, required=False, allow_null=True)
    is_default = serializers.BooleanField(required=False)


# --- tag templates (vocabularies) --------------------------------------------------------------------


class VocabularyOutputSerializer(serializers.ModelSerializer):
    # Plain text, not an enum: one `kind` enum (in the input) keeps OpenAPI enum names unique.
    kind = serializers.CharField(read_only=True, help_text="booru | natural_language | custom")
    default_type: serializers.SlugRelatedField[TagType] = serializers.SlugRelatedField(
        slug_field="key", read_only=True, allow_null=True
    )
    is_default = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    export_url = serializers.SerializerMethodField()

    class Meta:
        model = Vocabulary
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "policy",
            "case",
            "word_separator",
            "max_length",
            "default_type",
            "default_tagger_threshold",
            "is_default",
            "url",
            "export_url",
            "created_at",
            "updated_at",
        ]

    def get_is_default(self, obj: Vocabulary) -> bool:
        return bool(obj.is_default_key)

    def get_url(self, obj: Vocabulary) -> str:
        return reverse("api:tag-template-detail", kwargs={"pk": obj.pk})

    def get_export_url(self, obj: Vocabulary) -> str:
        return reverse("api:tag-template-export", kwargs={"pk": obj.pk})


class VocabularyInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Vocabulary.Kind.choices, required=False)
    policy = serializers.ChoiceField(choices=Vocabulary.Policy.choices, required=False)
    case = serializers.ChoiceField(choices=Vocabulary.Case.choices, required=False)
    word_separator = serializers.ChoiceField(choices=list(WORD_SEPARATORS.items()), required=False)
    max_length = serializers.IntegerField(min_value=1, max_value=200, required=False)
    default_type = serializers.SlugRelatedField(
        slug_field="key", queryset=TagType.objects.all(), required=False, allow_null=True
    )
    default_tagger_threshold = serializers.IntegerField(min_value=0, max_value=10000, required=False)
    is_default = serializers.BooleanField(required=False)


class VocabularyImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV: name,type,count,aliases (header optional)")
    scheme = serializers.ChoiceField(
        choices=["auto", *CATEGORY_SCHEMES], default="auto", help_text="How to read category numbers"
    )


class VocabularyBuildInputSerializer(serializers.Serializer):
    source = serializers.SlugRelatedField(  # type: ignore[assignment]  # a field, not Field.source
        slug_field="slug",
        queryset=Vocabulary.objects.all(),
        required=False,
        help_text="Default: the default vocabulary",
    )
    scope = serializers.ChoiceField(choices=list(USAGE_SCOPES.items()), default="effective")
    min_count = int_field(min_value=1, default=1)


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    reason = serializers.CharField()
    value = serializers.CharField()


class ImportResultOutputSerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    aliases_created = serializers.IntegerField()
    aliases_existing = serializers.IntegerField()
    aliases_activated = serializers.IntegerField()
    aliases_pending = serializers.IntegerField()
    scheme = serializers.CharField()
    errors = ImportErrorSerializer(many=True)  # type: ignore[assignment]  # output only
    errors_total = serializers.IntegerField()
    errors_truncated = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())


# --- tags ----------------------------------------------------------------------------------------------


class TagOutputSerializer(serializers.ModelSerializer):
    vocabulary: serializers.SlugRelatedField[Vocabulary] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    type: serializers.SlugRelatedField[TagType] = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    type_name = serializers.CharField(source="type.name", read_only=True)
    type_color = serializers.CharField(source="type.color", read_only=True)
    alias_of = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Tag
        fields = [
            "id",
            "vocabulary",
            "name",
            "display_name",
            "type",
            "type_name",
            "type_color",
            "media_count",
            "is_deprecated",
            "keep_underscore",
            "alias_of",
            "url",
            "created_at",
            "updated_at",
        ]

    def get_alias_of(self, obj: Tag) -> str | None:
        """The ideal tag's name when this tag is an active alias antecedent."""
        try:
            return obj.resolution.ideal_tag.name
        except ObjectDoesNotExist:
            return None

    def get_url(self, obj: Tag) -> str:
        return reverse("api:tag-detail", kwargs={"pk": obj.pk})


class TagCreateInputSerializer(serializers.Serializer):
    vocabulary = serializers.SlugRelatedField(
        slug_field="slug", queryset=Vocabulary.objects.all(), required=False, help_text="Default: the default"
    )
    name = serializers.CharField(max_length=400, trim_whitespace=False)
    type = serializers.SlugRelatedField(slug_field="key", queryset=TagType.objects.all(), required=False)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    keep_underscore = serializers.BooleanField(required=False, default=False)


class TagUpdateInputSerializer(serializers.Serializer):
    type = serializers.SlugRelatedField(slug_field="key", queryset=TagType.objects.all(), required=False)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_deprecated = serializers.BooleanField(required=False)
    keep_underscore = serializers.BooleanField(required=False)


class TagAutocompleteInputSerializer(serializers.Serializer):
    q = serializers.CharField(max_length=200, trim_whitespace=False, allow_blank=True)
    vocab = serializers.SlugField(required=False)
    type = serializers.SlugField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=AUTOCOMPLETE_MAX, default=10)


class TagSuggestionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    label = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.label
        help_text="`antecedent → ideal` for aliases"
    )
    type = serializers.CharField()
    type_name = serializers.CharField()
    type_color = serializers.CharField()
    media_count = serializers.IntegerField()
    match = serializers.ChoiceField(choices=["prefix", "word", "fuzzy"])
    antecedent = serializers.BooleanField()
    ideal = serializers.DictField(allow_null=True)


class TagListQuerySerializer(serializers.Serializer):
    order = serializers.ChoiceField(choices=list(TAG_ORDERS.items()), default="count")
    cursor = serializers.CharField(required=False, allow_blank=True)
    page_size = serializers.IntegerField(min_value=1, max_value=200, default=50)
