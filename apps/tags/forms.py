"""Forms for the tag pages, and the tag FilterSet the pages and the API share."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from apps.core.exceptions import DomainError
from apps.core.ints import INT_MAX
from apps.tags.models import Description, Tag, TagType, Vocabulary
from apps.tags.selectors.autocomplete import tag_query_normalise
from apps.tags.selectors.vocabularies import TAG_ORDERS, vocabulary_default
from apps.tags.services.vocabularies import WORD_SEPARATORS
from apps.tags.services.vocabulary_io import CATEGORY_SCHEMES, USAGE_SCOPES

_MAX_CHAR = "\U0010ffff"


class TagFilter(django_filters.FilterSet):
    """Tags by template, type, name prefix (normalised like the template's names) and deprecation."""

    vocab = django_filters.ModelChoiceFilter(
        field_name="vocabulary",
        to_field_name="slug",
        queryset=Vocabulary.objects.order_by("name"),
        label="Template",
        empty_label="All templates",
    )
    type = django_filters.ModelChoiceFilter(
        field_name="type",
        to_field_name="key",
        queryset=TagType.objects.order_by("display_order", "id"),
        label="Type",
        empty_label="All types",
    )
    name = django_filters.CharFilter(
        method="filter_name",
        label="Name starts with",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "long_hair", "autocomplete": "off"}),
    )
    deprecated = django_filters.BooleanFilter(
        field_name="is_deprecated",
        label="Deprecated",
        widget=forms.Select(choices=[("", "Any"), ("false", "In use"), ("true", "Deprecated")]),
    )
    order = django_filters.ChoiceFilter(
        choices=list(TAG_ORDERS.items()), method="keep", label="Order", empty_label=None
    )

    class Meta:
        model = Tag
        fields: list[str] = []

    def filter_name(self, queryset: QuerySet[Tag], name: str, value: str) -> QuerySet[Tag]:
        vocabulary = self.form.cleaned_data.get("vocab") or vocabulary_default()
        prefix = tag_query_normalise(value, vocabulary)
        if not prefix:
            return queryset
        # A range rather than LIKE: exact (binary) on both databases and served by the index.
        return queryset.filter(name__gte=prefix, name__lt=prefix + _MAX_CHAR)

    def keep(self, queryset: QuerySet[Tag], name: str, value: str) -> QuerySet[Tag]:
        return queryset  # the keyset pager reads `order`


def domain_error_to_form(form: forms.Form, err: DomainError) -> None:
    """Put a service error on the form: field errors on their fields, the rest on top."""
    fields = err.details.get("fields") if isinstance(err.details, dict) else None
    placed = False
    if isinstance(fields, dict):
        for name, messages in fields.items():
            if name in form.fields:
                for message in messages if isinstance(messages, list) else [messages]:
                    form.add_error(name, str(message))
                placed = True
    if not placed:
        form.add_error(None, err.message)


