"""Typed, lazy reads of Django settings, for the per-app conf modules (`apps/<app>/conf.py`).

Each app lists the settings it reads, with their defaults, in its conf module's DEFAULTS and
reads each through one accessor there. Accessors read `django.conf.settings` when called, never
at import, so `override_settings` and pytest-django's `settings` fixture apply.
baggintag/settings/base.py fills every one from the environment variable `env_name(setting)`
with the same default, and .env.example documents it (tests/core/test_settings.py checks both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings


def env_name(setting: str) -> str:
    """The environment variable behind a setting: BAGGINTAG_X keeps its name, X reads BAGGINTAG_X."""
    return setting if setting.startswith("BAGGINTAG_") else f"BAGGINTAG_{setting}"


def setting_int(defaults: Mapping[str, Any], name: str) -> int:
    """`settings.<name>` as an int, else the default."""
    return int(getattr(settings, name, defaults[name]))


def setting_float(defaults: Mapping[str, Any], name: str) -> float:
    """`settings.<name>` as a float, else the default."""
    return float(getattr(settings, name, defaults[name]))


def setting_list(defaults: Mapping[str, Any], name: str) -> list[str]:
    """`settings.<name>` as a list of strings, else the default."""
    return [str(value) for value in getattr(settings, name, defaults[name])]


DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_SPOOL_MAX_AGE_HOURS": 12,
}


def spool_dir() -> str:
    """Where spool files go (`BAGGINTAG_SPOOL_DIR`, default `$BAGGINTAG_DATA_DIR/spool`)."""
    return str(getattr(settings, "BAGGINTAG_SPOOL_DIR", "") or f"{settings.DATA_DIR}/spool")


def spool_max_age_hours() -> int:
    """Spool files older than this are removed whoever wrote them."""
    return setting_int(DEFAULTS, "BAGGINTAG_SPOOL_MAX_AGE_HOURS")
