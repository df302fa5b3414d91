"""The shipped base-model profiles survive a flush (transactional and browser tests empty every
table; post_migrate puts the shipped rows back, docs/training.md#base-models)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.training.defaults import PROFILES, base_models_ensure
from apps.training.models import BaseModelProfile


@pytest.mark.django_db(transaction=True)
def test_flush_restores_the_shipped_profiles() -> None:
    call_command("flush", interactive=False, verbosity=0)
    assert set(BaseModelProfile.objects.values_list("slug", flat=True)) == {p["slug"] for p in PROFILES}
    assert not BaseModelProfile.objects.filter(seeded=False).exists()


@pytest.mark.django_db
def test_ensure_leaves_edited_profiles_alone() -> None:
    first = PROFILES[0]["slug"]
    BaseModelProfile.objects.filter(slug=first).update(source_ref="models/mine.safetensors")
    BaseModelProfile.objects.filter(slug=PROFILES[1]["slug"]).delete()
    base_models_ensure()
    assert BaseModelProfile.objects.get(slug=first).source_ref == "models/mine.safetensors"
    assert BaseModelProfile.objects.filter(slug=PROFILES[1]["slug"], seeded=True).exists()
