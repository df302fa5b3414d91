"""Raw SQL helpers the bulk paths share: multi-row inserts and the vendor-specific statement
shapes (multi-table UPDATE and DELETE) that the ORM cannot express."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model

BATCH = 1000
# OperationChange columns as the bulk paths write them.
CHANGE_COLUMNS = (
    "operation_id",
    "tagset_id",
    "tag_id",
    "media_item_id",
    "before_state",
    "after_state",
    "before_position",
    "before_via",
)


def rows_insert(model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Multi-row INSERT through the driver's executemany (MySQLdb folds it into multi-row VALUES,
    sqlite3 reuses one prepared statement): the ORM's per-object work is what costs at 10⁴ rows."""
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(cast(Field, meta.get_field(c)).column)) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608 - identifiers only
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 5 * BATCH):
            cursor.executemany(sql, rows[start : start + 5 * BATCH])
