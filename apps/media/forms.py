"""Page forms for the media library."""

from __future__ import annotations

import math
import re
from typing import Any

from django import forms

from apps.core.exceptions import DomainError
from apps.core.ints import INT_MAX
from apps.media.services.recipes import BUCKETS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):  # type: ignore[no-untyped-def]
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(  # type: ignore[assignment]  # a form field, not Form.files
        required=False,
        label="Images and videos",
        widget=MultipleFileInput(attrs={"accept": "image/*,video/*"}),
    )
    archive = forms.FileField(
        required=False, label="Zip archive", widget=forms.ClearableFileInput(attrs={"accept": ".zip"})
    )
    urls = forms.CharField(
        required=False,
        label="URLs, one per line",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://example.com/picture.jpg"}),
    )
    artist = forms.CharField(required=False, max_length=200, label="Artist")
    source = forms.CharField(required=False, max_length=2000, label="Source page")
    tags = forms.CharField(required=False, label="Tags (comma-separated)")
    tag_source = forms.CharField(required=False, max_length=200, label="Where the tags came from")

    def add_service_error(self, err: DomainError) -> None:
        """A service error next to the field it names, that field called by its label
        (`tag_source is required` → `Where the tags came from is required`)."""
        name = err.details.get("field") if isinstance(err.details, dict) else None
        if isinstance(name, str) and name in self.fields:
            label = str(self.fields[name].label or name.replace("_", " ").capitalize())
            message = re.sub(rf"\b{re.escape(name)}\b", f"“{label}”", err.message)
            self.add_error(name, message[:1].upper() + message[1:])
        else:
            self.add_error(None, err.message)

    @property
    def extra_open(self) -> bool:
        """Whether the optional section (artist, source, tags) holds values or errors."""
        names = ("artist", "source", "tags", "tag_source")
        return any(self[n].value() or self[n].errors for n in names)

    def clean_urls(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()]

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean() or {}
        if not (data.get("files") or data.get("archive") or data.get("urls")):
            raise forms.ValidationError("Choose files, a zip archive or enter URLs to upload.")
        return data


class SelectionForm(forms.Form):
    """Items chosen in the library grid: their ids, space- or comma-separated."""

    ids = forms.CharField(widget=forms.HiddenInput)

    def clean_ids(self) -> list[int]:
        parts = [p for p in self.cleaned_data["ids"].replace(",", " ").split() if p]
        bad = [p for p in parts if not (p.isascii() and p.isdigit() and 0 < int(p) <= INT_MAX)]
        if bad or not parts:
            raise forms.ValidationError("Select items in the library first.")
        return list(dict.fromkeys(int(p) for p in parts))


# --- item tools: crop / scale (images and frames) and frame capture (videos) ---------------

ASPECT_CHOICES = [
    ("", "Free"),
    ("1:1", "1:1 square"),
    ("2:3", "2:3 portrait"),
    ("3:2", "3:2 landscape"),
    ("16:9", "16:9 wide"),
    ("9:16", "9:16 tall"),
    ("sdxl", "SDXL bucket"),
    ("sd15", "SD 1.5 bucket"),
]
SCALE_CHOICES = [
    ("", "No scaling"),
    ("long", "Long side (px)"),
    ("short", "Short side (px)"),
    ("megapixels", "Megapixels"),
    ("sdxl", "SDXL bucket (fill)"),
    ("sd15", "SD 1.5 bucket (fill)"),
]
FORMAT_CHOICES = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WebP")]
BATCH_CHOICES = [
    ("interval", "Every N seconds"),
    ("count", "N evenly spaced"),
    ("scene", "Scene changes"),
    ("keyframes", "Keyframes"),
]


def aspect_ratio(aspect: str, width: float, height: float) -> float:
    """The ratio an aspect preset asks for; a bucket set gives the bucket nearest the box's shape."""
    if aspect in BUCKETS:
        return min((bw / bh for bw, bh in BUCKETS[aspect]), key=lambda r: abs(math.log(r * height / width)))
    a, b = (int(p) for p in aspect.split(":"))
    return a / b


