"""Search knobs (docs/query-language.md#limits): Django settings override these defaults.

Read lazily like the apps' conf modules (apps/core/conf.py): baggintag/settings/base.py fills
SEARCH_X from the environment variable BAGGINTAG_SEARCH_X with the same default (.env.example).
"""

from __future__ import annotations

from django.conf import settings

DEFAULTS: dict[str, float | int] = {
    "SEARCH_MAX_LENGTH": 2000,
    "SEARCH_MAX_TAG_TERMS": 12,
    "SEARCH_MAX_TERMS": 64,
    "SEARCH_MAX_DEPTH": 8,
    "SEARCH_WILDCARD_MAX": 100,
    "SEARCH_TERM_EXPANSION_MAX": 500,
    "SEARCH_DEFAULT_LIMIT": 100,
    "SEARCH_MAX_LIMIT": 200,
    "SEARCH_SMALL_THRESHOLD": 20_000,
    "SEARCH_SCAN_BUDGET": 200_000,
    "SEARCH_TIME_LIMIT": 3.0,
    # count=estimate (the default) counts exactly only when that is this quick; otherwise it
    # estimates, so a first page never waits on COUNT(*) (count=exact takes SEARCH_TIME_LIMIT).
    "SEARCH_COUNT_ESTIMATE_TIME_LIMIT": 0.05,
    # …and does not try when the count would touch more rows than this (see count._work).
    "SEARCH_COUNT_ESTIMATE_ROWS": 20_000,
    "SEARCH_WILDCARD_TIME_LIMIT": 1.0,
    "SEARCH_COUNT_CACHE_SECONDS": 300,
}


def knob(name: str) -> float:
    """A search setting: `settings.<name>` when set, else the default."""
    return float(getattr(settings, name, DEFAULTS[name]))


def int_knob(name: str) -> int:
    """An integer search setting."""
    return int(knob(name))
