"""Page forms for the media library."""

from __future__ import annotations

from django import forms


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
       required=False, label="Images and videos",
                              widget=MultipleFileInput(attrs={"accept": "image/*,video/*"}))
    archive = forms.FileField(required=False, label="Zip archive",
                              widget=forms.ClearableFileInput(attrs={"accept": ".zip"}))
    urls = forms.CharField(required=False, label="URLs, one per line",
                           widget=forms.Textarea(attrs={"rows": 3,
                                                        "placeholder": "https://example.com/picture.jpg"}))
    artist = forms.CharField(required=False, max_length=200)
    source = forms.CharField(required=False, max_length=2000, label="Source page")
    tags = forms.CharField(required=False, label="Tags (comma-separated)")
    tag_source = forms.CharField(required=False, max_length=200, label="Where the tags came from")

    def clean_urls(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()]

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean() or {}
        if not (data.get("files") or data.get("archive") or data.get("urls")):
            raise forms.ValidationError("Choose files, a zip archive or enter URLs to upload.")
        return data
