"""Datasets: named sets of library items with requirements (docs/datasets.md).

Members = explicit items ∪ items matching the saved query − explicit exclusions. A subset is a
named part of a dataset with a membership of its own, built the same way.
"""

from __future__ import annotations

from django.db import models

from apps.core.models import BaseModel


class Dataset(BaseModel):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    purpose = models.TextField(blank=True, help_text="Purpose notes: what the dataset is for")
    query = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Saved query (docs/query-language.md); members include its matches",
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
