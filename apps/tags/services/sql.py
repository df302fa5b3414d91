"""Raw SQL helpers the bulk paths share: multi-row inserts and the vendor-specific statement
shapes (multi-table UPDATE and DELETE) that the ORM cannot express."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model
from django.db.models.constants import OnConflict

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


def _literal(value: Any) -> str:
    """A constant as SQL text: integers, NULL, or a string without quotes or backslashes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    text = str(value)
    if "'" in text or "\\" in text:
        raise ValueError(f"not a plain constant: {text!r}")
    return f"'{text}'"


def int_rows_insert(
    model: type[Model],
    columns: Sequence[str],
    template: tuple[Sequence[Any], Sequence[int]],
    rows: Iterable[Sequence[int]],
    *,
    batch: int = 5 * BATCH,
    ignore: bool = False,
) -> int:
    """Multi-row INSERT of rows that differ only in integer columns, written as SQL text: the
    `template` row holds the constants (integers, NULL, plain strings) and the positions the
    integers of each of `rows` fill, in order. Formatting integers with `%d` costs a fraction of
    the driver's per-value escaping, which set the pace of million-row writes (a mapping apply,
    bench/README.md#mappings). `ignore`: rows whose key exists are skipped (INSERT IGNORE). Returns
    the rows sent."""
    constants, slots = template
    meta = model._meta
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(cast(Field, meta.get_field(c)).column)) for c in columns)
    verb = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE if ignore else None)
    head = f"{verb} {quote(meta.db_table)} ({names}) VALUES "
    holes = set(slots)
    parts = [("%d" if n in holes else _literal(v).replace("%", "%%")) for n, v in enumerate(constants)]
    row_format = "(" + ",".join(parts) + ")"
    written = 0
    pending: list[str] = []
    with connection.cursor() as cursor:
        for row in rows:
            pending.append(row_format % tuple(row))
            if len(pending) >= batch:
                cursor.execute(head + ",".join(pending))
                written += len(pending)
                pending = []
        if pending:
            cursor.execute(head + ",".join(pending))
            written += len(pending)
    return written


CASE_BATCH = 500


def column_add(
    model: type[Model], column: str, deltas: dict[Any, int], *, key: str = "pk", **where: Any
) -> None:
    """`column += delta` on the rows whose `key` is in `deltas`, one UPDATE per CASE_BATCH keys
    (`CASE key WHEN … THEN … ELSE 0 END`), rows filtered by `where` too. Written as text: the
    ORM's Case of 500 Whens costs about 0.1 s of Python to compile per statement, which set the
    pace of a mapping apply's settling (bench/README.md#mappings). Keys are touched in ascending
    order, as the callers lock them."""
    if not deltas:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    key_column = quote(str(meta.pk.column if key == "pk" else cast(Field, meta.get_field(key)).column))
    target = quote(str(cast(Field, meta.get_field(column)).column))
    extra = "".join(f" AND {quote(str(cast(Field, meta.get_field(k)).column))} = %s" for k in where)
    keys = sorted(deltas)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), CASE_BATCH):
            batch = keys[start : start + CASE_BATCH]
            whens = " ".join(["WHEN %s THEN %s"] * len(batch))
            marks = ", ".join(["%s"] * len(batch))
            table = quote(meta.db_table)
            sql = (
                f"UPDATE {table} SET {target} = {target} + CASE {key_column} {whens} ELSE 0 END"  # noqa: S608
                f" WHERE {key_column} IN ({marks}){extra}"
            )
            params = [v for k in batch for v in (k, deltas[k])] + batch + list(where.values())
            cursor.execute(sql, params)
