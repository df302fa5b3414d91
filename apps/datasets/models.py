"""Datasets: named sets of library items with requirements (docs/datasets.md).

Members = explicit items ∪ items matching the saved query − explicit exclusions. A subset is a
named part of a dataset with a membership of its own, built the same way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class Dataset(BaseModel):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    purpose = models.TextField(blank=True, help_text="Purpose notes: what the dataset is for")
    licence_notes = models.TextField(
        blank=True,
        max_length=4000,
        help_text="Licence notes: the images' licences and terms; listed in every training bundle's card",
    )
    query = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Saved query (docs/query-language.md); members include its matches",
    )
    explicit_count = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Explicit, non-excluded member rows (kept by members_edit); the search planner's estimate",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subset(BaseModel):
    """A named part of a dataset (a character, a style, regularisation images)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="subsets")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    query = models.CharField(max_length=2000, blank=True)
    explicit_count = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Explicit, non-excluded member rows (kept by members_edit); the search planner's estimate",
    )

    class Meta:
        ordering = ["dataset", "name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "slug"], name="dsubset_dataset_slug"),
            models.UniqueConstraint(fields=["dataset", "name"], name="dsubset_dataset_name"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} / {self.name}"


class DatasetItem(models.Model):
    """An explicit membership row: included (excluded=False) or excluded (True)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    excluded = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "media_item"], name="ditem_dataset_item")]
        indexes = [
            models.Index(fields=["dataset", "excluded", "media_item"], name="ditem_dataset_excl_item"),
            models.Index(fields=["media_item"], name="ditem_item"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id}: item {self.media_item_id}{' (excluded)' if self.excluded else ''}"


class SubsetItem(models.Model):
    """An explicit membership row of a subset, as DatasetItem."""

    subset = models.ForeignKey(Subset, on_delete=models.CASCADE, related_name="+")
    media_item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    excluded = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subset", "media_item"], name="sitem_subset_item")]
        indexes = [
            models.Index(fields=["subset", "excluded", "media_item"], name="sitem_subset_excl_item"),
            models.Index(fields=["media_item"], name="sitem_item"),
        ]

    def __str__(self) -> str:
        return f"{self.subset_id}: item {self.media_item_id}{' (excluded)' if self.excluded else ''}"


class Requirements(BaseModel):
    """What every member must satisfy (docs/datasets.md#requirements); empty means no rule."""

    class Alpha(models.TextChoices):
        ANY = "any", "Any"
        REQUIRED = "required", "Required"
        FORBIDDEN = "forbidden", "Forbidden"
        FLATTEN = "flatten", "Flatten onto a colour"

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="requirements")
    exact_width = models.PositiveIntegerField(null=True, blank=True)
    exact_height = models.PositiveIntegerField(null=True, blank=True)
    min_width = models.PositiveIntegerField(null=True, blank=True)
    max_width = models.PositiveIntegerField(null=True, blank=True)
    min_height = models.PositiveIntegerField(null=True, blank=True)
    max_height = models.PositiveIntegerField(null=True, blank=True)
    min_short_side = models.PositiveIntegerField(null=True, blank=True)
    min_aspect_milli = models.PositiveIntegerField(null=True, blank=True, help_text="width/height × 1000")
    max_aspect_milli = models.PositiveIntegerField(null=True, blank=True, help_text="width/height × 1000")
    min_pixels = models.PositiveBigIntegerField(null=True, blank=True, help_text="megapixels × 10⁶")
    max_pixels = models.PositiveBigIntegerField(null=True, blank=True, help_text="megapixels × 10⁶")
    formats = models.JSONField(
        default=list, blank=True, help_text="Allowed formats (png, jpeg, …); empty: any"
    )
    modes = models.JSONField(default=list, blank=True, help_text="Allowed colour modes (RGB, RGBA, L, …)")
    bit_depth = models.PositiveSmallIntegerField(null=True, blank=True)
    alpha = models.CharField(max_length=10, choices=Alpha.choices, default=Alpha.ANY)
    flatten_color = models.CharField(max_length=7, blank=True, help_text="#rrggbb, with alpha=flatten")
    max_file_size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes")
    min_tag_count = models.PositiveIntegerField(null=True, blank=True)
    required_tag_types = models.ManyToManyField("tags.TagType", blank=True, related_name="+")
    near_duplicate_max_distance = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Perceptual-hash bits, 0 to 4; members closer than this fail"
    )

    class Meta:
        verbose_name_plural = "requirements"

    def __str__(self) -> str:
        return f"Requirements of {self.dataset.name}"


