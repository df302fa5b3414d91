"""Reads of tagger output: effective predictions, the review queue, reviewer agreement
(docs/taggers.md#review).

A prediction is a current assignment of a version's tagger set. It is effective when its
confidence reaches the tag's threshold: the `TaggerThreshold` row (tuned, or a person's
override), else the vocabulary's `default_tagger_threshold`. Thresholds are read at query time,
so changing one changes these answers at once and runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Abs, Cast, Coalesce

from apps.core.exceptions import DomainError, NotFoundError
from apps.taggers.models import SCALE, Tagger, TaggerThreshold, TaggerVersion
from apps.tags import slots
from apps.tags.models import TagAssignment, TagSet

CURRENT = TagAssignment.State.CURRENT
DELETED = TagAssignment.State.DELETED
REVIEW_PAGE = 50


def tagger_list() -> QuerySet[Tagger]:
    return Tagger.objects.select_related(
        "vocabulary", "embedding_space", "active_version", "previous_version", "rescore_job"
    ).order_by("name")


def tagger_get(*, tagger_id: object) -> Tagger:
    try:
        return tagger_list().get(pk=int(str(tagger_id)))
    except (Tagger.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Tagger {tagger_id} not found.", code="taggers.tagger_not_found") from exc


def version_list(*, tagger: Tagger) -> QuerySet[TaggerVersion]:
    return TaggerVersion.objects.filter(tagger=tagger).select_related("job").order_by("-number")


def version_get(*, tagger: Tagger, number: object) -> TaggerVersion:
    try:
        return version_list(tagger=tagger).get(number=int(str(number)))
    except (TaggerVersion.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(
            f"Tagger {tagger.name} has no version {number}.", code="taggers.version_not_found"
        ) from exc


def version_for(*, tagger: Tagger, number: object | None) -> TaggerVersion:
    """The given version, else the active one (404 when there is none)."""
    if number not in (None, ""):
        return version_get(tagger=tagger, number=number)
    if tagger.active_version is None:
        raise NotFoundError(f"Tagger {tagger.name} has no active version.", code="taggers.no_active_version")
    return tagger.active_version


def _threshold_int(version: TaggerVersion) -> Any:
    tuned = TaggerThreshold.objects.filter(version=version, tag_id=OuterRef("tag_id")).values("threshold")[:1]
    default = version.tagger.vocabulary.default_tagger_threshold
    return Coalesce(Cast(Subquery(tuned) * SCALE, IntegerField()), Value(default))


def predictions(*, version: TaggerVersion) -> QuerySet[TagAssignment]:
    """Current assignments of the version's sets, with `threshold` (1/10000) and `effective`."""
    slot = slots.tagger(model=version.tagger.name, version=str(version.number))
    return (
        TagAssignment.objects.filter(
            kind=TagSet.Kind.TAGGER,
            state=CURRENT,
            tagset__slot=slot,
            tagset__vocabulary_id=version.tagger.vocabulary_id,
        )
        .annotate(threshold=_threshold_int(version))
        .annotate(
            effective=Case(When(confidence__gte=F("threshold"), then=Value(True)), default=Value(False))
        )
        .select_related("tag")
    )


def predictions_effective(*, version: TaggerVersion) -> QuerySet[TagAssignment]:
    return predictions(version=version).filter(confidence__gte=F("threshold"))


def _curated(state: int) -> Any:
    return Exists(
        TagAssignment.objects.filter(
            kind=TagSet.Kind.CURATED,
            media_item_id=OuterRef("media_item_id"),
            tag_id=OuterRef("tag_id"),
            state=state,
        )
    )


ReviewKey = tuple[int, int, int, int]  # (uncertainty, disagrees 1/0, item, tag) of a queue row


def review_cursor(row: Any) -> str:
    """The keyset position of a review-queue row: pass it as `after` for the rows behind it."""
    return f"{int(row.uncertainty)}.{int(bool(row.disagrees))}.{row.media_item_id}.{row.tag_id}"


def review_cursor_parse(text: str) -> ReviewKey:
    """`<uncertainty>.<disagrees>.<item>.<tag>` (from `review_cursor`) or DomainError."""
    parts = text.split(".")
    if (
        len(parts) != 4
        or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts)
        or parts[1] not in "01"
    ):
        raise DomainError(
            "`after` is the `cursor` of a review-queue row.",
            code="taggers.bad_cursor",
            details={"after": text[:100]},
        )
    u, d, i, t = (int(p) for p in parts)
    return u, d, i, t