class _PercentField(forms.DecimalField):
    """A 0–100 % field stored as 1/10000 (so 12.5 % is 1250)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", Decimal(100))
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "0.01"}))
        super().__init__(**kwargs)

    @staticmethod
    def to_store(value: Decimal | None) -> int:
        return round((value or Decimal(0)) * 100)

    @staticmethod
    def from_store(value: int) -> Decimal:
        return Decimal(value) / 100


class TagTypeForm(forms.Form):
    key = forms.SlugField(max_length=32, help_text="Used in searches (chartags:…) and the API")
    name = forms.CharField(max_length=64)
    short_keys = forms.CharField(max_length=64, required=False, help_text="Comma-separated, e.g. char")
    color = forms.CharField(max_length=7, initial="#6b7280", widget=forms.TextInput(attrs={"type": "color"}))
    display_order = forms.IntegerField(min_value=0, max_value=32767, initial=100)
    caption_order = forms.IntegerField(min_value=0, max_value=32767, initial=100)
    caption_zone = forms.ChoiceField(choices=TagType.Zone.choices, initial=TagType.Zone.FLEX)
    pinned = forms.BooleanField(required=False, help_text="Always first, never shuffled")
    droppable = forms.BooleanField(required=False, initial=True)
    shuffleable = forms.BooleanField(required=False, initial=True)
    default_dropout = _PercentField(label="Default dropout %", initial=0)
    exported = forms.BooleanField(
        required=False, initial=True, help_text="Unticked: internal, never in captions"
    )
    max_per_item = forms.IntegerField(min_value=1, max_value=32767, required=False)

    @classmethod
    def for_type(cls, tag_type: TagType, data: Any = None) -> TagTypeForm:
        initial = {name: getattr(tag_type, name) for name in cls.base_fields}
        initial["default_dropout"] = _PercentField.from_store(tag_type.default_dropout)
        return cls(data, initial=initial, prefix=f"type-{tag_type.pk}")

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["default_dropout"] = _PercentField.to_store(data["default_dropout"])
        return data


class VocabularyForm(forms.Form):
    slug = forms.SlugField(max_length=64)
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Vocabulary.Kind.choices, initial=Vocabulary.Kind.BOORU)
    policy = forms.ChoiceField(choices=Vocabulary.Policy.choices, initial=Vocabulary.Policy.OPEN)
    case = forms.ChoiceField(choices=Vocabulary.Case.choices, initial=Vocabulary.Case.LOWER)
    word_separator = forms.ChoiceField(
        choices=list(WORD_SEPARATORS.items()), initial="_", required=False, label="Spaces become"
    )
    max_length = forms.IntegerField(min_value=1, max_value=200, initial=170, label="Longest name")
    default_type = forms.ModelChoiceField(
        queryset=TagType.objects.order_by("display_order", "id"), required=False, empty_label="(general)"
    )
    default_tagger_threshold = _PercentField(label="Tagger threshold %", initial=35)

    @classmethod
    def for_vocabulary(cls, vocabulary: Vocabulary, data: Any = None) -> VocabularyForm:
        initial = {name: getattr(vocabulary, name) for name in cls.base_fields}
        initial["default_tagger_threshold"] = _PercentField.from_store(vocabulary.default_tagger_threshold)
        return cls(data, initial=initial)

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["default_tagger_threshold"] = _PercentField.to_store(data["default_tagger_threshold"])
        return data


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"})
    )
    scheme = forms.ChoiceField(
        choices=[("auto", "Detect"), *((k, f"{k} numbers") for k in CATEGORY_SCHEMES)],
        initial="auto",
        label="Category numbers",
    )


class BuildForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=Vocabulary.objects.order_by("name"),
        label="From the tags of",
        empty_label="Choose a template",
    )
    scope = forms.ChoiceField(choices=list(USAGE_SCOPES.items()), initial="effective", label="Used in")
    min_count = forms.IntegerField(min_value=1, max_value=INT_MAX, initial=1, label="On at least (items)")

    def __init__(self, *args: Any, vocabulary: Vocabulary, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["source"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Vocabulary.objects.exclude(pk=vocabulary.pk).order_by("name")


# --- the tag editor on the item page ---------------------------------------------------------


class TagEditForm(forms.Form):
    name = forms.CharField(max_length=4000, strip=True, error_messages={"required": "Type a tag first."})
    row_version = forms.IntegerField(min_value=0, max_value=INT_MAX, required=False)

    def names(self) -> list[str]:
        """Several tags may be pasted at once, separated by commas (never part of a name)."""
        return [part for part in self.cleaned_data["name"].split(",") if part.strip()]


class PromoteForm(forms.Form):
    set = forms.IntegerField(min_value=1, max_value=INT_MAX)
    name = forms.CharField(max_length=200, required=False)
    min_percent = forms.FloatField(min_value=0, max_value=100, required=False)


class DescriptionForm(forms.Form):
    kind = forms.ChoiceField(choices=Description.Kind.choices, initial=Description.Kind.WHOLE)
    label = forms.CharField(max_length=100, required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    row_version = forms.IntegerField(min_value=1, max_value=INT_MAX, required=False, widget=forms.HiddenInput)


# --- rules (aliases and implications) -------------------------------------------------------


def _vocabulary_field() -> forms.ModelChoiceField:
    """The tag template a rule lives in (both tags must be in it); the default one preselected."""
    return forms.ModelChoiceField(
        queryset=Vocabulary.objects.order_by("-is_default_key", "name"),
        to_field_name="slug",
        empty_label=None,
        required=False,  # absent: the default tag template
        label="Tag template",
    )


class AliasForm(forms.Form):
    antecedent = forms.CharField(
        max_length=200,
        label="Tag people write",
        widget=forms.TextInput(attrs={"placeholder": "kitty", "autocomplete": "off"}),
    )
    consequent = forms.CharField(
        max_length=200,
        label="reads as",
        widget=forms.TextInput(attrs={"placeholder": "cat", "autocomplete": "off"}),
    )
    reason = forms.CharField(max_length=500, required=False)
    activate = forms.BooleanField(required=False, initial=True, label="Activate now")
    vocabulary = _vocabulary_field()


class ImplicationForm(forms.Form):
    child = forms.CharField(
        max_length=200,
        label="Tag",
        widget=forms.TextInput(attrs={"placeholder": "car", "autocomplete": "off"}),
    )
    parent = forms.CharField(
        max_length=200,
        label="implies",
        widget=forms.TextInput(attrs={"placeholder": "vehicle", "autocomplete": "off"}),
    )
    allow_cross_type = forms.BooleanField(required=False, label="Allow different types")
    reason = forms.CharField(max_length=500, required=False)
    activate = forms.BooleanField(required=False, initial=True, label="Activate now")
    vocabulary = _vocabulary_field()


class ImplicationImportForm(forms.Form):
    """`child,parent` CSV lines into a tag template (docs/tags.md#implications)."""

    text = forms.CharField(
        label="child,parent lines",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "domestic_cat,felid"}),
    )
    activate = forms.BooleanField(required=False, initial=True, label="Activate now")
    vocabulary = _vocabulary_field()
