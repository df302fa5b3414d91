"""Defining taggers: what they tag (vocabulary, tag types, image or regions), kind and network
type (docs/taggers.md#taggers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.taggers.models import EmbeddingSpace, Tagger
from apps.tags.models import TagType, Vocabulary

HEAD_NETWORKS = ("linear", "mlp")
EDITABLE = ("description", "network_type", "params", "scope", "stored_threshold")


def _check(tagger: Tagger) -> None:
    if tagger.kind == Tagger.Kind.EMBEDDING_HEAD:
        if tagger.embedding_space_id is None:
            raise DomainError("An embedding-head tagger needs an embedding space.", code="taggers.no_space")
        if (tagger.network_type or "linear") not in HEAD_NETWORKS:
            raise DomainError(
                f"network_type of a head is one of {', '.join(HEAD_NETWORKS)}.", code="taggers.network_type"
            )
        tagger.network_type = tagger.network_type or "linear"
    if not 0.01 <= tagger.stored_threshold <= 1.0:
        raise DomainError("stored_threshold is between 0.01 and 1.", code="taggers.stored_threshold")
    try:
        tagger.full_clean(exclude=["active_version"])
    except ValidationError as exc:
        raise DomainError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()), code="taggers.invalid"
        ) from exc


@transaction.atomic
def tagger_create(
    *,
    name: str,
    vocabulary: Vocabulary,
    kind: str,
    embedding_space: EmbeddingSpace | None = None,
    tag_types: Sequence[TagType] = (),
    network_type: str = "",
    target: str = Tagger.Target.IMAGE,
    description: str = "",
    params: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    stored_threshold: float = 0.10,
    owner: Any = None,
) -> Tagger:
    tagger = Tagger(
        name=name,
        vocabulary=vocabulary,
        kind=kind,
        embedding_space=embedding_space,
        network_type=network_type,
        target=target,
        description=description,
        params=params or {},
        scope=scope or {},
        stored_threshold=stored_threshold,
        owner=owner if owner is not None and owner.is_authenticated else None,
    )
    if Tagger.objects.filter(name=name).exists():
        raise ConflictError(f"There is a tagger named {name!r} already.", code="taggers.tagger_exists")
    _check(tagger)
    try:
        with transaction.atomic():
            tagger.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"There is a tagger named {name!r} already.", code="taggers.tagger_exists"
        ) from exc
    tagger.tag_types.set(tag_types)
    return tagger


@transaction.atomic
def tagger_update(*, tagger: Tagger, tag_types: Sequence[TagType] | None = None, **fields: Any) -> Tagger:
    """Change what does not invalidate versions (name, vocabulary, kind and space stay)."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise DomainError(
            f"These fields cannot change: {', '.join(sorted(unknown))}.", code="taggers.read_only"
        )
    locked = Tagger.objects.select_for_update().get(pk=tagger.pk)
    for key, value in fields.items():
        setattr(locked, key, value)
    _check(locked)
    locked.save()
    if tag_types is not None:
        locked.tag_types.set(tag_types)
    return locked


@transaction.atomic
def tagger_delete(*, tagger: Tagger) -> None:
    """Delete a tagger, its versions and thresholds (its tagger sets stay until cleaned)."""
    from apps.taggers.models import TaggerVersion
    from apps.taggers.services.versions import artifacts_delete

    locked = Tagger.objects.select_for_update().get(pk=tagger.pk)
    locked.active_version = None
    locked.save(update_fields=["active_version", "updated_at"])
    dirs = list(TaggerVersion.objects.filter(tagger=locked).values_list("artifact_dir", flat=True))
    locked.delete()

    def remove() -> None:
        for directory in dirs:
            if directory:
                artifacts_delete(directory=directory)

    transaction.on_commit(remove)


def _tag_types(keys: Sequence[str]) -> list[TagType]:
    found = {t.key: t for t in TagType.objects.filter(key__in=list(keys))}
    missing = [k for k in keys if k not in found]
    if missing:
        raise DomainError(f"Unknown tag types: {', '.join(missing)}.", code="taggers.unknown_tag_type")
    return [found[k] for k in keys]


def tagger_define(*, data: dict[str, Any], owner: Any = None) -> Tagger:
    """`tagger_create` from API or form input (vocabulary slug, space id, tag type keys)."""
    from apps.tags.services.names import vocabulary_default

    values = dict(data)
    slug = values.pop("vocabulary", None)
    vocabulary = Vocabulary.objects.filter(slug=slug).first() if slug else vocabulary_default()
    if vocabulary is None:
        raise DomainError(f"Unknown vocabulary {slug!r}.", code="taggers.unknown_vocabulary")
    space_id = values.pop("embedding_space", None)
    space = EmbeddingSpace.objects.filter(pk=space_id).first() if space_id else None
    if space_id and space is None:
        raise DomainError(f"Unknown embedding space {space_id}.", code="taggers.unknown_space")
    types = _tag_types(values.pop("tag_types", []) or [])
    return tagger_create(vocabulary=vocabulary, embedding_space=space, tag_types=types, owner=owner, **values)


def tagger_change(*, tagger: Tagger, data: dict[str, Any]) -> Tagger:
    """`tagger_update` from API or form input (tag type keys)."""
    values = dict(data)
    keys = values.pop("tag_types", None)
    return tagger_update(tagger=tagger, tag_types=_tag_types(keys) if keys is not None else None, **values)
