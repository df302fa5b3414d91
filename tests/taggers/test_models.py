"""The taggers models' own rules: uniqueness, frozen ready versions, caption keys."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from apps.taggers.engine.base import VersionFrozen
from apps.taggers.models import Caption, EmbeddingSpace, ImageEmbedding, Tagger, TaggerVersion, quantize
from apps.tags.selectors.vocabularies import vocabulary_default
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db


def _space(name: str = "s", weights: str = "a" * 64) -> EmbeddingSpace:
    return EmbeddingSpace.objects.create(
        name=name, model_ref="local-dir:open_clip/tiny", dim=4, weights_sha256=weights, preprocess_sha256="p"
    )


def test_one_embedding_per_item_and_space() -> None:
    (item,) = items_make(1)
    space = _space()
    ImageEmbedding.objects.create(item=item, space=space, vector=b"\0" * 8)
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageEmbedding.objects.create(item=item, space=space, vector=b"\0" * 8)


def test_same_weights_and_preprocessing_are_one_space() -> None:
    _space("one")
    with pytest.raises(IntegrityError), transaction.atomic():
        _space("two")


def _version(status: str) -> TaggerVersion:
    tagger = Tagger.objects.create(name="t", vocabulary=vocabulary_default(), kind=Tagger.Kind.EMBEDDING_HEAD)
    return TaggerVersion.objects.create(tagger=tagger, number=1, status=status, metrics={"macro_map": 0.9})


def test_a_ready_version_refuses_changes() -> None:
    version = _version(TaggerVersion.Status.READY)
    version.metrics = {"macro_map": 1.0}
    with pytest.raises(VersionFrozen):
        version.save()


def test_a_ready_version_may_retire() -> None:
    version = _version(TaggerVersion.Status.READY)
    version.status = TaggerVersion.Status.RETIRED
    version.save()
    assert TaggerVersion.objects.get(pk=version.pk).status == TaggerVersion.Status.RETIRED


def test_a_training_version_may_change() -> None:
    version = _version(TaggerVersion.Status.TRAINING)
    version.metrics = {"macro_map": 1.0}
    version.status = TaggerVersion.Status.READY
    version.save()
    assert TaggerVersion.objects.get(pk=version.pk).metrics == {"macro_map": 1.0}


def test_whole_image_captions_are_unique_without_null() -> None:
    (item,) = items_make(1)
    version = _version(TaggerVersion.Status.READY)
    Caption.objects.create(item=item, tagger_version=version, text="a", prompt_sha256="p")
    with pytest.raises(IntegrityError), transaction.atomic():
        Caption.objects.create(item=item, tagger_version=version, text="b", prompt_sha256="p")


@pytest.mark.parametrize(
    ("value", "stored"), [(0.0, 0), (0.12345, 1234), (1.0, 10000), (1.2, 10000), (-0.1, 0)]
)
def test_quantize(value: float, stored: int) -> None:
    assert quantize(value) == stored


def test_every_model_of_the_app_is_in_the_admin() -> None:
    from django.apps import apps
    from django.contrib import admin

    missing = [
        m.__name__ for m in apps.get_app_config("taggers").get_models() if m not in admin.site._registry
    ]
    assert missing == []


def test_admin_lists_open(admin_client) -> None:
    from django.apps import apps

    for model in apps.get_app_config("taggers").get_models():
        url = f"/admin/taggers/{model._meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url
