"""Tag vocabularies, types, tags, and per-item tag sets with provenance (docs/tags.md)."""

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
            # Covering for autocomplete's walk down the most used names (docs/tags.md#autocomplete).
            models.Index(fields=["vocabulary", "media_count", "name"], name="tag_vocab_count_name"),
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
    # No index or FK constraint on the provenance columns of this (largest) table: nothing
    # searches by them at scale, and each index would cost space and write time on 30M+ rows.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    origin_set = models.ForeignKey(TagSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    entered_tag = models.CharField(max_length=200, blank=True)
    operation = models.ForeignKey(
        "tags.Operation",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        indexes = [
            models.Index(fields=["tag", "kind", "state", "media_item"], name="assign_tag_kind_state_item"),
            # Covering for effective-tag reads per item (+ the PK's tagset and tag).
            models.Index(fields=["media_item", "kind", "state", "confidence"], name="assign_item_kind_cover"),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id} in set {self.tagset_id}"


class TagWord(models.Model):
    """One word (≥ 2 characters) of a tag name, for word-start autocomplete."""

    pk = models.CompositePrimaryKey("vocabulary_id", "word", "tag_id")
    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.CASCADE, related_name="+")
    word = BinaryCharField(max_length=200)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="words")

    def __str__(self) -> str:
        return self.word


class TagStat(models.Model):
    """How many current assignments a tag has in sets of one kind (for non-effective scopes)."""

    pk = models.CompositePrimaryKey("tag_id", "set_kind")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="stats")
    set_kind = models.PositiveSmallIntegerField(choices=TagSet.Kind.choices)
    current_count = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.tag_id}/{self.set_kind}: {self.current_count}"


class RuleStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"
    RETIRED = "retired", "Retired"


class TagAlias(BaseModel):
    """`antecedent` is read as `consequent` (non-destructive: assignments keep what was written)."""

    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.CASCADE, related_name="aliases")
    antecedent = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="aliases_from")
    consequent = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="aliases_to")
    status = models.CharField(max_length=8, choices=RuleStatus.choices, default=RuleStatus.PENDING)
    # = antecedent while active, else NULL: a plain UNIQUE allows one active alias per antecedent.
    active_antecedent = models.OneToOneField(
        Tag, null=True, blank=True, on_delete=models.CASCADE, related_name="active_alias"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "tag aliases"
        permissions = [("approve_rules", "Can activate, retire or reject alias and implication rules")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(antecedent=models.F("consequent")), name="alias_not_self"
            ),
        ]
        indexes = [models.Index(fields=["consequent", "status"], name="alias_consequent_status")]

    def __str__(self) -> str:
        return f"{self.antecedent} → {self.consequent} ({self.status})"


class AliasResolution(models.Model):
    """Precomputed: the tag an active antecedent resolves to (one row per active alias)."""

    tag = models.OneToOneField(Tag, primary_key=True, on_delete=models.CASCADE, related_name="resolution")
    ideal_tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.tag_id} ⇒ {self.ideal_tag_id}"


class TagImplication(BaseModel):
    """Having `child` implies having `parent` (e.g. a character implies its series)."""

    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.CASCADE, related_name="implications")
    child = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="implies")
    parent = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="implied_by")
    status = models.CharField(max_length=8, choices=RuleStatus.choices, default=RuleStatus.PENDING)
    allow_cross_type = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["child", "parent"], name="implication_child_parent"),
            models.CheckConstraint(
                condition=~models.Q(child=models.F("parent")), name="implication_not_self"
            ),
        ]
        indexes = [models.Index(fields=["parent"], name="implication_parent")]

    def __str__(self) -> str:
        return f"{self.child} ⇒ {self.parent} ({self.status})"


class TagClosure(models.Model):
    """Transitive closure of active implications: `descendant` implies `ancestor` at `depth`."""

    pk = models.CompositePrimaryKey("descendant_id", "ancestor_id")
    descendant = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    ancestor = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    depth = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ancestor", "descendant"], name="closure_ancestor_descendant"),
        ]

    def __str__(self) -> str:
        return f"{self.descendant_id} ⊂ {self.ancestor_id}"


class EffectiveTag(models.Model):
    """The materialised tags search and export read: alias-resolved, implication-expanded."""

    pk = models.CompositePrimaryKey("tag_id", "media_item_id")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="effective_tags")
    is_implied = models.BooleanField(default=False)

    class Meta:
        # Per-item reads (rebuilds, item pages) come from this index alone; the PK keeps pairs unique.
        indexes = [models.Index(fields=["media_item", "tag", "is_implied"], name="effective_item_tag_cover")]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.media_item_id}"


