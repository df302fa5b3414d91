"""Page forms for datasets, subsets, requirements, snapshots and groups (docs/datasets.md#pages).

Forms check shapes; the services check the rules (queries that do not parse, contradicting
requirements) and their DomainErrors land on the field they name (`field_errors`)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.core.exceptions import DomainError
from apps.core.ints import BIGINT_MAX, INT_MAX
from apps.datasets.models import Dataset, Requirements
from apps.datasets.services.datasets import MAX_NEAR_DISTANCE
from apps.datasets.services.snapshots import NOTE_MAX


def field_errors(form: forms.Form, err: DomainError) -> None:
    """Put a service's error on the fields it names (details.fields), else on the form."""
    fields = err.details.get("fields") or {}
    placed = False
    for name, messages in fields.items():
        if name in form.fields:
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(name, str(message))
            placed = True
    if not placed:
        form.add_error(None, err.message)


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False, help_text="Empty: made from the name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=20_000)
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=20_000)
    licence_notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Licence notes",
        help_text="The images' licences and terms; every training bundle's dataset card lists them",
    )
    query = forms.CharField(
        max_length=2000,
        required=False,
        help_text="Saved query (the query language); its matches are members",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 60}),
    )


class SubsetForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False, help_text="Empty: made from the name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20_000)
    query = forms.CharField(
        max_length=2000, required=False, widget=forms.TextInput(attrs={"autocomplete": "off", "size": 60})
    )


def _int(label: str, *, maximum: int = INT_MAX, minimum: int = 0, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=minimum, max_value=maximum, help_text=help_text
    )


class RequirementsForm(forms.Form):
    """Every rule optional; the service refuses contradictions, naming the field."""

    exact_width = _int("Exact width", minimum=1)
    exact_height = _int("Exact height", minimum=1)
    min_width = _int("Min width")
    max_width = _int("Max width")
    min_height = _int("Min height")
    max_height = _int("Max height")
    min_short_side = _int("Min short side")
    min_aspect_milli = _int("Min aspect ×1000", help_text="width ÷ height × 1000 (1500 = 3:2)")
    max_aspect_milli = _int("Max aspect ×1000")
    min_pixels = _int("Min pixels", maximum=BIGINT_MAX, help_text="1 megapixel = 1000000")
    max_pixels = _int("Max pixels", maximum=BIGINT_MAX)
    formats = forms.CharField(required=False, max_length=400, help_text="Comma-separated: png, jpeg, webp")
    modes = forms.CharField(required=False, max_length=400, help_text="Comma-separated: RGB, RGBA, L")
    bit_depth = _int("Bit depth", minimum=1, maximum=64)
    alpha = forms.ChoiceField(choices=Requirements.Alpha.choices, initial=Requirements.Alpha.ANY)
    flatten_color = forms.CharField(required=False, max_length=7, help_text="#rrggbb, to flatten alpha onto")
    max_file_size = _int("Max file size (bytes)", minimum=1, maximum=BIGINT_MAX)
    min_tag_count = _int("Min tag count")
    required_tag_types = forms.CharField(
        required=False, max_length=400, help_text="Tag type keys, comma-separated (e.g. character)"
    )
    near_duplicate_max_distance = _int("Near-duplicate distance", maximum=MAX_NEAR_DISTANCE)

    LISTS = ("formats", "modes", "required_tag_types")

    def values(self) -> dict[str, Any]:
        """The cleaned rules in the service's shape (lists split on commas)."""
        data = dict(self.cleaned_data)
        for name in self.LISTS:
            data[name] = [p.strip() for p in (data.get(name) or "").split(",") if p.strip()]
        return data

    @classmethod
    def initial_from(cls, requirements: dict[str, Any]) -> dict[str, Any]:
        initial = dict(requirements)
        for name in cls.LISTS:
            initial[name] = ", ".join(initial.get(name) or [])
        return initial


class SnapshotForm(forms.Form):
    note = forms.CharField(max_length=NOTE_MAX, required=False)


class GroupForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20_000)


class AddToDatasetForm(forms.Form):
    """The library selection's "Add to dataset…": the target dataset (and optional subset)."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"), empty_label=None)
    subset = forms.CharField(required=False, max_length=100, help_text="A subset's slug (optional)")
