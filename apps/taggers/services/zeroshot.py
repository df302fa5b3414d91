"""Zero-shot taggers (`clip_zeroshot`, docs/taggers.md#zero-shot-taggers): a version freezes the
tags it scores, their prompt names and the templates; nothing is trained.

`POST /api/taggers/{id}/train` on a zero-shot tagger calls `zeroshot_version_create`: a `ready`
version at once (no job) whose `hyperparams` hold `templates` and `prompts` ([tag id, prompt
name] per tag), made active when the tagger has none. Prompt names are the tagger's
`params.prompts` ({tag name: text}) or the tag's display name; templates are `params.templates`
(each with one `{}`) or the engine's defaults. The text matrix is built from them by the space's
text tower the first time a step scores and stored (`text_matrix`, `text_matrices.py`), so
editing the tagger's params changes nothing until a new version is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max

from apps.core.exceptions import DomainError
from apps.taggers.engine.clip import DEFAULT_TEMPLATES
from apps.taggers.models import EmbeddingSpace, Tagger, TaggerVersion
from apps.taggers.services.text_matrices import TextMatrix
from apps.tags.models import Tag

MAX_TAGS = 2000
MAX_TEMPLATES = 20


def _templates(tagger: Tagger) -> list[str]:
    raw = (tagger.params or {}).get("templates")
    if raw is None:
        return list(DEFAULT_TEMPLATES)
    ok = (
        isinstance(raw, list)
        and 1 <= len(raw) <= MAX_TEMPLATES
        and all(isinstance(t, str) and t.count("{}") == 1 and len(t) <= 200 for t in raw)
    )
    if not ok:
        raise DomainError(
            f"Tagger {tagger.name}: params.templates must be 1–{MAX_TEMPLATES} texts of at most 200 "
            'characters, each with one "{}" where the tag goes.',
            code="taggers.bad_templates",
        )
    return list(raw)


def _prompts(tagger: Tagger) -> list[list[Any]]:
    custom = (tagger.params or {}).get("prompts") or {}
    if not isinstance(custom, dict) or not all(
        isinstance(v, str) and 0 < len(v) <= 200 for v in custom.values()
    ):
        raise DomainError(
            f"Tagger {tagger.name}: params.prompts must map tag names to texts of 1–200 characters.",
            code="taggers.bad_prompts",
        )
    tags = Tag.objects.filter(vocabulary_id=tagger.vocabulary_id, is_deprecated=False)
    types = list(tagger.tag_types.values_list("pk", flat=True))
    if types:
        tags = tags.filter(type_id__in=types)
    rows = list(tags.order_by("pk").values_list("pk", "name", "display_name")[: MAX_TAGS + 1])
    if not rows:
        raise DomainError(
            f"Tagger {tagger.name}: its vocabulary (and tag types) hold no tags to score.",
            code="taggers.no_tags",
        )
    if len(rows) > MAX_TAGS:
        raise DomainError(
            f"Tagger {tagger.name}: a zero-shot tagger scores at most {MAX_TAGS} tags; give it tag types "
            "that hold fewer.",
            code="taggers.too_many_tags",
        )
    return [[pk, custom.get(name) or display or name.replace("_", " ")] for pk, name, display in rows]


@transaction.atomic
def zeroshot_version_create(*, tagger: Tagger) -> TaggerVersion:
    """A ready version freezing the prompts and templates; active when none is."""
    from apps.taggers.services.versions import version_promote

    locked = Tagger.objects.select_for_update().select_related("embedding_space").get(pk=tagger.pk)
    space = locked.embedding_space
    if space is None or not space.has_text_tower:
        raise DomainError(
            f"Tagger {locked.name} needs an embedding space with a text tower.",
            code="taggers.no_text_tower",
        )
    prompts = _prompts(locked)
    hyperparams = {"templates": _templates(locked), "prompts": prompts}
    number = (TaggerVersion.objects.filter(tagger=locked).aggregate(n=Max("number"))["n"] or 0) + 1
    version = TaggerVersion.objects.create(
        tagger=locked,
        number=number,
        space=space,
        status=TaggerVersion.Status.READY,
        hyperparams=hyperparams,
        counts={"tags": len(prompts)},
    )
    if locked.active_version_id is None:
        version_promote(tagger=locked, number=number)
    return version


def text_matrix(version: TaggerVersion, space: EmbeddingSpace) -> tuple[np.ndarray, TextMatrix]:
    """(tag ids, the stored D×T text matrix) of a zero-shot version: read from the store, or
    built by the space's text tower and stored the first time (`text_matrices.py`)."""
    from apps.taggers.services.text_matrices import text_matrix_get

    prompts = version.hyperparams.get("prompts") or []
    templates = version.hyperparams.get("templates") or list(DEFAULT_TEMPLATES)
    if not prompts:
        raise DomainError(
            f"Version {version.number} of a zero-shot tagger holds no prompts; create a new version.",
            code="taggers.no_tags",
        )
    stored = text_matrix_get(space, [str(p) for _, p in prompts], list(templates))
    return np.asarray([int(k) for k, _ in prompts], dtype=np.int64), stored
