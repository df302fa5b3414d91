"""Page forms for training sessions, exports and Textual Inversion sets (docs/training.md#pages).

Forms check shapes; the services check the rules (buckets, targets the base model supports,
datasets with members, rates in [0, 1)). A service error names a field, sometimes inside a list
(`datasets[2].repeats`, `type_policies.general.drop_rate`); `place_error` puts it beside that
field, on the dataset row or the policy row it names.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetGroup, Snapshot, Subset
from apps.mappings.models import MappingProfile
from apps.tags.models import Vocabulary
from apps.training.models import (
    BaseModelProfile,
    CaptionTypePolicy,
    Family,
    TextualInversion,
    TrainingExport,
    TrainingSession,
    TrainingSessionDataset,
)

TARGETS = [("kohya", "kohya sd-scripts"), ("onetrainer", "OneTrainer"), ("diffusers", "diffusers")]
TI_TARGETS = [*TARGETS, ("a1111", "AUTOMATIC1111")]
SESSION_FORM_TARGETS = [*TARGETS, ("wd-tagger", "WD tagger (images + selected_tags.csv)")]
TOKENS = [("", "The base model's"), ("75", "75"), ("150", "150"), ("225", "225")]
NULL_BOOL = [("", "The base model's"), ("true", "Yes"), ("false", "No")]
_ENTRY = re.compile(r"datasets\[(\d+)\](?:\.(\w+))?")
_POLICY = re.compile(r"type_policies\.([\w-]+)(?:\.(\w+))?")
_WEIGHT_LINE = re.compile(r"\s*([^=]+?)\s*=\s*([0-9]{1,9})\s*")


def field_errors(form: forms.Form, err: DomainError) -> bool:
    """Put a service's error on the fields of `form` it names (details.fields); False when it
    names none of them."""
    placed = False
    for name, messages in (err.details.get("fields") or {}).items():
        if name in form.fields:
            for message in messages if isinstance(messages, list) else [messages]:
                form.add_error(name, str(message))
            placed = True
    return placed


def _choices_int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _int(label: str, low: int, high: int, **kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=low, max_value=high, **kwargs)


def _rate(label: str, **kwargs: Any) -> forms.FloatField:
    return forms.FloatField(
        label=label,
        min_value=0,
        max_value=0.99,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        **kwargs,
    )


class SessionForm(forms.Form):
    """The session row: base model, trainers, mapping, image and caption policy, method."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=40, required=False, help_text="Empty: made from the name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20_000)
    base_model = forms.ModelChoiceField(
        queryset=BaseModelProfile.objects.order_by("name"),
        empty_label=None,
    )
    targets = forms.MultipleChoiceField(
        choices=SESSION_FORM_TARGETS,
        widget=forms.CheckboxSelectMultiple,
        help_text="Trainers the bundle is made for",
    )
    mapping_profile = forms.ModelChoiceField(
        queryset=MappingProfile.objects.order_by("name"),
        required=False,
        empty_label="None (tags as they are)",
    )
    seed = _int("Seed", 0, 2**31 - 1)
    target_root = forms.CharField(
        max_length=500, required=False, help_text="The bundle's folder on the training machine (absolute)"
    )
    # method
    method = forms.ChoiceField(choices=TrainingSession.Method.choices)
    rank = _int("Rank", 1, 1024)
    alpha = _int("Alpha", 1, 1024)
    epochs = _int("Epochs", 1, 10_000)
    batch_size = _int("Batch size", 1, 1024)
    learning_rate = forms.FloatField(min_value=0, widget=forms.NumberInput(attrs={"step": "any"}))
    mixed_precision = forms.ChoiceField(
        choices=[("fp16", "fp16"), ("bf16", "bf16"), ("no", "Full precision")]
    )
    train_text_encoder = forms.BooleanField(required=False)
    masked_loss = forms.BooleanField(required=False, help_text="Train only inside the items' masks")
    kohya_masks = forms.ChoiceField(
        choices=TrainingSession.KohyaMasks.choices,
        required=False,
        label="kohya loss masks",
        help_text="Focus box: masks/<partition>/ with white inside each item's focus box (no box: all white)",
    )
    cache_latents = forms.BooleanField(required=False)
    cache_text_encoder_outputs = forms.BooleanField(required=False)
    # image policy
    resolution = _int("Resolution", 64, 8192, required=False, help_text="Empty: the base model's")
    bucket_min = _int("Smallest bucket side", 64, 8192, required=False)
    bucket_max = _int("Largest bucket side", 64, 8192, required=False)
    bucket_step = _int("Bucket step", 8, 1024, required=False)
    no_upscale = forms.BooleanField(required=False, label="Never upscale")
    images = forms.ChoiceField(choices=TrainingSession.Images.choices)
    crop = forms.ChoiceField(choices=TrainingSession.Crop.choices)
    mirror = forms.ChoiceField(choices=TrainingSession.Mirror.choices, label="Mirroring")
    swap_directional = forms.BooleanField(required=False, label="Mirrored copies swap left/right tags")
    min_source_side = _int("Smallest source side", 0, 100_000)
    alpha_background = forms.CharField(
        max_length=7, label="Background behind transparency", help_text="#rrggbb"
    )
    max_aspect = forms.FloatField(
        min_value=0, help_text="0: no check", widget=forms.NumberInput(attrs={"step": "0.1"})
    )
    # caption policy (session-wide; per type below)
    shuffle = forms.BooleanField(required=False, label="Shuffle flexible tags")
    caption_dropout_rate = _rate("Caption dropout")
    underscores_to_spaces = forms.TypedChoiceField(
        choices=NULL_BOOL,
        required=False,
        coerce=lambda v: v == "true",
        empty_value=None,
        label="Underscores to spaces",
    )
    escape_parentheses = forms.BooleanField(required=False)
    max_tokens = forms.TypedChoiceField(
        choices=TOKENS, required=False, coerce=int, empty_value=None, label="Token budget (kohya)"
    )
    materialize_mode = forms.ChoiceField(choices=TrainingSession.Materialize.choices, label="Materialise")
    materialize_variants = _int("Materialised lines", 1, 64)
    prefix_mode = forms.ChoiceField(choices=TrainingSession.PrefixMode.choices)
    kohya_per_type_dropout = forms.ChoiceField(
        choices=[("", "Materialise"), ("wildcard", "kohya wildcards")],
        required=False,
        label="kohya per-type dropout",
    )
    description_weights = forms.CharField(
        required=False,
        max_length=5000,
        label="Alternate weights",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One description set a line: name = weight (e.g. caption = 3)",
    )

    def clean_description_weights(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n, line in enumerate((self.cleaned_data.get("description_weights") or "").splitlines(), 1):
            if not line.strip():
                continue
            match = _WEIGHT_LINE.fullmatch(line)
            if match is None:
                raise forms.ValidationError(f"line {n}: write name = weight (a whole number from 0 to 1000).")
            out[match.group(1)] = int(match.group(2))
        return out

    def values(self) -> dict[str, Any]:
        """The cleaned values in the services' shape."""
        data = dict(self.cleaned_data)
        data["base_model"] = data["base_model"].pk
        profile = data.pop("mapping_profile")
        data["mapping_profile"] = profile.pk if profile is not None else None
        data["kohya_masks"] = data.get("kohya_masks") or TrainingSession.KohyaMasks.NONE
        for name in ("slug", "target_root"):  # empty: made from the name, or kept
            if not data.get(name):
                data.pop(name, None)
        return data

    @staticmethod
    def initial_from(session: TrainingSession, weights: dict[str, int]) -> dict[str, Any]:
        names = [n for n in SessionForm.base_fields if n not in ("description_weights",)]
        initial = {name: getattr(session, name) for name in names}
        initial["underscores_to_spaces"] = (
            "" if session.underscores_to_spaces is None else str(session.underscores_to_spaces).lower()
        )
        initial["max_tokens"] = "" if session.max_tokens is None else str(session.max_tokens)
        initial["description_weights"] = "\n".join(f"{k} = {v}" for k, v in sorted(weights.items()))
        return initial


class _RowForm(forms.Form):
    """A form shown as a table row: each input carries its label for screen readers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.row_name()
        for name, field in self.fields.items():
            label = field.label or name.replace("_", " ").capitalize()
            field.widget.attrs.setdefault("aria-label", f"{label}, {row}" if row else label)

    def row_name(self) -> str:
        number = (self.prefix or "").rsplit("-", 1)[-1]
        return f"row {int(number) + 1}" if number.isdigit() else ""


class DatasetEntryForm(_RowForm):
    """One dataset (optionally a subset, a pinned snapshot) or a dataset group of a session."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"), required=False)
    subset = forms.ModelChoiceField(
        queryset=Subset.objects.select_related("dataset").order_by("dataset__name", "name"), required=False
    )
    group = forms.ModelChoiceField(queryset=DatasetGroup.objects.order_by("name"), required=False)
    snapshot = forms.ModelChoiceField(
        queryset=Snapshot.objects.select_related("dataset").order_by("dataset__name", "-id"),
        required=False,
        empty_label="Frozen at export",
    )
    slug = forms.SlugField(max_length=40, required=False)
    role = forms.ChoiceField(choices=TrainingSessionDataset.Role.choices)
    repeats = _int("Repeats", 1, 10_000, initial=1)
    balance = forms.ChoiceField(choices=TrainingSessionDataset.Balance.choices, required=False)
    loss_weight = forms.FloatField(min_value=0, initial=1.0, widget=forms.NumberInput(attrs={"step": "0.1"}))
    class_tokens = forms.CharField(max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("dataset") is None and data.get("group") is None and data.get("subset") is not None:
            data["dataset"] = data["subset"].dataset
        return data

    def blank(self) -> bool:
        data = getattr(self, "cleaned_data", {}) or {}
        return data.get("dataset") is None and data.get("group") is None

    def value(self) -> dict[str, Any]:
        data = self.cleaned_data
        out: dict[str, Any] = {
            "role": data["role"],
            "repeats": data["repeats"],
            "balance": data.get("balance") or "",
            "loss_weight": data["loss_weight"],
            "class_tokens": data.get("class_tokens") or "",
            "slug": data.get("slug") or "",
        }
        if data.get("group") is not None:
            out["group"] = data["group"].pk
        else:
            out["dataset"] = data["dataset"].pk
            if data.get("subset") is not None:
                out["subset"] = data["subset"].pk
            if data.get("snapshot") is not None:
                out["snapshot"] = data["snapshot"].pk
        return out

    @staticmethod
    def initial_from(entry: TrainingSessionDataset) -> dict[str, Any]:
        names = ("dataset", "subset", "group", "snapshot", "slug", "role", "repeats", "balance")
        return {n: getattr(entry, n) for n in names} | {
            "loss_weight": entry.loss_weight,
            "class_tokens": entry.class_tokens,
        }


class BaseDatasetFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    CHOICE_FIELDS = ("dataset", "subset", "group", "snapshot")

    def _construct_form(self, i: int, **kwargs: Any) -> forms.Form:
        """Each row's selects share one list of choices (one query per select, not per row)."""
        form: forms.Form = super()._construct_form(i, **kwargs)  # type: ignore[misc]
        cache: dict[str, list[Any]] = self.__dict__.setdefault("_choices", {})
        for name in self.CHOICE_FIELDS:
            if name not in cache:
                cache[name] = list(form.fields[name].choices)  # type: ignore[attr-defined]
            form.fields[name].choices = cache[name]  # type: ignore[attr-defined]
        return form

    def clean(self) -> None:
        if any(self.errors):
            return
        if not [f for f in self.forms if f not in self.deleted_forms and not f.blank()]:
            raise forms.ValidationError("Add at least one dataset or dataset group.")

    def entries(self) -> list[tuple[DatasetEntryForm, dict[str, Any]]]:
        """(form, service value) of each kept, non-blank row, in order."""
        return [(f, f.value()) for f in self.forms if f not in self.deleted_forms and not f.blank()]


DatasetFormSet = forms.formset_factory(
    DatasetEntryForm, formset=BaseDatasetFormSet, extra=1, can_delete=True, max_num=50, validate_max=True
)


class PolicyForm(_RowForm):
    """One tag type's row of the caption-policy table."""

    tag_type = forms.CharField(widget=forms.HiddenInput, max_length=100)
    zone = forms.ChoiceField(choices=CaptionTypePolicy.Zone.choices)
    zone_order = _int("Order", 0, 32767)
    drop_rate = _rate("Drop rate")
    whole_drop_rate = _rate("Whole drop rate")
    atomic = forms.BooleanField(required=False, label="Keep together")
    budget_priority = _int("Budget priority", -32768, 32767)

    def row_name(self) -> str:
        key = (
            self.initial.get("tag_type") or self.data.get(self.add_prefix("tag_type")) if self.prefix else ""
        )
        return str(key or super().row_name())

    def value(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("tag_type")
        return data


PolicyFormSet = forms.formset_factory(PolicyForm, extra=0, max_num=500)


def policy_initial(policies: list[CaptionTypePolicy]) -> list[dict[str, Any]]:
    names = ("zone", "zone_order", "drop_rate", "whole_drop_rate", "atomic", "budget_priority")
    return [{"tag_type": p.tag_type.key, **{n: getattr(p, n) for n in names}} for p in policies]


def place_error(
    err: DomainError,
    form: forms.Form,
    entries: list[DatasetEntryForm],
    policies: forms.BaseFormSet,  # type: ignore[type-arg]
) -> None:
    """Beside the field, the dataset row or the policy row the error names; else on the form."""
    if field_errors(form, err):
        return
    for name, messages in (err.details.get("fields") or {}).items():
        text = "; ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        entry = _ENTRY.fullmatch(name)
        if entry and int(entry.group(1)) < len(entries):
            row = entries[int(entry.group(1))]
            field = entry.group(2) if entry.group(2) in row.fields else None
            row.add_error(field, text)
            return
        policy = _POLICY.fullmatch(name)
        if policy:
            for row in policies.forms:
                if row.cleaned_data.get("tag_type") == policy.group(1):
                    field = policy.group(2) if policy.group(2) in row.fields else None
                    row.add_error(field, text)
                    return
    form.add_error(None, err.message)


class ExportForm(forms.Form):
    target = forms.ChoiceField(
        choices=TrainingExport.Target.choices, widget=forms.RadioSelect, initial=TrainingExport.Target.ZIP
    )
    folder = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Server folder below the export root (only for server folders)",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 40}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("target") == TrainingExport.Target.FOLDER and not (data.get("folder") or "").strip():
            self.add_error("folder", "Name a folder under the export root.")
        return data


class TIForm(forms.Form):
    """A Textual Inversion set: the token, its image set and the trainers."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=40, required=False, help_text="Empty: made from the name")
    token = forms.CharField(
        max_length=40,
        help_text="A made-up word: 3 to 40 lower-case letters and digits",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    init_word = forms.CharField(max_length=60, help_text="One word the token starts from")
    num_vectors = _int("Vectors per token", 1, 75, initial=1)
    learnable = forms.ChoiceField(choices=TextualInversion.Learnable.choices)
    prompting = forms.ChoiceField(choices=TextualInversion.Prompting.choices)
    base_model = forms.ModelChoiceField(
        queryset=BaseModelProfile.objects.filter(kind=BaseModelProfile.Kind.CHECKPOINT).order_by("name"),
        empty_label=None,
    )
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("name"), required=False)
    subset = forms.ModelChoiceField(
        queryset=Subset.objects.select_related("dataset").order_by("dataset__name", "name"), required=False
    )
    query = forms.CharField(
        max_length=2000,
        required=False,
        help_text="Or the image set by query (no dataset)",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 50}),
    )
    resolution = _int("Resolution", 64, 4096, required=False, help_text="Empty: the base model's")
    repeats = _int("Repeats", 1, 10_000, initial=1)
    seed = _int("Seed", 0, 2**31 - 1, initial=1234)
    targets = forms.MultipleChoiceField(choices=TI_TARGETS, widget=forms.CheckboxSelectMultiple)
    target_root = forms.CharField(max_length=500, required=False, help_text="Empty: /srv/train/<slug>")

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["base_model"] = data["base_model"].pk
        if data.get("subset") is not None and data.get("dataset") is None:
            data["dataset"] = data["subset"].dataset
        for name in ("dataset", "subset"):
            data[name] = data[name].pk if data.get(name) is not None else None
        for name in ("slug", "target_root"):  # empty: made from the name, or kept
            if not data.get(name):
                data.pop(name, None)
        data["resolution"] = _choices_int(data.get("resolution"))
        return data

    @staticmethod
    def initial_from(ti: TextualInversion) -> dict[str, Any]:
        return {name: getattr(ti, name) for name in TIForm.base_fields}


class BaseModelForm(forms.Form):
    """A custom base-model profile (shipped profiles are read-only on pages)."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20_000)
    kind = forms.ChoiceField(choices=BaseModelProfile.Kind.choices)
    family = forms.ChoiceField(choices=Family.choices)
    prediction = forms.ChoiceField(choices=BaseModelProfile.Prediction.choices)
    resolution = _int("Resolution", 64, 16384, initial=512)
    bucket_min = _int("Smallest bucket side", 64, 16384, initial=256)
    bucket_max = _int("Largest bucket side", 64, 16384, initial=1024)
    bucket_step = _int("Bucket step", 8, 1024, initial=64)
    onetrainer_quantum = _int("OneTrainer quantum", 1, 1024, initial=8)
    max_tokens = forms.TypedChoiceField(choices=TOKENS[1:], coerce=int, initial=75, label="Token budget")
    clip_skip = _int("CLIP skip", 1, 12, initial=1)
    v_parameterization = forms.BooleanField(required=False)
    score_tags_prefix = forms.BooleanField(required=False, label="Quality, rating and meta tags lead")
    booru_text = forms.BooleanField(required=False, initial=True, label="Underscores become spaces")
    source_kind = forms.ChoiceField(choices=BaseModelProfile.SourceKind.choices)
    source_ref = forms.CharField(max_length=500, required=False, label="Weights (file, folder or Hub id)")
    source_sha256 = forms.CharField(max_length=64, required=False, label="SHA-256 of the weights")
    diffusers_ref = forms.CharField(
        max_length=500, required=False, label="diffusers model", help_text="Folder or Hub id; empty: none"
    )
    vocabulary = forms.ModelChoiceField(
        queryset=Vocabulary.objects.order_by("name"), required=False, empty_label="None"
    )
    mapping_profile = forms.ModelChoiceField(
        queryset=MappingProfile.objects.order_by("name"), required=False, empty_label="None"
    )
    supported_trainers = forms.MultipleChoiceField(
        choices=[*TI_TARGETS, ("wd-tagger", "WD tagger training")],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Trainers",
    )

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        for name in ("vocabulary", "mapping_profile"):
            data[name] = data[name].pk if data.get(name) is not None else None
        return data

    @staticmethod
    def initial_from(profile: BaseModelProfile) -> dict[str, Any]:
        return {name: getattr(profile, name) for name in BaseModelForm.base_fields}