def review_queue(
    *, version: TaggerVersion, limit: int = REVIEW_PAGE, after: ReviewKey | None = None
) -> list[TagAssignment]:
    """Undecided predictions (no curated row for the item and tag yet), the most uncertain first
    (confidence nearest the threshold), then those where the item has a curated set that lacks
    the tag (a disagreement a person's answer settles). Keyset-paged: `after` is the last row's
    key (`review_cursor`); no OFFSET, so a deep page costs what the first does."""
    has_curated = Exists(
        TagSet.objects.filter(media_item_id=OuterRef("media_item_id"), kind=TagSet.Kind.CURATED)
    )
    decided = Exists(
        TagAssignment.objects.filter(
            kind=TagSet.Kind.CURATED, media_item_id=OuterRef("media_item_id"), tag_id=OuterRef("tag_id")
        )
    )
    rows = (
        predictions(version=version)
        .filter(~Q(decided))
        # Signed: MariaDB refuses an UNSIGNED (confidence) minus a larger value.
        .annotate(
            uncertainty=Abs(Cast(F("confidence"), IntegerField()) - F("threshold")), disagrees=has_curated
        )
    )
    if after is not None:
        u, d, i, t = after
        tail = Q(media_item_id__gt=i) | Q(media_item_id=i, tag_id__gt=t)
        same = (Q(disagrees=False) | (Q(disagrees=True) & tail)) if d else (Q(disagrees=False) & tail)
        rows = rows.filter(Q(uncertainty__gt=u) | (Q(uncertainty=u) & same))
    return list(rows.order_by("uncertainty", "-disagrees", "media_item_id", "tag_id")[:limit])


@dataclass(frozen=True)
class Agreement:
    tag_id: int
    name: str
    accepted: int  # effective and curated current (true positives by the reviewers' word)
    rejected: int  # effective and tombstoned (false positives)
    missed: int  # curated current but not effective (false negatives among scored items)

    @property
    def precision(self) -> float | None:
        return self.accepted / (self.accepted + self.rejected) if self.accepted + self.rejected else None

    @property
    def recall(self) -> float | None:
        return self.accepted / (self.accepted + self.missed) if self.accepted + self.missed else None


def review_agreement(*, version: TaggerVersion) -> list[Agreement]:
    """Per tag: precision and recall of the version's effective predictions against what people
    decided in curated sets (accept = current, reject = tombstone), over the items it scored.
    One grouped SQL aggregate: the rows never reach Python."""
    effective = Q(confidence__gte=F("threshold"))

    def count(when: Q) -> Sum:
        return Sum(Case(When(when, then=Value(1)), default=Value(0), output_field=IntegerField()))

    rows = (
        predictions(version=version)
        .annotate(cur=_curated(CURRENT), gone=_curated(DELETED))
        .order_by()
        .values("tag_id", "tag__name")
        .annotate(
            accepted=count(effective & Q(cur=True)),
            rejected=count(effective & Q(cur=False, gone=True)),
            missed=count(~effective & Q(cur=True)),
        )
        .order_by("tag__name", "tag_id")
    )
    return [
        Agreement(r["tag_id"], r["tag__name"], int(r["accepted"]), int(r["rejected"]), int(r["missed"]))
        for r in rows
    ]


def predictions_page(
    *,
    version: TaggerVersion,
    item_id: int | None,
    tag_id: int | None,
    effective: bool,
    after: tuple[int, int],
    limit: int,
) -> list[TagAssignment]:
    """A keyset page of predictions by (item, tag) after `after`."""
    rows = predictions_effective(version=version) if effective else predictions(version=version)
    if item_id is not None:
        rows = rows.filter(media_item_id=item_id)
    if tag_id is not None:
        rows = rows.filter(tag_id=tag_id)
    after_item, after_tag = after
    rows = rows.filter(Q(media_item_id__gt=after_item) | Q(media_item_id=after_item, tag_id__gt=after_tag))
    return list(rows.order_by("media_item_id", "tag_id")[:limit])
