"""manage.py mapping_apply."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.tags import slots
from apps.tags.models import TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = pytest.mark.django_db


def test_command_applies_and_previews():
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["a"], vocabulary=danbooru)
    items = items_make(2)
    assign([(i.pk, TagSet.Kind.CURATED, src["a"].pk) for i in items])
    profile = profile_make(e621, [set_make(danbooru, e621, [("a", "x")])], input_scope="curated")
    ids = ",".join(str(i.pk) for i in items)
    out = StringIO()
    call_command("mapping_apply", profile.slug, "--ids", ids, "--dry-run", stdout=out)
    assert '"mapped": 1.0' in out.getvalue()
    call_command("mapping_apply", profile.slug, "--ids", ids, stdout=StringIO())
    assert TagSet.objects.filter(slot=slots.mapping(profile.pk)).count() == 2


def test_command_unknown_profile_is_an_error():
    with pytest.raises(CommandError, match="no mapping profile"):
        call_command("mapping_apply", "nope", "--ids", "1")


@pytest.mark.parametrize("ids", ["1,x", "99999999999999999999999", "²"])
def test_command_bad_ids_are_an_error_naming_them(ids):
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    profile = profile_make(e621, [set_make(danbooru, e621, [])])
    with pytest.raises(CommandError, match="--ids"):
        call_command("mapping_apply", profile.slug, "--ids", ids)
