"""Mapping sets, rules and per-network profiles (docs/mappings.md#model)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.tags.models import Tag, TagSet, TagType, Vocabulary


class MappingSet(BaseModel):
    """Rules from a source vocabulary's tags to a target vocabulary's (equal for clean-up sets).
    `version` goes up with every rule change, so outputs made from an older version are stale."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    source_vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="+")
    target_vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_cleanup(self) -> bool:
        return self.source_vocabulary_id == self.target_vocabulary_id


class TagMapping(BaseModel):
    """One rule: a source tag (under optional guards) maps to targets, is dropped or kept."""

    class Action(models.TextChoices):
        MAP = "map", "map"
        DROP = "drop", "drop"
        KEEP = "keep", "keep"

    mapping_set = models.ForeignKey(MappingSet, on_delete=models.CASCADE, related_name="rules")
    source_tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=4, choices=Action.choices, default=Action.MAP)
    requires_tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    unless_tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    type_override = models.ForeignKey(
        TagType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    priority = models.SmallIntegerField(default=0)
    # `<source>:<requires|0>:<unless|0>`: one rule per source and guards, no NULL in the UNIQUE.
    rule_key = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mapping_set", "rule_key"], name="mapping_set_rule_key"),
        ]
        indexes = [models.Index(fields=["source_tag"], name="mapping_source_tag")]

    def __str__(self) -> str:
        return f"{self.mapping_set_id}:{self.rule_key} {self.action}"


def rule_key(source_id: int, requires_id: int | None, unless_id: int | None) -> str:
    """The UNIQUE key of a rule within its set (docs/mappings.md#rules)."""
    return f"{source_id}:{requires_id or 0}:{unless_id or 0}"


class TagMappingTarget(models.Model):
    """The `ord`-th target tag of a map rule (in the set's target vocabulary)."""

    pk = models.CompositePrimaryKey("mapping_id", "ord")
    mapping = models.ForeignKey(TagMapping, on_delete=models.CASCADE, related_name="targets")
    ord = models.PositiveSmallIntegerField()
    target_tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.mapping_id}#{self.ord} → {self.target_tag_id}"


class MappingProfile(BaseModel):
    """How one target network wants its tags: ordered mapping sets and the policies of the
    per-item pipeline (docs/mappings.md#pipeline)."""

    class Scope(models.TextChoices):
        EFFECTIVE = "effective", "effective"
        CURATED = "curated", "curated"
        SOURCE = "source", "source"
        TAGGER = "tagger", "tagger"

    class Unmapped(models.TextChoices):
        MATCH_NAME = "match_name", "match name"
        DROP = "drop", "drop"
        KEEP_TEXT = "keep_text", "keep as text"
        FLAG = "flag", "flag"

    class Implications(models.TextChoices):
        ADD_PARENTS = "add_parents", "add parents"
        PRUNE_IMPLIED = "prune_implied", "prune implied"
        AS_IS = "as_is", "as is"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    target_vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="+")
    input_scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.EFFECTIVE)
    min_confidence = models.PositiveSmallIntegerField(default=0, help_text="1/10000, tagger scope")
    unmapped_policy = models.CharField(max_length=10, choices=Unmapped.choices, default=Unmapped.MATCH_NAME)
    implication_policy = models.CharField(
        max_length=13, choices=Implications.choices, default=Implications.AS_IS
    )
    drop_types = models.JSONField(default=list, blank=True, help_text="Tag type keys to remove")
    type_order = models.JSONField(default=list, blank=True, help_text="Tag type keys, first first")
    prefix_text = models.CharField(max_length=500, blank=True, help_text="Trigger words, rendered first")
    separator = models.CharField(max_length=8, default=", ")
    underscore_to_space = models.BooleanField(default=True)
    escape_parentheses = models.BooleanField(default=True)
    max_tags = models.PositiveSmallIntegerField(default=0, help_text="0: no limit")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class MappingProfileStep(models.Model):
    """The `ord`-th mapping set a profile consults (the first with an applicable rule decides)."""

    pk = models.CompositePrimaryKey("profile_id", "ord")
    profile = models.ForeignKey(MappingProfile, on_delete=models.CASCADE, related_name="steps")
    ord = models.PositiveSmallIntegerField()
    mapping_set = models.ForeignKey(MappingSet, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.profile_id}#{self.ord} {self.mapping_set_id}"


class MappedSet(models.Model):
    """The stamp of a derived tag set a profile wrote: which versions made it (staleness), which
    operation, and whether the item was flagged incomplete (docs/mappings.md#preview-and-apply)."""

    tagset = models.OneToOneField(TagSet, primary_key=True, on_delete=models.CASCADE, related_name="+")
    profile = models.ForeignKey(MappingProfile, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    profile_version = models.PositiveIntegerField()
    sets_version = models.PositiveIntegerField(help_text="Sum of the steps' mapping-set versions")
    operation_id = models.BigIntegerField(null=True, blank=True)
    incomplete = models.BooleanField(default=False)
    applied_at = models.DateTimeField(auto_now=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["profile", "profile_version", "sets_version"], name="mapped_profile_stamp"),
            models.Index(fields=["media_item"], name="mapped_item"),
        ]

    def __str__(self) -> str:
        return f"set {self.tagset_id} by profile {self.profile_id} v{self.profile_version}"


class SuggestionRejection(models.Model):
    """A suggested target a person rejected for a source tag in a profile (never proposed again)."""

    profile = models.ForeignKey(MappingProfile, on_delete=models.CASCADE, related_name="+")
    source_tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    target_tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "source_tag", "target_tag"], name="suggestion_rejection_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.source_tag_id} ↛ {self.target_tag_id}"