def box_constrain(box: list[int], aspect: str) -> list[int]:
    """Shrink a pixel box about its centre to the aspect (static/js/crop.js does the same).

    A box already within half a pixel of the ratio is kept, so the result is stable.
    """
    x, y, w, h = box
    ratio = aspect_ratio(aspect, w, h)
    if abs(w - h * ratio) <= 0.5 or abs(h - w / ratio) <= 0.5:
        return box
    if w / h > ratio:
        new_w = max(1, round(h * ratio))
        return [x + (w - new_w) // 2, y, new_w, h]
    new_h = max(1, round(w / ratio))
    return [x, y + (h - new_h) // 2, w, new_h]


class _BoxFields(forms.Form):
    """A box in the original's pixels: all four fields or none."""

    x = forms.IntegerField(required=False, min_value=0, max_value=INT_MAX, label="X")
    y = forms.IntegerField(required=False, min_value=0, max_value=INT_MAX, label="Y")
    w = forms.IntegerField(required=False, min_value=1, max_value=INT_MAX, label="Width")
    h = forms.IntegerField(required=False, min_value=1, max_value=INT_MAX, label="Height")

    def box(self) -> list[int] | None:
        values = [self.cleaned_data.get(k) for k in ("x", "y", "w", "h")]
        return [int(v) for v in values if v is not None] if None not in values else None

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean() or {}
        given = [k for k in ("x", "y", "w", "h") if data.get(k) is not None]
        if given and len(given) < 4 and not any(k in self.errors for k in ("x", "y", "w", "h")):
            self.add_error(None, "Give the box's x, y, width and height, or leave all four empty.")
        return data


class TransformForm(_BoxFields):
    """Crop (box or aspect), scale and convert one image into a new item."""

    aspect = forms.ChoiceField(choices=ASPECT_CHOICES, required=False)
    scale = forms.ChoiceField(choices=SCALE_CHOICES, required=False)
    size = forms.FloatField(
        required=False,
        min_value=0.01,
        label="Size",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "1024"}),
    )
    upscale = forms.BooleanField(required=False, label="Allow upscale")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="png")
    quality = forms.IntegerField(min_value=1, max_value=100, initial=95, required=False)

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean()
        scale, size = data.get("scale"), data.get("size")
        if scale in ("long", "short") and size is not None and size != int(size):
            self.add_error("size", "Enter a whole number of pixels.")
        elif scale in ("long", "short", "megapixels") and size is None and "size" not in self.errors:
            unit = "megapixels" if scale == "megapixels" else "pixels"
            self.add_error("size", f"Enter the size in {unit}.")
        return data

    def recipe(self) -> dict[str, Any]:
        """The transform recipe (recipes.recipe_clean checks it again)."""
        data = self.cleaned_data
        ops: list[dict[str, Any]] = []
        box, aspect = self.box(), data.get("aspect") or ""
        if box is not None:
            ops.append({"op": "crop", "box": box_constrain(box, aspect) if aspect else box})
        elif aspect:
            ops.append({"op": "crop", "aspect": aspect, "focus": [0.5, 0.5]})
        scale = data.get("scale") or ""
        if scale in BUCKETS:
            ops.append({"op": "scale", "mode": "fill", "bucket": scale, "upscale": data["upscale"]})
        elif scale:
            size = data["size"] if scale == "megapixels" else int(data["size"])
            ops.append({"op": "scale", "mode": "fit", scale: size, "upscale": data["upscale"]})
        output: dict[str, Any] = {"format": data["format"]}
        if data["format"] != "png":
            output["quality"] = data.get("quality") or 95
        return {"ops": ops, "output": output}


class FramesForm(_BoxFields):
    """Capture one frame at a time (`run=capture`) or a batch (`run=batch`) from a video."""

    run = forms.ChoiceField(choices=[("capture", "Capture"), ("batch", "Batch")], initial="capture")
    aspect = forms.ChoiceField(choices=ASPECT_CHOICES, required=False, label="Box aspect")
    timestamp = forms.FloatField(
        required=False, min_value=0, label="Time (s)", widget=forms.NumberInput(attrs={"step": "0.001"})
    )
    mode = forms.ChoiceField(choices=BATCH_CHOICES, initial="interval", label="Capture", required=False)
    interval = forms.FloatField(
        required=False,
        min_value=0.04,
        initial=1,
        label="Every (s)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    count = forms.IntegerField(required=False, min_value=1, max_value=INT_MAX, initial=10, label="Frames")
    threshold = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=1,
        initial=0.3,
        label="Threshold (0–1)",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    skip_similar = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=32,
        label="Skip similar (distance 0–32)",
        widget=forms.NumberInput(attrs={"placeholder": "off"}),
    )

    _NEEDS = {
        "interval": ("interval", "Enter the interval in seconds."),
        "count": ("count", "Enter how many frames to capture."),
        "scene": ("threshold", "Enter a threshold between 0.01 and 1."),
    }

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean()
        if data.get("run") == "capture":
            if data.get("timestamp") is None and "timestamp" not in self.errors:
                self.add_error("timestamp", "Enter the time to capture, in seconds.")
        elif data.get("run") == "batch":
            if not data.get("mode") and "mode" not in self.errors:
                self.add_error("mode", "Choose how to capture the batch.")
            field, message = self._NEEDS.get(data.get("mode", ""), ("", ""))
            if field and data.get(field) is None and field not in self.errors:
                self.add_error(field, message)
        return data

    def request(self) -> dict[str, Any]:
        """The capture request for media_frames_extract_start."""
        data = self.cleaned_data
        request: dict[str, Any]
        if data["run"] == "capture":
            request = {"mode": "timestamps", "timestamps": [data["timestamp"]]}
        else:
            request = {"mode": data["mode"]}
            field = {"interval": "interval", "count": "count", "scene": "threshold"}.get(data["mode"])
            if field:
                request[field] = data[field]
            if data.get("skip_similar") is not None:
                request["skip_similar"] = data["skip_similar"]
        if (box := self.box()) is not None:
            request["box"] = box_constrain(box, data["aspect"]) if data.get("aspect") else box
        return request


class FocusForm(forms.Form):
    """The focus box as fractions of the picture; all four empty (or Clear) removes it."""

    x0 = forms.FloatField(
        required=False, label="Left", widget=forms.NumberInput(attrs={"step": "any", "min": 0, "max": 1})
    )
    y0 = forms.FloatField(
        required=False, label="Top", widget=forms.NumberInput(attrs={"step": "any", "min": 0, "max": 1})
    )
    x1 = forms.FloatField(
        required=False, label="Right", widget=forms.NumberInput(attrs={"step": "any", "min": 0, "max": 1})
    )
    y1 = forms.FloatField(
        required=False, label="Bottom", widget=forms.NumberInput(attrs={"step": "any", "min": 0, "max": 1})
    )

    def focus(self) -> list[float | None] | None:
        """The four values for services.focus_clean (it checks ranges and order), or None to clear."""
        if "clear" in self.data:
            return None
        values = [self.cleaned_data.get(k) for k in ("x0", "y0", "x1", "y1")]
        return None if all(v is None for v in values) else values
