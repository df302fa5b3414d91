"""Media items (images, videos, frames) and where each came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.links import reverse_pk
from apps.core.models import BaseModel


class MediaItem(BaseModel):
    """One stored file: an image, a video, or a frame captured from a video."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        FRAME = "frame", "Frame"

    class Rating(models.TextChoices):
        UNKNOWN = "u", "Unknown"
        GENERAL = "g", "General"
        SENSITIVE = "s", "Sensitive"
        QUESTIONABLE = "q", "Questionable"
        EXPLICIT = "e", "Explicit"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    storage_key = models.CharField(max_length=255)
    thumbnail_key = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=16)
    mime_type = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    pixels = models.PositiveBigIntegerField(default=0)
    ratio_milli = models.PositiveIntegerField(default=0, help_text="width / height × 1000")
    mode = models.CharField(max_length=16, blank=True)
    bit_depth = models.PositiveSmallIntegerField(default=0)
    has_alpha = models.BooleanField(default=False)
    animated = models.BooleanField(default=False)
    frame_count = models.PositiveIntegerField(default=1)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    fps_milli = models.PositiveIntegerField(null=True, blank=True)
    codec = models.CharField(max_length=32, blank=True)
    rotation = models.PositiveSmallIntegerField(default=0, help_text="Display rotation, degrees")
    start_ms = models.IntegerField(default=0, help_text="Stream start time; timestamps are relative")
    # 64-bit DCT perceptual hash, stored signed (SQLite has no unsigned 64-bit integers), and
    # its five bands: items within Hamming distance 4 share at least one band.
    phash = models.BigIntegerField(null=True, blank=True)
    phash_b0 = models.PositiveSmallIntegerField(null=True, blank=True)
    phash_b1 = models.PositiveSmallIntegerField(null=True, blank=True)
    phash_b2 = models.PositiveSmallIntegerField(null=True, blank=True)
    phash_b3 = models.PositiveSmallIntegerField(null=True, blank=True)
    phash_b4 = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=2000, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    site = models.CharField(max_length=255, blank=True)
    artist = models.CharField(max_length=200, blank=True)
    rating = models.CharField(max_length=1, choices=Rating.choices, default=Rating.UNKNOWN)
    tag_count = models.PositiveIntegerField(default=0, help_text="Effective tags")
    effective_stale = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    # Where the subject is: [x0, y0, x1, y1], fractions of the upright picture (docs/training.md#focus-boxes);
    # training crops and loss masks use it. Written only through services.media_item_set_focus.
    focus = models.JSONField(null=True, blank=True, help_text="Focus box [x0, y0, x1, y1], 0–1")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    recipe = models.JSONField(null=True, blank=True)
    # sha256 of the canonical recipe: the same recipe on the same parent is the same result.
    recipe_hash = models.CharField(max_length=64, blank=True)
    video = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="frames")
    timestamp_ms = models.PositiveIntegerField(null=True, blank=True)
    frame_index = models.PositiveIntegerField(null=True, blank=True)
    box_x = models.PositiveIntegerField(null=True, blank=True)
    box_y = models.PositiveIntegerField(null=True, blank=True)
    box_w = models.PositiveIntegerField(null=True, blank=True)
    box_h = models.PositiveIntegerField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="media_items",
    )

    class Meta:
        # Every filterable column is indexed together with id so keyset pages stay index scans.
        indexes = [
            models.Index(fields=["kind", "id"], name="media_kind_id"),
            models.Index(fields=["format", "id"], name="media_format_id"),
            models.Index(fields=["size_bytes", "id"], name="media_size_id"),
            models.Index(fields=["width", "id"], name="media_width_id"),
            models.Index(fields=["height", "id"], name="media_height_id"),
            models.Index(fields=["pixels", "id"], name="media_pixels_id"),
            models.Index(fields=["ratio_milli", "id"], name="media_ratio_id"),
            models.Index(fields=["duration_ms", "id"], name="media_duration_id"),
            models.Index(fields=["created_at", "id"], name="media_created_id"),
            models.Index(fields=["artist", "id"], name="media_artist_id"),
            models.Index(fields=["site", "id"], name="media_site_id"),
            models.Index(fields=["rating", "id"], name="media_rating_id"),
            models.Index(fields=["tag_count", "id"], name="media_tagcount_id"),
            models.Index(fields=["effective_stale", "id"], name="media_stale_id"),
            models.Index(fields=["source_hash"], name="media_source_hash"),
            models.Index(fields=["phash_b0"], name="media_phash_b0"),
            models.Index(fields=["phash_b1"], name="media_phash_b1"),
            models.Index(fields=["phash_b2"], name="media_phash_b2"),
            models.Index(fields=["phash_b3"], name="media_phash_b3"),
            models.Index(fields=["phash_b4"], name="media_phash_b4"),
            models.Index(fields=["video", "timestamp_ms"], name="media_video_ts"),
            models.Index(fields=["parent", "recipe_hash"], name="media_parent_recipe"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="frame") | models.Q(video__isnull=True),
                name="media_only_frames_have_video",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    def get_absolute_url(self) -> str:
        return reverse_pk("media:item-detail", self.pk)

    @property
    def duration(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000

    @property
    def fps(self) -> float | None:
        return None if self.fps_milli is None else self.fps_milli / 1000


class MediaSource(BaseModel):
    """One arrival of an item's bytes: an upload, a zip member or a URL. Re-imports add rows."""

    class Kind(models.TextChoices):
        UPLOAD = "upload", "Upload"
        ZIP = "zip", "Zip member"
        URL = "url", "URL"
        FRAME = "frame", "Video frame"
        TRANSFORM = "transform", "Transform"

    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    import_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.CharField(max_length=2000, blank=True)
    url_hash = models.CharField(max_length=64, blank=True)
    site = models.CharField(max_length=255, blank=True)
    archive_member = models.CharField(max_length=1000, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    artist = models.CharField(max_length=200, blank=True)
    raw_metadata = models.JSONField(default=dict, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        indexes = [
            models.Index(fields=["url_hash"], name="msource_url_hash"),
            models.Index(fields=["site", "media_item"], name="msource_site_item"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.url or self.original_filename}"


class VideoFrame(BaseModel):
    """One capture of a video frame: which frame, when, and the box it covers.

    Identical frames share one MediaItem (content-addressed) but each capture has its own row.
    """

    video = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="captures")
    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="frame_captures")
    frame_index = models.PositiveIntegerField()
    timestamp_ms = models.PositiveIntegerField(help_text="Relative to the stream start")
    pts_time = models.FloatField(help_text="Presentation time, seconds from the stream start")
    crop_x = models.PositiveIntegerField()
    crop_y = models.PositiveIntegerField()
    crop_w = models.PositiveIntegerField()
    crop_h = models.PositiveIntegerField()
    extraction_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # NOT NULL box columns, so a NULL can never defeat the uniqueness.
            models.UniqueConstraint(
                fields=["video", "timestamp_ms", "crop_x", "crop_y", "crop_w", "crop_h"],
                name="vframe_video_ts_box",
            ),
            models.CheckConstraint(
                condition=models.Q(crop_w__gt=0, crop_h__gt=0), name="vframe_box_positive"
            ),
        ]
        indexes = [models.Index(fields=["media_item"], name="vframe_item")]

    def __str__(self) -> str:
        return f"frame {self.frame_index} @ {self.timestamp_ms} ms of video {self.video_id}"
