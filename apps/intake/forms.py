"""The add-entry form of the intake queue page (docs/intake.md#pages)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core.exceptions import DomainError
from apps.core.ints import INT_MAX
from apps.datasets import selectors as dataset_selectors
from apps.datasets.models import Subset
from apps.intake.models import IntakeEntry

CHOICES_MAX = 500


class EntryForm(forms.Form):
    kind = forms.ChoiceField(
        choices=IntakeEntry.Kind.choices, initial=IntakeEntry.Kind.URLS, label="What to add"
    )
    dataset = forms.TypedChoiceField(coerce=int, label="Target dataset")
    subset = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Subset (optional)")
    urls = forms.CharField(
        required=False,
        label="URLs, one per line",
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "https://example.com/a.jpg\nhttps://example.com/b.png"}
        ),
    )
    split = forms.BooleanField(required=False, label="One entry per URL")
    archive = forms.FileField(
        required=False, label="Zip archive", widget=forms.ClearableFileInput(attrs={"accept": ".zip"})
    )
    folder = forms.CharField(required=False, max_length=1000, label="Folder below the intake root")
    video = forms.IntegerField(required=False, min_value=1, max_value=INT_MAX, label="Video item id")
    frame_plan = forms.CharField(
        required=False,
        label="Frame plan (JSON)",
        widget=forms.TextInput(attrs={"placeholder": '{"mode": "interval", "interval": 1}'}),
    )
    query = forms.CharField(required=False, max_length=2000, label="Query of library items")
    title = forms.CharField(required=False, max_length=200)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    planned_count = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=INT_MAX,
        label="Planned count",
        help_text="Empty: counted for you",
    )
    scheme = forms.CharField(required=False, max_length=200, label="On arrival: tagging scheme")
    taggers = forms.CharField(required=False, max_length=2000, label="On arrival: taggers (comma-separated)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        datasets = list(dataset_selectors.dataset_list()[:CHOICES_MAX])
        self.fields["dataset"].choices = [(d.pk, d.name) for d in datasets]  # type: ignore[attr-defined]
        subsets = (
            Subset.objects.filter(dataset__in=datasets)
            .select_related("dataset")
            .order_by("dataset__name", "name")
        )
        choices = [("", "—")] + [
            (sub.pk, f"{sub.dataset.name} / {sub.name}") for sub in subsets[:CHOICES_MAX]
        ]
        self.fields["subset"].choices = choices  # type: ignore[attr-defined]

    def clean_frame_plan(self) -> Any:
        raw = self.cleaned_data.get("frame_plan") or ""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(
                'Write the plan as JSON, e.g. {"mode": "interval", "interval": 1}.'
            ) from exc

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as the services' arguments."""
        data = self.cleaned_data
        on_arrival: dict[str, Any] = {}
        if data["scheme"]:
            on_arrival["scheme"] = data["scheme"].strip()
        taggers = [t.strip() for t in (data["taggers"] or "").split(",") if t.strip()]
        if taggers:
            on_arrival["taggers"] = taggers
        return {
            "kind": data["kind"],
            "dataset": data["dataset"],
            "subset": data["subset"],
            "title": data["title"],
            "notes": data["notes"],
            "planned_count": data["planned_count"],
            "urls": data["urls"],
            "archive": data.get("archive"),
            "folder": data["folder"],
            "video": data["video"],
            "frame_plan": data["frame_plan"],
            "query": data["query"],
            "on_arrival": on_arrival,
        }

    def add_service_error(self, err: DomainError) -> None:
        """The error beside the field it names; a URL list's errors one per line."""
        details = err.details if isinstance(err.details, dict) else {}
        lines = details.get("lines")
        if isinstance(lines, list) and lines:
            for line in lines:
                self.add_error("urls", f"Line {line['line']} ({line['url']}): {line['message']}")
            return
        name = details.get("field")
        if isinstance(name, str) and name in self.fields:
            self.add_error(name, err.message)
        else:
            self.add_error(None, err.message)