class Snapshot(models.Model):
    """A frozen version of a dataset and its subsets (docs/datasets.md#snapshots): immutable.

    Members are SnapshotItem rows (part 0: the dataset; part n: the SnapshotPart at position n),
    each with the item's sha256 and a fingerprint of its effective tags at the time.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="snapshots")
    number = models.PositiveIntegerField(help_text="1, 2, … per dataset")
    note = models.CharField(max_length=500, blank=True)
    query = models.CharField(max_length=2000, blank=True, help_text="The saved query when frozen")
    member_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dsnap_dataset_number")]

    def __str__(self) -> str:
        return f"{self.dataset.name} #{self.number}"


class SnapshotPart(models.Model):
    """A subset as it was frozen in a snapshot (its name, query and member count)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="parts")
    position = models.PositiveSmallIntegerField(help_text="1, 2, …: SnapshotItem.part")
    subset = models.ForeignKey(Subset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    member_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["snapshot", "position"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "position"], name="dsnappart_snapshot_pos"),
            models.UniqueConstraint(fields=["snapshot", "slug"], name="dsnappart_snapshot_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot} / {self.name}"


class SnapshotItem(models.Model):
    """One frozen member. `item_id` is no foreign key: a snapshot outlives deleted items, and
    `sha256` names the exact file. `tags_hash` fingerprints the set of effective tag ids
    (docs/datasets.md#snapshots); a change in it is a retag."""

    id = models.BigAutoField(primary_key=True)
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="+")
    part = models.PositiveSmallIntegerField(default=0, help_text="0: the dataset; n: subset part n")
    item_id = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    tags_hash = models.BigIntegerField()
    tag_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "part", "item_id"], name="dsnapitem_snap_part_item")
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}/{self.part}: item {self.item_id}"


class DatasetGroup(BaseModel):
    """Datasets in order, for training sessions (docs/datasets.md#groups). An entry is a dataset
    or another group (nested); a group never contains itself, directly or through nesting."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetGroupEntry(models.Model):
    """One entry of a group: exactly one of `dataset` and `child` (a nested group)."""

    group = models.ForeignKey(DatasetGroup, on_delete=models.CASCADE, related_name="entries")
    position = models.PositiveIntegerField()
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    child = models.ForeignKey(
        DatasetGroup, on_delete=models.CASCADE, null=True, blank=True, related_name="parent_entries"
    )

    class Meta:
        ordering = ["group", "position"]
        constraints = [
            models.UniqueConstraint(fields=["group", "position"], name="dgentry_group_position"),
            models.UniqueConstraint(fields=["group", "dataset"], name="dgentry_group_dataset"),
            models.UniqueConstraint(fields=["group", "child"], name="dgentry_group_child"),
            models.CheckConstraint(
                condition=(models.Q(dataset__isnull=False, child__isnull=True))
                | (models.Q(dataset__isnull=True, child__isnull=False)),
                name="dgentry_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group_id}#{self.position}: {self.dataset_id or f'group {self.child_id}'}"


class GroupNestingLock(models.Model):
    """One well-known row (pk 1) that every change to group nesting locks first, so the cycle
    check of one change sees the commits of every other (docs/datasets.md#groups)."""

    class Meta:
        verbose_name = "group nesting lock"

    def __str__(self) -> str:
        return f"group nesting lock {self.pk}"
