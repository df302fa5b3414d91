"""Filters shared by the apps' FilterSets (pages and API alike)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from drf_spectacular.drainage import set_override

from apps.core.ints import INT_MAX, out_of_range_message


class IntegerFilter(django_filters.NumberFilter):
    """A whole number in [min_value, max_value] (docs/api.md#integers): `1e30`, `1.5` or a value
    past the column's range is a form error naming the filter (a 400 on the API), where
    NumberFilter's Decimal reached the database and overflowed on SQLite."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, min_value: int = 0, max_value: int = INT_MAX, **kwargs: Any) -> None:
        message = out_of_range_message(min_value, max_value)
        kwargs.setdefault("min_value", min_value)
        kwargs.setdefault("max_value", max_value)
        kwargs.setdefault("error_messages", {"min_value": message, "max_value": message})
        super().__init__(*args, **kwargs)
        # The schema states the range, so clients (and the schema fuzzer) know it.
        set_override(self, "field", {"type": "integer", "minimum": min_value, "maximum": max_value})

    def get_max_validator(self) -> None:
        return None  # forms.IntegerField's own max_value bounds it


class IdFilter(IntegerFilter):
    """A row id (1 to INT_MAX)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)