class ItemTagType(models.Model):
    """Per item, the tag types its effective tags cover and how many of each: a fact derived from
    EffectiveTag ⋈ Tag.type, kept by its one writer (apps/tags/services/item_types.py) wherever
    either side changes, so "items with a character tag" is one range of the primary key instead
    of a join over every effective tag (docs/tags.md#tag-types-per-item)."""

    pk = models.CompositePrimaryKey("tag_type_id", "media_item_id")
    tag_type = models.ForeignKey(TagType, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    tag_count = models.PositiveIntegerField(help_text="Effective tags of this type on the item")

    class Meta:
        indexes = [models.Index(fields=["media_item", "tag_type"], name="itemtagtype_item_type")]

    def __str__(self) -> str:
        return f"item {self.media_item_id}: type {self.tag_type_id} × {self.tag_count}"


class Description(BaseModel):
    """Free-text caption of an item, optionally of one region, with its provenance."""

    class Kind(models.TextChoices):
        WHOLE = "whole", "Whole image"
        CHARACTER = "character", "Character"
        BACKGROUND = "background", "Background"
        CUSTOM = "custom", "Custom"

    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="descriptions")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.WHOLE)
    label = models.CharField(max_length=100, blank=True, help_text="Name of a custom kind")
    text = models.TextField()
    set_kind = models.PositiveSmallIntegerField(choices=TagSet.Kind.choices, default=TagSet.Kind.CURATED)
    added_via = models.CharField(
        max_length=8, choices=TagAssignment.Via.choices, default=TagAssignment.Via.MANUAL
    )
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1/10000")
    model_name = models.CharField(max_length=100, blank=True)
    box_x = models.PositiveIntegerField(null=True, blank=True)
    box_y = models.PositiveIntegerField(null=True, blank=True)
    box_w = models.PositiveIntegerField(null=True, blank=True)
    box_h = models.PositiveIntegerField(null=True, blank=True)
    row_version = models.PositiveIntegerField(default=1)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["media_item", "kind"], name="description_item_kind")]

    def __str__(self) -> str:
        return self.text[:60]


class Operation(BaseModel):
    """A logged, previewable, undoable write to tags (docs/tags.md#operations-and-undo).

    States: previewed → queued → running → applied | partially_applied | failed | cancelled,
    and applied → undone when another operation reverts it; a job that ends without its body
    ends its operation too (docs/tags.md#operations-and-undo).
    """

    class Kind(models.TextChoices):
        ADD = "add", "Add"
        REMOVE = "remove", "Remove"
        REPLACE = "replace", "Replace"
        RENAME = "rename", "Rename"
        SET_TYPE = "set_type", "Set type"
        EDIT = "edit", "Edit"
        PROMOTE = "promote", "Promote"
        RULE_CHANGE = "rule_change", "Rule change"
        UNDO = "undo", "Undo"
        MAP = "map", "Mapping apply"

    class Status(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        APPLIED = "applied", "Applied"
        PARTIAL = "partially_applied", "Partially applied"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        UNDONE = "undone", "Undone"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    params = models.JSONField(default=dict)
    target_kind = models.CharField(max_length=10, default="selection")
    set_kind = models.PositiveSmallIntegerField(choices=TagSet.Kind.choices, default=TagSet.Kind.CURATED)
    status = models.CharField(max_length=18, choices=Status.choices, default=Status.PREVIEWED)
    counters = models.JSONField(default=dict, blank=True)
    resume_cursor = models.PositiveIntegerField(default=0)
    undo_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    undone_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # A bulk job's chunks wrote assignments but left the effective tags of its items (and the
    # counters that follow them) to a follow-up pass; search warns while any is pending
    # (docs/tags.md#deferred-effective-refresh).
    effective_pending = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "id"], name="operation_status_id"),
            models.Index(fields=["effective_pending", "id"], name="operation_pending_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} ({self.status})"


class OperationTarget(models.Model):
    """An item frozen into an operation's target at preview time."""

    pk = models.CompositePrimaryKey("operation_id", "media_item_id")
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="targets")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.operation_id}:{self.media_item_id}"


class OperationChange(models.Model):
    """One assignment an operation changed, with its state before and after (for undo)."""

    class State(models.IntegerChoices):
        DELETED = 0, "deleted"
        CURRENT = 1, "current"
        ABSENT = 2, "absent"

    pk = models.CompositePrimaryKey("operation_id", "tagset_id", "tag_id")
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="changes")
    tagset = models.ForeignKey(TagSet, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    before_state = models.PositiveSmallIntegerField(choices=State.choices)
    after_state = models.PositiveSmallIntegerField(choices=State.choices)
    before_position = models.PositiveIntegerField(null=True, blank=True)
    before_via = models.CharField(max_length=8, blank=True)

    class Meta:
        indexes = [models.Index(fields=["operation", "media_item"], name="opchange_op_item")]

    def __str__(self) -> str:
        return f"{self.operation_id}: {self.tag_id} {self.before_state}→{self.after_state}"


class OperationSet(models.Model):
    """A tag set an operation created and filled, all of whose `rows` (current assignments) it
    wrote: the undo record of a whole new set, in place of an OperationChange per row, for bulk
    writers of new sets (a mapping apply; docs/tags.md#operations-and-undo). Undo drops the set
    while every row in it is still as the operation left it, and otherwise removes the rows that
    still are (the rest are conflicts)."""

    pk = models.CompositePrimaryKey("operation_id", "tagset_id")
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="created_sets")
    tagset = models.ForeignKey(TagSet, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    rows = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["operation", "media_item"], name="opset_op_item")]

    def __str__(self) -> str:
        return f"{self.operation_id}: set {self.tagset_id} ({self.rows} rows)"
