"""`reverse_pk`: the same URLs as `reverse`, under any script prefix."""

from __future__ import annotations

import pytest
from django.urls import get_script_prefix, reverse, set_script_prefix

from apps.core.links import reverse_pk

NAMES = ["api:media-detail", "api:media-file", "api:media-thumbnail", "media:item-detail"]


@pytest.mark.parametrize("prefix", ["/", "/baggintag/"])
def test_reverse_pk_gives_what_reverse_gives(prefix):
    before = get_script_prefix()
    set_script_prefix(prefix)
    try:
        for name in NAMES:
            for pk in (1, 42, 10**12):
                assert reverse_pk(name, pk) == reverse(name, kwargs={"pk": pk})
                assert reverse_pk(name, pk).startswith(prefix)
    finally:
        set_script_prefix(before)


def test_a_url_without_a_plain_pk_is_refused():
    with pytest.raises(Exception):  # noqa: B017, PT011 (NoReverseMatch: the name takes no pk)
        reverse_pk("api:api-root", 1)
