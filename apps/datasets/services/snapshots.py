"""Freezing a dataset and its subsets into a snapshot (docs/datasets.md#snapshots).

One INSERT … SELECT per part: the members' ids and sha256, and per member a fingerprint of its
effective tags computed by correlated aggregates over EffectiveTag's (media_item, tag) index.
Nothing walks the members in Python.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, Snapshot, SnapshotItem, SnapshotPart, Subset
from apps.datasets.selectors import dataset_members, subset_members
from apps.media.models import MediaItem
from apps.tags.models import EffectiveTag

# The tag fingerprint: per tag id x two pseudo-random values g(x) < P (the mixing of
# search's order:random: integer arithmetic, identical on MariaDB and SQLite, below 2^63), summed
# per item and folded to (Σg₁ mod P)·P + (Σg₂ mod P). A sum does not depend on row order, so the
# fingerprint is a function of the set of tag ids; two different sets collide with chance ≈ 2⁻⁶².
MULTIPLIER = 1_103_515_245
MODULUS = 2_147_483_659
SEEDS = ((12_345, 1_013_904_223), (67_890, 507_952_102))
NOTE_MAX = 500


def tag_value(tag_id: Any, seeds: tuple[int, int]) -> Any:
    """g(x) for an expression or an int (tests compute the fingerprint in Python with it)."""
    x = (tag_id * MULTIPLIER + seeds[0]) % MODULUS
    return (x * x + seeds[1]) % MODULUS


def tags_fingerprint(tag_ids: list[int]) -> int:
    """The fingerprint of a set of tag ids, in Python (0 for no tags)."""
    if not tag_ids:
        return 0
    first, second = (sum(tag_value(t, s) for t in set(tag_ids)) % MODULUS for s in SEEDS)
    return first * MODULUS + second


def _freeze(snapshot: Snapshot, part: int, members: QuerySet[MediaItem]) -> int:
    """INSERT INTO snapshot items SELECT the members: returns the number of rows."""
    per_item = EffectiveTag.objects.filter(media_item_id=OuterRef("pk")).order_by().values("media_item_id")
    sums = [Sum(tag_value(F("tag_id"), s), output_field=BigIntegerField()) for s in SEEDS]
    folded = (sums[0] % MODULUS) * MODULUS + sums[1] % MODULUS
    fingerprint = per_item.annotate(h=folded).values("h")
    count = per_item.annotate(n=Count("tag_id")).values("n")
    rows = members.order_by().annotate(
        _snapshot=Value(snapshot.pk, output_field=IntegerField()),
        _part=Value(part, output_field=IntegerField()),
        _item=F("pk"),
        _sha=F("sha256"),
        _hash=Coalesce(Subquery(fingerprint, output_field=BigIntegerField()), Value(0)),
        _count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
    )
    names = ["_snapshot", "_part", "_item", "_sha", "_hash", "_count"]
    sql, params = rows.values_list(*names).query.sql_with_params()
    table = connection.ops.quote_name(SnapshotItem._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c)
        for c in ("snapshot_id", "part", "item_id", "sha256", "tags_hash", "tag_count")
    )
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {sql}", params)
        return int(cursor.rowcount)


@transaction.atomic
def snapshot_create(*, dataset: Dataset, note: str = "", user: Any = None) -> Snapshot:
    """Freeze the dataset's members and each subset's members now (docs/datasets.md#snapshots).

    The dataset row is locked first (services.members.lock_dataset's order: dataset, then
    member rows) so snapshot numbers stay in order and no member edit of the dataset or of a
    subset, and no edit of its query, commits between the parts: each part is its own
    INSERT … SELECT and under READ COMMITTED each sees the latest commits, so only writers that
    take the dataset lock are kept out. A change that does not take it (tags edited on an item,
    which move saved-query matches) can still land between two parts."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise DomainError(f"note: at most {NOTE_MAX} characters.", code="datasets.invalid")
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    last = Snapshot.objects.filter(dataset=locked).aggregate(n=Max("number"))["n"] or 0
    snapshot = Snapshot.objects.create(
        dataset=locked,
        number=last + 1,
        note=note,
        query=locked.query,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    snapshot.member_count = _freeze(snapshot, 0, dataset_members(dataset=locked))
    for position, subset in enumerate(Subset.objects.filter(dataset=locked).order_by("pk"), start=1):
        part = SnapshotPart.objects.create(
            snapshot=snapshot,
            position=position,
            subset=subset,
            name=subset.name,
            slug=subset.slug,
            query=subset.query,
        )
        part.member_count = _freeze(snapshot, position, subset_members(subset=subset))
        part.save(update_fields=["member_count"])
    snapshot.save(update_fields=["member_count"])
    return snapshot
