"""SQL lookups that behave the same on SQLite and MariaDB (byte-exact, case-sensitive)."""

from __future__ import annotations

from typing import Any

from django.db.models import Func, IntegerField, Lookup


class ExactBytes(Lookup):  # type: ignore[type-arg]
    """Byte-for-byte equality; MariaDB's default collations fold case, accents and pad spaces.

    The plain `=` keeps the column's index usable on MariaDB; the binary re-check makes it exact.
    """

    lookup_name = "exact_bytes"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        params = [*lhs_params, *rhs_params]
        if connection.vendor == "mysql":
            return f"({lhs} = {rhs} AND {lhs} COLLATE utf8mb4_bin = {rhs})", params * 2
        return f"{lhs} = {rhs}", params


class NameGlob(Lookup):  # type: ignore[type-arg]
    """A `*` pattern over a name, case-sensitive on both databases (GLOB / binary LIKE).

    The right-hand side is the tuple of literal segments between the `*`s.
    """

    lookup_name = "name_glob"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        parts: tuple[str, ...] = self.rhs
        if connection.vendor == "sqlite":
            special = {"*": "[*]", "?": "[?]", "[": "[[]"}
            pattern = "*".join("".join(special.get(c, c) for c in part) for part in parts)
            return f"{lhs} GLOB %s", [*lhs_params, pattern]
        escape = {"\\": "\\\\", "%": "\\%", "_": "\\_"}
        pattern = "%".join("".join(escape.get(c, c) for c in part) for part in parts)
        # Names are utf8mb4_bin columns on MariaDB (BinaryCharField), so a plain LIKE already
        # compares bytes, and stays a range on (vocabulary, name) for a literal prefix (a
        # COLLATE clause here made MariaDB read every name of the vocabulary).
        return f"{lhs} LIKE %s", [*lhs_params, pattern]


def name_fold(value: str) -> str:
    """How people's names (artists) compare: lower-cased, `_` as a space, outer spaces ignored;
    so `artist:ann_smith` finds "Ann Smith" (docs/query-language.md#qualifiers)."""
    return value.lower().replace("_", " ").strip(" ")


class FoldedEquals(Lookup):  # type: ignore[type-arg]
    """`name_fold(column) == name_fold(value)`, the same on SQLite and MariaDB.

    On MariaDB a case- and accent-insensitive LIKE on the value's first word keeps the column's
    index in use (a superset), and the folded binary comparison makes it exact; SQLite calls the
    Python fold (`bt_fold`, registered on each connection).
    """

    lookup_name = "folded_equals"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        key = name_fold(str(self.rhs))
        if not key:  # only spaces and underscores: no name to match (not "every unnamed item")
            return "1 = 0", []
        if connection.vendor == "mysql":
            word = key.split(" ", 1)[0]
            escaped = "".join("\\" + c if c in "\\%_" else c for c in word)
            folded = f"TRIM(REPLACE(LOWER({lhs}), '_', ' ')) COLLATE utf8mb4_bin"
            return f"({lhs} LIKE %s AND {folded} = %s)", [*lhs_params, escaped + "%", *lhs_params, key]
        return f"bt_fold({lhs}) = %s", [*lhs_params, key]


class Hamming(Func):
    """Bits that differ between two 64-bit hashes (BIT_COUNT of the XOR on MariaDB; on SQLite a
    function registered on each connection, `bt_hamming`)."""

    output_field = IntegerField()
    arity = 2

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="BIT_COUNT(%(expressions)s)", arg_joiner=" ^ ")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="bt_hamming")


def hamming(a: int | None, b: int | None) -> int | None:
    """The SQLite side of Hamming (signed 64-bit integers in, differing bits out)."""
    if a is None or b is None:
        return None
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created handler: register bt_hamming on SQLite connections."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("bt_hamming", 2, hamming, deterministic=True)
        connection.connection.create_function("bt_fold", 1, _fold_or_none, deterministic=True)
        connection.connection.create_function("bt_lower", 1, _lower_or_none, deterministic=True)


def _lower_or_none(value: str | None) -> str | None:
    return None if value is None else value.lower()


class UnicodeLower(Func):
    """LOWER() that folds every cased letter on both databases: MariaDB's LOWER does; SQLite's
    folds ASCII only, so there it calls Python's `str.lower` (`bt_lower`)."""

    function = "LOWER"
    arity = 1

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="bt_lower")


def _fold_or_none(value: str | None) -> str | None:
    return None if value is None else name_fold(value)
