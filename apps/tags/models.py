"""Tag vocabularies, types, tags, and per-item tag sets with provenance (TAGS-AND-SEARCH.md §2)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel, BinaryCharField


class TagType(BaseModel):
    """A tag category: where its tags go in a caption and whether they may be dropped."""

    class Zone(models.TextChoices):
        PREFIX = "prefix", "Prefix"
        FLEX = "flex", "Flexible"
        SUFFIX = "suffix", "Suffix"

    key = models.SlugField(max_length=32, unique=True)
    short_keys = models.CharField(max_length=64, blank=True, help_text="Comma-separated aliases")
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=7, default="#6b7280")
    display_order = models.PositiveSmallIntegerField(default=100)
    caption_order = models.PositiveSmallIntegerField(default=100)
    caption_zone = models.CharField(max_length=8, choices=Zone.choices, default=Zone.FLEX)
    pinned = models.BooleanField(default=False)
    droppable = models.BooleanField(default=True)
    shuffleable = models.BooleanField(default=True)
    default_dropout = models.PositiveSmallIntegerField(default=0, help_text="1/10000")
    exported = models.BooleanField(default=True)
    max_per_item = models.PositiveSmallIntegerField(null=True, blank=True)
    is_default_key = models.BooleanField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["display_order", "id"]

    def __str__(self) -> str:
        return self.name


class Vocabulary(BaseModel):
    """A tag template: the tags a network knows and how names are written."""

    class Kind(models.TextChoices):
        BOORU = "booru", "Booru tags"
        NATURAL = "natural_language", "Natural language"
        CUSTOM = "custom", "Custom"

    class Policy(models.TextChoices):
        OPEN = "open", "Open (unknown tags are created)"
        CLOSED = "closed", "Closed (unknown tags are refused)"

    class Case(models.TextChoices):
        LOWER = "lower", "lower case"
        PRESERVE = "preserve", "as written"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.BOORU)
    policy = models.CharField(max_length=8, choices=Policy.choices, default=Policy.OPEN)
    case = models.CharField(max_length=8, choices=Case.choices, default=Case.LOWER)
    word_separator = models.CharField(max_length=1, default="_", blank=True)
    max_length = models.PositiveSmallIntegerField(default=170)
    default_type = models.ForeignKey(
        TagType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_tagger_threshold = models.PositiveSmallIntegerField(default=3500)
    # 1 on the default vocabulary, NULL elsewhere: a plain UNIQUE admits many NULLs.
    is_default_key = models.BooleanField(null=True, blank=True, unique=True)

    class Meta:
        verbose_name_plural = "vocabularies"

    def __str__(self) -> str:
        return self.name


class Tag(BaseModel):
    """One tag of a vocabulary; the name is stored normalised and compared byte-for-byte."""

    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="tags")
    name = BinaryCharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    type = models.ForeignKey(TagType, on_delete=models.PROTECT, related_name="tags")
    media_count = models.PositiveIntegerField(default=0)
    is_deprecated = models.BooleanField(default=False)
    keep_underscore = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vocabulary", "name"], name="tag_vocabulary_name"),
        ]
        indexes = [
            models.Index(fields=["vocabulary", "media_count"], name="tag_vocab_count"),
            models.Index(fields=["type", "media_count"], name="tag_type_count"),
        ]

    def __str__(self) -> str:
        return self.name


class TagSet(BaseModel):
    """One item's tags from one origin: source, curated, tagger or derived."""

    class Kind(models.IntegerChoices):
        SOURCE = 1, "source"
        CURATED = 2, "curated"
        TAGGER = 3, "tagger"
        DERIVED = 4, "derived"

    id = models.BigAutoField(primary_key=True)
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="tag_sets")
    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="+")
    # curated: ''; tagger: <model>@<version>; source: src:<origin id>; derived: profile:/video:
    slot = models.CharField(max_length=100, blank=True)
    origin = models.ForeignKey(
        "media.MediaSource", null=True, blank=True, on_delete=models.SET_NULL, related_name="tag_sets"
    )
    origin_label = models.CharField(
        max_length=200, blank=True, help_text="Where the tags came from, as the uploader said"
    )
    tagger_model = models.CharField(max_length=100, blank=True)
    tagger_version = models.CharField(max_length=50, blank=True)
    stored_threshold = models.PositiveSmallIntegerField(default=1000)
    assignment_count = models.PositiveIntegerField(default=0)
    row_version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["media_item", "kind", "vocabulary", "slot"], name="tagset_item_kind_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.slot} of item {self.media_item_id}"


class TagAssignment(BaseModel):
    """One tag in one tag set, with how, when and by whom it arrived. Removal is a tombstone."""

    class State(models.IntegerChoices):
        DELETED = 0, "deleted"
        CURRENT = 1, "current"

    class Via(models.TextChoices):
        MANUAL = "manual", "manual"
        IMPORT = "import", "import"
        TAGGER = "tagger", "tagger"
        PROMOTE = "promote", "promote"
        BULK = "bulk", "bulk"
        MAPPING = "mapping", "mapping"
        INHERIT = "inherit", "inherit"

    pk = models.CompositePrimaryKey("tagset_id", "tag_id")
    tagset = models.ForeignKey(TagSet, on_delete=models.CASCADE, related_name="assignments")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="assignments")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    kind = models.PositiveSmallIntegerField(choices=TagSet.Kind.choices)
    state = models.PositiveSmallIntegerField(choices=State.choices, default=State.CURRENT)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1/10000")
    position = models.PositiveIntegerField(null=True, blank=True)
    added_via = models.CharField(max_length=8, choices=Via.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    origin_set = models.ForeignKey(TagSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    entered_tag = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tag", "kind", "state", "media_item"], name="assign_tag_kind_state_item"),
            models.Index(fields=["media_item", "kind"], name="assign_item_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id} in set {self.tagset_id}"
